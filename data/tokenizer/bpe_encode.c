// BPE encoding: pre-tokenize, then merge each piece's bytes.
//
// A piece is first looked up whole (when the tokenizer says so) and in a small per-encoder
// cache of recent multi-token pieces. Otherwise its bytes are merged, always the adjacent pair
// with the lowest rank, the leftmost on ties. Short pieces use tiktoken's direct method
// (rescan the pair ranks after each merge: O(n^2), but n is a handful of bytes); long ones
// (a megabyte of letters with no space) use a binary heap of candidate pairs over a linked
// list of parts, O(n log n), which makes the same choices in the same order.
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "data/input/utf8.h"
#include "data/tokenizer/bpe.h"
#include "data/tokenizer/nfc.h"
#include "data/tokenizer/spm.h"
#include "data/tokenizer/unicode_tables.h"
#include "data/tokenizer/wordpiece.h"

#define SHORT_PIECE 256  // above this many bytes, the heap method
#define PIECE_BATCH 64   // piece boundaries asked of the pre-tokenizer at a time
// The piece cache: direct-mapped, one 64-byte line per slot, 2 MiB per encoder, for the pieces
// the hot table cannot hold: longer than HOT_MAX_BYTES, or of more than HOT_MAX_IDS ids (the
// hot table then says HOT_IN_CACHE). Other pieces do not look there: one that is not in the hot
// table is mostly new to the text, and the look would be one more trip to memory.
#define CACHE_SLOTS 32768
#define CACHE_MAX_BYTES 22
#define CACHE_MAX_IDS 8
// The hot table: the ids (up to 3) of recent pieces of up to 16 bytes, in sets of two slots
// (one cache line) chosen by the hash, each set's most recently used piece first: two pieces
// that share a set both stay. The words of a text are found there without a trip to the bytes
// map, the piece cache or the pair map, which for a 200,000-token vocabulary are several MB
// each and miss the caches. 4 MiB per encoder: more than a core's L2, but the sets of a batch
// of pieces are requested together (ct_encode_ordinary_range), so their loads overlap, and it
// holds the distinct pieces of a few MB of text (256 KiB held a third of them, and the rest
// went to the bytes map and the pair map again and again).
#define HOT_SLOTS 131072
#define HOT_MAX_BYTES 16
#define HOT_MAX_IDS 3
#define HOT_IN_CACHE (-2)  // ids[0] of a piece of more ids: they are in the piece cache

typedef struct {
    uint64_t key[2];  // the piece's bytes, zero-padded
    uint32_t tag;     // ct_bytes_tag: hash bits and the length (0: empty, no piece is that;
                      // in a piece's key, 0: too long for the table)
    int32_t ids[HOT_MAX_IDS];  // -1 after the last
} HotSlot;
_Static_assert(sizeof(HotSlot) == 32, "two hot slots per cache line");

typedef struct {
    uint64_t hash;
    uint8_t len, n_ids;
    uint8_t bytes[CACHE_MAX_BYTES];
    int32_t ids[CACHE_MAX_IDS];
} CacheSlot;
_Static_assert(sizeof(CacheSlot) == 64, "a cache slot is one cache line");

// A candidate merge: key = rank << 32 | position of the left part, so one integer compare
// orders by rank and then leftmost; the merged id is kept so a valid pop needs no lookup.
typedef struct {
    uint64_t key;
    int32_t merged;
    uint32_t version;
} HeapEntry;

// A piece of up to SHORT_PIECE bytes being merged. In ct_encode_ordinary_range the pieces of a
// batch that need merges are merged together, one merge of each per round, so that the pair
// lookups of a round (a trip to memory each: the pieces are mostly new to the text) overlap
// instead of each waiting for the one before.
typedef struct {
    int32_t *ids, *ranks;  // its parts (in the encoder's merge space), at the end its ids
    size_t n;              // how many parts
    size_t best;           // where its last merge was; MERGE_DONE when no pair merges
    size_t at;             // the output's length when its turn came: where its ids go
    size_t piece;          // its index in the batch
} MergeJob;
#define MERGE_DONE SIZE_MAX

typedef struct {
    uint8_t *text;
    size_t len;
    int32_t id;
    unsigned flags;
    int special;
} NormalizedAdded;

