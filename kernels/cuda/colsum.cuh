// Deterministic column sums for the backward ops: dst[c] += Σ_n f(n, c) over N rows.
// Stage 1: row chunk k of `rows` rows (64, more when N is huge, so there are at most 4096
// chunks), column c → partial[k][c] (a thread per column, reading rows in order: coalesced). Stage 2: dst[c] += Σ_k partial[k][c], k in order.
// colsum_finish is static: each .cu that includes this has its own copy (no duplicate symbol).
// No atomics, so the result has the same bits on every run, and every launch shape adds in
// the same order.
#pragma once
#include "kernels/cuda/act_io.cuh"
#include "kernels/cuda/cuda_common.cuh"

#define COLSUM_MIN_ROWS 64
#define COLSUM_MAX_CHUNKS 4096

template <typename F>
__global__ void colsum_partial(float *partial, F f, int N, int C, int rows) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x, k = blockIdx.y;
    if (c >= C) return;
    const int n0 = k * rows, n1 = min(N, n0 + rows);
    float s = 0.0f;
    for (int n = n0; n < n1; n++) s += f(n, c);
    partial[(size_t)k * C + c] = s;
}

static __global__ void colsum_finish(float *dst, const float *partial, int chunks, int C) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float s = 0.0f;
    for (int k = 0; k < chunks; k++) s += partial[(size_t)k * C + c];
    dst[c] += s;
}

template <typename F>
static void colsum_add(float *dst, F f, int N, int C) {
    if (N <= 0 || C <= 0) return;
    int rows = (N + COLSUM_MAX_CHUNKS - 1) / COLSUM_MAX_CHUNKS;
    if (rows < COLSUM_MIN_ROWS) rows = COLSUM_MIN_ROWS;
    const int chunks = (N + rows - 1) / rows;
    float *partial = (float *)ct_cuda_scratch(CT_SCRATCH_COLSUM, sizeof(float) * (size_t)chunks * C);
    dim3 grid((C + 127) / 128, chunks);
    colsum_partial<<<grid, 128>>>(partial, f, N, C, rows);
    LAUNCH_CHECK("colsum_partial");
    colsum_finish<<<(C + 127) / 128, 128>>>(dst, partial, chunks, C);
    LAUNCH_CHECK("colsum_finish");
}

// f(n, c) = a[n, c] of an activation array [N, C] (float or bf16, act_io.cuh), loaded as float:
// with colsum_add, a bias gradient dbias[c] += Σ_n dout[n, c] summed in float.
template <typename act_t>
struct ActColumn {
    const act_t *a;
    int C;
    __device__ float operator()(int n, int c) const { return act_load(a + (size_t)n * C + c); }
};
