// exp and tanh for float that the compiler can vectorise. glibc's expf is a scalar call unless
// -ffast-math (which we do not use: it would break NaN checks and reproducibility), and the
// softmax over a 50k vocabulary and GELU spend most of their time in it.
// ct_fast_expf: Cephes' polynomial after range reduction x = n·ln2 + r, |r| ≤ ln2/2; relative
// error below 2e-7 on [-87, 88]; inputs are clamped to that range (exp(-87.3) ≈ 1.2e-38
// stands in for 0, exp(88.3) for overflow).
#pragma once
// FP compares in loops (the clamp below, max in softmax) are only if-converted, and the loops
// vectorised, when the compiler may assume they do not trap; ctrain never enables FP traps.
// Applies to the kernel files that include this header (all of kernels/cpu through real_begin.h).
#pragma GCC optimize("no-trapping-math")
#include <math.h>
#include <stdint.h>

static inline float ct_fast_expf(float x) {
    x = x < -87.3f ? -87.3f : x > 88.3f ? 88.3f : x;  // not fminf/fmaxf: those stay library calls
    float n = floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - n * 0.693359375f;  // ln2 split in two so that n·ln2 is exact in the first part
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    // 2^n built in the exponent field; a union (not memcpy) so the loop still vectorises. The
    // shift is done unsigned: a NaN input (n undefined) must not be undefined behaviour, only NaN.
    union {
        uint32_t i;
        float f;
    } scale = {.i = ((uint32_t)(int32_t)n + 127u) << 23};
    return p * scale.f;
}

// tanh(u) = 1 - 2 / (exp(2u) + 1): exact at both saturations, no cancellation near 0 worth
// worrying about for GELU (the absolute error there is ~1e-7).
static inline float ct_fast_tanhf(float u) { return 1.0f - 2.0f / (ct_fast_expf(2.0f * u) + 1.0f); }

// tanh with a small RELATIVE error everywhere (below ~3e-7), for soft-capping c·tanh(x/c), where
// x/c is often tiny and ct_fast_tanhf's absolute 1e-7, times c, would be a visible error. Below
// 0.625, Cephes' odd polynomial of tanhf; above, 1 - 2/(exp(2|u|) + 1) ≥ 0.55, where an
// absolute error is a relative one. Both are computed and one selected, so loops vectorise.
static inline float ct_fast_tanhf_precise(float u) {
    const float a = u < 0 ? -u : u, z = u * u;
    const float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z +
                          1.33314422036e-1f) * z - 3.33332819422e-1f) * z * u + u;
    const float big = 1.0f - 2.0f / (ct_fast_expf(2.0f * a) + 1.0f);
    return a < 0.625f ? small : (u < 0 ? -big : big);
}
