// Warp-level bf16 tensor-core products: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
// (sm_80 and later), the fragment loads from shared memory that feed it, and bf16 packing.
// Internal to kernels/cuda/ (the tensor-core attention, attention_bf16.cu).
//
// One instruction computes D[16,8] = A[16,16]·B[16,8] + C[16,8] for a whole warp. With
// g = lane/4 (groupID) and t = lane%4 (threadID_in_group), each lane holds (PTX ISA, "Matrix
// Fragments for mma.m16n8k16 with floating point type"; the lower-numbered element of a pair
// sits in the low 16 bits of its register):
//   A, 4 registers of 2 bf16:  a[0] = A[g][2t..2t+1]    a[1] = A[g+8][2t..2t+1]
//                              a[2] = A[g][2t+8..2t+9]  a[3] = A[g+8][2t+8..2t+9]
//   B, 2 registers of 2 bf16:  b[0] = B[2t..2t+1][g]    b[1] = B[2t+8..2t+9][g]
//   C and D, 4 floats:         c[0..1] = C[g][2t..2t+1]  c[2..3] = C[g+8][2t..2t+1]
// So an accumulator of a product (C layout) becomes the A operand of the next product in
// registers: the columns 16k..16k+15 of two neighbouring 8-column accumulators are exactly the
// A fragment of k-step k (pack_a_from_acc).
//
// Under the CPU emulation (tests/test_cuda_emu, CT_CUDA_EMU) the instruction is replaced by its
// definition: every lane publishes its fragments to the warp, and each lane computes its own
// four outputs from the exact bf16 operands (their products are exact in float), summing the
// sixteen products and C in double and rounding once to float. The tensor core's internal
// order and rounding of that sum are not documented; they differ from this by float rounding.
#pragma once
#include <cuda_bf16.h>
#include <stdint.h>

// Two floats rounded to bf16 (nearest even) in one register: lo in bits 0-15, hi in 16-31.
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
    return (uint32_t)__bfloat16_as_ushort(__float2bfloat16_rn(lo)) |
           ((uint32_t)__bfloat16_as_ushort(__float2bfloat16_rn(hi)) << 16);
}

// A fragment of the 16×16 block of a row-major bf16 matrix X (ld elements per row, even) whose
// top-left element is X[r0][k0]: rows are A's rows, columns are the reduction index.
__device__ __forceinline__ void load_frag_a(uint32_t a[4], const uint16_t *X, int ld, int r0, int k0, int lane) {
    const int g = lane >> 2, t = lane & 3;
    const uint16_t *p = X + (size_t)(r0 + g) * ld + k0 + 2 * t;
    a[0] = *(const uint32_t *)p;
    a[1] = *(const uint32_t *)(p + 8 * ld);
    a[2] = *(const uint32_t *)(p + 8);
    a[3] = *(const uint32_t *)(p + 8 * ld + 8);
}

// A B fragment (16×8, reduction index k by column n) read from a row-major bf16 matrix Y that
// holds Bᵀ: B[k][n] = Y[n0 + n][k0 + k]. (B "col" is Y's rows: K for Q·Kᵀ, V for dO·Vᵀ.)
__device__ __forceinline__ void load_frag_b(uint32_t b[2], const uint16_t *Y, int ld, int n0, int k0, int lane) {
    const int g = lane >> 2, t = lane & 3;
    const uint16_t *p = Y + (size_t)(n0 + g) * ld + k0 + 2 * t;
    b[0] = *(const uint32_t *)p;
    b[1] = *(const uint32_t *)(p + 8);
}

// The A fragment of k-step k (columns 16k..16k+15) from two 8-column accumulators in C layout,
// lo = columns 16k..16k+7 and hi = 16k+8..16k+15, rounded to bf16.
__device__ __forceinline__ void pack_a_from_acc(uint32_t a[4], const float lo[4], const float hi[4]) {
    a[0] = pack_bf16x2(lo[0], lo[1]);
    a[1] = pack_bf16x2(lo[2], lo[3]);
    a[2] = pack_bf16x2(hi[0], hi[1]);
    a[3] = pack_bf16x2(hi[2], hi[3]);
}

#ifndef CT_CUDA_EMU
// d += A·B (fp32 accumulators in place).
__device__ __forceinline__ void mma_bf16_16816(float d[4], const uint32_t a[4], const uint32_t b[2]) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
#else
// The emulation: the instruction's definition over the fragment layout above.
struct MmaLaneFragments {
    uint32_t a[4], b[2];
};
static inline float bf16_half(uint32_t reg, int high) {
    return __bfloat162float(__nv_bfloat16{(uint16_t)(high ? reg >> 16 : reg & 0xffffu)});
}
// A[row][k]: lane (row%8)·4 + (k%8)/2, register (row ≥ 8) + 2·(k ≥ 8), half k%2.
static inline float emu_a(const MmaLaneFragments *all, int row, int k) {
    return bf16_half(all[(row & 7) * 4 + ((k & 7) >> 1)].a[(row >> 3) + 2 * (k >> 3)], k & 1);
}
// B[k][n]: lane n·4 + (k%8)/2, register (k ≥ 8), half k%2.
static inline float emu_b(const MmaLaneFragments *all, int k, int n) {
    return bf16_half(all[n * 4 + ((k & 7) >> 1)].b[k >> 3], k & 1);
}
__device__ inline void mma_bf16_16816(float d[4], const uint32_t a[4], const uint32_t b[2]) {
    MmaLaneFragments mine, all[32];
    for (int i = 0; i < 4; i++) mine.a[i] = a[i];
    mine.b[0] = b[0];
    mine.b[1] = b[1];
    ct_emu_warp_exchange(&mine, all, sizeof mine);
    const int lane = ct_emu_lane(), g = lane >> 2, t = lane & 3;
    for (int i = 0; i < 4; i++) {
        const int row = g + 8 * (i >> 1), col = 2 * t + (i & 1);
        double s = d[i];
        for (int k = 0; k < 16; k++) s += (double)emu_a(all, row, k) * (double)emu_b(all, k, col);
        d[i] = (float)s;
    }
}
#endif