struct CtEncoder {
    const CtTokenizer *t;
    HotSlot *hot;  // HOT_SLOTS
    CacheSlot *cache;
    // short pieces: the parts of a batch's pieces, packed (PIECE_BATCH * SHORT_PIECE each)
    int32_t *merge_ids, *merge_ranks;
    size_t merge_used;
    MergeJob jobs[PIECE_BATCH];
    size_t n_jobs;  // pieces of the batch waiting for their merges
    // long pieces (grown as needed)
    size_t long_cap, heap_cap;
    int32_t *node_id, *node_next, *node_prev;
    uint32_t *node_version;
    HeapEntry *heap;
    // SentencePiece-style: the normalized segment
    uint8_t *norm, *norm2, *nfc;
    size_t norm_cap, norm2_cap, nfc_cap;
    CtWordPieceScratch *wp;  // WordPiece
    NormalizedAdded *norm_added;  // "normalized" added tokens, as the normalizer makes their text
    int32_t n_norm_added;
    // added tokens: the first bytes of those matchable with and without allow_special
    uint8_t first_any[256], first_added[256];
    int32_t n_matchable, n_special_only;
    CtBytesMap added_map;        // the other added tokens by their bytes
    uint32_t *added_lens;        // their distinct lengths, longest first
    int n_added_lens;
    uint8_t *added_flags_of_id;  // CT_ADDED_* by id (when there are added tokens)
};

static int longer_first(const void *x, const void *y) {
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return (a < b) - (a > b);
}

// The lookup tables of the added tokens matched in raw text.
static void index_added(CtEncoder *e) {
    const CtTokenizer *t = e->t;
    ct_bytes_map_init(&e->added_map, (size_t)e->n_matchable, t->pool, t->offsets, t->lengths);
    e->added_flags_of_id = ct_calloc((size_t)t->n_ids + 1, 1);
    e->added_lens = ct_alloc(sizeof *e->added_lens * ((size_t)e->n_matchable + 1));
    for (int32_t k = 0; k < t->n_special; k++) {
        int32_t id = t->special_ids[k];
        if (t->added_flags[k] & CT_ADDED_NORMALIZED) continue;
        ct_bytes_map_insert(&e->added_map, id);  // two with the same text: the first is kept
        e->added_flags_of_id[id] = t->added_flags[k];
        e->added_lens[e->n_added_lens++] = t->lengths[id];
    }
    qsort(e->added_lens, (size_t)e->n_added_lens, sizeof *e->added_lens, longer_first);
    int n = 0;
    for (int i = 0; i < e->n_added_lens; i++)
        if (n == 0 || e->added_lens[n - 1] != e->added_lens[i]) e->added_lens[n++] = e->added_lens[i];
    e->n_added_lens = n;
}

CtEncoder *ct_encoder_new(const CtTokenizer *t) {
    CtEncoder *e = ct_calloc(1, sizeof *e);
    e->t = t;
    e->cache = ct_alloc_huge(CACHE_SLOTS * sizeof *e->cache);  // (2 MiB pages: the tables are read at random)
    memset(e->cache, 0, CACHE_SLOTS * sizeof *e->cache);
    e->hot = ct_alloc_huge(HOT_SLOTS * sizeof *e->hot);
    memset(e->hot, 0, HOT_SLOTS * sizeof *e->hot);
    e->merge_ids = ct_alloc(PIECE_BATCH * SHORT_PIECE * sizeof *e->merge_ids);
    e->merge_ranks = ct_alloc(PIECE_BATCH * SHORT_PIECE * sizeof *e->merge_ranks);
    if (t->units == CT_UNITS_WORDPIECE) e->wp = ct_wordpiece_scratch_new(t);
    for (int32_t k = 0; k < t->n_special; k++) {
        int32_t id = t->special_ids[k];
        if (t->added_flags[k] & CT_ADDED_NORMALIZED) {
            e->norm_added = ct_realloc(e->norm_added, (size_t)(e->n_norm_added + 1) * sizeof *e->norm_added);
            NormalizedAdded *a = &e->norm_added[e->n_norm_added++];
            a->text = ct_alloc(3 * t->lengths[id] + 3);
            a->len = ct_spm_normalizer(&t->spm, t->pool + t->offsets[id], t->lengths[id], a->text);
            a->id = id;
            a->flags = t->added_flags[k];
            a->special = t->kind[id] == CT_TOKEN_SPECIAL;
            continue;
        }
        uint8_t b = t->pool[t->offsets[id]];
        e->first_any[b] = 1;
        e->n_matchable++;
        if (t->kind[id] == CT_TOKEN_SPECIAL)
            e->n_special_only++;
        else
            e->first_added[b] = 1;
    }
    index_added(e);
    return e;
}

