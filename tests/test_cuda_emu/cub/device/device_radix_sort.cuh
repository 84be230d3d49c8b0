// See tests/test_cuda_emu/emu.h: CUB's stable radix sort of pairs, as a stable sort on the host.
#pragma once
#include "emu.h"
namespace cub {
struct DeviceRadixSort {
    template <typename K, typename V>
    static cudaError_t SortPairs(void *temp, size_t &temp_bytes, const K *keys_in, K *keys_out, const V *values_in,
                                 V *values_out, int n, int = 0, int = (int)sizeof(K) * 8, cudaStream_t = 0) {
        if (!temp) {
            temp_bytes = 64;
            return cudaSuccess;
        }
        std::vector<int> order((size_t)n);
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return keys_in[a] < keys_in[b]; });
        for (int i = 0; i < n; i++) {
            keys_out[i] = keys_in[order[i]];
            values_out[i] = values_in[order[i]];
        }
        return cudaSuccess;
    }
};
}  // namespace cub
