// LayerNorm and RMSNorm over C (math in kernels/ops.h and kernels/cpu/norm.inc).
// A warp per row: the row's statistics are warp reductions; dweight/dbias are deterministic
// column sums (colsum.cuh). Templated on the activation type act_t (act_io.cuh): inp, out, dout
// and dinp are loaded into float and stored rounded once; mean, rstd and every sum stay float.
#include "kernels/cuda/act_io.cuh"
#include "kernels/cuda/colsum.cuh"
#include "kernels/cuda/cuda_common.cuh"

#define ROWS_PER_BLOCK 4  // warps per block, one row each

// mean = Σx/C, var = Σ(x-mean)²/C (two passes, as the CPU does), rstd = 1/√(var + eps),
// out = (x - mean)·rstd·w + b.
template <typename act_t>
__global__ void layernorm_forward_kernel(act_t *out, float *mean, float *rstd, const act_t *inp, const float *w,
                                         const float *bias, int N, int C, float eps) {
    const int n = blockIdx.x * ROWS_PER_BLOCK + threadIdx.y, lane = threadIdx.x;
    if (n >= N) return;
    const act_t *x = inp + (size_t)n * C;
    float s = 0.0f;
    for (int c = lane; c < C; c += 32) s += act_load(x + c);
    const float m = warp_sum(s) / C;
    float v = 0.0f;
    for (int c = lane; c < C; c += 32) {
        const float d = act_load(x + c) - m;
        v += d * d;
    }
    const float r = 1.0f / sqrtf(warp_sum(v) / C + eps);
    act_t *o = out + (size_t)n * C;
    for (int c = lane; c < C; c += 32) act_store(o + c, (act_load(x + c) - m) * r * w[c] + bias[c]);
    if (lane == 0) {
        mean[n] = m;
        rstd[n] = r;
    }
}

// x̂ = (x - mean)·rstd, g = dout·w:  dx += rstd·(g - mean(g) - x̂·mean(g·x̂)).
template <typename act_t>
__global__ void layernorm_backward_dinp_kernel(act_t *dinp, const act_t *dout, const act_t *inp, const float *w,
                                               const float *mean, const float *rstd, int N, int C) {
    const int n = blockIdx.x * ROWS_PER_BLOCK + threadIdx.y, lane = threadIdx.x;
    if (n >= N) return;
    const act_t *x = inp + (size_t)n * C, *g = dout + (size_t)n * C;
    const float m = mean[n], r = rstd[n];
    float gm = 0.0f, gxm = 0.0f;
    for (int c = lane; c < C; c += 32) {
        float gw = act_load(g + c) * w[c];
        gm += gw;
        gxm += gw * (act_load(x + c) - m) * r;
    }
    gm = warp_sum(gm) / C;
    gxm = warp_sum(gxm) / C;
    act_t *dx = dinp + (size_t)n * C;
    for (int c = lane; c < C; c += 32)
        act_add(dx + c, r * (act_load(g + c) * w[c] - gm - (act_load(x + c) - m) * r * gxm));
}

// rstd = 1/√(mean(x²) + eps), out = x·rstd·w.
template <typename act_t>
__global__ void rmsnorm_forward_kernel(act_t *out, float *rstd, const act_t *inp, const float *w, int N, int C,
                                       float eps) {
    const int n = blockIdx.x * ROWS_PER_BLOCK + threadIdx.y, lane = threadIdx.x;
    if (n >= N) return;
    const act_t *x = inp + (size_t)n * C;
    float s = 0.0f;
    for (int c = lane; c < C; c += 32) {
        const float xc = act_load(x + c);
        s += xc * xc;
    }
    const float r = 1.0f / sqrtf(warp_sum(s) / C + eps);
    act_t *o = out + (size_t)n * C;
    for (int c = lane; c < C; c += 32) act_store(o + c, act_load(x + c) * r * w[c]);
    if (lane == 0) rstd[n] = r;
}

// y = x·s·w, s = (mean(x²)+eps)^(-1/2), g = dout·w:  dx += s·g - x·s³·Σ_j(g_j·x_j)/C.
template <typename act_t>
__global__ void rmsnorm_backward_dinp_kernel(act_t *dinp, const act_t *dout, const act_t *inp, const float *w,
                                             const float *rstd, int N, int C) {
    const int n = blockIdx.x * ROWS_PER_BLOCK + threadIdx.y, lane = threadIdx.x;
    if (n >= N) return;
    const act_t *x = inp + (size_t)n * C, *g = dout + (size_t)n * C;
    const float r = rstd[n];
    float gx = 0.0f;
    for (int c = lane; c < C; c += 32) gx += act_load(g + c) * w[c] * act_load(x + c);
    const float k = r * r * r * warp_sum(gx) / C;
    act_t *dx = dinp + (size_t)n * C;
    for (int c = lane; c < C; c += 32) act_add(dx + c, r * act_load(g + c) * w[c] - act_load(x + c) * k);
}

