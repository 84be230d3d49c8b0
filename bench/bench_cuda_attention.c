// Attention forward + backward on the GPU: time and TFLOP/s for the two CUDA op tables, the
// fp32 CUDA-core kernels (ct_ops_cuda()) and the bf16 tensor-core kernels over bf16 activations
// (ct_ops_cuda_bf16(); head sizes 64 and 128, others fall back to the fp32-math kernels)
// (make bench-cuda-attention; needs a CUDA build and a GPU). Shapes: GPT-2 small's heads
// (HD = 64) at T = 1024 by default; --B, --T, --NH, --NKV, --HD, --iters change them;
// --bidirectional 1 times an encoder's attention (no causal mask: twice the FLOPs counted).
// FLOPs count the causal half of the T×T×HD products as FlashAttention's benchmarks do:
// forward (Q·Kᵀ and P·V, 2 products of 2·T²·HD each, halved) fwd = 2·B·NH·T²·HD; backward
// (Q·Kᵀ, dO·Vᵀ, dS·K, dSᵀ·Q, Pᵀ·dO: 5 products) bwd = 2.5·fwd. Recomputations are not counted
// (the backward without `out` computes Q·Kᵀ and dO·Vᵀ once more to get D).
// Before timing, the bf16 outputs are compared with the fp32 ones (max |bf16 − fp32| / max |fp32|).
#include <math.h>
#include <stdint.h>
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

// max |got − want| / max |want|
static double rel_diff(const float *got, const float *want, size_t n) {
    double diff = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)got[i] - (double)want[i]);
        if (!(d <= diff)) diff = d;  // nan propagates
        if (fabs((double)want[i]) > scale) scale = fabs((double)want[i]);
    }
    return diff / (scale > 0 ? scale : 1);
}

static float *host_random(CtRng *rng, size_t n) {
    float *h = ct_alloc(n * sizeof(float));
    ct_rng_fill_normal(rng, h, n, 0, 1);
    return h;
}

// One table's device arrays (activations of its type: float or bf16), inputs from the same host numbers.
typedef struct {
    const CtOps *ops;
    CtAct *qkv, *dout, *out, *dqkv;
    float *att;
} Arrays;

static Arrays arrays_for(const CtOps *ops, const float *qkv, const float *dout, size_t n_qkv, size_t n_out,
                         size_t n_att) {
    Arrays a = {.ops = ops};
    a.qkv = ct_cuda_malloc(n_qkv * ops->act_bytes, "qkv");
    a.dqkv = ct_cuda_malloc(n_qkv * ops->act_bytes, "dqkv");
    a.dout = ct_cuda_malloc(n_out * ops->act_bytes, "dout");
    a.out = ct_cuda_malloc(n_out * ops->act_bytes, "out");
    a.att = ct_cuda_malloc(n_att * sizeof(float), "att");
    ops->upload_act(a.qkv, qkv, n_qkv);
    ops->upload_act(a.dout, dout, n_out);
    return a;
}

