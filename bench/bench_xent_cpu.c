// The CPU cross-entropy over the vocabulary at a model's shape: xent_forward, xent_backward (the
// two passes over the logits of a training step before issue 28's fusion), and the fused
// xent_forward_backward where the table has it.
//
//   build/bench_xent_cpu [--N 2048] [--V 8192] [--reps 15] [--threads 2] [--softcap 0]
//
// Defaults: llama-tiny's head at B 8, T 256 (N = 2048 rows, V = 8192: 67 MB of logits). Every rep
// starts from the same logits (copied in, not timed) and runs each op once, the ops taking turns,
// so that a busy machine slows them alike; prints per op the median and fastest wall ms.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench_clock.h"
#include "core/alloc.h"
#include "core/rng.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops.h"

enum { FORWARD, BACKWARD, FUSED, N_OPS };

int main(int argc, char **argv) {
    int N = 2048, V = 8192, reps = 15, threads = 2, softcap = 0;
    for (int i = 1; i < argc; i += 2) {
        int *v = !strcmp(argv[i], "--N")         ? &N
                 : !strcmp(argv[i], "--V")       ? &V
                 : !strcmp(argv[i], "--reps")    ? &reps
                 : !strcmp(argv[i], "--threads") ? &threads
                 : !strcmp(argv[i], "--softcap") ? &softcap
                                                 : NULL;
        if (!v || i + 1 >= argc) {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
        *v = atoi(argv[i + 1]);
    }
    if (N < 1 || V < 1 || reps < 1 || softcap < 0) {
        fprintf(stderr, "bench_xent_cpu: N, V and reps must be positive, softcap 0 or more\n");
        return 2;
    }
    threads = ct_cpu_set_threads(threads);
    const CtOps *ops = ct_ops_cpu();
    const size_t n = (size_t)N * V;
    float *saved = ct_alloc(n * sizeof(float)), *logits = ct_alloc(n * sizeof(float));
    float *losses = ct_alloc((size_t)N * sizeof(float)), *logprobs = ct_alloc((size_t)N * sizeof(float));
    float *lse = ct_alloc((size_t)N * sizeof(float));
    int32_t *targets = ct_alloc((size_t)N * sizeof(int32_t));
    CtRng rng;
    ct_rng_seed(&rng, 1337);
    ct_rng_fill_normal(&rng, saved, n, 0, 2);
    if (softcap)  // logits already capped, as softcap_forward leaves them
        ops->softcap_forward(saved, n, (float)softcap);
    for (int i = 0; i < N; i++) targets[i] = (int32_t)ct_rng_below(&rng, (uint32_t)V);
    const char *names[N_OPS] = {"xent_forward", "xent_backward", "xent_forward_backward"};
    const int have[N_OPS] = {1, 1, ops->xent_forward_backward != NULL};
    double *ms = ct_alloc((size_t)N_OPS * reps * sizeof(double));
    const float scale = 1.0f / (float)N, cap = (float)softcap;
    for (int r = -1; r < reps; r++) {  // r = -1: warm-up
        double t0, t[N_OPS] = {0};
        memcpy(logits, saved, n * sizeof(float));
        t0 = bench_now_s();
        ops->xent_forward(losses, logprobs, lse, logits, targets, NULL, NULL, N, V);
        t[FORWARD] = bench_now_s() - t0;
        t0 = bench_now_s();
        ops->xent_backward(logits, lse, targets, NULL, NULL, scale, N, V, cap);
        t[BACKWARD] = bench_now_s() - t0;
        if (have[FUSED]) {
            memcpy(logits, saved, n * sizeof(float));
            t0 = bench_now_s();
            ops->xent_forward_backward(losses, logprobs, lse, logits, targets, NULL, NULL, scale, N, V, cap);
            t[FUSED] = bench_now_s() - t0;
        }
        if (r < 0) continue;
        for (int k = 0; k < N_OPS; k++) ms[k * reps + r] = 1e3 * t[k];
    }
    printf("# cross-entropy over the vocabulary, N %d V %d, softcap %d, %d thread(s), %d reps\n", N, V, softcap,
           threads, reps);
    printf("| op | wall ms median | wall ms fastest |\n| --- | --- | --- |\n");
    for (int k = 0; k < N_OPS; k++) {
        if (!have[k]) continue;
        const double med = bench_median(ms + k * reps, reps);
        printf("| %s | %.2f | %.2f |\n", names[k], med, ms[k * reps]);
    }
    ct_free(saved);
    ct_free(logits);
    ct_free(losses);
    ct_free(logprobs);
    ct_free(lse);
    ct_free(targets);
    ct_free(ms);
    return 0;
}
