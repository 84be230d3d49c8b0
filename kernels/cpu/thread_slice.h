// How the CPU's matrix products split work among OpenMP threads (matmul.inc, moe.inc): each
// thread of the current parallel region takes one contiguous slice of the output's columns or
// rows and calls a single-threaded BLAS on it.
#pragma once
#include <omp.h>

// Slice [*lo, *hi) of `n` for this thread, cut at multiples of 16 (whole AVX-512 vectors).
static inline void ct_cpu_thread_slice(int n, int *lo, int *hi) {
    int threads = omp_get_num_threads(), id = omp_get_thread_num();
    long per = ((long)n + threads - 1) / threads;
    per = (per + 15) / 16 * 16;
    long a = per * id, b = per * (id + 1);
    *lo = (int)(a < n ? a : n);
    *hi = (int)(b < n ? b : n);
}
