// SentencePiece-style BPE: normalization, pieces, first symbols, and the decoder's view of a
// token (see data/tokenizer/spm.h).
#include "data/tokenizer/spm.h"

#include <string.h>


static int starts_with_marker(const uint8_t *s, size_t n) {
    return n >= CT_SPM_MARKER_LEN && memcmp(s, CT_SPM_MARKER, CT_SPM_MARKER_LEN) == 0;
}

static size_t replace_spaces(const uint8_t *text, size_t len, uint8_t *out) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(out + n, CT_SPM_MARKER, CT_SPM_MARKER_LEN);
            n += CT_SPM_MARKER_LEN;
        } else {
            out[n++] = text[i];
        }
    }
    return n;
}

// Replace and Prepend commute (neither makes or removes what the other looks at); Prepend only
// touches a non-empty text.
size_t ct_spm_normalizer(const CtSpmRules *r, const uint8_t *text, size_t len, uint8_t *out) {
    if (len == 0) return 0;
    size_t n = 0;
    if (r->normalizer_prepend) {
        memcpy(out, CT_SPM_MARKER, CT_SPM_MARKER_LEN);
        n = CT_SPM_MARKER_LEN;
    }
    if (r->replace_spaces) return n + replace_spaces(text, len, out + n);
    memcpy(out + n, text, len);
    return n + len;
}

// HF's Metaspace: replace spaces, then prepend unless the text already starts with "▁".
size_t ct_spm_metaspace(const CtSpmRules *r, const uint8_t *s, size_t len, int at_start, uint8_t *out) {
    if (len == 0) return 0;
    if (!r->has_metaspace) {
        memcpy(out, s, len);
        return len;
    }
    size_t n = 0;
    int prepend = r->metaspace == CT_PREPEND_ALWAYS || (r->metaspace == CT_PREPEND_FIRST && at_start);
    if (prepend && !starts_with_marker(s, len) && s[0] != ' ') {
        memcpy(out, CT_SPM_MARKER, CT_SPM_MARKER_LEN);
        n = CT_SPM_MARKER_LEN;
    }
    return n + replace_spaces(s, len, out + n);
}

// Metaspace split (SplitDelimiterBehavior::MergedWithNext): every "▁" begins a piece.
size_t ct_spm_piece_end(const CtSpmRules *r, const uint8_t *s, size_t len, size_t pos) {
    if (!r->split) return len;
    for (size_t i = pos + 1; i + CT_SPM_MARKER_LEN <= len; i++)
        if (s[i] == 0xE2 && starts_with_marker(s + i, len - i)) return i;
    return len;
}

static int hex_digit(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

size_t ct_spm_decode_token(const CtSpmRules *r, const uint8_t *s, size_t n, uint8_t *out) {
    // ByteFallback decoder: "<0xNN>" (u8::from_str_radix takes either case) is the byte.
    if (r->decode_bytes && n == 6 && memcmp(s, "<0x", 3) == 0 && s[5] == '>' && hex_digit(s[3]) >= 0 &&
        hex_digit(s[4]) >= 0) {
        out[0] = (uint8_t)(hex_digit(s[3]) << 4 | hex_digit(s[4]));
        return 1;
    }
    if (!r->decode_marker) {
        memcpy(out, s, n);
        return n;
    }
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] == 0xE2 && starts_with_marker(s + i, n - i)) {
            out[m++] = ' ';
            i += CT_SPM_MARKER_LEN;
        } else {
            out[m++] = s[i++];
        }
    }
    return m;
}
