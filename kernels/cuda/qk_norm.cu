// Per-head RMSNorm of the query and key heads of qkv rows (kernels/ops.h: qk_norm_forward; math
// in kernels/cpu/norm.inc). A warp per (row n, head j < NH + NKV): the head's statistics are a
// warp reduction, as rmsnorm_forward's rows. The value heads are copied by a grid-stride loop.
// q_weight / k_weight gradients are deterministic column sums (colsum.cuh) over the (row, head)
// pairs that use them, taken before dinp is written (it may be dout). Templated on the activation
// type act_t (act_io.cuh); rstd and every sum are float.
#include "kernels/cuda/act_io.cuh"
#include "kernels/cuda/colsum.cuh"
#include "kernels/cuda/cuda_common.cuh"

#define HEADS_PER_BLOCK 4  // warps per block, one head each

// rstd = 1/√(mean(x²) + eps) over the head, out = x·rstd·w.
template <typename act_t>
__global__ void qk_norm_forward_kernel(act_t *out, float *rstd, const act_t *inp, const float *qw, const float *kw,
                                       int N, int NH, int NKV, int HD, float eps) {
    const int heads = NH + NKV, r = blockIdx.x * HEADS_PER_BLOCK + threadIdx.y, lane = threadIdx.x;
    if (r >= N * heads) return;
    const int n = r / heads, j = r % heads;
    const size_t at = (size_t)n * (NH + 2 * NKV) * HD + (size_t)j * HD;
    const act_t *x = inp + at;
    const float *w = j < NH ? qw : kw;
    float s = 0.0f;
    for (int c = lane; c < HD; c += 32) {
        const float xc = act_load(x + c);
        s += xc * xc;
    }
    const float rs = 1.0f / sqrtf(warp_sum(s) / HD + eps);
    for (int c = lane; c < HD; c += 32) act_store(out + at + c, act_load(x + c) * rs * w[c]);
    if (lane == 0) rstd[r] = rs;
}

// g = dout·w:  dx = s·g - x·s³·Σ_c(g_c·x_c)/HD, WRITTEN; a lane writes only what it read, after
// the warp's sum, so dinp may equal dout.
template <typename act_t>
__global__ void qk_norm_backward_kernel(act_t *dinp, const act_t *dout, const act_t *inp, const float *qw,
                                        const float *kw, const float *rstd, int N, int NH, int NKV, int HD) {
    const int heads = NH + NKV, r = blockIdx.x * HEADS_PER_BLOCK + threadIdx.y, lane = threadIdx.x;
    if (r >= N * heads) return;
    const int n = r / heads, j = r % heads;
    const size_t at = (size_t)n * (NH + 2 * NKV) * HD + (size_t)j * HD;
    const act_t *x = inp + at, *g = dout + at;
    const float *w = j < NH ? qw : kw;
    const float s = rstd[r];
    float gx = 0.0f;
    for (int c = lane; c < HD; c += 32) gx += act_load(g + c) * w[c] * act_load(x + c);
    const float k = s * s * s * warp_sum(gx) / HD;
    for (int c = lane; c < HD; c += 32) act_store(dinp + at + c, s * act_load(g + c) * w[c] - act_load(x + c) * k);
}

// dst[n, value part] = src[n, value part] (value heads pass through the norm unchanged).
template <typename act_t>
__global__ void copy_value_heads_kernel(act_t *dst, const act_t *src, int N, int NH, int NKV, int HD) {
    const size_t per_row = (size_t)NKV * HD, total = (size_t)N * per_row;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const size_t n = i / per_row, at = n * (NH + 2 * NKV) * HD + (size_t)(NH + NKV) * HD + i % per_row;
        dst[at] = src[at];
    }
}

