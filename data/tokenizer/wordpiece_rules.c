// The WordPiece pipeline without the vocabulary (data/tokenizer/wordpiece_rules.h), following Hugging Face's
// tokenizers: normalizers/bert.rs, pre_tokenizers/bert.rs, models/wordpiece/mod.rs and
// decoders/wordpiece.rs.
#include "data/tokenizer/wordpiece_rules.h"

#include <string.h>

#include "core/alloc.h"
#include "data/input/utf8.h"
#include "data/tokenizer/bert_tables.h"

void ct_wordpiece_rules_bert(CtWordPieceRules *r, int lowercase) {
    memset(r, 0, sizeof *r);
    r->normalizer = 1;
    r->clean_text = r->handle_chinese_chars = 1;
    r->strip_accents = r->lowercase = lowercase;
    r->bert_pre_tokenizer = 1;
    memcpy(r->prefix, "##", 3);
    r->prefix_len = 2;
    r->max_chars = 100;
    r->unk_id = -1;
    r->decoder = CT_WP_DECODER_WORDPIECE;
    memcpy(r->decode_prefix, "##", 3);
    r->decode_prefix_len = 2;
    r->cleanup = 1;
}

// ---- normalizer ----

static const CtBertMapping *find_mapping(const CtBertMapping *m, size_t count, uint32_t cp) {
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (m[mid].cp == cp) return &m[mid];
        if (m[mid].cp < cp) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

static void push_cp(uint32_t **out, size_t *n, size_t *cap, uint32_t cp) {
    if (*n == *cap) *out = ct_realloc(*out, (*cap = *cap ? *cap * 2 : 256) * sizeof **out);
    (*out)[(*n)++] = cp;
}

static void push_lowered(const CtWordPieceRules *r, uint32_t cp, uint32_t **out, size_t *n, size_t *cap) {
    const CtBertMapping *m;
    if (r->lowercase && (ct_bert_flags(cp) & CT_BERT_LOWER) && (m = find_mapping(ct_bert_lower, ct_bert_lower_count, cp))) {
        for (uint32_t i = 0; i < m->len; i++) push_cp(out, n, cap, ct_bert_map_pool[m->offset + i]);
        return;
    }
    push_cp(out, n, cap, cp);
}

// strip_accents then lowercase, per character (the mappings are the library's, per character;
// a Hangul syllable's is its jamo, computed as UAX #15 does)
static void push_stripped(const CtWordPieceRules *r, uint32_t cp, uint32_t **out, size_t *n, size_t *cap) {
    const CtBertMapping *m;
    if (r->strip_accents && cp >= 0xAC00 && cp <= 0xD7A3) {
        uint32_t s = cp - 0xAC00;
        push_lowered(r, 0x1100 + s / 588, out, n, cap);  // leading consonant (588 = 21 vowels x 28 trailing)
        push_lowered(r, 0x1161 + s % 588 / 28, out, n, cap);
        if (s % 28) push_lowered(r, 0x11A7 + s % 28, out, n, cap);
        return;
    }
    if (r->strip_accents && (ct_bert_flags(cp) & CT_BERT_STRIP) && (m = find_mapping(ct_bert_strip, ct_bert_strip_count, cp))) {
        for (uint32_t i = 0; i < m->len; i++) push_lowered(r, ct_bert_map_pool[m->offset + i], out, n, cap);
        return;
    }
    push_lowered(r, cp, out, n, cap);
}

size_t ct_bert_normalize(const CtWordPieceRules *r, const uint8_t *text, size_t len, uint32_t **out, size_t *cap) {
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        if (text[i] < 0x80) {
            cp = text[i++];
        } else {
            i += ct_utf8_decode(text + i, len - i, &cp);
            if (cp == CT_UTF8_INVALID) cp = 0xFFFD;
        }
        if (!r->normalizer) {
            push_cp(out, &n, cap, cp);
            continue;
        }
        unsigned f = ct_bert_flags(cp);
        if (r->clean_text && (f & CT_BERT_DROP)) continue;
        if (cp < 0x80) {  // ASCII: no ideographs, no accents; lowercase is A-Z only
            if (r->clean_text && (f & CT_BERT_SPACE)) cp = ' ';
            else if (r->lowercase && cp - 'A' < 26u) cp += 'a' - 'A';
            push_cp(out, &n, cap, cp);
            continue;
        }
        if (r->clean_text && (f & CT_BERT_SPACE)) cp = ' ', f = ct_bert_flags(' ');
        if (r->handle_chinese_chars && (f & CT_BERT_CHINESE)) {
            push_cp(out, &n, cap, ' ');
            push_stripped(r, cp, out, &n, cap);
            push_cp(out, &n, cap, ' ');
            continue;
        }
        push_stripped(r, cp, out, &n, cap);
    }
    return n;
}

// ---- pre-tokenizer ----

size_t ct_bert_next_word(const CtWordPieceRules *r, const uint32_t *s, size_t n, size_t *pos) {
    size_t i = *pos;
    if (!r->bert_pre_tokenizer) return n;  // the whole text is one word
    while (i < n && (ct_bert_flags(s[i]) & CT_BERT_WHITESPACE)) i++;
    *pos = i;
    if (i == n) return n;
    if (ct_bert_flags(s[i]) & CT_BERT_PUNCT) return i + 1;
    while (i < n && !(ct_bert_flags(s[i]) & (CT_BERT_WHITESPACE | CT_BERT_PUNCT))) i++;
    return i;
}

// ---- decoder ----

// Replaces every `from` in s[0..n) with the shorter or equal `to`, left to right; the new length.
static size_t replace_all(uint8_t *s, size_t n, const char *from, const char *to) {
    size_t fl = strlen(from), tl = strlen(to), w = 0;
    for (size_t i = 0; i < n;) {
        if (i + fl <= n && memcmp(s + i, from, fl) == 0) {
            memmove(s + w, to, tl);
            w += tl;
            i += fl;
        } else {
            s[w++] = s[i++];
        }
    }
    return w;
}

size_t ct_wordpiece_decode_token(const CtWordPieceRules *r, const uint8_t *s, size_t n, int first, uint8_t *out) {
    size_t len = 0;
    if (first) {
        memcpy(out, s, n);
        len = n;
    } else if (r->decoder == CT_WP_DECODER_WORDPIECE && (size_t)r->decode_prefix_len <= n &&
               memcmp(s, r->decode_prefix, (size_t)r->decode_prefix_len) == 0) {
        // replacen(prefix, "", 1) on a token that starts with it removes that first one
        len = n - (size_t)r->decode_prefix_len;
        memcpy(out, s + r->decode_prefix_len, len);
    } else {
        out[0] = ' ';
        memcpy(out + 1, s, n);
        len = n + 1;
    }
    if (r->decoder == CT_WP_DECODER_WORDPIECE && r->cleanup) {
        static const char *const rules[][2] = {{" .", "."},   {" ?", "?"},   {" !", "!"},       {" ,", ","},
                                               {" ' ", "'"},  {" n't", "n't"}, {" 'm", "'m"}, {" do not", " don't"},
                                               {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
        for (size_t k = 0; k < sizeof rules / sizeof rules[0]; k++) len = replace_all(out, len, rules[k][0], rules[k][1]);
    }
    return len;
}
