// Stochastic rounding of fp32 to bf16 (the bf16 weight copies, bf16_weights.cu and adamw.cu).
// bf16 is the upper half of the fp32 bit pattern. Adding a uniform r ∈ [0, 2¹⁶) to the pattern
// and keeping the upper half rounds |x| up to the next bf16 exactly when r ≥ 2¹⁶ − low, where
// low is the lower half: with probability low / 2¹⁶, the distance to the lower neighbour in
// units of the gap, so the rounded value's mean is x (unbiased). Sign-magnitude makes this work
// for negative x too (the magnitude rounds away from zero with that probability), a carry out
// of the mantissa steps the exponent (1.99.. → 2), subnormals are evenly spaced like the rest,
// and ±Inf stays ±Inf (its lower half is 0). Above the largest bf16 the carry reaches the
// infinity pattern, as rounding to nearest does past half a step. NaN is handled apart: the
// carry could turn a NaN into Inf.
#pragma once
#include <cuda_bf16.h>
#include <stdint.h>

#include "kernels/cuda/counter_hash.cuh"

// The 16-bit uniform of element i: the counter hash's top 16 bits (dropout's hash). i counts
// from the start of the declared weight buffer, so a slice updated on its own (ZeRO) draws the
// same numbers as the whole.
__device__ __forceinline__ uint32_t bf16_rounding_bits(uint64_t seed, uint64_t i) {
    return (uint32_t)(counter_hash(seed, i) >> 48);
}

__device__ __forceinline__ __nv_bfloat16 bf16_round_stochastic(float x, uint32_t bits16) {
    const uint32_t u = __float_as_uint(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return __ushort_as_bfloat16((unsigned short)((u >> 16) | 0x40u));  // quiet NaN
    return __ushort_as_bfloat16((unsigned short)((u + bits16) >> 16));
}
