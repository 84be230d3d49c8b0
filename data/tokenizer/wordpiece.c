// The WordPiece model (data/tokenizer/wordpiece.h), as tokenizers' models/wordpiece/mod.rs.
#include "data/tokenizer/wordpiece.h"

#include <string.h>

#include "core/alloc.h"
#include "data/input/utf8.h"

// ---- model ----

struct CtWordPieceScratch {
    const CtTokenizer *t;
    // Every token, special ones included: HF looks parts up in the model's whole vocab, where
    // BERT's [CLS]... are (a special token whose text is a word, "cls", would match there).
    CtBytesMap vocab;
    size_t max_token_len;  // no longer substring can match: the search starts below it
    uint32_t *cps;
    size_t cps_cap;
    uint8_t *bytes;      // the word in UTF-8, after room for the prefix
    uint32_t *char_end;  // byte offset (into the word) where each character ends
    size_t word_cap;
};

CtWordPieceScratch *ct_wordpiece_scratch_new(const CtTokenizer *t) {
    CtWordPieceScratch *s = ct_calloc(1, sizeof *s);
    s->t = t;
    ct_bytes_map_init(&s->vocab, (size_t)t->n_ids, t->pool, t->offsets, t->lengths);
    for (int pass = 0; pass < 2; pass++)  // ordinary tokens first: they win a tie of texts
        for (int32_t i = 0; i < t->n_ids; i++) {
            if (t->kind[i] == CT_TOKEN_ABSENT || (t->kind[i] == CT_TOKEN_NORMAL) != (pass == 0)) continue;
            ct_bytes_map_insert(&s->vocab, i);
            if (t->lengths[i] > s->max_token_len) s->max_token_len = t->lengths[i];
        }
    return s;
}

void ct_wordpiece_scratch_free(CtWordPieceScratch *s) {
    if (!s) return;
    ct_bytes_map_free(&s->vocab);
    ct_free(s->cps);
    ct_free(s->bytes);
    ct_free(s->char_end);
    ct_free(s);
}

void ct_wordpiece_word(CtWordPieceScratch *s, const uint32_t *w, size_t n, CtIds *out) {
    const CtTokenizer *t = s->t;
    const CtWordPieceRules *r = &t->wp;
    if (n == 0) return;
    if (n > (size_t)r->max_chars) {
        ct_ids_push(out, r->unk_id);
        return;
    }
    const size_t p = (size_t)r->prefix_len;
    if (n > s->word_cap) {
        s->word_cap = n * 2;
        s->bytes = ct_realloc(s->bytes, 4 * s->word_cap + sizeof r->prefix);
        s->char_end = ct_realloc(s->char_end, s->word_cap * sizeof *s->char_end);
    }
    uint8_t *word = s->bytes + p;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        len += ct_utf8_encode(w[i], word + len);
        s->char_end[i] = (uint32_t)len;
    }
    size_t first = out->len;
    for (size_t start = 0; start < n;) {  // start, end: character indices
        size_t from = start ? s->char_end[start - 1] : 0, extra = start ? p : 0;
        // A part longer than the longest token cannot match: begin the search below it (a
        // character is a byte at least, so no further than max_token_len characters on).
        size_t end = n - start > s->max_token_len ? start + s->max_token_len : n;
        int32_t id = -1;
        while (end > start && s->char_end[end - 1] - from + extra > s->max_token_len) end--;
        if (start) memcpy(word + from - p, r->prefix, p);  // "##" just before the part (overwrites bytes already used)
        for (; end > start; end--) {
            id = ct_bytes_map_find(&s->vocab, word + from - extra, s->char_end[end - 1] - from + extra);
            if (id >= 0) break;
        }
        if (id < 0) {  // a part matches nothing: the whole word is unk
            out->len = first;
            ct_ids_push(out, r->unk_id);
            return;
        }
        ct_ids_push(out, id);
        start = end;
    }
}

void ct_wordpiece_encode(CtWordPieceScratch *s, const uint8_t *text, size_t len, CtIds *out) {
    const CtWordPieceRules *r = &s->t->wp;
    size_t n = ct_bert_normalize(r, text, len, &s->cps, &s->cps_cap);
    for (size_t pos = 0; pos < n;) {
        size_t end = ct_bert_next_word(r, s->cps, n, &pos);
        ct_wordpiece_word(s, s->cps + pos, end - pos, out);
        pos = end;
    }
}

