// LayerNorm and RMSNorm over C (math in kernels/ops.h and kernels/cpu/norm.inc).
// A warp per row: the row's statistics are warp reductions; dweight/dbias are deterministic
// column sums (colsum.cuh).
#include "kernels/cuda/colsum.cuh"
#include "kernels/cuda/cuda_common.cuh"

#define ROWS_PER_BLOCK 4  // warps per block, one row each

// mean = Σx/C, var = Σ(x-mean)²/C (two passes, as the CPU does), rstd = 1/√(var + eps),
// out = (x - mean)·rstd·w + b.
__global__ void layernorm_forward_kernel(float *out, float *mean, float *rstd, const float *inp, const float *w,
                                         const float *bias, int N, int C, float eps) {
    const int n = blockIdx.x * ROWS_PER_BLOCK + threadIdx.y, lane = threadIdx.x;
    if (n >= N) return;
    const float *x = inp + (size_t)n * C;
    float s = 0.0f;
    for (int c = lane; c < C; c += 32) s += x[c];
    const float m = warp_sum(s) / C;
    float v = 0.0f;
    for (int c = lane; c < C; c += 32) v += (x[c] - m) * (x[c] - m);
    const float r = 1.0f / sqrtf(warp_sum(v) / C + eps);
    float *o = out + (size_t)n * C;
    for (int c = lane; c < C; c += 32) o[c] = (x[c] - m) * r * w[c] + bias[c];
    if (lane == 0) {
        mean[n] = m;
        rstd[n] = r;
    }
}

// x̂ = (x - mean)·rstd, g = dout·w:  dx += rstd·(g - mean(g) - x̂·mean(g·x̂)).
__global__ void layernorm_backward_dinp_kernel(float *dinp, const float *dout, const float *inp, const float *w,
                                               const float *mean, const float *rstd, int N, int C) {
    const int n = blockIdx.x * ROWS_PER_BLOCK + threadIdx.y, lane = threadIdx.x;
    if (n >= N) return;
    const float *x = inp + (size_t)n * C, *g = dout + (size_t)n * C;
    const float m = mean[n], r = rstd[n];
    float gm = 0.0f, gxm = 0.0f;
    for (int c = lane; c < C; c += 32) {
        float gw = g[c] * w[c];
        gm += gw;
        gxm += gw * (x[c] - m) * r;
    }
    gm = warp_sum(gm) / C;
    gxm = warp_sum(gxm) / C;
    float *dx = dinp + (size_t)n * C;
    for (int c = lane; c < C; c += 32) dx[c] += r * (g[c] * w[c] - gm - (x[c] - m) * r * gxm);
}

// rstd = 1/√(mean(x²) + eps), out = x·rstd·w.
__global__ void rmsnorm_forward_kernel(float *out, float *rstd, const float *inp, const float *w, int N, int C,
                                       float eps) {
    const int n = blockIdx.x * ROWS_PER_BLOCK + threadIdx.y, lane = threadIdx.x;
    if (n >= N) return;
    const float *x = inp + (size_t)n * C;
    float s = 0.0f;
    for (int c = lane; c < C; c += 32) s += x[c] * x[c];
    const float r = 1.0f / sqrtf(warp_sum(s) / C + eps);
    float *o = out + (size_t)n * C;
    for (int c = lane; c < C; c += 32) o[c] = x[c] * r * w[c];
    if (lane == 0) rstd[n] = r;
}

// y = x·s·w, s = (mean(x²)+eps)^(-1/2), g = dout·w:  dx += s·g - x·s³·Σ_j(g_j·x_j)/C.
__global__ void rmsnorm_backward_dinp_kernel(float *dinp, const float *dout, const float *inp, const float *w,
                                             const float *rstd, int N, int C) {
    const int n = blockIdx.x * ROWS_PER_BLOCK + threadIdx.y, lane = threadIdx.x;
    if (n >= N) return;
    const float *x = inp + (size_t)n * C, *g = dout + (size_t)n * C;
    const float r = rstd[n];
    float gx = 0.0f;
    for (int c = lane; c < C; c += 32) gx += g[c] * w[c] * x[c];
    const float k = r * r * r * warp_sum(gx) / C;
    float *dx = dinp + (size_t)n * C;
    for (int c = lane; c < C; c += 32) dx[c] += r * g[c] * w[c] - x[c] * k;
}

// Column terms of the weight gradients: dweight += Σ_n dout·x̂ (LayerNorm), Σ_n dout·x·rstd
// (RMSNorm, mean = NULL), dbias += Σ_n dout.
struct NormWeightTerm {
    const float *dout, *inp, *mean, *rstd;
    int C;
    __device__ float operator()(int n, int c) const {
        size_t i = (size_t)n * C + c;
        float xhat = mean ? (inp[i] - mean[n]) * rstd[n] : inp[i] * rstd[n];
        return dout[i] * xhat;
    }
};
struct RowValue {  // f(n, c) = a[n, c]
    const float *a;
    int C;
    __device__ float operator()(int n, int c) const { return a[(size_t)n * C + c]; }
};

static dim3 row_grid(int N) { return dim3((N + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK); }
static const dim3 row_block(32, ROWS_PER_BLOCK);

extern "C" void ct_cuda_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                                          const float *bias, int N, int C, float eps) {
    if (N <= 0) return;
    layernorm_forward_kernel<<<row_grid(N), row_block>>>(out, mean, rstd, inp, weight, bias, N, C, eps);
    LAUNCH_CHECK("layernorm_forward_kernel");
}

extern "C" void ct_cuda_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                           const float *inp, const float *weight, const float *mean,
                                           const float *rstd, int N, int C) {
    if (N <= 0) return;
    if (dinp) {
        layernorm_backward_dinp_kernel<<<row_grid(N), row_block>>>(dinp, dout, inp, weight, mean, rstd, N, C);
        LAUNCH_CHECK("layernorm_backward_dinp_kernel");
    }
    if (dweight) colsum_add(dweight, NormWeightTerm{dout, inp, mean, rstd, C}, N, C);
    if (dbias) colsum_add(dbias, RowValue{dout, C}, N, C);
}

extern "C" void ct_cuda_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, int N, int C,
                                        float eps) {
    if (N <= 0) return;
    rmsnorm_forward_kernel<<<row_grid(N), row_block>>>(out, rstd, inp, weight, N, C, eps);
    LAUNCH_CHECK("rmsnorm_forward_kernel");
}

extern "C" void ct_cuda_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                                         const float *weight, const float *rstd, int N, int C) {
    if (N <= 0) return;
    if (dinp) {
        rmsnorm_backward_dinp_kernel<<<row_grid(N), row_block>>>(dinp, dout, inp, weight, rstd, N, C);
        LAUNCH_CHECK("rmsnorm_backward_dinp_kernel");
    }
    if (dweight) colsum_add(dweight, NormWeightTerm{dout, inp, NULL, rstd, C}, N, C);
}

// The matrix-product bias gradient shares the column sum: dbias[OC] += Σ_n dout[n, :].
extern "C" void ct_cuda_bias_backward(float *dbias, const float *dout, int N, int OC) {
    colsum_add(dbias, RowValue{dout, OC}, N, OC);
}
