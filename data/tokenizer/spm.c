// SentencePiece-style BPE: normalization, pieces, first symbols, and the decoder's view of a
// token (see data/tokenizer/spm.h).
#include "data/tokenizer/spm.h"

#include <string.h>

#include "data/input/utf8.h"

static int starts_with_marker(const uint8_t *s, size_t n) {
    return n >= CT_SPM_MARKER_LEN && memcmp(s, CT_SPM_MARKER, CT_SPM_MARKER_LEN) == 0;
}

// HF order: the normalizer (Replace, then Prepend on a non-empty text: both commute), then the
// Metaspace pre-tokenizer (replace spaces; prepend unless the text already starts with "▁").
size_t ct_spm_normalize(const CtSpmRules *r, const uint8_t *text, size_t len, int at_start, uint8_t *out) {
    if (len == 0) return 0;
    size_t n = 0;
    const int replace = r->replace_spaces || r->has_metaspace;
    int prepend = r->normalizer_prepend;
    if (!prepend && r->has_metaspace && (r->metaspace == CT_PREPEND_ALWAYS || (r->metaspace == CT_PREPEND_FIRST && at_start)))
        prepend = !(starts_with_marker(text, len) || (replace && text[0] == ' '));
    if (prepend) {
        memcpy(out, CT_SPM_MARKER, CT_SPM_MARKER_LEN);
        n = CT_SPM_MARKER_LEN;
    }
    for (size_t i = 0; i < len; i++) {
        if (replace && text[i] == ' ') {
            memcpy(out + n, CT_SPM_MARKER, CT_SPM_MARKER_LEN);
            n += CT_SPM_MARKER_LEN;
        } else {
            out[n++] = text[i];
        }
    }
    return n;
}

// Metaspace split (SplitDelimiterBehavior::MergedWithNext): every "▁" begins a piece.
size_t ct_spm_piece_end(const CtSpmRules *r, const uint8_t *s, size_t len, size_t pos) {
    if (!r->split) return len;
    for (size_t i = pos + 1; i + CT_SPM_MARKER_LEN <= len; i++)
        if (s[i] == 0xE2 && starts_with_marker(s + i, len - i)) return i;
    return len;
}

// HF's merge_word: a known character is its token; an unknown one its <0xNN> tokens when all
// exist, else the unk token. A pending unk is written when the next known character comes (so
// with fuse_unk a run of unknown characters is one unk), and byte fallback does not write it.
size_t ct_spm_symbols(const CtTokenizer *t, const uint8_t *piece, size_t len, int32_t *ids) {
    const CtSpmRules *r = &t->spm;
    size_t n = 0;
    int32_t pending_unk = -1;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t k = ct_utf8_decode(piece + i, len - i, &cp);
        int32_t id = ct_tokenizer_find(t, piece + i, k);
        if (id >= 0) {
            if (pending_unk >= 0) ids[n++] = pending_unk, pending_unk = -1;
            ids[n++] = id;
            i += k;
            continue;
        }
        int have_bytes = r->byte_fallback;
        for (size_t b = 0; b < k && have_bytes; b++) have_bytes = r->byte_ids[piece[i + b]] >= 0;
        if (have_bytes) {
            for (size_t b = 0; b < k; b++) ids[n++] = r->byte_ids[piece[i + b]];
        } else if (r->unk_id >= 0) {
            if (pending_unk >= 0 && !r->fuse_unk) ids[n++] = pending_unk;
            pending_unk = r->unk_id;
        }
        i += k;
    }
    if (pending_unk >= 0) ids[n++] = pending_unk;
    return n;
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
