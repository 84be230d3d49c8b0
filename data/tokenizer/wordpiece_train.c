// WordPiece training (data/tokenizer/wordpiece_train.h).
#include "data/tokenizer/wordpiece_train.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "data/input/utf8.h"
#include "data/tokenizer/bpe_merge.h"

// Distinct words (code point strings) with counts: open addressing over a pool of code points.
typedef struct {
    uint64_t hash;
    uint64_t offset;  // into the pool
    uint32_t len;
    uint64_t count;   // 0: empty
} WordSlot;

struct CtWordPieceTrainer {
    CtWordPieceTrainOptions options;
    CtWordPieceRules rules;
    uint32_t *pool;
    size_t pool_len, pool_cap;
    WordSlot *slots;
    size_t mask, used;
    uint32_t *norm;
    size_t norm_cap;
};

CtWordPieceTrainer *ct_wordpiece_trainer_new(const CtWordPieceTrainOptions *options) {
    CtWordPieceTrainer *t = ct_calloc(1, sizeof *t);
    t->options = *options;
    ct_wordpiece_rules_bert(&t->rules, options->lowercase);
    t->mask = (1 << 14) - 1;
    t->slots = ct_calloc(t->mask + 1, sizeof *t->slots);
    return t;
}

void ct_wordpiece_trainer_free(CtWordPieceTrainer *t) {
    if (!t) return;
    ct_free(t->pool);
    ct_free(t->slots);
    ct_free(t->norm);
    ct_free(t);
}

size_t ct_wordpiece_trainer_distinct_words(const CtWordPieceTrainer *t) { return t->used; }

static uint64_t hash_cps(const uint32_t *w, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ w[i]) * 0x100000001b3ull;
    return h ^ (h >> 31);
}

static void insert_slot(WordSlot *slots, size_t mask, WordSlot s) {
    size_t i = s.hash & mask;
    while (slots[i].count) i = (i + 1) & mask;
    slots[i] = s;
}

static void add_word(CtWordPieceTrainer *t, const uint32_t *w, size_t n) {
    if ((t->used + 1) * 2 > t->mask + 1) {
        size_t cap = (t->mask + 1) * 2;
        WordSlot *bigger = ct_calloc(cap, sizeof *bigger);
        for (size_t i = 0; i <= t->mask; i++)
            if (t->slots[i].count) insert_slot(bigger, cap - 1, t->slots[i]);
        ct_free(t->slots);
        t->slots = bigger;
        t->mask = cap - 1;
    }
    uint64_t h = hash_cps(w, n);
    size_t i = h & t->mask;
    for (; t->slots[i].count; i = (i + 1) & t->mask) {
        WordSlot *s = &t->slots[i];
        if (s->hash == h && s->len == n && memcmp(t->pool + s->offset, w, n * sizeof *w) == 0) {
            s->count++;
            return;
        }
    }
    if (t->pool_len + n > t->pool_cap) t->pool = ct_realloc(t->pool, (t->pool_cap = (t->pool_len + n) * 2 + 4096) * sizeof *t->pool);
    memcpy(t->pool + t->pool_len, w, n * sizeof *w);
    t->slots[i] = (WordSlot){h, t->pool_len, (uint32_t)n, 1};
    t->pool_len += n;
    t->used++;
}

void ct_wordpiece_trainer_add_document(CtWordPieceTrainer *t, const uint8_t *text, size_t len) {
    size_t n = ct_bert_normalize(&t->rules, text, len, &t->norm, &t->norm_cap);
    for (size_t pos = 0; pos < n;) {
        size_t end = ct_bert_next_word(&t->rules, t->norm, n, &pos);
        if (end > pos) add_word(t, t->norm + pos, end - pos);
        pos = end;
    }
}

static int compare_words(const void *a, const void *b, void *pool_ptr) {
    const WordSlot *x = a, *y = b;
    const uint32_t *pool = pool_ptr;
    size_t n = x->len < y->len ? x->len : y->len;
    for (size_t i = 0; i < n; i++)
        if (pool[x->offset + i] != pool[y->offset + i]) return pool[x->offset + i] < pool[y->offset + i] ? -1 : 1;
    return (x->len > y->len) - (x->len < y->len);
}

static int compare_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

