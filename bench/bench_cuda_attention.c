// Attention forward + backward on the GPU: time and TFLOP/s for the CUDA op table
// (make bench-cuda-attention; needs a CUDA build and a GPU). Shapes: GPT-2 small's heads
// (HD = 64) at T = 1024 by default; --B, --T, --NH, --NKV, --HD, --iters change them.
// FLOPs count the causal half of the four (forward: QKᵀ, PV) and ten (backward, counted as
// 2.5 × forward as FlashAttention does) T×T×HD products: fwd = 2·B·NH·T²·HD, bwd = 2.5·fwd.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/device.h"

#ifdef CTRAIN_CUDA
#include "core/alloc.h"
#include "core/rng.h"
#include "kernels/cuda/cuda_ops.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float *device_random(CtRng *rng, size_t n) {
    float *h = ct_alloc(n * sizeof(float));
    ct_rng_fill_normal(rng, h, n, 0, 1);
    float *d = ct_cuda_malloc(n * sizeof(float), "bench input");
    ct_cuda_upload(d, h, n * sizeof(float));
    ct_free(h);
    return d;
}

int main(int argc, char **argv) {
    int B = 8, T = 1024, NH = 12, NKV = 12, HD = 64, iters = 20;
    for (int i = 1; i + 1 < argc; i += 2) {
        int v = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--B")) B = v;
        else if (!strcmp(argv[i], "--T")) T = v;
        else if (!strcmp(argv[i], "--NH")) NH = v;
        else if (!strcmp(argv[i], "--NKV")) NKV = v;
        else if (!strcmp(argv[i], "--HD")) HD = v;
        else if (!strcmp(argv[i], "--iters")) iters = v;
        else {
            fprintf(stderr, "unknown option %s (use --B --T --NH --NKV --HD --iters)\n", argv[i]);
            return 2;
        }
    }
    char why[256], name[256];
    size_t mem;
    if (ct_cuda_device_count(why, sizeof why) <= 0) {
        fprintf(stderr, "%s\n", why);
        return 1;
    }
    ct_cuda_device_describe(0, name, sizeof name, &mem);
    const CtOps *ops = ct_ops_cuda();
    CtRng rng;
    ct_rng_seed(&rng, 1);
    const size_t row = (size_t)(NH + 2 * NKV) * HD, n_qkv = (size_t)B * T * row, n_out = (size_t)B * T * NH * HD;
    float *qkv = device_random(&rng, n_qkv), *dout = device_random(&rng, n_out);
    float *out = ct_cuda_malloc(n_out * sizeof(float), "out"), *dqkv = ct_cuda_malloc(n_qkv * sizeof(float), "dqkv");
    float *att = ct_cuda_malloc(ct_cuda_attention_saved_floats(B, T, NH) * sizeof(float), "att");
    ct_cuda_zero(dqkv, n_qkv * sizeof(float));
    // warm-up, then timed runs of each
    ops->attention_forward(out, att, qkv, NULL, 0.0f, 0, B, T, NH, NKV, HD);
    ops->attention_backward(dqkv, dout, qkv, att, 0.0f, 0, B, T, NH, NKV, HD);
    ct_cuda_synchronize();
    double t0 = now();
    for (int i = 0; i < iters; i++) ops->attention_forward(out, att, qkv, NULL, 0.0f, 0, B, T, NH, NKV, HD);
    ct_cuda_synchronize();
    double t_fwd = (now() - t0) / iters;
    t0 = now();
    for (int i = 0; i < iters; i++) ops->attention_backward(dqkv, dout, qkv, att, 0.0f, 0, B, T, NH, NKV, HD);
    ct_cuda_synchronize();
    double t_bwd = (now() - t0) / iters;
    t0 = now();
    for (int i = 0; i < iters; i++)
        ct_cuda_attention_backward_with_out(dqkv, dout, out, qkv, att, 0.0f, 0, B, T, NH, NKV, HD);
    ct_cuda_synchronize();
    double t_bwd_out = (now() - t0) / iters;
    const double fwd_flops = 2.0 * B * NH * (double)T * T * HD, bwd_flops = 2.5 * fwd_flops;
    printf("device: %s\nshape: B=%d T=%d NH=%d NKV=%d HD=%d, fp32, causal, %d iterations\n", name, B, T, NH, NKV, HD,
           iters);
    printf("| pass | ms | TFLOP/s |\n| --- | ---: | ---: |\n");
    printf("| forward | %.3f | %.2f |\n", t_fwd * 1e3, fwd_flops / t_fwd * 1e-12);
    printf("| backward | %.3f | %.2f |\n", t_bwd * 1e3, bwd_flops / t_bwd * 1e-12);
    printf("| backward (with out) | %.3f | %.2f |\n", t_bwd_out * 1e3, bwd_flops / t_bwd_out * 1e-12);
    printf("| forward + backward | %.3f | %.2f |\n", (t_fwd + t_bwd) * 1e3,
           (fwd_flops + bwd_flops) / (t_fwd + t_bwd) * 1e-12);
    printf("peak device memory held by ctrain: %.1f MiB\n", ct_cuda_bytes_peak() / 1048576.0);
    return 0;
}
#else
int main(void) {
    fprintf(stderr, "this build has no CUDA backend (make CUDA=1 where nvcc is installed)\n");
    return 1;
}
#endif
