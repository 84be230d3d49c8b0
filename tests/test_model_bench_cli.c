// ctrain bench train, and the OpenBLAS core choice in the start-up line.
#include <stdlib.h>
#include <string.h>

#include "tests/test.h"

#include "kernels/device.h"

TEST(bench, train_prints_the_summary_line) {
    char cmd[1024], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s bench train --model gpt2-tiny --batch 2 --seq 16 --steps 2 --threads 2", ct_test_bin());
    int rc = ct_test_run(cmd, &out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    CHECK_CONTAINS(out, "ms_per_step=");
    CHECK_CONTAINS(out, " tokens_per_s=");
    CHECK_CONTAINS(out, " gflops=");
    CHECK_CONTAINS(out, " peak_mb=");
    CHECK_CONTAINS(out, "OpenBLAS");
    free(out);
    snprintf(cmd, sizeof cmd, "%s bench train --model llama-tiny --model.n_layer=1 --batch 1 --seq 8 --steps 1 --recompute",
             ct_test_bin());
    rc = ct_test_run(cmd, &out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    CHECK_CONTAINS(out, "recompute saves");
    free(out);
}

TEST(bench, train_on_cuda_or_a_clear_refusal_and_bad_options) {
    char cmd[1024], *out = NULL, why[256];
    snprintf(cmd, sizeof cmd, "%s bench train --model gpt2-tiny --device cuda --steps 2", ct_test_bin());
    if (ct_cuda_device_count(why, sizeof why) > 0) {  // a GPU: the model trains there
        int rc = ct_test_run(cmd, &out);
        CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
        CHECK_CONTAINS(out, "device=cuda");
    } else {
        CHECK_EQ_INT(ct_test_run(cmd, &out), 1);
        CHECK_CONTAINS(out, "device cuda: no usable GPU");
    }
    free(out);
    snprintf(cmd, sizeof cmd, "%s bench train --model gpt2-tiny --device tpu", ct_test_bin());
    CHECK_EQ_INT(ct_test_run(cmd, &out), 2);
    CHECK_CONTAINS(out, "--device must be cpu, cuda or auto");
    free(out);
    snprintf(cmd, sizeof cmd, "%s bench train --model gpt2-huge", ct_test_bin());
    CHECK_EQ_INT(ct_test_run(cmd, &out), 1);
    CHECK_CONTAINS(out, "unknown model preset 'gpt2-huge'");
    free(out);
    snprintf(cmd, sizeof cmd, "%s bench train --model gpt2-tiny --seq 100000", ct_test_bin());
    CHECK_EQ_INT(ct_test_run(cmd, &out), 1);
    CHECK_CONTAINS(out, "max_seq_len");
    free(out);
}

// When OpenBLAS picks a weak core on an AVX-512 or AVX2 CPU, ctrain re-executes itself with
// OPENBLAS_CORETYPE set and says so. The misdetection is simulated; a user's choice is kept.
TEST(bench, blas_core_misdetection_is_corrected) {
    char cmd[1024], *out = NULL;
    snprintf(cmd, sizeof cmd, "env -u OPENBLAS_CORETYPE CTRAIN_TEST_PRETEND_BLAS_CORE=Prescott %s --version", ct_test_bin());
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    if (strstr(out, "no AVX2")) SKIP("this CPU has no AVX2: nothing to correct");
    CHECK_CONTAINS(out, "set by ctrain: the library chose Prescott");
    free(out);
    snprintf(cmd, sizeof cmd, "OPENBLAS_CORETYPE=Haswell %s --version", ct_test_bin());
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, "core Haswell (from OPENBLAS_CORETYPE)");
    free(out);
}
