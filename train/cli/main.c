// ctrain: train GPT-style language models end to end. See README.md.
#include "core/atomic_file.h"
#include "kernels/cpu/blas_setup.h"
#include "train/cli/cli.h"

int main(int argc, char **argv) {
    ct_blas_select_core(argv);  // may re-exec once with OPENBLAS_CORETYPE set (see blas_setup.h)
    ct_atomic_install_signal_cleanup();  // an interrupt never leaves a half-written file behind
    return ct_cli_main(argc, argv);
}