void ct_encoder_free(CtEncoder *e) {
    if (!e) return;
    ct_free(e->cache);
    ct_free(e->hot);
    ct_free(e->merge_ids);
    ct_free(e->merge_ranks);
    ct_wordpiece_scratch_free(e->wp);
    ct_free(e->node_id);
    ct_free(e->node_next);
    ct_free(e->node_prev);
    ct_free(e->node_version);
    ct_free(e->heap);
    ct_free(e->norm);
    ct_free(e->norm2);
    ct_free(e->nfc);
    for (int32_t k = 0; k < e->n_norm_added; k++) ct_free(e->norm_added[k].text);
    ct_free(e->norm_added);
    ct_bytes_map_free(&e->added_map);
    ct_free(e->added_lens);
    ct_free(e->added_flags_of_id);
    ct_free(e);
}

// tiktoken's method on each piece: ranks[i] holds the rank of (ids[i], ids[i+1]); merge the
// smallest. One merge of every piece per round, then the lookups of the new pairs of all of them:
// each line of the pair map is requested before the first is read, so the waits overlap.
static void merge_pieces(const CtEncoder *e, MergeJob *jobs, size_t n_jobs) {
    const CtPairMap *pairs = &e->t->pair_map;
    for (size_t j = 0; j < n_jobs; j++)
        for (size_t i = 0; i + 1 < jobs[j].n; i++) ct_pair_map_prefetch(pairs, jobs[j].ids[i], jobs[j].ids[i + 1]);
    for (size_t j = 0; j < n_jobs; j++) {
        const int32_t *ids = jobs[j].ids;
        for (size_t i = 0; i + 1 < jobs[j].n; i++) jobs[j].ranks[i] = ct_pair_map_rank(pairs, ids[i], ids[i + 1]);
        jobs[j].best = 0;
    }
    for (size_t active = n_jobs; active;) {
        for (size_t j = 0; j < n_jobs; j++) {
            MergeJob *m = &jobs[j];
            if (m->best == MERGE_DONE) continue;
            int32_t *ids = m->ids, *ranks = m->ranks;
            size_t n = m->n, best = 0;
            for (size_t i = 1; i + 1 < n; i++)
                if (ranks[i] < ranks[best]) best = i;
            if (n < 2 || ranks[best] == CT_PAIR_NONE) {
                m->best = MERGE_DONE;
                active--;
                continue;
            }
            ids[best] = ct_pair_map_merged(pairs, ranks[best]);
            // The part after best is gone (a few parts move: a loop costs less than a memmove call).
            for (size_t i = best + 1; i + 1 < n; i++) ids[i] = ids[i + 1];
            for (size_t i = best + 1; i + 2 < n; i++) ranks[i] = ranks[i + 1];
            m->n = --n;
            if (best > 0) ct_pair_map_prefetch(pairs, ids[best - 1], ids[best]);
            if (best + 1 < n) ct_pair_map_prefetch(pairs, ids[best], ids[best + 1]);
            m->best = best;
        }
        for (size_t j = 0; j < n_jobs; j++) {
            MergeJob *m = &jobs[j];
            size_t best = m->best;
            if (best == MERGE_DONE) continue;
            if (best > 0) m->ranks[best - 1] = ct_pair_map_rank(pairs, m->ids[best - 1], m->ids[best]);
            if (best + 1 < m->n) m->ranks[best] = ct_pair_map_rank(pairs, m->ids[best], m->ids[best + 1]);
        }
    }
}

// HF's merge_word: a known character is its token; an unknown one its <0xNN> tokens when all
// exist, else the unk token. A pending unk is written when the next known character comes (so
// with fuse_unk a run of unknown characters is one unk), and byte fallback does not write it.
static size_t spm_symbols(const CtTokenizer *t, const uint8_t *piece, size_t len, int32_t *ids) {
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

// ---- the heap method ----

static inline int heap_less(HeapEntry a, HeapEntry b) { return a.key < b.key; }

static void sift_down(HeapEntry *heap, size_t n, size_t i, HeapEntry x) {
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap_less(heap[c + 1], heap[c])) c++;
        if (!heap_less(heap[c], x)) break;
        heap[i] = heap[c];
        i = c;
    }
    heap[i] = x;
}

