// What every .cu file of the CUDA backend shares: checked calls and launches, the scratch
// buffers, launch-shape helpers and block reductions. Internal to kernels/cuda/.
#pragma once
#include <cuda_runtime.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

extern "C" {
#include "kernels/cuda/cuda_decl.h"
#include "kernels/cuda/cuda_ops.h"
}

// core/error.h spells this with C11's _Noreturn, which C++ lacks; the same function.
extern "C" [[noreturn]] void ct_fatal_at(const char *file, int line, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

// Fatal: file:line, the call as written, CUDA's error string, and a hint chosen by the error.
[[noreturn]] void ct_cuda_fail(cudaError_t err, const char *call, const char *file, int line);
// After a kernel launch: reports a bad launch at once; with CTRAIN_CUDA_SYNC=1 in the
// environment it also waits for the kernel, so an error inside it is reported at its launch
// (kernels are asynchronous: otherwise the next checked call reports it).
void ct_cuda_after_launch(const char *kernel, const char *file, int line);

#define CUDA_CHECK(call)                                                       \
    do {                                                                       \
        cudaError_t e_ = (call);                                               \
        if (e_ != cudaSuccess) ct_cuda_fail(e_, #call, __FILE__, __LINE__);    \
    } while (0)
#define LAUNCH_CHECK(kernel) ct_cuda_after_launch(kernel, __FILE__, __LINE__)

// Scratch space of the backend, one buffer per slot, grown (never shrunk) on demand. The
// contents do not survive a call to another op that uses the same slot.
enum CtScratch {
    CT_SCRATCH_COLSUM,   // column-sum partials of the backward ops
    CT_SCRATCH_ATTN_D,   // attention backward: D = rowsum(P ⊙ dP), [B,NH,T]
    CT_SCRATCH_ATTN_PREFIX,  // attention_prefix_backward: each sequence's prefix gradient, [B,P,2·NKV·HD]
    CT_SCRATCH_DECODE,   // attention_decode scores
    CT_SCRATCH_SORT,     // embedding backward: sorted ids and token indices, CUB's temp space
    CT_SCRATCH_REDUCE,   // sum of squares partials
    CT_SCRATCH_SPANS,    // AdamW's weight-decay spans (uploaded when they change)
    CT_SCRATCH_BF16_A,   // a product's undeclared weights and bias, rounded to bf16 or aligned (gemm.cuh)
    CT_SCRATCH_BF16_B,
    CT_SCRATCH_MOE,      // MoE router statistics: row sums, column partials (moe.cu)
    CT_SCRATCH_COUNT
};
void *ct_cuda_scratch(CtScratch slot, size_t bytes);

static inline unsigned ct_blocks(size_t n, unsigned threads, unsigned cap = 65535u * 16u) {
    size_t b = (n + threads - 1) / threads;
    if (b == 0) b = 1;
    return b > cap ? cap : (unsigned)b;  // kernels loop grid-stride past the cap
}

// ---- reductions inside a warp / a block (fixed order: the same bits on every run) ----
template <typename T>
__device__ __forceinline__ T warp_sum(T x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}
__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}
// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets it.
template <typename T>
__device__ T block_sum(T x) {
    __shared__ T part[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    x = warp_sum(x);
    __syncthreads();  // part[] may still be read by a previous call
    if (lane == 0) part[warp] = x;
    __syncthreads();
    x = lane < warps ? part[lane] : T(0);
    return warp_sum(x);
}
__device__ inline float block_max(float x) {
    __shared__ float part[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    x = warp_max(x);
    __syncthreads();
    if (lane == 0) part[warp] = x;
    __syncthreads();
    x = lane < warps ? part[lane] : -INFINITY;
    return warp_max(x);
}

// dst[c] += Σ_n f(n, c) for c < C, deterministic: fixed row chunks reduced in a fixed order
// (defined in colsum.cuh, used by the norm and matmul backward ops).
