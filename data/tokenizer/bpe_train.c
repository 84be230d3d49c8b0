#include "data/tokenizer/bpe_train.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"

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

// ---- pair statistics ----

typedef struct {
    int32_t *symbols;
    uint32_t len;
    uint64_t count;
    int32_t last_merge;  // the merge that last visited this word (visit each once per merge)
} Word;

typedef struct {
    int64_t count;
    uint32_t *words;  // indices of words that contain (or once contained) the pair
    uint32_t n_words, cap_words;
    int32_t left, right;
    int32_t grew_in;  // the last merge during which the count grew (to queue it once)
} Pair;

typedef struct {
    uint64_t *keys;     // UINT64_MAX = empty
    uint32_t *index;    // into pairs
    size_t mask, used;
    Pair *pairs;
    size_t n_pairs, cap_pairs;
} PairTable;

static uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t)(uint32_t)a << 32 | (uint32_t)b; }
static size_t pair_hash(uint64_t key) {
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h ^ (h >> 29));
}

static void pair_table_init(PairTable *t, size_t cap) {
    t->keys = ct_alloc(cap * sizeof *t->keys);
    memset(t->keys, 0xFF, cap * sizeof *t->keys);
    t->index = ct_alloc(cap * sizeof *t->index);
    t->mask = cap - 1;
    t->used = 0;
}

static Pair *pair_get(PairTable *t, int32_t a, int32_t b) {
    if ((t->used + 1) * 2 > t->mask + 1) {
        uint64_t *old_keys = t->keys;
        uint32_t *old_index = t->index;
        size_t old_cap = t->mask + 1;
        pair_table_init(t, old_cap * 2);
        for (size_t i = 0; i < old_cap; i++) {
            if (old_keys[i] == UINT64_MAX) continue;
            size_t j = pair_hash(old_keys[i]) & t->mask;
            while (t->keys[j] != UINT64_MAX) j = (j + 1) & t->mask;
            t->keys[j] = old_keys[i];
            t->index[j] = old_index[i];
            t->used++;
        }
        ct_free(old_keys);
        ct_free(old_index);
    }
    uint64_t key = pair_key(a, b);
    size_t i = pair_hash(key) & t->mask;
    for (; t->keys[i] != UINT64_MAX; i = (i + 1) & t->mask)
        if (t->keys[i] == key) return &t->pairs[t->index[i]];
    if (t->n_pairs == t->cap_pairs) t->pairs = ct_realloc(t->pairs, (t->cap_pairs = t->cap_pairs * 2 + 1024) * sizeof *t->pairs);
    t->keys[i] = key;
    t->index[i] = (uint32_t)t->n_pairs;
    t->used++;
    Pair *p = &t->pairs[t->n_pairs++];
    *p = (Pair){0, NULL, 0, 0, a, b, -1};
    return p;
}

static void pair_add_word(Pair *p, uint32_t w) {
    if (p->n_words && p->words[p->n_words - 1] == w) return;
    if (p->n_words == p->cap_words) p->words = ct_realloc(p->words, (p->cap_words = p->cap_words * 2 + 4) * sizeof *p->words);
    p->words[p->n_words++] = w;
}

// ---- the heap of candidate merges ----

typedef struct {
    int64_t count;
    int32_t left, right;
} Candidate;

// Higher count first; on ties the smaller (left, right), so the order is fixed.
static int candidate_before(Candidate x, Candidate y) {
    if (x.count != y.count) return x.count > y.count;
    if (x.left != y.left) return x.left < y.left;
    return x.right < y.right;
}

typedef struct {
    Candidate *items;
    size_t n, cap;
} Heap;

