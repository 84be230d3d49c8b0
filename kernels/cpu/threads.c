// CPU knobs shared by the kernels: which engine computes matrix products, and how many
// threads OpenMP and OpenBLAS use.
#include <cblas.h>
#include <omp.h>

#include "kernels/cpu/cpu_ops.h"

static CtMatmulEngine matmul_engine = CT_MATMUL_BLAS;

void ct_cpu_set_matmul_engine(CtMatmulEngine engine) { matmul_engine = engine; }
CtMatmulEngine ct_cpu_matmul_engine(void) { return matmul_engine; }

// OpenBLAS (pthreads build) keeps its own pool. Our OpenMP loops and BLAS calls never run at
// the same time (every BLAS call is made from serial code), so both pools get every core.
int ct_cpu_set_threads(int n) {
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
    return n;
}
