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

#define FEW512_LANES 16

// A dot product's 16 lanes summed by halves: lanes l and l + 8, then l and l + 4, l and l + 2,
// l and l + 1 (kernels/cpu/matmul.inc's portable path sums them in this order too).
__attribute__((always_inline)) static inline float few512_sum_lanes(__m512 v) {
    const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(v),
                                    _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

// few512_dots_RxJ: out[i0+r, j0+c] (+)= inp[i0+r]·W[j0+c] for r < R, c < J; `next` is the first
// of the weight rows the following call reads (J·C floats prefetched over this call's columns),
// or NULL. One function per shape (matmul_few_avx512_dots.inc), so that the R·J sums are
// separate variables the compiler keeps in registers.
#define FEW512_R 1
#define FEW512_J 1
#include "kernels/cpu/matmul_few_avx512_dots.inc"
#define FEW512_R 1
#define FEW512_J 8
#include "kernels/cpu/matmul_few_avx512_dots.inc"
#define FEW512_R 2
#define FEW512_J 8
#include "kernels/cpu/matmul_few_avx512_dots.inc"
#define FEW512_R 3
#define FEW512_J 8
#include "kernels/cpu/matmul_few_avx512_dots.inc"
#define FEW512_R 4
#define FEW512_J 4
#include "kernels/cpu/matmul_few_avx512_dots.inc"

// Columns j0..j0+J of rows i0..i0+R (R ≤ 4; J = 8, or fewer at the end of W).
static void few512_block(int R, float *out, const float *inp, const float *w, int i0, int j0, int J, int OC, int C,
                         int accumulate, const float *next) {
    if (J < 8) {  // the last columns, one dot product at a time
        for (int c = 0; c < J; c++)
            for (int r = 0; r < R; r++) few512_dots_1x1(out, inp, w, i0 + r, j0 + c, OC, C, accumulate, NULL);
        return;
    }
    switch (R) {  // R·8 sums, R input vectors and a weight vector in 32 registers (4 rows: twice 4 columns)
    case 1: few512_dots_1x8(out, inp, w, i0, j0, OC, C, accumulate, next); break;
    case 2: few512_dots_2x8(out, inp, w, i0, j0, OC, C, accumulate, next); break;
    case 3: few512_dots_3x8(out, inp, w, i0, j0, OC, C, accumulate, next); break;
    default:
        few512_dots_4x4(out, inp, w, i0, j0, OC, C, accumulate, next);
        few512_dots_4x4(out, inp, w, i0, j0 + 4, OC, C, accumulate, next ? next + (size_t)4 * C : NULL);
        break;
    }
}

// out[N,OC] (+)= inp[N,C]·W[OC,C]ᵀ for N ≤ 8: blocks of 8 weight rows, parallel over blocks,
// the input rows in groups of at most 4 (a block's weights come from memory for the first group
// and from the cache for the second).
static void few512_gemm_nt(float *out, const float *inp, const float *w, int N, int OC, int C, int accumulate) {
#pragma omp parallel for schedule(static)
    for (int j0 = 0; j0 < OC; j0 += 8) {
        const int J = OC - j0 < 8 ? OC - j0 : 8;
        const float *next = j0 + 16 <= OC ? w + (size_t)(j0 + 8) * (size_t)C : NULL;  // a whole next block
        for (int i0 = 0; i0 < N; i0 += 4)
            few512_block(N - i0 < 4 ? N - i0 : 4, out, inp, w, i0, j0, J, OC, C, accumulate, i0 == 0 ? next : NULL);
    }
}
#endif
