// AdamW over all parameters in one kernel, and the reductions of global-norm clipping.
// The arithmetic is optim/adamw.c's (torch's single-tensor AdamW), operation for operation,
// with the rounding intrinsics __fmul_rn/__fadd_rn/__fdiv_rn/__fsqrt_rn: nvcc would otherwise
// contract a·b + c into one fused multiply-add, which rounds once where the CPU (C11, no
// contraction) rounds twice, and the CPU and GPU updates could differ in the last bit.
// When the parameters have a bf16 copy (bf16_weights.cu), the same kernel writes the copy of
// each updated weight, stochastically rounded (bf16_round.cuh); the fp32 update is unchanged.
#include "kernels/cuda/bf16_round.cuh"
#include "kernels/cuda/bf16_weights.cuh"
#include "kernels/cuda/cuda_common.cuh"

#include <string.h>

extern "C" {
#include "core/alloc.h"
}

// Weight decay of element i: spans are sorted by start; binary search for the last span that
// starts at or before i; covered when i < its end. Elements no span covers are decayed.
__device__ __forceinline__ bool decays(const CtCudaSpan *spans, int n_spans, size_t i) {
    int lo = 0, hi = n_spans - 1, found = -1;
    while (lo <= hi) {
        int mid = (lo + hi) >> 1;
        if (spans[mid].start <= i) {
            found = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    if (found < 0 || i >= spans[found].end) return true;
    return spans[found].decay != 0;
}

// p ← p·keep;  m ← m + (1-β1)(g - m);  v ← β2·v + (1-β2)·g²;  p ← p + (-step_size·m) / (√v / √bc2 + ε)
// copy (may be NULL): the bf16 copy of params[0, n), whose element i is element index0 + i of
// its declared buffer (the counter of the rounding bits, so a slice rounds as the whole would).
__global__ void adamw_kernel(float *params, const float *grads, float *m, float *v, size_t n, const CtCudaSpan *spans,
                             int n_spans, float keep, float one_minus_b1, float b2, float one_minus_b2, float eps,
                             float step_size, float bc2_sqrt, __nv_bfloat16 *copy, size_t index0,
                             uint64_t rounding_seed) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const float g = grads[i];
        const float k = n_spans == 0 || decays(spans, n_spans, i) ? keep : 1.0f;
        const float p = __fmul_rn(params[i], k);
        const float mi = __fadd_rn(m[i], __fmul_rn(one_minus_b1, __fadd_rn(g, -m[i])));
        const float vi = __fadd_rn(__fmul_rn(v[i], b2), __fmul_rn(__fmul_rn(one_minus_b2, g), g));
        const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), bc2_sqrt), eps);
        m[i] = mi;
        v[i] = vi;
        const float updated = __fadd_rn(p, __fdiv_rn(__fmul_rn(-step_size, mi), denom));
        params[i] = updated;
        if (copy) copy[i] = bf16_round_stochastic(updated, bf16_rounding_bits(rounding_seed, index0 + i));
    }
}

extern "C" void ct_cuda_adamw_update(float *params, const float *grads, float *m, float *v, size_t n,
                                     const CtCudaSpan *spans_device, int n_spans, float keep, float one_minus_b1,
                                     float b2, float one_minus_b2, float eps, float step_size, float bc2_sqrt,
                                     uint64_t rounding_seed) {
    if (!n) return;
    size_t index0 = 0;
    __nv_bfloat16 *copy = ct_cuda_bf16_weights_holding(params, n, &index0);
    if (!copy && ct_cuda_bf16_weights_overlap(params, n))  // the copy would go stale where it is not updated
        ct_fatal_at(__FILE__, __LINE__, "a bug in ctrain: update a declared weight buffer whole or in slices inside it",
                    "AdamW over %zu floats that straddle the end of a buffer with a bf16 copy", n);
    adamw_kernel<<<ct_blocks(n, 256), 256>>>(params, grads, m, v, n, spans_device, n_spans, keep, one_minus_b1, b2,
                                             one_minus_b2, eps, step_size, bc2_sqrt, copy, index0, rounding_seed);
    LAUNCH_CHECK("adamw_kernel");
}

