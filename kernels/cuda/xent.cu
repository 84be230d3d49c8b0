// Fused softmax + cross-entropy over the vocabulary (math in kernels/ops.h, kernels/cpu/xent.inc).
// A block per row. Forward reads the row ONCE with an online log-sum-exp: each thread keeps
// (max m, Σ exp(x - m)) over its strided elements, rescaling when the max grows, and the pairs
// are merged across the block: (m1,s1)⊕(m2,s2) = (M, s1·e^(m1-M) + s2·e^(m2-M)), M = max(m1,m2).
// Backward overwrites the logits with their gradient in place; no [N,V] buffer is ever made.
// The logits (and so their gradient) are of the table's activation type: loaded into float, the
// log-sum-exp and the softmax computed in float, the gradient rounded once when stored.
#include "kernels/cuda/act_io.cuh"
#include "kernels/cuda/cuda_common.cuh"

#define XENT_THREADS 512

struct MaxSum {
    float m, s;
};
__device__ __forceinline__ MaxSum merge(MaxSum a, MaxSum b) {
    if (a.m == -INFINITY) return b;
    if (b.m == -INFINITY) return a;
    float M = fmaxf(a.m, b.m);
    return {M, a.s * expf(a.m - M) + b.s * expf(b.m - M)};
}

// w_n = mask[n]·weights[n], 0 for a negative target.
__device__ __forceinline__ float token_weight(const int32_t *targets, const uint8_t *mask, const float *weights,
                                              int n) {
    if (targets[n] < 0 || (mask && !mask[n])) return 0.0f;
    return weights ? weights[n] : 1.0f;
}

template <typename act_t>
__global__ void xent_forward_kernel(float *losses, float *logprobs, float *lse, const act_t *logits,
                                    const int32_t *targets, const uint8_t *mask, const float *weights, int V) {
    const int n = blockIdx.x;
    const act_t *x = logits + (size_t)n * V;
    MaxSum a = {-INFINITY, 0.0f};
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        float xv = act_load(x + v);
        if (xv == -INFINITY) continue;  // adds nothing (and -inf - -inf would be nan)
        if (xv > a.m) {
            a.s = a.s * expf(a.m - xv) + 1.0f;  // exp(-inf) = 0 on the first element
            a.m = xv;
        } else {
            a.s += expf(xv - a.m);
        }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        MaxSum b = {__shfl_xor_sync(0xffffffffu, a.m, o), __shfl_xor_sync(0xffffffffu, a.s, o)};
        a = merge(a, b);
    }
    __shared__ MaxSum part[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) part[warp] = a;
    __syncthreads();
    if (warp == 0) {
        a = lane < (int)(blockDim.x >> 5) ? part[lane] : MaxSum{-INFINITY, 0.0f};
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            MaxSum b = {__shfl_xor_sync(0xffffffffu, a.m, o), __shfl_xor_sync(0xffffffffu, a.s, o)};
            a = merge(a, b);
        }
        if (lane == 0) {
            const float l = a.m + logf(a.s);
            const int t = targets[n];
            const float w = token_weight(targets, mask, weights, n);
            const float lp = t >= 0 ? act_load(x + t) - l : 0.0f;
            lse[n] = l;
            logprobs[n] = lp;
            losses[n] = w != 0.0f ? -w * lp : 0.0f;
        }
    }
}

// loss = scale·Σ_n -w_n·(x[n,t_n] - lse_n)  ⇒  dx[n,v] = scale·w_n·(softmax(x_n)[v] - [v == t_n]).
// With a soft cap c the logits are x = c·tanh(z/c), and dz = dx·(1 - (x/c)²).
template <typename act_t>
__global__ void xent_backward_kernel(act_t *x_to_dx, const float *lse, const int32_t *targets, const uint8_t *mask,
                                     const float *weights, float scale, int V, float softcap) {
    const int n = blockIdx.x;
    act_t *x = x_to_dx + (size_t)n * V;
    const float k = scale * token_weight(targets, mask, weights, n);
    if (k == 0.0f) {
        for (int v = threadIdx.x; v < V; v += blockDim.x) act_store(x + v, 0.0f);
        return;
    }
    const float l = lse[n];
    const int t = targets[n];
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        const float y = act_load(x + v);
        float g = k * expf(y - l);
        if (v == t) g -= k;
        if (softcap > 0.0f) g *= 1.0f - (y / softcap) * (y / softcap);
        act_store(x + v, g);
    }
}

template <typename act_t>
static void xent_forward(float *losses, float *logprobs, float *lse, const act_t *logits, const int32_t *targets,
                         const uint8_t *mask, const float *weights, int N, int V) {
    if (N <= 0) return;
    xent_forward_kernel<<<N, XENT_THREADS>>>(losses, logprobs, lse, logits, targets, mask, weights, V);
    LAUNCH_CHECK("xent_forward_kernel");
}

template <typename act_t>
static void xent_backward(act_t *logits_to_dlogits, const float *lse, const int32_t *targets, const uint8_t *mask,
                          const float *weights, float scale, int N, int V, float softcap) {
    if (N <= 0) return;
    xent_backward_kernel<<<N, XENT_THREADS>>>(logits_to_dlogits, lse, targets, mask, weights, scale, V, softcap);
    LAUNCH_CHECK("xent_backward_kernel");
}

CT_CUDA_EXPORT_PAIR(ct_cuda_xent_forward, ct_cuda_xent_forward_bf16,
                    (float *losses, float *logprobs, float *lse, const CtAct *logits, const int32_t *targets,
                     const uint8_t *mask, const float *weights, int N, int V),
                    xent_forward(losses, logprobs, lse, (const act_t *)logits, targets, mask, weights, N, V))

CT_CUDA_EXPORT_PAIR(ct_cuda_xent_backward, ct_cuda_xent_backward_bf16,
                    (CtAct *logits_to_dlogits, const float *lse, const int32_t *targets, const uint8_t *mask,
                     const float *weights, float scale, int N, int V, float softcap),
                    xent_backward((act_t *)logits_to_dlogits, lse, targets, mask, weights, scale, N, V, softcap))