static void heap_push(CtEncoder *e, size_t *size, HeapEntry x) {
    if (*size == e->heap_cap) {
        e->heap_cap = e->heap_cap ? e->heap_cap * 2 : 1024;
        e->heap = ct_realloc(e->heap, e->heap_cap * sizeof *e->heap);
    }
    size_t i = (*size)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_less(x, e->heap[parent])) break;
        e->heap[i] = e->heap[parent];
        i = parent;
    }
    e->heap[i] = x;
}

static HeapEntry heap_pop(CtEncoder *e, size_t *size) {
    HeapEntry top = e->heap[0], last = e->heap[--(*size)];
    if (*size) sift_down(e->heap, *size, 0, last);
    return top;
}

// The candidate for the pair that starts at part i, if it merges.
static int pair_entry(const CtEncoder *e, int32_t i, HeapEntry *out) {
    int32_t j = e->node_next[i];
    if (j < 0) return 0;
    const CtPairMap *pairs = &e->t->pair_map;
    int32_t rank = ct_pair_map_rank(pairs, e->node_id[i], e->node_id[j]);
    if (rank == CT_PAIR_NONE) return 0;
    *out = (HeapEntry){(uint64_t)(uint32_t)rank << 32 | (uint32_t)i, ct_pair_map_merged(pairs, rank), e->node_version[i]};
    return 1;
}

static void push_pair_at(CtEncoder *e, size_t *heap_size, int32_t i) {
    HeapEntry x;
    if (pair_entry(e, i, &x)) heap_push(e, heap_size, x);
}

// The parts start in e->node_id[0..n) (grown by grow_long).
static void grow_long(CtEncoder *e, size_t n) {
    if (n > e->long_cap) {
        e->long_cap = n;
        e->node_id = ct_realloc(e->node_id, n * sizeof *e->node_id);
        e->node_next = ct_realloc(e->node_next, n * sizeof *e->node_next);
        e->node_prev = ct_realloc(e->node_prev, n * sizeof *e->node_prev);
        e->node_version = ct_realloc(e->node_version, n * sizeof *e->node_version);
    }
}

static void merge_long(CtEncoder *e, size_t n, CtIds *out) {
    for (size_t i = 0; i < n; i++) {
        e->node_next[i] = i + 1 < n ? (int32_t)(i + 1) : -1;
        e->node_prev[i] = (int32_t)i - 1;
        e->node_version[i] = 0;
    }
    // All initial candidates at once, then heapify: O(n) rather than n pushes.
    if (n > e->heap_cap) {
        e->heap_cap = n;
        e->heap = ct_realloc(e->heap, e->heap_cap * sizeof *e->heap);
    }
    size_t heap_size = 0;
    for (size_t i = 0; i + 1 < n; i++)
        if (pair_entry(e, (int32_t)i, &e->heap[heap_size])) heap_size++;
    for (size_t k = heap_size / 2; k-- > 0;) sift_down(e->heap, heap_size, k, e->heap[k]);
    while (heap_size) {
        HeapEntry top = heap_pop(e, &heap_size);
        int32_t i = (int32_t)(uint32_t)top.key;
        // A stale entry: the part was merged away or its right neighbour changed since.
        // (A dead part's version is bumped when it dies, so the version check covers both.)
        if (e->node_version[i] != top.version) continue;
        int32_t j = e->node_next[i];
        e->node_id[i] = top.merged;
        int32_t k = e->node_next[j];
        e->node_next[i] = k;
        if (k >= 0) e->node_prev[k] = i;
        e->node_version[j]++;
        e->node_version[i]++;
        int32_t h = e->node_prev[i];
        if (h >= 0) {
            e->node_version[h]++;
            push_pair_at(e, &heap_size, h);
        }
        push_pair_at(e, &heap_size, i);
    }
    for (int32_t i = 0; i >= 0; i = e->node_next[i]) ct_ids_push(out, e->node_id[i]);
}

static inline int hot_slot_is(const HotSlot *s, const HotSlot *want) {
    return s->tag == want->tag && s->key[0] == want->key[0] && s->key[1] == want->key[1];
}