// Column terms of the weight gradients: dweight += Σ_n dout·x̂ (LayerNorm), Σ_n dout·x·rstd
// (RMSNorm, mean = NULL); dbias += Σ_n dout is colsum.cuh's ActColumn.
template <typename act_t>
struct NormWeightTerm {
    const act_t *dout, *inp;
    const float *mean, *rstd;
    int C;
    __device__ float operator()(int n, int c) const {
        size_t i = (size_t)n * C + c;
        const float x = act_load(inp + i);
        float xhat = mean ? (x - mean[n]) * rstd[n] : x * rstd[n];
        return act_load(dout + i) * xhat;
    }
};

static dim3 row_grid(int N) { return dim3((N + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK); }
static const dim3 row_block(32, ROWS_PER_BLOCK);

template <typename act_t>
static void layernorm_forward(CtAct *out, float *mean, float *rstd, const CtAct *inp, const float *weight,
                              const float *bias, int N, int C, float eps) {
    if (N <= 0) return;
    layernorm_forward_kernel<act_t><<<row_grid(N), row_block>>>((act_t *)out, mean, rstd, (const act_t *)inp, weight,
                                                                bias, N, C, eps);
    LAUNCH_CHECK("layernorm_forward_kernel");
}

template <typename act_t>
static void layernorm_backward(CtAct *dinp, float *dweight, float *dbias, const CtAct *dout, const CtAct *inp,
                               const float *weight, const float *mean, const float *rstd, int N, int C) {
    if (N <= 0) return;
    const act_t *g = (const act_t *)dout, *x = (const act_t *)inp;
    if (dinp) {
        layernorm_backward_dinp_kernel<act_t><<<row_grid(N), row_block>>>((act_t *)dinp, g, x, weight, mean, rstd, N,
                                                                          C);
        LAUNCH_CHECK("layernorm_backward_dinp_kernel");
    }
    if (dweight) colsum_add(dweight, NormWeightTerm<act_t>{g, x, mean, rstd, C}, N, C);
    if (dbias) colsum_add(dbias, ActColumn<act_t>{g, C}, N, C);
}

template <typename act_t>
static void rmsnorm_forward(CtAct *out, float *rstd, const CtAct *inp, const float *weight, int N, int C, float eps) {
    if (N <= 0) return;
    rmsnorm_forward_kernel<act_t><<<row_grid(N), row_block>>>((act_t *)out, rstd, (const act_t *)inp, weight, N, C,
                                                              eps);
    LAUNCH_CHECK("rmsnorm_forward_kernel");
}

template <typename act_t>
static void rmsnorm_backward(CtAct *dinp, float *dweight, const CtAct *dout, const CtAct *inp, const float *weight,
                             const float *rstd, int N, int C) {
    if (N <= 0) return;
    const act_t *g = (const act_t *)dout, *x = (const act_t *)inp;
    if (dinp) {
        rmsnorm_backward_dinp_kernel<act_t><<<row_grid(N), row_block>>>((act_t *)dinp, g, x, weight, rstd, N, C);
        LAUNCH_CHECK("rmsnorm_backward_dinp_kernel");
    }
    if (dweight) colsum_add(dweight, NormWeightTerm<act_t>{g, x, NULL, rstd, C}, N, C);
}

CT_CUDA_EXPORT_PAIR(ct_cuda_layernorm_forward, ct_cuda_layernorm_forward_bf16,
                    (CtAct *out, float *mean, float *rstd, const CtAct *inp, const float *weight, const float *bias,
                     int N, int C, float eps),
                    layernorm_forward<act_t>(out, mean, rstd, inp, weight, bias, N, C, eps))
CT_CUDA_EXPORT_PAIR(ct_cuda_layernorm_backward, ct_cuda_layernorm_backward_bf16,
                    (CtAct *dinp, float *dweight, float *dbias, const CtAct *dout, const CtAct *inp,
                     const float *weight, const float *mean, const float *rstd, int N, int C),
                    layernorm_backward<act_t>(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C))
CT_CUDA_EXPORT_PAIR(ct_cuda_rmsnorm_forward, ct_cuda_rmsnorm_forward_bf16,
                    (CtAct *out, float *rstd, const CtAct *inp, const float *weight, int N, int C, float eps),
                    rmsnorm_forward<act_t>(out, rstd, inp, weight, N, C, eps))
CT_CUDA_EXPORT_PAIR(ct_cuda_rmsnorm_backward, ct_cuda_rmsnorm_backward_bf16,
                    (CtAct *dinp, float *dweight, const CtAct *dout, const CtAct *inp, const float *weight,
                     const float *rstd, int N, int C),
                    rmsnorm_backward<act_t>(dinp, dweight, dout, inp, weight, rstd, N, C))

// The matrix-product bias gradient shares the column sum: dbias[OC] += Σ_n dout[n, :].
CT_CUDA_EXPORT_PAIR(ct_cuda_bias_backward, ct_cuda_bias_backward_bf16, (float *dbias, const CtAct *dout, int N, int OC),
                    colsum_add(dbias, ActColumn<act_t>{(const act_t *)dout, OC}, N, OC))
