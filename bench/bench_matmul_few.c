// The matrix products of one decoding step over a few rows (kernels/cpu/matmul.inc's few-rows
// path), on the shapes of a llama-style model: what a speculative decoder's check pass over 2-3
// rows costs against plain decoding's one row. Every layer has its own weights (the whole set is
// larger than the caches, as a model's is), read in the order a step reads them.
//
//   build/bench_matmul_few [--layers 12] [--d 384] [--qkv 640] [--ff 1024] [--vocab 4096] [--steps 40]
//
// Prints, per row count 1..8, the median and fastest ms of a step and the weight bytes per second,
// for the kernel in use and for the portable loops (ct_cpu_set_matmul_few_rows_portable_only),
// their steps interleaved so that a busy machine slows both alike.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench_clock.h"
#include "core/alloc.h"
#include "core/rng.h"
#include "kernels/cpu/cpu_ops.h"

typedef struct {
    int in, out;
    float *w;
} Product;

int main(int argc, char **argv) {
    int layers = 12, d = 384, qkv = 640, ff = 1024, vocab = 4096, steps = 40;
    for (int i = 1; i + 1 < argc; i += 2) {
        int *v = !strcmp(argv[i], "--layers") ? &layers
                 : !strcmp(argv[i], "--d")    ? &d
                 : !strcmp(argv[i], "--qkv")  ? &qkv
                 : !strcmp(argv[i], "--ff")   ? &ff
                 : !strcmp(argv[i], "--vocab") ? &vocab
                 : !strcmp(argv[i], "--steps") ? &steps
                                               : NULL;
        if (!v) {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
        *v = atoi(argv[i + 1]);
    }
    ct_cpu_set_threads(1);
    ct_cpu_set_matmul_engine(CT_MATMUL_BLAS);
    CtRng rng;
    ct_rng_seed(&rng, 1);
    const int count = 4 * layers + 1;
    Product *p = ct_alloc(sizeof(Product) * (size_t)count);
    size_t bytes = 0;
    int widest = vocab;
    for (int l = 0; l < layers; l++) {  // q/k/v, attention out, the gate and up (fused), down
        p[4 * l + 0] = (Product){d, qkv, NULL};
        p[4 * l + 1] = (Product){d, d, NULL};
        p[4 * l + 2] = (Product){d, 2 * ff, NULL};
        p[4 * l + 3] = (Product){ff, d, NULL};
    }
    p[count - 1] = (Product){d, vocab, NULL};  // the output head
    for (int i = 0; i < count; i++) {
        const size_t n = (size_t)p[i].in * (size_t)p[i].out;
        p[i].w = ct_alloc(sizeof(float) * n);
        for (size_t j = 0; j < n; j++) p[i].w[j] = ct_rng_uniform(&rng) - 0.5f;
        bytes += sizeof(float) * n;
        if (p[i].out > widest) widest = p[i].out;
    }
    const int max_rows = 8, wide_in = ff > d ? ff : d;
    float *x = ct_alloc(sizeof(float) * (size_t)max_rows * (size_t)wide_in);
    float *out = ct_alloc(sizeof(float) * (size_t)max_rows * (size_t)widest);
    for (int j = 0; j < max_rows * wide_in; j++) x[j] = ct_rng_uniform(&rng) - 0.5f;
    double *t[2] = {ct_alloc(sizeof(double) * (size_t)steps), ct_alloc(sizeof(double) * (size_t)steps)};
    printf("# %d layers, d %d, qkv %d, d_ff %d, vocab %d: %.1f MB of weights a step, one thread\n", layers, d, qkv,
           ff, vocab, (double)bytes / 1e6);
    printf("| rows | ms a step (median) | fastest | GB/s (median) | portable loops: median | fastest |\n");
    printf("| --- | --- | --- | --- | --- | --- |\n");
    for (int rows = 1; rows <= max_rows; rows++) {
        for (int s = -2; s < steps; s++)  // two steps to warm up
            for (int portable = 0; portable < 2; portable++) {
                ct_cpu_set_matmul_few_rows_portable_only(portable);
                const double t0 = bench_now_s();
                for (int i = 0; i < count; i++)
                    ct_ops_cpu()->matmul_forward(out, x, p[i].w, NULL, rows, p[i].in, p[i].out);
                if (s >= 0) t[portable][s] = bench_now_s() - t0;
            }
        for (int k = 0; k < 2; k++) qsort(t[k], (size_t)steps, sizeof *t[k], bench_by_value);
        const double median = t[0][steps / 2];
        printf("| %d | %.3f | %.3f | %.1f | %.3f | %.3f |\n", rows, 1e3 * median, 1e3 * t[0][0],
               (double)bytes / median / 1e9, 1e3 * t[1][steps / 2], 1e3 * t[1][0]);
    }
    for (int i = 0; i < count; i++) ct_free(p[i].w);
    ct_free(p);
    ct_free(x);
    ct_free(out);
    ct_free(t[0]);
    ct_free(t[1]);
    return 0;
}
