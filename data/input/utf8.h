// Strict UTF-8 decoding for the pre-tokenizer (RFC 3629: no overlong forms, no surrogates,
// nothing past U+10FFFF). A byte that does not start a valid sequence is one unit of its own
// with code point CT_UTF8_INVALID: the pre-tokenizer gives it no class (like U+FFFD, a
// symbol), and since BPE works on bytes, decoding gives the original byte back.
#pragma once
#include <stddef.h>
#include <stdint.h>

#define CT_UTF8_INVALID 0xFFFFFFFFu

// Decodes the unit at s[0..avail); avail >= 1. Returns its length in bytes (1..4).
static inline size_t ct_utf8_decode(const uint8_t *s, size_t avail, uint32_t *cp) {
    uint8_t b0 = s[0];
    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    }
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        if (avail >= 2 && (s[1] & 0xC0) == 0x80) {
            *cp = ((uint32_t)(b0 & 0x1F) << 6) | (s[1] & 0x3F);
            return 2;
        }
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        // E0 needs A0..BF (no overlong), ED needs 80..9F (no surrogates).
        uint8_t lo = b0 == 0xE0 ? 0xA0 : 0x80, hi = b0 == 0xED ? 0x9F : 0xBF;
        if (avail >= 3 && s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80) {
            *cp = ((uint32_t)(b0 & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
            return 3;
        }
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        // F0 needs 90..BF (no overlong), F4 needs 80..8F (nothing past U+10FFFF).
        uint8_t lo = b0 == 0xF0 ? 0x90 : 0x80, hi = b0 == 0xF4 ? 0x8F : 0xBF;
        if (avail >= 4 && s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 && (s[3] & 0xC0) == 0x80) {
            *cp = ((uint32_t)(b0 & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) | ((uint32_t)(s[2] & 0x3F) << 6) |
                  (s[3] & 0x3F);
            return 4;
        }
    }
    *cp = CT_UTF8_INVALID;
    return 1;
}

// Appends the UTF-8 form of cp (< 0x110000) to out; returns the bytes written (1..4).
static inline size_t ct_utf8_encode(uint32_t cp, uint8_t *out) {
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (cp >> 18));
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}