// Keeps a piece's ids in its hot set (hot: NULL for a piece too long for one), when they fit,
// else HOT_IN_CACHE when the piece cache has them (in_cache): first in the set, the set's
// other piece second (the least recently used one goes).
static inline void remember_hot(HotSlot *hot, HotSlot *want, const int32_t *ids, size_t n, int in_cache) {
    if (!hot || (n > HOT_MAX_IDS && !in_cache)) return;
    for (size_t i = 0; i < HOT_MAX_IDS; i++) want->ids[i] = n > HOT_MAX_IDS ? (i ? -1 : HOT_IN_CACHE) : i < n ? ids[i] : -1;
    hot[1] = hot[0];
    hot[0] = *want;
}

static MergeJob *encode_piece_missed(CtEncoder *e, const uint8_t *piece, size_t len, uint64_t h, HotSlot *hot,
                                     HotSlot *want, int in_cache, int defer, CtIds *out);

static inline CacheSlot *cache_slot(const CtEncoder *e, uint64_t h) { return &e->cache[(h >> 20) & (CACHE_SLOTS - 1)]; }
static inline HotSlot *hot_set(const CtEncoder *e, uint64_t h) { return &e->hot[(h >> 32) & (HOT_SLOTS - 2)]; }

// A piece's key in the hot table (want: its bytes, zero-padded, and tag; the tag is 0 when the
// piece is too long for the table) and its hash (len >= 1). The hash comes from the key's
// words, so the bytes are read once.
static inline uint64_t piece_key(const uint8_t *piece, size_t len, HotSlot *want) {
    if (len > HOT_MAX_BYTES) {
        want->tag = 0;
        return ct_hash_bytes(piece, len);
    }
    want->key[0] = ct_bytes_head(piece, len < 8 ? len : 8);
    want->key[1] = len > 8 ? ct_bytes_head(piece + 8, len - 8) : 0;
    uint64_t h = ct_hash_head16(want->key[0], want->key[1], len);
    want->tag = ct_bytes_tag(h, len);
    return h;
}

// The hot-table path, inlined into the pre-tokenizer's loop (most pieces end here); the rest of
// the work is encode_piece_missed's. h and want: piece_key's; hot: the piece's set (NULL when
// want->tag is 0); defer: whether merges may wait (then the piece's job, or NULL when its ids
// are out).
static inline MergeJob *encode_piece(CtEncoder *e, const uint8_t *piece, size_t len, uint64_t h, HotSlot *hot,
                                     HotSlot *want, int defer, CtIds *out) {
    const CtTokenizer *t = e->t;
    if (len == 1 && t->units == CT_UNITS_BYTES) {
        ct_ids_push(out, t->byte_token[piece[0]]);
        return NULL;
    }
    if (hot) {
        int way = hot_slot_is(&hot[0], want) ? 0 : hot_slot_is(&hot[1], want) ? 1 : -1;
        if (way >= 0) {
            const HotSlot found = hot[way];
            if (way == 1) hot[1] = hot[0], hot[0] = found;
            if (found.ids[0] == HOT_IN_CACHE) return encode_piece_missed(e, piece, len, h, hot, want, 1, defer, out);
            for (int i = 0; i < HOT_MAX_IDS && found.ids[i] >= 0; i++) ct_ids_push(out, found.ids[i]);
            return NULL;
        }
    }
    return encode_piece_missed(e, piece, len, h, hot, want, 0, defer, out);
}

void ct_encode_piece(CtEncoder *e, const uint8_t *piece, size_t len, CtIds *out) {
    if (len == 0) return;
    HotSlot want;
    uint64_t h = piece_key(piece, len, &want);
    encode_piece(e, piece, len, h, want.tag ? hot_set(e, h) : NULL, &want, 0, out);
}

// Keeps a merged piece's ids in the piece cache (when the hot table cannot hold them) and in its
// hot set.
static void remember_merged(CtEncoder *e, const uint8_t *piece, size_t len, uint64_t h, HotSlot *hot, HotSlot *want,
                            const int32_t *ids, size_t n) {
    CacheSlot *slot = len <= CACHE_MAX_BYTES ? cache_slot(e, h) : NULL;
    int cached = slot && n <= CACHE_MAX_IDS && (!hot || n > HOT_MAX_IDS);
    if (cached) {
        slot->hash = h;
        slot->len = (uint8_t)len;
        slot->n_ids = (uint8_t)n;
        memcpy(slot->bytes, piece, len);
        memcpy(slot->ids, ids, n * sizeof *ids);
    }
    remember_hot(hot, want, ids, n, cached);
}