int main(int argc, char **argv) {
    int B = 8, T = 1024, NH = 12, NKV = 12, HD = 64, iters = 20, bidirectional = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        int v = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--B")) B = v;
        else if (!strcmp(argv[i], "--T")) T = v;
        else if (!strcmp(argv[i], "--NH")) NH = v;
        else if (!strcmp(argv[i], "--NKV")) NKV = v;
        else if (!strcmp(argv[i], "--HD")) HD = v;
        else if (!strcmp(argv[i], "--iters")) iters = v;
        else if (!strcmp(argv[i], "--bidirectional")) bidirectional = v != 0;
        else {
            fprintf(stderr, "unknown option %s (use --B --T --NH --NKV --HD --iters --bidirectional)\n", argv[i]);
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
    CtRng rng;
    ct_rng_seed(&rng, 1);
    const size_t row = (size_t)(NH + 2 * NKV) * HD, n_qkv = (size_t)B * T * row, n_out = (size_t)B * T * NH * HD;
    float *qkv = host_random(&rng, n_qkv), *dout = host_random(&rng, n_out);
    const size_t n_att = ct_cuda_attention_saved_floats(B, T, NH);
    Arrays tables[2] = {arrays_for(ct_ops_cuda(), qkv, dout, n_qkv, n_out, n_att),
                        arrays_for(ct_ops_cuda_bf16(), qkv, dout, n_qkv, n_out, n_att)};
    const CtAttentionOptions bi = {.bidirectional = 1}, *opt = bidirectional ? &bi : NULL;
    // bidirectional: every key, twice the causal half
    const double fwd_flops = (bidirectional ? 4.0 : 2.0) * B * NH * (double)T * T * HD, bwd_flops = 2.5 * fwd_flops;
    printf("device: %s\nshape: B=%d T=%d NH=%d NKV=%d HD=%d, %s, %d iterations\n", name, B, T, NH, NKV, HD,
           bidirectional ? "bidirectional" : "causal", iters);
    printf("FLOPs: forward %s·B·NH·T²·HD = %.3g, backward 2.5× that\n", bidirectional ? "4" : "2", fwd_flops);

    // agreement of the two tables on this shape (forward output, dqkv)
    float *out32 = ct_alloc(n_out * sizeof(float)), *outbf = ct_alloc(n_out * sizeof(float));
    float *dq32 = ct_alloc(n_qkv * sizeof(float)), *dqbf = ct_alloc(n_qkv * sizeof(float));
    for (int k = 0; k < 2; k++) {
        const Arrays *a = &tables[k];
        a->ops->attention_forward(a->out, a->att, a->qkv, NULL, 0.0f, 0, B, T, NH, NKV, HD, opt);
        ct_cuda_zero(a->dqkv, n_qkv * a->ops->act_bytes);
        a->ops->attention_backward(a->dqkv, a->dout, a->qkv, a->att, 0.0f, 0, B, T, NH, NKV, HD, opt);
        a->ops->download_act(k ? outbf : out32, a->out, n_out);
        a->ops->download_act(k ? dqbf : dq32, a->dqkv, n_qkv);
    }
    printf("bf16 vs fp32: forward %.2e, backward %.2e (relative to the largest value)\n",
           rel_diff(outbf, out32, n_out), rel_diff(dqbf, dq32, n_qkv));

    printf("| table | pass | ms | TFLOP/s |\n| --- | --- | ---: | ---: |\n");
    for (int k = 0; k < 2; k++) {
        const Arrays *a = &tables[k];
        const CtOps *ops = a->ops;
        // warm-up, then timed runs of each
        ops->attention_forward(a->out, a->att, a->qkv, NULL, 0.0f, 0, B, T, NH, NKV, HD, opt);
        ops->attention_backward(a->dqkv, a->dout, a->qkv, a->att, 0.0f, 0, B, T, NH, NKV, HD, opt);
        ops->attention_backward_with_out(a->dqkv, a->dout, a->out, a->qkv, a->att, 0.0f, 0, B, T, NH, NKV, HD, opt);
        ct_cuda_synchronize();
        double t0 = now();
        for (int i = 0; i < iters; i++) ops->attention_forward(a->out, a->att, a->qkv, NULL, 0.0f, 0, B, T, NH, NKV, HD, opt);
        ct_cuda_synchronize();
        const double t_fwd = (now() - t0) / iters;
        t0 = now();
        for (int i = 0; i < iters; i++)
            ops->attention_backward(a->dqkv, a->dout, a->qkv, a->att, 0.0f, 0, B, T, NH, NKV, HD, opt);
        ct_cuda_synchronize();
        const double t_bwd = (now() - t0) / iters;
        t0 = now();
        for (int i = 0; i < iters; i++)
            ops->attention_backward_with_out(a->dqkv, a->dout, a->out, a->qkv, a->att, 0.0f, 0, B, T, NH, NKV, HD, opt);
        ct_cuda_synchronize();
        const double t_bwd_out = (now() - t0) / iters;
        const char *table = k ? "bf16 (tensor cores)" : "fp32";
        printf("| %s | forward | %.3f | %.2f |\n", table, t_fwd * 1e3, fwd_flops / t_fwd * 1e-12);
        printf("| %s | backward | %.3f | %.2f |\n", table, t_bwd * 1e3, bwd_flops / t_bwd * 1e-12);
        printf("| %s | backward (with out) | %.3f | %.2f |\n", table, t_bwd_out * 1e3, bwd_flops / t_bwd_out * 1e-12);
        printf("| %s | forward + backward (with out) | %.3f | %.2f |\n", table, (t_fwd + t_bwd_out) * 1e3,
               (fwd_flops + bwd_flops) / (t_fwd + t_bwd_out) * 1e-12);
    }
    printf("peak device memory held by ctrain: %.1f MiB\n", ct_cuda_bytes_peak() / 1048576.0);
    return 0;
}
#else
int main(void) {
    fprintf(stderr, "this build has no CUDA backend (make CUDA=1 where nvcc is installed)\n");
    return 1;
}
#endif
