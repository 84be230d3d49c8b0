// Timing helpers shared by the standalone bench programs (header-only: bench/llama_cpp_bench.c
// links libllama alone, not libctrain).
#ifndef CTRAIN_BENCH_CLOCK_H
#define CTRAIN_BENCH_CLOCK_H

#include <stdlib.h>
#include <time.h>

// Seconds on clock `id` (CLOCK_MONOTONIC: wall time; CLOCK_PROCESS_CPUTIME_ID: the process's CPU).
static inline double bench_clock_s(clockid_t id) {
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static inline double bench_now_s(void) { return bench_clock_s(CLOCK_MONOTONIC); }

static inline int bench_by_value(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Sorts v[0..n) ascending and returns its median.
static inline double bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, bench_by_value);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#endif
