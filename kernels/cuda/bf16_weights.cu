// bf16 copies of the weights, kept next to their fp32 masters for the bf16 table's products
// (kernels/ops.h, keep_low_precision_weights). A declared buffer gets a copy of n bf16 numbers
// at the same offsets, so a product operand inside the buffer maps to the copy by pointer
// arithmetic (matmul.cu) instead of being converted at every call. The copy is rounded to
// nearest when declared (or stochastically with a given seed: a resumed run re-creates what
// its last AdamW step wrote), and AdamW's kernel rewrites the elements it updates with
// stochastic rounding (adamw.cu, bf16_round.cuh). A handful of buffers are declared (the
// model's parameters, LoRA adapters, DPO's frozen reference): a short list, searched linearly.
#include <stdint.h>

#include <vector>

#include "kernels/cuda/bf16_round.cuh"
#include "kernels/cuda/bf16_weights.cuh"
#include "kernels/cuda/cuda_common.cuh"

namespace {
struct WeightCopy {
    const float *master;  // the declared fp32 buffer, n floats
    size_t n;
    __nv_bfloat16 *copy;  // n bf16 numbers, allocated through ct_cuda_malloc (counted)
};
std::vector<WeightCopy> &declared() {
    static std::vector<WeightCopy> list;
    return list;
}
// Addresses as integers: the buffers are different allocations, which C++ pointer comparison
// does not order.
uintptr_t addr(const void *p) { return (uintptr_t)p; }
}  // namespace

__global__ void round_weights_kernel(__nv_bfloat16 *copy, const float *master, size_t n, int stochastic,
                                     uint64_t seed) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        copy[i] = stochastic ? bf16_round_stochastic(master[i], bf16_rounding_bits(seed, i)) : __float2bfloat16_rn(master[i]);
}

extern "C" void ct_cuda_keep_bf16_weights(const float *params, size_t n, const uint64_t *rounding_seed) {
    if (!params || !n) return;
    std::vector<WeightCopy> &list = declared();
    const uintptr_t begin = addr(params), end = begin + n * sizeof(float);
    __nv_bfloat16 *copy = NULL;
    for (size_t k = 0; k < list.size();) {
        const WeightCopy e = list[k];
        const uintptr_t e_begin = addr(e.master), e_end = e_begin + e.n * sizeof(float);
        if (e_begin == begin && e.n == n) {  // declared again: the same copy, refreshed below
            copy = e.copy;
            k++;
        } else if (e_begin < end && begin < e_end) {  // overlaps a buffer declared before: that one goes
            list.erase(list.begin() + (ptrdiff_t)k);
            ct_cuda_free(e.copy);
        } else {
            k++;
        }
    }
    if (!copy) {
        copy = (__nv_bfloat16 *)ct_cuda_malloc(n * sizeof(__nv_bfloat16), "bf16 copy of the weights");
        list.push_back(WeightCopy{params, n, copy});
    }
    round_weights_kernel<<<ct_blocks(n, 256), 256>>>(copy, params, n, rounding_seed != NULL,
                                                     rounding_seed ? *rounding_seed : 0);
    LAUNCH_CHECK("round_weights_kernel");
}

__nv_bfloat16 *ct_cuda_bf16_weights_holding(const float *x, size_t n, size_t *index) {
    const uintptr_t begin = addr(x), end = begin + n * sizeof(float);
    for (const WeightCopy &e : declared()) {
        const uintptr_t e_begin = addr(e.master), e_end = e_begin + e.n * sizeof(float);
        if (begin >= e_begin && end <= e_end && (begin - e_begin) % sizeof(float) == 0) {
            const size_t at = (begin - e_begin) / sizeof(float);
            if (index) *index = at;
            return e.copy + at;
        }
    }
    return NULL;
}

int ct_cuda_bf16_weights_overlap(const float *x, size_t n) {
    const uintptr_t begin = addr(x), end = begin + n * sizeof(float);
    for (const WeightCopy &e : declared())
        if (addr(e.master) < end && begin < addr(e.master) + e.n * sizeof(float)) return 1;
    return 0;
}

extern "C" const uint16_t *ct_cuda_bf16_weights(const float *x, size_t n) {
    return (const uint16_t *)ct_cuda_bf16_weights_holding(x, n, NULL);
}

void ct_cuda_bf16_weights_forget(const void *block, size_t bytes) {
    std::vector<WeightCopy> &list = declared();
    const uintptr_t begin = addr(block), end = begin + bytes;
    for (size_t k = 0; k < list.size();) {
        const WeightCopy e = list[k];
        if (addr(e.master) >= begin && addr(e.master) < end) {
            list.erase(list.begin() + (ptrdiff_t)k);
            ct_cuda_free(e.copy);
        } else {
            k++;
        }
    }
}
