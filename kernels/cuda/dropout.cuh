// Dropout's counter-based uniform on the device: the same function as ct_dropout_uniform in
// kernels/ops.h (the hash's top 24 bits), which is a host function there. The two must stay
// identical: tests/test_cuda_ops.c compares the masks.
#pragma once
#include <stdint.h>

#include "kernels/cuda/counter_hash.cuh"

__device__ __forceinline__ float dropout_uniform(uint64_t seed, uint64_t i) {
    return (float)(counter_hash(seed, i) >> 40) * 0x1.0p-24f;
}

// The factor of a kept element, 1/(1-p), computed as the CPU does (in double, used as float).
static inline float dropout_keep_scale(float p) { return (float)(1.0 / (1.0 - (double)p)); }

// Attention dropout's factor of score (row, key), whose mask index is row_index + key with
// row_index = ((b·NH + h)·T + row)·T (kernels/ops.h): 1/(1-p) kept, 0 dropped; 1 when p <= 0.
__device__ __forceinline__ float attention_keep_factor(float p, float keep_scale, uint64_t seed, size_t row_index,
                                                       int key) {
    if (p <= 0.0f) return 1.0f;
    return dropout_uniform(seed, row_index + (uint64_t)key) >= p ? keep_scale : 0.0f;
}