// A piece the hot table lacks, or whose ids it says are in the piece cache (in_cache). hot: its
// set, NULL when the piece is too long for one; want: its key there. A piece that needs merges
// is left to the caller when it can wait (defer): its job, with the ids it starts from.
__attribute__((noinline)) static MergeJob *encode_piece_missed(CtEncoder *e, const uint8_t *piece, size_t len,
                                                               uint64_t h, HotSlot *hot, HotSlot *want, int in_cache,
                                                               int defer, CtIds *out) {
    const CtTokenizer *t = e->t;
    if (t->whole_piece_lookup && !in_cache) {
        int32_t id = ct_bytes_map_find_hashed(&t->bytes_map, piece, len, h);
        if (id >= 0) {
            remember_hot(hot, want, &id, 1, 0);
            ct_ids_push(out, id);
            return NULL;
        }
    }
    if (len > SHORT_PIECE) {
        grow_long(e, len);
        size_t n = len;
        if (t->units == CT_UNITS_CHARS)
            n = spm_symbols(t, piece, len, e->node_id);
        else
            for (size_t i = 0; i < len; i++) e->node_id[i] = t->byte_token[piece[i]];
        if (n) merge_long(e, n, out);
        return NULL;
    }
    CacheSlot *slot = len <= CACHE_MAX_BYTES ? cache_slot(e, h) : NULL;
    if (slot && (in_cache || !hot) && slot->hash == h && slot->len == len && memcmp(slot->bytes, piece, len) == 0) {
        for (int i = 0; i < slot->n_ids; i++) ct_ids_push(out, slot->ids[i]);
        return NULL;
    }
    MergeJob one, *m = defer ? &e->jobs[e->n_jobs] : &one;
    m->ids = e->merge_ids + e->merge_used;
    m->ranks = e->merge_ranks + e->merge_used;
    m->at = out->len;
    if (t->units == CT_UNITS_CHARS)
        m->n = spm_symbols(t, piece, len, m->ids);
    else
        for (size_t i = 0; i < (m->n = len); i++) m->ids[i] = t->byte_token[piece[i]];
    if (defer) {
        e->merge_used += len;
        return &e->jobs[e->n_jobs++];
    }
    merge_pieces(e, m, 1);
    for (size_t i = 0; i < m->n; i++) ct_ids_push(out, m->ids[i]);
    remember_merged(e, piece, len, h, hot, want, m->ids, m->n);
    return NULL;
}

// The merges a batch's pieces left waiting: all at once, then each piece's ids put in place in
// the output (where its turn was) and remembered. starts/ends: the batch's pieces.
static void finish_batch(CtEncoder *e, const uint8_t *text, const size_t *starts, const size_t *ends,
                         const uint64_t *hashes, HotSlot **sets, HotSlot *keys, CtIds *out) {
    MergeJob *jobs = e->jobs;
    size_t n_jobs = e->n_jobs, total = 0;
    merge_pieces(e, jobs, n_jobs);
    for (size_t k = 0; k < n_jobs; k++) total += jobs[k].n;
    ct_ids_grow(out, out->len + total);
    // From the last job back, the ids after its place move up by the ids still to come before them.
    size_t end = out->len, to = out->len + total;
    for (size_t k = n_jobs; k-- > 0;) {
        size_t after = end - jobs[k].at;
        memmove(out->data + to - after, out->data + jobs[k].at, after * sizeof *out->data);
        to -= after + jobs[k].n;
        memcpy(out->data + to, jobs[k].ids, jobs[k].n * sizeof *out->data);
        end = jobs[k].at;
    }
    out->len += total;
    for (size_t k = 0; k < n_jobs; k++) {
        size_t i = jobs[k].piece;
        remember_merged(e, text + starts[i], ends[i] - starts[i], hashes[i], sets[i], &keys[i], jobs[k].ids, jobs[k].n);
    }
    e->n_jobs = 0;
    e->merge_used = 0;
}

