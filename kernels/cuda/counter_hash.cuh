// The counter-based hash behind dropout's mask and the weight copies' stochastic rounding:
// splitmix64's finaliser of seed + (i+1)·golden ratio, the same function as the host's
// ct_dropout_uniform in kernels/ops.h (tests/test_cuda_ops.c compares the masks).
#pragma once
#include <stdint.h>

__device__ __forceinline__ uint64_t counter_hash(uint64_t seed, uint64_t i) {
    uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