// The op table's adamw_update: spans arrive as a host array (sorted by offset, optim/adamw.c);
// they are uploaded into a scratch slot once and again only when they change.
extern "C" void ct_cuda_adamw_update_op(float *params, const float *grads, float *m, float *v, size_t n,
                                        const CtParamSpan *spans, int n_spans, const CtAdamWScalars *s) {
    static CtCudaSpan *uploaded_host;  // what the device copy holds
    static int uploaded_n = -1;
    static void *uploaded_at;
    CtCudaSpan *device = NULL;
    if (n_spans > 0) {
        CtCudaSpan *want = (CtCudaSpan *)ct_alloc(sizeof(CtCudaSpan) * (size_t)n_spans);
        for (int i = 0; i < n_spans; i++)
            want[i] = CtCudaSpan{spans[i].offset, spans[i].offset + spans[i].count, spans[i].decay};
        device = (CtCudaSpan *)ct_cuda_scratch(CT_SCRATCH_SPANS, sizeof(CtCudaSpan) * (size_t)n_spans);
        if (n_spans != uploaded_n || device != uploaded_at ||
            memcmp(want, uploaded_host, sizeof(CtCudaSpan) * (size_t)n_spans) != 0) {
            ct_cuda_upload(device, want, sizeof(CtCudaSpan) * (size_t)n_spans);
            ct_free(uploaded_host);
            uploaded_host = want;
            uploaded_n = n_spans;
            uploaded_at = device;
        } else {
            ct_free(want);
        }
    }
    ct_cuda_adamw_update(params, grads, m, v, n, device, n_spans > 0 ? n_spans : 0, s->keep, s->one_minus_b1, s->b2,
                         s->one_minus_b2, s->eps, s->step_size, s->bc2_sqrt, s->rounding_seed);
}

// Σ g² in double, in a fixed order: a fixed grid of SUMSQ_BLOCKS blocks strides over g, each
// block reduces its threads in a fixed tree, and one block sums the block partials in order.
// The launch shape does not depend on the GPU, so the bits do not either.
#define SUMSQ_BLOCKS 1024
#define SUMSQ_THREADS 256

__global__ void sumsq_partial_kernel(double *partial, const float *g, size_t n) {
    double s = 0.0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        s += (double)g[i] * (double)g[i];
    s = block_sum(s);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ void sumsq_finish_kernel(double *result, const double *partial, int n_partial) {
    double s = 0.0;
    for (int i = threadIdx.x; i < n_partial; i += blockDim.x) s += partial[i];
    s = block_sum(s);
    if (threadIdx.x == 0) *result = s;
}

extern "C" double ct_cuda_sum_squares(const float *g, size_t n) {
    if (!n) return 0.0;
    double *partial = (double *)ct_cuda_scratch(CT_SCRATCH_REDUCE, sizeof(double) * (SUMSQ_BLOCKS + 1));
    sumsq_partial_kernel<<<SUMSQ_BLOCKS, SUMSQ_THREADS>>>(partial, g, n);
    LAUNCH_CHECK("sumsq_partial_kernel");
    sumsq_finish_kernel<<<1, SUMSQ_THREADS>>>(partial + SUMSQ_BLOCKS, partial, SUMSQ_BLOCKS);
    LAUNCH_CHECK("sumsq_finish_kernel");
    double result = 0.0;
    ct_cuda_download(&result, partial + SUMSQ_BLOCKS, sizeof(double));
    return result;
}

__global__ void scale_kernel(float *x, size_t n, float s) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] *= s;
}

extern "C" void ct_cuda_scale(float *x, size_t n, float s) {
    if (!n) return;
    scale_kernel<<<ct_blocks(n, 256), 256>>>(x, n, s);
    LAUNCH_CHECK("scale_kernel");
}