// f(r, c) = dout·x·rstd at channel c of the r-th head of one kind: rows r = n·count + h of the
// heads first, first + 1, ..., first + count - 1 of each token (the q heads, or the k heads).
template <typename act_t>
struct HeadWeightTerm {
    const act_t *dout, *inp;
    const float *rstd;
    int NH, NKV, HD, first, count;
    __device__ float operator()(int r, int c) const {
        const int n = r / count, j = first + r % count;
        const size_t at = (size_t)n * (NH + 2 * NKV) * HD + (size_t)j * HD + c;
        return act_load(dout + at) * act_load(inp + at) * rstd[(size_t)n * (NH + NKV) + j];
    }
};

template <typename act_t>
static void copy_value_heads(act_t *dst, const act_t *src, int N, int NH, int NKV, int HD) {
    const size_t total = (size_t)N * NKV * HD;
    if (!total || dst == src) return;
    copy_value_heads_kernel<act_t><<<ct_blocks(total, 256), 256>>>(dst, src, N, NH, NKV, HD);
    LAUNCH_CHECK("copy_value_heads_kernel");
}

template <typename act_t>
static void qk_norm_forward(CtAct *out, float *rstd, const CtAct *inp, const float *q_weight, const float *k_weight,
                            int N, int NH, int NKV, int HD, float eps) {
    if (N <= 0) return;
    const unsigned blocks = (unsigned)(((size_t)N * (NH + NKV) + HEADS_PER_BLOCK - 1) / HEADS_PER_BLOCK);
    qk_norm_forward_kernel<act_t><<<blocks, dim3(32, HEADS_PER_BLOCK)>>>((act_t *)out, rstd, (const act_t *)inp,
                                                                         q_weight, k_weight, N, NH, NKV, HD, eps);
    LAUNCH_CHECK("qk_norm_forward_kernel");
    copy_value_heads((act_t *)out, (const act_t *)inp, N, NH, NKV, HD);
}

template <typename act_t>
static void qk_norm_backward(CtAct *dinp, float *dq_weight, float *dk_weight, const CtAct *dout, const CtAct *inp,
                             const float *q_weight, const float *k_weight, const float *rstd, int N, int NH, int NKV,
                             int HD) {
    if (N <= 0) return;
    const act_t *g = (const act_t *)dout, *x = (const act_t *)inp;
    if (dq_weight) colsum_add(dq_weight, HeadWeightTerm<act_t>{g, x, rstd, NH, NKV, HD, 0, NH}, N * NH, HD);
    if (dk_weight) colsum_add(dk_weight, HeadWeightTerm<act_t>{g, x, rstd, NH, NKV, HD, NH, NKV}, N * NKV, HD);
    const unsigned blocks = (unsigned)(((size_t)N * (NH + NKV) + HEADS_PER_BLOCK - 1) / HEADS_PER_BLOCK);
    qk_norm_backward_kernel<act_t><<<blocks, dim3(32, HEADS_PER_BLOCK)>>>((act_t *)dinp, g, x, q_weight, k_weight,
                                                                          rstd, N, NH, NKV, HD);
    LAUNCH_CHECK("qk_norm_backward_kernel");
    copy_value_heads((act_t *)dinp, g, N, NH, NKV, HD);
}

CT_CUDA_EXPORT_PAIR(ct_cuda_qk_norm_forward, ct_cuda_qk_norm_forward_bf16,
                    (CtAct *out, float *rstd, const CtAct *inp, const float *q_weight, const float *k_weight, int N,
                     int NH, int NKV, int HD, float eps),
                    qk_norm_forward<act_t>(out, rstd, inp, q_weight, k_weight, N, NH, NKV, HD, eps))
CT_CUDA_EXPORT_PAIR(ct_cuda_qk_norm_backward, ct_cuda_qk_norm_backward_bf16,
                    (CtAct *dinp, float *dq_weight, float *dk_weight, const CtAct *dout, const CtAct *inp,
                     const float *q_weight, const float *k_weight, const float *rstd, int N, int NH, int NKV, int HD),
                    qk_norm_backward<act_t>(dinp, dq_weight, dk_weight, dout, inp, q_weight, k_weight, rstd, N, NH,
                                            NKV, HD))
