#include "kernels/cpu/blas_setup.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/cpu/cpu_features.h"

#define REEXEC_MARK "CTRAIN_BLAS_CORE_WAS"  // set on the re-exec: the core the library had chosen

// The OpenBLAS core to ask for on this CPU, or NULL when any choice of the library is fine.
static const char *wanted_core(const CtCpuFeatures *f) {
    if (f->avx512f && f->avx512bw && f->avx512vl && f->avx512dq) return "SkylakeX";
    if (f->avx2 && f->fma) return "Haswell";
    return NULL;
}

// Is the library's core at least as good as `wanted` for sgemm? (Measured on AVX-512 Zen 4:
// SkylakeX 198, Cooperlake 195, Haswell 199, Zen 180, Prescott 62 GFLOP/s.)
static int core_is_good(const char *core, const char *wanted) {
    static const char *const avx512_cores[] = {"SkylakeX", "Cooperlake", "SapphireRapids", NULL};
    static const char *const avx2_cores[] = {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids", NULL};
    const char *const *ok = strcmp(wanted, "SkylakeX") == 0 ? avx512_cores : avx2_cores;
    for (int i = 0; ok[i]; i++)
        if (strcasecmp(core, ok[i]) == 0) return 1;
    return 0;
}

static const char *library_core(void) {
    // tests pretend a misdetection through this variable
    const char *pretend = getenv("CTRAIN_TEST_PRETEND_BLAS_CORE");
    return pretend && *pretend && !getenv(REEXEC_MARK) ? pretend : openblas_get_corename();
}

void ct_blas_select_core(char **argv) {
    if (getenv("OPENBLAS_CORETYPE") || getenv(REEXEC_MARK)) return;  // the user's choice, or done
    CtCpuFeatures f;
    ct_cpu_features(&f);
    const char *wanted = wanted_core(&f);
    const char *core = library_core();
    if (!wanted || core_is_good(core, wanted)) return;
    setenv("OPENBLAS_CORETYPE", wanted, 1);
    setenv(REEXEC_MARK, core, 1);
    execv("/proc/self/exe", argv);
    // no /proc or exec refused: carry on with the slow kernels, and say so
    fprintf(stderr, "ctrain: warning: OpenBLAS chose core %s on a CPU that can run %s, and re-executing with "
                    "OPENBLAS_CORETYPE=%s failed; set that variable yourself for ~3-7x faster matrix products\n",
            core, wanted, wanted);
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv(REEXEC_MARK);
}

void ct_blas_describe(char *buf, int size) {
    CtCpuFeatures f;
    ct_cpu_features(&f);
    char feats[96];
    ct_cpu_features_describe(&f, feats, sizeof feats);
    const char *was = getenv(REEXEC_MARK), *user = getenv("OPENBLAS_CORETYPE");
    char how[160] = "detected by the library";
    if (was)
        snprintf(how, sizeof how, "set by ctrain: the library chose %s", was);
    else if (user)
        snprintf(how, sizeof how, "from OPENBLAS_CORETYPE");
    const char *config = openblas_get_config();
    const char *version = strstr(config, "OpenBLAS ");
    char ver[32] = "";
    if (version) sscanf(version + 9, "%31s", ver);
    const int threads = omp_get_max_threads();
    snprintf(buf, (size_t)size, "cpu %s; OpenBLAS %s core %s (%s); %d thread%s", feats, ver, openblas_get_corename(),
             how, threads, threads == 1 ? "" : "s");
}
