// Fused softmax + cross-entropy over the vocabulary (math in kernels/ops.h, kernels/cpu/xent.inc).
// A block per row. Forward reads the row ONCE with an online log-sum-exp: each thread keeps
// (max m, Σ exp(x - m)) over its strided elements, rescaling when the max grows, and the pairs
// are merged across the block: (m1,s1)⊕(m2,s2) = (M, s1·e^(m1-M) + s2·e^(m2-M)), M = max(m1,m2).
// Backward overwrites the logits with their gradient in place; no [N,V] buffer is ever made.
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

__global__ void xent_forward_kernel(float *losses, float *logprobs, float *lse, const float *logits,
                                    const int32_t *targets, const uint8_t *mask, const float *weights, int V) {
    const int n = blockIdx.x;
    const float *x = logits + (size_t)n * V;
    MaxSum a = {-INFINITY, 0.0f};
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        float xv = x[v];
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
            const float lp = t >= 0 ? x[t] - l : 0.0f;
            lse[n] = l;
            logprobs[n] = lp;
            losses[n] = w != 0.0f ? -w * lp : 0.0f;
        }
    }
}

// loss = scale·Σ_n -w_n·(x[n,t_n] - lse_n)  ⇒  dx[n,v] = scale·w_n·(softmax(x_n)[v] - [v == t_n]).
__global__ void xent_backward_kernel(float *x_to_dx, const float *lse, const int32_t *targets, const uint8_t *mask,
                                     const float *weights, float scale, int V) {
    const int n = blockIdx.x;
    float *x = x_to_dx + (size_t)n * V;
    const float k = scale * token_weight(targets, mask, weights, n);
    if (k == 0.0f) {
        for (int v = threadIdx.x; v < V; v += blockDim.x) x[v] = 0.0f;
        return;
    }
    const float l = lse[n];
    const int t = targets[n];
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        float g = k * expf(x[v] - l);
        x[v] = v == t ? g - k : g;
    }
}

extern "C" void ct_cuda_xent_forward(float *losses, float *logprobs, float *lse, const float *logits,
                                     const int32_t *targets, const uint8_t *mask, const float *weights, int N, int V) {
    if (N <= 0) return;
    xent_forward_kernel<<<N, XENT_THREADS>>>(losses, logprobs, lse, logits, targets, mask, weights, V);
    LAUNCH_CHECK("xent_forward_kernel");
}

extern "C" void ct_cuda_xent_backward(float *logits_to_dlogits, const float *lse, const int32_t *targets,
                                      const uint8_t *mask, const float *weights, float scale, int N, int V) {
    if (N <= 0) return;
    xent_backward_kernel<<<N, XENT_THREADS>>>(logits_to_dlogits, lse, targets, mask, weights, scale, V);
    LAUNCH_CHECK("xent_backward_kernel");
}
