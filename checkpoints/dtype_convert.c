#include "checkpoints/dtype_convert.h"

#include <string.h>

static uint32_t float_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_float(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float ct_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp == 0x1f) return bits_float(sign | 0x7f800000u | (mant << 13));  // inf, NaN (payload kept)
    if (exp == 0) {
        if (mant == 0) return bits_float(sign);
        // subnormal: value = mant · 2^-24, exact in float32
        float v = (float)mant * 0x1p-24f;
        return sign ? -v : v;
    }
    return bits_float(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t ct_f32_to_f16(float f) {
    uint32_t u = float_bits(f), sign = (u >> 16) & 0x8000, abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u) return (uint16_t)(sign | 0x7e00 | ((abs >> 13) & 0x3ff));  // NaN stays NaN
    if (abs >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);  // rounds to at least 65520: inf
    if (abs < 0x38800000u) {
        // below the smallest normal half (2^-14): a subnormal, rounded to a multiple of 2^-24
        if (abs < 0x33000000u) return (uint16_t)sign;  // below half of 2^-24: zero
        uint32_t exp = abs >> 23, mant = (abs & 0x7fffff) | 0x800000;
        int shift = 126 - (int)exp;  // 113 - exp + 13
        uint32_t q = mant >> shift, rem = mant & ((1u << shift) - 1), halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (q & 1))) q++;
        return (uint16_t)(sign | q);
    }
    // normal: rebias the exponent and round the 13 dropped mantissa bits to nearest even
    uint32_t r = abs - 0x38000000u;  // exponent 127 → 15
    uint32_t q = r >> 13, rem = r & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (q & 1))) q++;
    return (uint16_t)(sign | q);
}

float ct_bf16_to_f32(uint16_t b) { return bits_float((uint32_t)b << 16); }

uint16_t ct_f32_to_bf16(float f) {
    uint32_t u = float_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);  // quiet NaN, sign kept
    u += 0x7fff + ((u >> 16) & 1);  // round to nearest even
    return (uint16_t)(u >> 16);
}

void ct_f16_array_to_f32(const void *src, float *dst, size_t n) {
    const unsigned char *p = src;
    for (size_t i = 0; i < n; i++) dst[i] = ct_f16_to_f32((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)));
}

void ct_bf16_array_to_f32(const void *src, float *dst, size_t n) {
    const unsigned char *p = src;
    for (size_t i = 0; i < n; i++) dst[i] = ct_bf16_to_f32((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)));
}

void ct_f32_array_from_bytes(const void *src, float *dst, size_t n) { memcpy(dst, src, n * sizeof(float)); }

size_t ct_f32_array_to_f16(const float *src, uint16_t *dst, size_t n) {
    size_t overflow = 0;
    for (size_t i = 0; i < n; i++) {
        dst[i] = ct_f32_to_f16(src[i]);
        overflow += (dst[i] & 0x7fff) == 0x7c00 && (float_bits(src[i]) & 0x7f800000u) != 0x7f800000u;
    }
    return overflow;
}

void ct_f32_array_to_bf16(const float *src, uint16_t *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = ct_f32_to_bf16(src[i]);
}