int ct_wordpiece_trainer_train(CtWordPieceTrainer *t, CtTokenizer *out) {
    const CtWordPieceTrainOptions *o = &t->options;
    const CtWordPieceRules *r = &t->rules;
    int unk = -1;
    for (int k = 0; k < o->n_specials; k++)
        if (strcmp(o->specials[k], o->unk) == 0) unk = k;
    if (unk < 0) return ct_error_set("the special tokens must hold the unk token %s", o->unk);
    // The distinct words, sorted (everything after this is deterministic).
    WordSlot *list = ct_alloc((t->used + 1) * sizeof *list);
    size_t n_words = 0, total = 0;
    for (size_t i = 0; i <= t->mask; i++)
        if (t->slots[i].count) list[n_words++] = t->slots[i], total += t->slots[i].len;
    qsort_r(list, n_words, sizeof *list, compare_words, t->pool);
    // The alphabet: initial characters (first of a word) and continuing ones, each sorted.
    uint32_t *first = ct_alloc((n_words + 1) * sizeof *first), *rest = ct_alloc((total + 1) * sizeof *rest);
    size_t n_first = 0, n_rest = 0;
    for (size_t w = 0; w < n_words; w++) {
        const uint32_t *s = t->pool + list[w].offset;
        first[n_first++] = s[0];
        for (uint32_t i = 1; i < list[w].len; i++) rest[n_rest++] = s[i];
    }
    qsort(first, n_first, sizeof *first, compare_u32);
    qsort(rest, n_rest, sizeof *rest, compare_u32);
    CtTokenizer *tok = out;
    ct_tokenizer_init(tok, CT_PATTERN_GPT2, CT_MERGES_BY_LIST);
    CtWordPieceRules rules = *r;
    rules.unk_id = unk;
    ct_tokenizer_set_wordpiece(tok, &rules);
    int rc = 0;
    int32_t id = 0;
    for (int k = 0; rc == 0 && k < o->n_specials; k++)
        rc = ct_tokenizer_add(tok, id++, (const uint8_t *)o->specials[k], strlen(o->specials[k]), CT_TOKEN_SPECIAL);
    // Character tokens: ids in two sorted runs; a map from code point to id for each kind.
    size_t n_first_ids = 0, n_rest_ids = 0;
    uint32_t *first_cp = ct_alloc((n_first + 1) * sizeof *first_cp), *rest_cp = ct_alloc((n_rest + 1) * sizeof *rest_cp);
    int32_t first_base = id;
    for (size_t i = 0; rc == 0 && i < n_first; i++) {
        if (i && first[i] == first[i - 1]) continue;
        uint8_t s[4];
        size_t n = ct_utf8_encode(first[i], s);
        first_cp[n_first_ids++] = first[i];
        rc = ct_tokenizer_add(tok, id++, s, n, CT_TOKEN_NORMAL);
    }
    int32_t rest_base = id;
    for (size_t i = 0; rc == 0 && i < n_rest; i++) {
        if (i && rest[i] == rest[i - 1]) continue;
        uint8_t s[24];
        memcpy(s, r->prefix, (size_t)r->prefix_len);
        size_t n = (size_t)r->prefix_len + ct_utf8_encode(rest[i], s + r->prefix_len);
        rest_cp[n_rest_ids++] = rest[i];
        rc = ct_tokenizer_add(tok, id++, s, n, CT_TOKEN_NORMAL);
    }
    // The words as symbols.
    CtMergeWord *words = ct_alloc((n_words + 1) * sizeof *words);
    int32_t *symbols = ct_alloc((total + 1) * sizeof *symbols);
    size_t at = 0;
    for (size_t w = 0; rc == 0 && w < n_words; w++) {
        const uint32_t *s = t->pool + list[w].offset;
        words[w] = (CtMergeWord){symbols + at, list[w].len, list[w].count, -1};
        for (uint32_t i = 0; i < list[w].len; i++) {
            const uint32_t *table = i ? rest_cp : first_cp;
            size_t n = i ? n_rest_ids : n_first_ids;
            const uint32_t *hit = bsearch(&s[i], table, n, sizeof *table, compare_u32);
            symbols[at++] = (int32_t)(hit - table) + (i ? rest_base : first_base);
        }
    }
    int32_t wanted = o->vocab_size - id, made = 0;
    if (rc == 0 && wanted > 0) {
        made = ct_learn_merges(tok, words, n_words, id, wanted, r->prefix, o->progress);
        if (made < 0) rc = -1;
    }
    if (rc == 0 && wanted > made)
        ct_warn("the input has only enough distinct pairs for %d merged tokens; the vocabulary has %d tokens, not %d", made,
                id + made, o->vocab_size);
    ct_free(words);
    ct_free(symbols);
    ct_free(first);
    ct_free(rest);
    ct_free(first_cp);
    ct_free(rest_cp);
    ct_free(list);
    if (rc == 0) {
        tok->n_merges = 0;  // WordPiece encodes by longest match, not by merges
        int32_t cls = -1, sep = -1;
        for (int k = 0; k < o->n_specials; k++) {
            if (strcmp(o->specials[k], "[CLS]") == 0) cls = k;
            if (strcmp(o->specials[k], "[SEP]") == 0) sep = k;
        }
        if (cls >= 0 && sep >= 0) {
            CtPostProcessor *p = &tok->post;
            const CtPostPiece single[] = {{cls, 0}, {CT_POST_A, 0}, {sep, 0}};
            const CtPostPiece pair[] = {{cls, 0}, {CT_POST_A, 0}, {sep, 0}, {CT_POST_B, 1}, {sep, 1}};
            memcpy(p->single, single, sizeof single);
            memcpy(p->pair, pair, sizeof pair);
            p->n_single = 3;
            p->n_pair = 5;
            p->prefix[p->n_prefix++] = cls;
            p->suffix[p->n_suffix++] = sep;
        }
        rc = ct_tokenizer_finish(tok);
    }
    if (rc != 0) ct_tokenizer_free(tok);
    return rc;
}
