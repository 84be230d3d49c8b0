// The merge loop of BPE training (data/tokenizer/bpe_merge.h).
#include "data/tokenizer/bpe_merge.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"

// ---- pair statistics ----

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

// Merge number `merges`: every word holding the pair (a, b), p, gets `id` in its place, and the
// counts of the neighbouring pairs move (those that grow are noted in `grown`). It takes p's word
// list: the walk rewrites those words, and (a, b) itself never gains a word during it (every pair
// that gains one contains the new id).
static void apply_merge(PairTable *pt, Pair *p, CtMergeWord *words, int32_t a, int32_t b, int32_t id, int32_t merges,
                        GrownList *grown) {
    uint32_t n_positions = p->n_words;
    uint32_t *positions = p->words;
    p->words = NULL;
    p->n_words = p->cap_words = 0;
    for (uint32_t k = 0; k < n_positions; k++) {
        uint32_t w = positions[k];
        CtMergeWord *word = &words[w];
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

int32_t ct_learn_merges(CtTokenizer *tok, CtMergeWord *words, size_t n_words, int32_t first_id, int32_t n_new,
                        const char *continuing_prefix, int progress_bar) {
    PairTable pt = {0};
    pair_table_init(&pt, 1 << 16);
    for (size_t w = 0; w < n_words; w++)
        for (uint32_t i = 0; i + 1 < words[w].len; i++)
            change_pair(&pt, words[w].symbols[i], words[w].symbols[i + 1], words[w].count, (uint32_t)w, -1, NULL);
    Heap heap = {0};
    for (size_t i = 0; i < pt.n_pairs; i++)
        if (pt.pairs[i].count > 0) heap_push(&heap, (Candidate){pt.pairs[i].count, pt.pairs[i].left, pt.pairs[i].right});
    CtProgress progress;
    if (progress_bar) ct_progress_start(&progress, "merges", (uint64_t)n_new, "merges");
    uint8_t *buf = NULL;
    size_t buf_cap = 0;
    int32_t merges = 0, made = 0;  // merges learned; new tokens made (fewer when a merge remakes one)
    GrownList grown = {0};
    // Token bytes -> id, to notice a merge whose bytes are already a token (two different
    // pairs can spell the same string); like HF, the merge then reuses that id.
    CtBytesMap known;
    ct_bytes_map_init(&known, (size_t)first_id + (size_t)n_new, tok->pool, tok->offsets, tok->lengths);
    for (int32_t i = 0; i < tok->n_ids; i++)
        if (tok->kind[i] == CT_TOKEN_NORMAL) ct_bytes_map_insert(&known, i);
    const size_t prefix_len = continuing_prefix ? strlen(continuing_prefix) : 0;
    int rc = 0;
    while (made < n_new && heap.n) {
        Candidate c = heap_pop(&heap);
        Pair *p = pair_get(&pt, c.left, c.right);
        if (p->count != c.count) {  // out of date: try again with the current count
            if (p->count > 0) heap_push(&heap, (Candidate){p->count, c.left, c.right});
            continue;
        }
        int32_t a = c.left, b = c.right;
        size_t la = tok->lengths[a], lb = tok->lengths[b], skip = 0;
        const uint8_t *right = tok->pool + tok->offsets[b];
        // WordPiece: "un" + "##able" is "unable" (the right part's prefix goes)
        if (prefix_len && lb >= prefix_len && memcmp(right, continuing_prefix, prefix_len) == 0) skip = prefix_len;
        if (la + lb > buf_cap) buf = ct_realloc(buf, buf_cap = (la + lb) * 2);
        memcpy(buf, tok->pool + tok->offsets[a], la);
        memcpy(buf + la, right + skip, lb - skip);
        lb -= skip;
        int32_t id = ct_bytes_map_find(&known, buf, la + lb);
        if (id < 0) {
            id = first_id + made++;
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
        if (progress_bar) ct_progress_update(&progress, (uint64_t)made);
    }
    if (progress_bar) ct_progress_finish(&progress);
    ct_free(buf);
    ct_free(grown.items);
    ct_bytes_map_free(&known);
    for (size_t i = 0; i < pt.n_pairs; i++) ct_free(pt.pairs[i].words);
    ct_free(pt.pairs);
    ct_free(pt.keys);
    ct_free(pt.index);
    ct_free(heap.items);
    return rc == 0 ? made : -1;
}
