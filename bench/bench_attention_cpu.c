// The CPU attention op (BLAS engine), forward + backward, at a model's shape for several tile
// sizes of query rows (ct_cpu_set_attention_tile; 0 = the whole T×T matrix, the engine before
// issue 28's tiles): what skipping the tiles above the diagonal saves.
//
//   build/bench_attention_cpu [--B 8] [--T 256] [--NH 6] [--NKV 6] [--HD 48] [--reps 15] [--threads 1] [--causal 1]
//
// Defaults: llama-tiny's attention (d_model 288, 6 heads) at B 8, T 256. Prints per tile the median
// and fastest CPU time of the process (all threads) and of the wall clock per forward + backward;
// the tiles take turns rep by rep, so that a busy machine slows them alike, and CPU time is
// what a loaded machine disturbs least.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench_clock.h"
#include "core/alloc.h"
#include "core/rng.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops.h"

int main(int argc, char **argv) {
    int B = 8, T = 256, NH = 6, NKV = 6, HD = 48, reps = 15, threads = 1, causal = 1;
    for (int i = 1; i < argc; i += 2) {
        int *v = !strcmp(argv[i], "--B")         ? &B
                 : !strcmp(argv[i], "--T")       ? &T
                 : !strcmp(argv[i], "--NH")      ? &NH
                 : !strcmp(argv[i], "--NKV")     ? &NKV
                 : !strcmp(argv[i], "--HD")      ? &HD
                 : !strcmp(argv[i], "--reps")    ? &reps
                 : !strcmp(argv[i], "--threads") ? &threads
                 : !strcmp(argv[i], "--causal")  ? &causal
                                                 : NULL;
        if (!v || i + 1 >= argc) {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
        *v = atoi(argv[i + 1]);
    }
    if (B < 1 || T < 1 || NH < 1 || NKV < 1 || NH % NKV || HD < 1 || reps < 1) {
        fprintf(stderr, "bench_attention_cpu: every size must be positive and NKV must divide NH\n");
        return 2;
    }
    threads = ct_cpu_set_threads(threads);
    ct_cpu_set_attention_blas_min_seq(1);
    const CtOps *ops = ct_ops_cpu();
    const CtAttentionOptions opt = {.bidirectional = !causal};
    const size_t n_in = (size_t)B * T * (NH + 2 * NKV) * HD, n_out = (size_t)B * T * NH * HD;
    float *qkv = ct_alloc(n_in * sizeof(float)), *dqkv = ct_alloc(n_in * sizeof(float));
    float *out = ct_alloc(n_out * sizeof(float)), *dout = ct_alloc(n_out * sizeof(float));
    float *att = ct_alloc((size_t)B * NH * T * T * sizeof(float));
    CtRng rng;
    ct_rng_seed(&rng, 1337);
    ct_rng_fill_normal(&rng, qkv, n_in, 0, 1);
    ct_rng_fill_normal(&rng, dout, n_out, 0, 1);
    const int tiles[] = {0, 16, 24, 32, 48, 64, 128};
    const int n_tiles = (int)(sizeof tiles / sizeof tiles[0]);
    double *cpu = ct_alloc((size_t)n_tiles * reps * sizeof(double)), *wall = ct_alloc((size_t)n_tiles * reps * sizeof(double));
    for (int r = -1; r < reps; r++)  // r = -1: warm-up
        for (int k = 0; k < n_tiles; k++) {
            ct_cpu_set_attention_tile(tiles[k]);
            memset(dqkv, 0, n_in * sizeof(float));
            const double c0 = bench_clock_s(CLOCK_PROCESS_CPUTIME_ID), w0 = bench_clock_s(CLOCK_MONOTONIC);
            ops->attention_forward(out, att, qkv, NULL, 0, 0, B, T, NH, NKV, HD, &opt);
            ops->attention_backward(dqkv, dout, qkv, att, 0, 0, B, T, NH, NKV, HD, &opt);
            if (r < 0) continue;
            cpu[k * reps + r] = 1e3 * (bench_clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0);
            wall[k * reps + r] = 1e3 * (bench_clock_s(CLOCK_MONOTONIC) - w0);
        }
    printf("# attention forward+backward, B %d T %d NH %d NKV %d HD %d, %s, %d thread(s), %d reps\n", B, T, NH, NKV, HD,
           causal ? "causal" : "bidirectional", threads, reps);
    printf("| tile | CPU ms median | CPU ms fastest | wall ms median | wall ms fastest |\n| --- | --- | --- | --- | --- |\n");
    for (int k = 0; k < n_tiles; k++) {
        qsort(cpu + k * reps, (size_t)reps, sizeof(double), bench_by_value);
        qsort(wall + k * reps, (size_t)reps, sizeof(double), bench_by_value);
        printf("| %d%s | %.1f | %.1f | %.1f | %.1f |\n", tiles[k], tiles[k] ? "" : " (whole matrix)",
               cpu[k * reps + reps / 2], cpu[k * reps], wall[k * reps + reps / 2], wall[k * reps]);
    }
    ct_free(qkv);
    ct_free(dqkv);
    ct_free(out);
    ct_free(dout);
    ct_free(att);
    ct_free(cpu);
    ct_free(wall);
    return 0;
}