static void heap_push(Heap *h, Candidate c) {
    if (h->n == h->cap) h->items = ct_realloc(h->items, (h->cap = h->cap * 2 + 1024) * sizeof *h->items);
    size_t i = h->n++;
    while (i > 0 && candidate_before(c, h->items[(i - 1) / 2])) {
        h->items[i] = h->items[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->items[i] = c;
}

static Candidate heap_pop(Heap *h) {
    Candidate top = h->items[0], last = h->items[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && candidate_before(h->items[c + 1], h->items[c])) c++;
        if (!candidate_before(h->items[c], last)) break;
        h->items[i] = h->items[c];
        i = c;
    }
    if (h->n) h->items[i] = last;
    return top;
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

// The pairs whose counts grew during the current merge, to queue once it is done.
typedef struct {
    uint32_t *items;
    size_t n, cap;
} GrownList;

// Adds delta to the count of (a, b), noting word w when the pair gains it (and the pair in
// `grown`, once per merge).
static void change_pair(PairTable *pt, int32_t a, int32_t b, int64_t delta, uint32_t w, int32_t merge, GrownList *grown) {
    Pair *p = pair_get(pt, a, b);
    p->count += delta;
    if (delta <= 0) return;
    pair_add_word(p, w);
    if (p->grew_in != merge && grown) {
        p->grew_in = merge;
        if (grown->n == grown->cap) grown->items = ct_realloc(grown->items, (grown->cap = grown->cap * 2 + 256) * sizeof *grown->items);
        grown->items[grown->n++] = (uint32_t)(p - pt->pairs);
    }
}

// The distinct pieces of the text as words: each a list of byte symbols (in one array, returned
// in *symbols), with its count.
static Word *make_words(CtBpeTrainer *t, size_t *n_words, int32_t **symbols) {
    PieceSlot *pieces = count_pieces(t, n_words);
    Word *words = ct_alloc((*n_words + 1) * sizeof *words);
    size_t total_symbols = 0;
    for (size_t w = 0; w < *n_words; w++) total_symbols += pieces[w].len;
    int32_t *all = ct_alloc((total_symbols + 1) * sizeof *all);
    size_t at = 0;
    for (size_t w = 0; w < *n_words; w++) {
        const uint8_t *p = t->text + pieces[w].offset;
        words[w] = (Word){all + at, pieces[w].len, pieces[w].count, -1};
        for (uint32_t i = 0; i < pieces[w].len; i++) all[at++] = p[i];
    }
    ct_free(pieces);
    *symbols = all;
    return words;
}

// Merge number `merges`: every word holding the pair (a, b), p, gets `id` in its place, and the
// counts of the neighbouring pairs move (those that grow are noted in `grown`). It takes p's word
// list: the walk rewrites those words, and (a, b) itself never gains a word during it (every pair
// that gains one contains the new id).
static void apply_merge(PairTable *pt, Pair *p, Word *words, int32_t a, int32_t b, int32_t id, int32_t merges,
                        GrownList *grown) {
    uint32_t n_positions = p->n_words;
    uint32_t *positions = p->words;
    p->words = NULL;
    p->n_words = p->cap_words = 0;
    for (uint32_t k = 0; k < n_positions; k++) {
        uint32_t w = positions[k];
        Word *word = &words[w];
        if (word->last_merge == merges) continue;
        word->last_merge = merges;
        int32_t *s = word->symbols;
        uint32_t n = word->len, o_len = 0;
        int64_t cnt = word->count;
        for (uint32_t i = 0; i < n;) {
            if (i + 1 < n && s[i] == a && s[i + 1] == b) {
                if (o_len > 0) {
                    change_pair(pt, s[o_len - 1], a, -cnt, w, merges, grown);
                    change_pair(pt, s[o_len - 1], id, cnt, w, merges, grown);
                }
                if (i + 2 < n) {
                    change_pair(pt, b, s[i + 2], -cnt, w, merges, grown);
                    change_pair(pt, id, s[i + 2], cnt, w, merges, grown);
                }
                s[o_len++] = id;
                i += 2;
            } else {
                s[o_len++] = s[i++];
            }
        }
        word->len = o_len;
    }
    ct_free(positions);
}

int ct_bpe_trainer_train(CtBpeTrainer *t, CtTokenizer *out) {
    const CtBpeTrainOptions *o = &t->options;
    int32_t n_merges_wanted = o->vocab_size - 256 - o->n_specials;
    if (n_merges_wanted < 0)
        return ct_error_set("--vocab-size %d is too small: it must hold the 256 bytes and %d special token%s", o->vocab_size,
                            o->n_specials, o->n_specials == 1 ? "" : "s");
    size_t n_words;
    int32_t *symbols;
    Word *words = make_words(t, &n_words, &symbols);
    t->distinct = n_words;
    // Token bytes as they are made: ids 0..255 the bytes, then one per merge.
    CtTokenizer *tok = out;
    ct_tokenizer_init(tok, o->pattern, CT_MERGES_BY_LIST);
    for (int b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        ct_tokenizer_add(tok, b, &byte, 1, CT_TOKEN_NORMAL);
    }
    PairTable pt = {0};
    pair_table_init(&pt, 1 << 16);
    for (size_t w = 0; w < n_words; w++)
        for (uint32_t i = 0; i + 1 < words[w].len; i++)
            change_pair(&pt, words[w].symbols[i], words[w].symbols[i + 1], words[w].count, (uint32_t)w, -1, NULL);
    Heap heap = {0};
    for (size_t i = 0; i < pt.n_pairs; i++)
        if (pt.pairs[i].count > 0) heap_push(&heap, (Candidate){pt.pairs[i].count, pt.pairs[i].left, pt.pairs[i].right});
    CtProgress progress;
    if (o->progress) ct_progress_start(&progress, "merges", (uint64_t)n_merges_wanted, "merges");
    uint8_t *buf = NULL;
    size_t buf_cap = 0;
    int32_t merges = 0, made = 0;  // merges learned; new tokens made (fewer when a merge remakes one)
    GrownList grown = {0};
    // Token bytes -> id, to notice a merge whose bytes are already a token (two different
    // pairs can spell the same string); like HF, the merge then reuses that id.
    CtBytesMap known;
    ct_bytes_map_init(&known, (size_t)o->vocab_size, tok->pool, tok->offsets, tok->lengths);
    for (int32_t i = 0; i < 256; i++) ct_bytes_map_insert(&known, i);
    int rc = 0;
    while (made < n_merges_wanted && heap.n) {
        Candidate c = heap_pop(&heap);
        Pair *p = pair_get(&pt, c.left, c.right);
        if (p->count != c.count) {  // out of date: try again with the current count
            if (p->count > 0) heap_push(&heap, (Candidate){p->count, c.left, c.right});
            continue;
        }
        int32_t a = c.left, b = c.right;
        size_t la = tok->lengths[a], lb = tok->lengths[b];
        if (la + lb > buf_cap) buf = ct_realloc(buf, buf_cap = (la + lb) * 2);
        memcpy(buf, tok->pool + tok->offsets[a], la);
        memcpy(buf + la, tok->pool + tok->offsets[b], lb);
        int32_t id = ct_bytes_map_find(&known, buf, la + lb);
        if (id < 0) {
            id = 256 + made++;
            if ((rc = ct_tokenizer_add(tok, id, buf, la + lb, CT_TOKEN_NORMAL)) != 0) break;
            known.pool = tok->pool;  // the arrays may have moved
            known.offsets = tok->offsets;
            known.lengths = tok->lengths;
            ct_bytes_map_insert(&known, id);
        }
        ct_tokenizer_add_merge(tok, a, b);
        grown.n = 0;
        apply_merge(&pt, p, words, a, b, id, merges, &grown);
        p = pair_get(&pt, a, b);
        p->count = 0;
        // Queue the pairs whose counts grew (all contain the merged id) with their final
        // counts. Counts that shrank are fixed when their stale entries surface.
        for (size_t i = 0; i < grown.n; i++) {
            Pair *q = &pt.pairs[grown.items[i]];
            if (q->count > 0) heap_push(&heap, (Candidate){q->count, q->left, q->right});
        }
        merges++;
        if (o->progress) ct_progress_update(&progress, (uint64_t)made);
    }
    if (o->progress) ct_progress_finish(&progress);
    ct_free(buf);
    ct_free(grown.items);
    ct_bytes_map_free(&known);
    for (size_t i = 0; i < pt.n_pairs; i++) ct_free(pt.pairs[i].words);
    ct_free(pt.pairs);
    ct_free(pt.keys);
    ct_free(pt.index);
    ct_free(heap.items);
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
