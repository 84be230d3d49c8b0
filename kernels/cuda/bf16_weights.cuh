// The bf16 copies of declared weights (bf16_weights.cu), as the other .cu files of the backend
// see them: the products read them (matmul.cu), AdamW refreshes them (adamw.cu), freeing a
// device block forgets them (memory.cu). Internal to kernels/cuda/.
#pragma once
#include <cuda_bf16.h>
#include <stddef.h>

// The bf16 copy of x[0, n) at the same offsets when one declared buffer holds all of it, else
// NULL. *index (may be NULL) gets x's index in that buffer: the counter of stochastic rounding.
__nv_bfloat16 *ct_cuda_bf16_weights_holding(const float *x, size_t n, size_t *index);
// 1 when x[0, n) overlaps a declared buffer (in part or in whole).
int ct_cuda_bf16_weights_overlap(const float *x, size_t n);
// Forgets every declared buffer inside the device block [block, block + bytes) and frees its
// copy (ct_cuda_free calls this: a buffer allocated later at the same address is not declared).
void ct_cuda_bf16_weights_forget(const void *block, size_t bytes);
