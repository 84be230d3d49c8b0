// The few-rows product of kernels/cpu/matmul.inc (decoding: out[N,OC] (+)= inp[N,C]·W[OC,C]ᵀ for
// N ≤ 8) written for AVX-512, in float: the portable loops there left a 3-row product ~30% slower
// than a 1-row one, which is what a speculative decoder's check pass over a few rows pays
// (measured on the 22M-parameter model of docs/benchmarks.md: GCC kept the input rows in
// registers and read every weight vector once per input row from L1, spilled its pointers into
// vector registers, and summed the lanes one scalar at a time).
//
// Here a block of R input rows (≤ 4) times J weight rows (≤ 8) keeps its R·J running sums in
// zmm registers, each input vector is loaded once per 16 columns, each weight vector once for
// all R rows, and the next block's weight rows are prefetched along the way (the weights do not
// fit any cache: the product is a stream through memory, and the prefetches keep it busy while
// the multiply-adds and the sums of lanes run).
//
// The numbers are the portable path's, bit for bit: every dot product runs 16 lanes of fused
// multiply-adds over whole vectors of 16 columns, then sums its lanes by halves (8, 4, 2, 1),
// then adds the columns past the last whole vector one at a time. That order is the same for a
// row whatever rows share its call: a speculative decoder's check over several rows computes the
// very logits that plain decoding's one row does (its greedy output equals plain greedy's).
#pragma once
#if defined(__AVX512F__)
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define FEW512_LANES 16
#ifndef FEW512_PREFETCH_AHEAD
#define FEW512_PREFETCH_AHEAD 1  // which block of 8 weight rows a block prefetches: the next one
#endif
#ifndef FEW512_PREFETCH_HINT
#define FEW512_PREFETCH_HINT _MM_HINT_T0
#endif

// A dot product's 16 lanes summed by halves: lanes l and l + 8, then l and l + 4, l and l + 2,
// l and l + 1 (kernels/cpu/matmul.inc's portable path sums them in this order too).
__attribute__((always_inline)) static inline float few512_sum_lanes(__m512 v) {
    const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(v),
                                    _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

// Eight dot products' lanes summed by halves at once, into s[0..8): the same additions as
// few512_sum_lanes on each (so the same bits), with the eight vectors shuffled together level by
// level (26 instructions instead of 8 × 8 and eight scalar stores).
__attribute__((always_inline)) static inline void few512_sum_lanes8(const __m512 v[8], float s[8]) {
    __m512 z[4], w[2];
    for (int i = 0; i < 4; i++)  // lanes l and l + 8 of dots 2i, 2i+1: [dot 2i's 8 | dot 2i+1's 8]
        z[i] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    for (int i = 0; i < 2; i++)  // l and l + 4: one 128-bit lane per dot, dots 4i..4i+3
        w[i] = _mm512_add_ps(_mm512_shuffle_f32x4(z[2 * i], z[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(z[2 * i], z[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    // l and l + 2: 128-bit lane k holds dot k's two sums, then dot k + 4's
    const __m512 t = _mm512_add_ps(_mm512_shuffle_ps(w[0], w[1], _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm512_shuffle_ps(w[0], w[1], _MM_SHUFFLE(3, 2, 3, 2)));
    // l and l + 1: lane k holds dot k's sum, dot k + 4's, and the two again
    const __m512 u = _mm512_add_ps(_mm512_shuffle_ps(t, t, _MM_SHUFFLE(2, 0, 2, 0)),
                                   _mm512_shuffle_ps(t, t, _MM_SHUFFLE(3, 1, 3, 1)));
    const __m512i order = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 13, 9, 5, 1, 12, 8, 4, 0);
    _mm256_storeu_ps(s, _mm512_castps512_ps256(_mm512_permutexvar_ps(order, u)));
}

// Widens 16 bf16 bit patterns (a float's upper halves) to floats.
__attribute__((always_inline)) static inline __m512 few512_load_bf16(const uint16_t *p) {
    const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}
static inline float few512_float_of_bf16(uint16_t b) {
    const uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

// few512_KIND_dots_RxJ (KIND f32 or bf16: the weights' type): out[i0+r, j0+c] (+)= inp[i0+r]·W[j0+c]
// for r < R, c < J; `next` is the first of the weight rows the following call reads (J rows
// prefetched over this call's columns), or NULL. One function per shape
// (matmul_few_avx512_dots.inc), so that the R·J sums are separate variables the compiler keeps
// in registers. Then few512_KIND_gemm_nt, the whole product (matmul_few_avx512_gemm.inc).
#define FEW512_BF16 0
#include "kernels/cpu/matmul_few_avx512_gemm.inc"
#define FEW512_BF16 1
#include "kernels/cpu/matmul_few_avx512_gemm.inc"
#endif
