#include "data/tokenizer/bpe_train.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "data/tokenizer/bpe_merge.h"

// ---- counting pieces ----

typedef struct {
    uint64_t hash;
    uint64_t offset;  // into the trainer's text
    uint32_t len;
    uint64_t count;   // 0 = empty slot (64-bit: a frequent piece of a large corpus passes 2^32)
} PieceSlot;

typedef struct {
    PieceSlot *slots;
    size_t mask, used;
} PieceTable;

static void piece_table_init(PieceTable *t, size_t cap) {
    t->slots = ct_calloc(cap, sizeof *t->slots);
    t->mask = cap - 1;
    t->used = 0;
}

static void piece_table_add(PieceTable *t, const uint8_t *base, uint64_t offset, uint32_t len, uint64_t hash,
                            uint64_t count);

static void piece_table_grow(PieceTable *t, const uint8_t *base) {
    PieceTable bigger;
    piece_table_init(&bigger, (t->mask + 1) * 2);
    for (size_t i = 0; i <= t->mask; i++)
        if (t->slots[i].count)
            piece_table_add(&bigger, base, t->slots[i].offset, t->slots[i].len, t->slots[i].hash, t->slots[i].count);
    ct_free(t->slots);
    *t = bigger;
}

static void piece_table_add(PieceTable *t, const uint8_t *base, uint64_t offset, uint32_t len, uint64_t hash,
                            uint64_t count) {
    if ((t->used + 1) * 2 > t->mask + 1) piece_table_grow(t, base);
    for (size_t i = hash & t->mask;; i = (i + 1) & t->mask) {
        PieceSlot *s = &t->slots[i];
        if (!s->count) {
            *s = (PieceSlot){hash, offset, len, count};
            t->used++;
            return;
        }
        if (s->hash == hash && s->len == len && memcmp(base + s->offset, base + offset, len) == 0) {
            s->count += count;
            return;
        }
    }
}

// ---- the trainer ----

struct CtBpeTrainer {
    CtBpeTrainOptions options;
    uint8_t *text;  // every document, back to back
    size_t len, cap;
    uint64_t *doc_ends;
    size_t n_docs, cap_docs;
    size_t distinct;
};

CtBpeTrainer *ct_bpe_trainer_new(const CtBpeTrainOptions *options) {
    CtBpeTrainer *t = ct_calloc(1, sizeof *t);
    t->options = *options;
    if (t->options.threads < 1) t->options.threads = 1;
    return t;
}

void ct_bpe_trainer_free(CtBpeTrainer *t) {
    if (!t) return;
    ct_free(t->text);
    ct_free(t->doc_ends);
    ct_free(t);
}

void ct_bpe_trainer_add_document(CtBpeTrainer *t, const uint8_t *text, size_t len) {
    if (t->len + len > t->cap) t->text = ct_realloc(t->text, t->cap = (t->len + len) * 3 / 2 + 4096);
    memcpy(t->text + t->len, text, len);
    t->len += len;
    if (t->n_docs == t->cap_docs) t->doc_ends = ct_realloc(t->doc_ends, (t->cap_docs = t->cap_docs * 2 + 64) * sizeof *t->doc_ends);
    t->doc_ends[t->n_docs++] = t->len;
}

size_t ct_bpe_trainer_distinct_pieces(const CtBpeTrainer *t) { return t->distinct; }

typedef struct {
    uint64_t doc_start, doc_end, start, end;
} Job;

static int compare_pieces(const void *a, const void *b, void *base) {
    const PieceSlot *x = a, *y = b;
    const uint8_t *text = base;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(text + x->offset, text + y->offset, n);
    if (c) return c;
    return (x->len > y->len) - (x->len < y->len);
}

