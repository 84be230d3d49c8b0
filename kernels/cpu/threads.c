// CPU knobs shared by the kernels: which engine computes matrix products, and how many
// threads OpenMP and OpenBLAS use.
#include <cblas.h>
#include <omp.h>
#include <stdatomic.h>

#include "kernels/cpu/cpu_ops.h"

static CtMatmulEngine matmul_engine = CT_MATMUL_BLAS;

static int attention_blas_min_seq = 64;

void ct_cpu_set_attention_blas_min_seq(int T) { attention_blas_min_seq = T < 1 ? 1 : T; }
int ct_cpu_attention_blas_min_seq(void) { return attention_blas_min_seq; }

static int attention_tile = 32;
void ct_cpu_set_attention_tile(int rows) { attention_tile = rows < 0 ? 0 : rows; }
int ct_cpu_attention_tile(void) { return attention_tile; }

void ct_cpu_set_matmul_engine(CtMatmulEngine engine) { matmul_engine = engine; }
CtMatmulEngine ct_cpu_matmul_engine(void) { return matmul_engine; }

static int few_rows_portable_only;
void ct_cpu_set_matmul_few_rows_portable_only(int on) { few_rows_portable_only = on; }
int ct_cpu_matmul_few_rows_portable_only(void) { return few_rows_portable_only; }

// OpenBLAS (pthreads build) keeps its own pool of threads; we do not use it. Every product is
// split across OpenMP threads, each calling a single-threaded sgemm on its own slice of the
// result, so there is one pool, and no spinning of one pool while the other works.
void ct_cpu_blas_single_threaded(void) {
    static atomic_int done;
    if (!atomic_load_explicit(&done, memory_order_acquire)) {
        openblas_set_num_threads(1);
        atomic_store_explicit(&done, 1, memory_order_release);
    }
}

int ct_cpu_set_threads(int n) {
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
    ct_cpu_blas_single_threaded();
    return n;
}