void ct_encode_ordinary_range(CtEncoder *e, const uint8_t *text, size_t len, size_t from, size_t to, CtIds *out) {
    CtPattern pattern = e->t->pattern;
    size_t pos = from, ends[PIECE_BATCH], starts[PIECE_BATCH];
    uint64_t hashes[PIECE_BATCH];
    HotSlot keys[PIECE_BATCH], *sets[PIECE_BATCH];
    const int whole = e->t->whole_piece_lookup;
    while (pos < to) {
        size_t n = ct_pretokenize_many(pattern, text, len, pos, to, ends, PIECE_BATCH);
        // Every piece's hot set is requested before the first is read, so that the loads
        // (mostly from beyond L2) wait together.
        for (size_t i = 0, p = pos; i < n; p = ends[i++]) {
            hashes[i] = piece_key(text + p, ends[i] - p, &keys[i]);
            sets[i] = keys[i].tag ? hot_set(e, hashes[i]) : NULL;
            __builtin_prefetch(sets[i]);
        }
        // Then the next tables' lines of each piece that is not there (most are the first of
        // their kind in the text): the bytes map's, and the piece cache's for a long piece.
        for (size_t i = 0, p = pos; i < n; p = ends[i++]) {
            if (sets[i]) {
                if (sets[i][0].tag == keys[i].tag || sets[i][1].tag == keys[i].tag) continue;
            } else if (ends[i] - p <= CACHE_MAX_BYTES) {
                __builtin_prefetch(cache_slot(e, hashes[i]));
            }
            if (whole) ct_bytes_map_prefetch(&e->t->bytes_map, hashes[i]);
        }
        for (size_t i = 0; i < n; i++) {
            starts[i] = pos;
            MergeJob *m = encode_piece(e, text + pos, ends[i] - pos, hashes[i], sets[i], &keys[i], 1, out);
            if (m) m->piece = i;
            pos = ends[i];
        }
        if (e->n_jobs) finish_batch(e, text, starts, ends, hashes, sets, keys, out);
    }
}

static int is_space_at(const uint8_t *text, size_t len, size_t i, size_t *n) {
    uint32_t cp;
    *n = ct_utf8_decode(text + i, len - i, &cp);
    return cp != CT_UTF8_INVALID && (ct_unicode_flags(cp) & CT_UC_SPACE);
}

static void grow(uint8_t **buf, size_t *cap, size_t need) {
    if (need <= *cap) return;
    ct_free(*buf);
    *buf = ct_alloc(*cap = need);
}

// Normalized text of a SentencePiece-style tokenizer between two added tokens: Metaspace, then
// its pieces.
static void encode_spm_text(CtEncoder *e, const uint8_t *s, size_t n, int at_start, CtIds *out) {
    const CtSpmRules *r = &e->t->spm;
    if (n == 0) return;
    grow(&e->norm2, &e->norm2_cap, 3 * n + 3);
    size_t m = ct_spm_metaspace(r, s, n, at_start, e->norm2);
    for (size_t pos = 0; pos < m;) {
        size_t end = ct_spm_piece_end(r, e->norm2, m, pos);
        ct_encode_piece(e, e->norm2 + pos, end - pos, out);
        pos = end;
    }
}

// The leftmost-longest "normalized" added token in s[from..n) (allowed ones); -1 when none.
static int32_t next_normalized_added(const CtEncoder *e, const uint8_t *s, size_t n, size_t from, int allow_special,
                                     size_t *at) {
    for (size_t i = from; i < n; i++) {
        int32_t best = -1;
        size_t best_len = 0;
        for (int32_t k = 0; k < e->n_norm_added; k++) {
            const NormalizedAdded *a = &e->norm_added[k];
            if (a->special && !allow_special) continue;
            if (a->len > best_len && a->len <= n - i && memcmp(s + i, a->text, a->len) == 0) best = k, best_len = a->len;
        }
        if (best >= 0) {
            *at = i;
            return best;
        }
    }
    return -1;
}