// Pre-tokenizes everything and returns the distinct pieces, sorted by bytes.
static PieceSlot *count_pieces(CtBpeTrainer *t, size_t *n_out) {
    const size_t target = 1 << 18;
    Job *jobs = NULL;
    size_t n_jobs = 0, cap_jobs = 0;
    uint64_t doc_start = 0;
    for (size_t d = 0; d < t->n_docs; d++) {
        uint64_t doc_end = t->doc_ends[d];
        const uint8_t *doc = t->text + doc_start;
        size_t doc_len = doc_end - doc_start, pos = 0;
        while (pos < doc_len) {
            size_t cut = doc_len - pos > target * 3 / 2 ? ct_pretokenize_safe_cut(doc, doc_len, pos + target) : doc_len;
            if (n_jobs == cap_jobs) jobs = ct_realloc(jobs, (cap_jobs = cap_jobs * 2 + 64) * sizeof *jobs);
            jobs[n_jobs++] = (Job){doc_start, doc_end, doc_start + pos, doc_start + cut};
            pos = cut;
        }
        doc_start = doc_end;
    }
    int threads = t->options.threads;
    PieceTable *tables = ct_calloc((size_t)threads, sizeof *tables);
    CtProgress progress;
    if (t->options.progress) ct_progress_start(&progress, "counting pieces", t->len, "B");
    size_t done = 0;
#pragma omp parallel num_threads(threads)
    {
        PieceTable *mine = &tables[omp_get_thread_num()];
        piece_table_init(mine, 1 << 14);
#pragma omp for schedule(dynamic, 1)
        for (size_t j = 0; j < n_jobs; j++) {
            const Job *job = &jobs[j];
            const uint8_t *doc = t->text + job->doc_start;
            size_t doc_len = job->doc_end - job->doc_start, pos = job->start - job->doc_start,
                   end = job->end - job->doc_start;
            while (pos < end) {
                size_t next = ct_pretokenize_next(t->options.pattern, doc, doc_len, pos);
                piece_table_add(mine, t->text, job->doc_start + pos, (uint32_t)(next - pos), ct_hash_bytes(doc + pos, next - pos), 1);
                pos = next;
            }
            if (t->options.progress) {
#pragma omp critical(bpe_train_progress)
                {
                    done += job->end - job->start;
                    ct_progress_update(&progress, done);
                }
            }
        }
    }
    if (t->options.progress) ct_progress_finish(&progress);
    // Sum the tables (addition does not care about order), then sort.
    PieceTable all = tables[0];
    for (int k = 1; k < threads; k++) {
        for (size_t i = 0; i <= tables[k].mask; i++) {
            const PieceSlot *s = &tables[k].slots[i];
            if (s->count) piece_table_add(&all, t->text, s->offset, s->len, s->hash, s->count);
        }
        ct_free(tables[k].slots);
    }
    PieceSlot *pieces = ct_alloc((all.used + 1) * sizeof *pieces);
    size_t n = 0;
    for (size_t i = 0; i <= all.mask; i++)
        if (all.slots[i].count) pieces[n++] = all.slots[i];
    ct_free(all.slots);
    ct_free(tables);
    ct_free(jobs);
    qsort_r(pieces, n, sizeof *pieces, compare_pieces, t->text);
    *n_out = n;
    return pieces;
}

// The distinct pieces of the text as words: each a list of byte symbols (in one array, returned
// in *symbols), with its count.
static CtMergeWord *make_words(CtBpeTrainer *t, size_t *n_words, int32_t **symbols) {
    PieceSlot *pieces = count_pieces(t, n_words);
    CtMergeWord *words = ct_alloc((*n_words + 1) * sizeof *words);
    size_t total_symbols = 0;
    for (size_t w = 0; w < *n_words; w++) total_symbols += pieces[w].len;
    int32_t *all = ct_alloc((total_symbols + 1) * sizeof *all);
    size_t at = 0;
    for (size_t w = 0; w < *n_words; w++) {
        const uint8_t *p = t->text + pieces[w].offset;
        words[w] = (CtMergeWord){all + at, pieces[w].len, pieces[w].count, -1};
        for (uint32_t i = 0; i < pieces[w].len; i++) all[at++] = p[i];
    }
    ct_free(pieces);
    *symbols = all;
    return words;
}

int ct_bpe_trainer_train(CtBpeTrainer *t, CtTokenizer *out) {
    const CtBpeTrainOptions *o = &t->options;
    int32_t n_merges_wanted = o->vocab_size - 256 - o->n_specials;
    if (n_merges_wanted < 0)
        return ct_error_set("--vocab-size %d is too small: it must hold the 256 bytes and %d special token%s", o->vocab_size,
                            o->n_specials, o->n_specials == 1 ? "" : "s");
    size_t n_words;
    int32_t *symbols;
    CtMergeWord *words = make_words(t, &n_words, &symbols);
    t->distinct = n_words;
    // Token bytes as they are made: ids 0..255 the bytes, then one per merge.
    CtTokenizer *tok = out;
    ct_tokenizer_init(tok, o->pattern, CT_MERGES_BY_LIST);
    for (int b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        ct_tokenizer_add(tok, b, &byte, 1, CT_TOKEN_NORMAL);
    }
    int32_t made = ct_learn_merges(tok, words, n_words, 256, n_merges_wanted, NULL, o->progress);
    int rc = made < 0 ? -1 : 0;
    ct_free(symbols);
    ct_free(words);
    if (rc == 0 && made < n_merges_wanted)
        ct_warn("the input has only enough distinct pairs for %d new tokens; the vocabulary has %d tokens, not %d", made,
                256 + made + o->n_specials, o->vocab_size);
    for (int k = 0; rc == 0 && k < o->n_specials; k++)
        rc = ct_tokenizer_add(tok, 256 + made + k, (const uint8_t *)o->specials[k], strlen(o->specials[k]), CT_TOKEN_SPECIAL);
    if (rc == 0) rc = ct_tokenizer_finish(tok);
    if (rc != 0) ct_tokenizer_free(tok);
    return rc;
}
