#include "tests/mpi_worker.h"

#include <limits.h>
#include <unistd.h>

#include "tests/test.h"

#define WORKER_ENV "CTRAIN_TEST_WORKER"

void mpi_worker_only(void) {
    if (!getenv(WORKER_ENV)) SKIP("runs only under mpirun, started by another test (mpi_worker_run)");
}

int mpi_worker_run(int np, const char *name, const char *env, int timeout_s, char **out) {
#ifndef CTRAIN_MPI
    (void)np, (void)name, (void)env, (void)timeout_s, (void)out;
    SKIP("this build has no MPI (install OpenMPI and rebuild to test multi-rank runs)");
#else
    if (ct_test_run("command -v mpirun", NULL) != 0) SKIP("mpirun is not on PATH: multi-rank test skipped");
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) SKIP("cannot find this test binary (/proc/self/exe)");
    self[len] = '\0';
    char cmd[8192];
    // Leak checking off in the ranks under make asan, as in test_dist.c (Open MPI's components).
    snprintf(cmd, sizeof cmd,
             "OMP_NUM_THREADS=1 ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 timeout %d mpirun --oversubscribe "
             "--allow-run-as-root -x ASAN_OPTIONS -x OMP_NUM_THREADS -x " WORKER_ENV "=1 %s%s -np %d '%s' '%s' 2>&1",
             timeout_s, env ? "-x " : "", env ? env : "", np, self, name);
    return ct_test_run(cmd, out);
#endif
}

int mpi_worker_all_passed(const char *out, int np) {
    int passed = 0;
    for (const char *p = out; (p = strstr(p, "1 passed, 0 failed")) != NULL; p++) passed++;
    return passed == np && !strstr(out, "FAIL");
}