void ct_encode_segment(CtEncoder *e, const uint8_t *text, size_t len, int at_start, int allow_special, CtIds *out) {
    const CtTokenizer *t = e->t;
    if (t->nfc && !ct_nfc_is_trivial(text, len)) {
        len = ct_nfc(text, len, &e->nfc, &e->nfc_cap);
        text = e->nfc;
    }
    if (t->units == CT_UNITS_BYTES) {
        ct_encode_ordinary_range(e, text, len, 0, len, out);
        return;
    }
    if (t->units == CT_UNITS_WORDPIECE) {
        ct_wordpiece_encode(e->wp, text, len, out);
        return;
    }
    if (len == 0) return;
    grow(&e->norm, &e->norm_cap, 3 * len + 3);
    size_t n = ct_spm_normalizer(&t->spm, text, len, e->norm), pos = 0, at, k;
    int32_t found;
    // HF splits "normalized" added tokens off the normalized text (lstrip/rstrip there too)
    while (e->n_norm_added && (found = next_normalized_added(e, e->norm, n, pos, allow_special, &at)) >= 0) {
        const NormalizedAdded *a = &e->norm_added[found];
        size_t seg_end = at, next = at + a->len;
        if (a->flags & CT_ADDED_LSTRIP) {
            seg_end = pos;
            for (size_t i = pos; i < at; i += k)
                if (!is_space_at(e->norm, at, i, &k)) seg_end = i + k;
        }
        if (a->flags & CT_ADDED_RSTRIP)
            while (next < n && is_space_at(e->norm, n, next, &k)) next += k;
        encode_spm_text(e, e->norm + pos, seg_end - pos, at_start && pos == 0, out);
        ct_ids_push(out, a->id);
        pos = next;
    }
    encode_spm_text(e, e->norm + pos, n - pos, at_start && pos == 0, out);
}

// The longest added token that starts at text[pos] (pos < len) and may be matched (special ones
// only with allow_special), or -1: one hash lookup per distinct token length, longest first
// (Gemma's thousands of <unusedN> tokens would make a scan of every token slow).
static int32_t added_at(const CtEncoder *e, const uint8_t *text, size_t len, size_t pos, int allow_special) {
    const CtTokenizer *t = e->t;
    for (int i = 0; i < e->n_added_lens; i++) {
        size_t l = e->added_lens[i];
        if (l > len - pos) continue;
        int32_t id = ct_bytes_map_find(&e->added_map, text + pos, l);
        if (id >= 0 && (allow_special || t->kind[id] != CT_TOKEN_SPECIAL)) return id;
    }
    return -1;
}

// Added tokens are found leftmost-longest, as HF's Aho-Corasick (LeftmostLongest) finds them;
// lstrip takes the whitespace before a match (not what an earlier match took), rstrip the
// whitespace after it. The text between matches is encoded on its own.
int32_t ct_next_added(const CtEncoder *e, const uint8_t *text, size_t len, size_t from, int allow_special,
                      size_t *seg_end, size_t *next) {
    const CtTokenizer *t = e->t;
    *seg_end = *next = len;
    if (e->n_matchable == 0 || (!allow_special && e->n_matchable == e->n_special_only)) return -1;
    const uint8_t *first = allow_special ? e->first_any : e->first_added;
    for (size_t pos = from; pos < len; pos++) {
        if (!first[text[pos]]) continue;
        int32_t id = added_at(e, text, len, pos, allow_special);
        if (id < 0) continue;
        unsigned flags = e->added_flags_of_id[id];
        size_t n;
        *seg_end = pos;
        *next = pos + t->lengths[id];
        if (flags & CT_ADDED_LSTRIP) {  // the start of the whitespace run that ends at pos
            *seg_end = from;
            for (size_t i = from; i < pos; i += n)
                if (!is_space_at(text, pos, i, &n)) *seg_end = i + n;
        }
        if (flags & CT_ADDED_RSTRIP)
            while (*next < len && is_space_at(text, len, *next, &n)) *next += n;
        return id;
    }
    return -1;
}

void ct_encode(CtEncoder *e, const uint8_t *text, size_t len, int allow_special, CtIds *out) {
    size_t start = 0, seg_end, next;
    ct_ids_reserve_for_text(out, len);
    for (;;) {
        int32_t id = ct_next_added(e, text, len, start, allow_special, &seg_end, &next);
        ct_encode_segment(e, text + start, seg_end - start, start == 0, allow_special, out);
        if (id < 0) break;
        ct_ids_push(out, id);
        start = next;
    }
}

void ct_encode_pair(CtEncoder *e, const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len, int add_special,
                    int allow_special, CtIds *ids, CtIds *type_ids) {
    CtIds ia = {0}, ib = {0};
    ct_encode(e, a, a_len, allow_special, &ia);
    if (b) ct_encode(e, b, b_len, allow_special, &ib);
    ct_post_apply(&e->t->post, &ia, b ? &ib : NULL, add_special, ids, type_ids);
    ct_ids_free(&ia);
    ct_ids_free(&ib);
}
