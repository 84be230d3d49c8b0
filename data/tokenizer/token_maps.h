// The two lookup tables BPE needs, as open-addressing hash tables sized once:
//   CtBytesMap  token bytes -> id  (whole-piece lookup, and building the pair table)
//   CtPairMap   (left id, right id) -> merge rank (and the merged id)
// The bytes map's keys live elsewhere (the tokenizer's byte pool); its slots hold ids, hashes
// and the keys' first bytes, so a lookup touches one or two cache lines; a pair lookup one.
#pragma once
#include <stddef.h>
#include <stdint.h>

// p[0..n) for n < 8 as a little-endian word, zero-padded: two overlapping loads (the bytes
// they share are the same) rather than a loop over the bytes.
static inline uint64_t ct_load_short(const uint8_t *p, size_t n) {
    if (n >= 4) {
        uint32_t lo, hi;
        __builtin_memcpy(&lo, p, 4);
        __builtin_memcpy(&hi, p + n - 4, 4);
        return lo | (uint64_t)hi << (8 * (n - 4));
    }
    if (n == 0) return 0;
    return p[0] | (uint64_t)p[n >> 1] << (8 * (n >> 1)) | (uint64_t)p[n - 1] << (8 * (n - 1));
}

// The first 8 bytes of a key, zero-padded (little-endian), and a tag of its hash and length:
// a slot holds both, so a key of up to 8 bytes (most pieces: a word with its space) is found
// or refused without touching the byte pool (with a 200,000-token vocabulary the pool, the
// lengths and the offsets are each a cache miss).
static inline uint64_t ct_bytes_head(const uint8_t *p, size_t n) {
    uint64_t w;
    if (n < 8) return ct_load_short(p, n);
    __builtin_memcpy(&w, p, 8);
    return w;
}
static inline uint32_t ct_bytes_tag(uint64_t h, size_t n) { return (uint32_t)(h >> 40) << 8 | (uint32_t)(n < 255 ? n : 255); }

// A fast hash for short byte strings (pieces are a few bytes on average): 8 bytes at a time,
// multiply-xorshift mixing. Not for untrusted-key DoS resistance; only for speed.
#define CT_HASH_M 0x9E3779B97F4A7C15ull
static inline uint64_t ct_hash_start(size_t n) { return 0x243F6A8885A308D3ull ^ (n * CT_HASH_M); }
static inline uint64_t ct_hash_word(uint64_t h, uint64_t w) {  // a whole 8-byte word
    h = (h ^ w) * CT_HASH_M;
    return h ^ (h >> 29);
}
static inline uint64_t ct_hash_finish(uint64_t h, uint64_t last) {  // the last 0..7 bytes
    h = (h ^ last) * CT_HASH_M;
    h ^= h >> 32;
    h *= 0xD6E8FEB86659FD93ull;
    return h ^ (h >> 32);
}
// The hash of a key of n <= 16 bytes from its words (k0 = ct_bytes_head of its first 8 bytes,
// k1 of the rest, 0 when none), equal to ct_hash_bytes of its bytes: a caller that has the
// words (the hot table's key) need not read the bytes twice.
static inline uint64_t ct_hash_head16(uint64_t k0, uint64_t k1, size_t n) {
    uint64_t h = ct_hash_start(n);
    if (n < 8) return ct_hash_finish(h, k0);
    h = ct_hash_word(h, k0);
    if (n < 16) return ct_hash_finish(h, k1);
    return ct_hash_finish(ct_hash_word(h, k1), 0);
}
static inline uint64_t ct_hash_bytes(const uint8_t *p, size_t n) {
    uint64_t h = ct_hash_start(n);
    while (n >= 8) {
        uint64_t w;
        __builtin_memcpy(&w, p, 8);
        h = ct_hash_word(h, w);
        p += 8;
        n -= 8;
    }
    return ct_hash_finish(h, ct_load_short(p, n));
}

typedef struct {
    uint64_t head;  // ct_bytes_head of the key
    int32_t id;     // -1 when the slot is empty
    uint32_t tag;   // ct_bytes_tag: the upper hash bits and the length (255: 255 or more)
} CtBytesSlot;

// The slots come in buckets of four (one cache line), filled from the bucket's start and
// overflowing into the next bucket, at most half full (fuller, more lookups read a second
// line): a lookup mostly reads one line.
#define CT_BYTES_BUCKET 4

typedef struct {
    CtBytesSlot *slots;  // n_buckets * CT_BYTES_BUCKET
    size_t n_buckets, count;
    const uint8_t *pool;        // token bytes: pool[offsets[id] .. offsets[id] + lengths[id])
    const uint32_t *offsets;
    const uint32_t *lengths;
} CtBytesMap;

// n_keys: how many keys it will hold at most (it does not grow).
void ct_bytes_map_init(CtBytesMap *map, size_t n_keys, const uint8_t *pool, const uint32_t *offsets,
                       const uint32_t *lengths);
void ct_bytes_map_free(CtBytesMap *map);
// Inserts id (its bytes are in the pool); returns the id already there for the same bytes, or -1.
int32_t ct_bytes_map_insert(CtBytesMap *map, int32_t id);
// Whether slot s holds the key p[0..n) of head and tag (computed from it).
static inline int ct_bytes_slot_is(const CtBytesMap *map, const CtBytesSlot *s, const uint8_t *p, size_t n,
                                   uint64_t head, uint32_t tag) {
    if (s->tag != tag || s->head != head) return 0;
    if (n <= 8) return 1;  // the head holds all of it, the tag its length
    return (n < 255 || map->lengths[s->id] == n) && __builtin_memcmp(map->pool + map->offsets[s->id] + 8, p + 8, n - 8) == 0;
}
// The first slot of the bucket of hash h (from its low bits; the tag has the high ones).
static inline size_t ct_bytes_first_slot(const CtBytesMap *map, uint64_t h) {
    return (size_t)(((h & 0xFFFFFFFFu) * (uint64_t)map->n_buckets) >> 32) * CT_BYTES_BUCKET;
}
// Starts loading the bucket of hash h, so that several lookups wait for memory together.
static inline void ct_bytes_map_prefetch(const CtBytesMap *map, uint64_t h) {
    __builtin_prefetch(map->slots + ct_bytes_first_slot(map, h));
}
// The id whose bytes are p[0..n), or -1.
static inline int32_t ct_bytes_map_find_hashed(const CtBytesMap *map, const uint8_t *p, size_t n, uint64_t h) {
    const uint64_t head = ct_bytes_head(p, n);
    const uint32_t tag = ct_bytes_tag(h, n);
    const size_t n_slots = map->n_buckets * CT_BYTES_BUCKET;
    for (size_t i = ct_bytes_first_slot(map, h);; i = i + 1 == n_slots ? 0 : i + 1) {
        const CtBytesSlot *s = &map->slots[i];
        if (s->id < 0) return -1;
        if (ct_bytes_slot_is(map, s, p, n, head, tag)) return s->id;
    }
}
static inline int32_t ct_bytes_map_find(const CtBytesMap *map, const uint8_t *p, size_t n) {
    return ct_bytes_map_find_hashed(map, p, n, ct_hash_bytes(p, n));
}

// CtPairMap: (left, right) -> rank, in 64-byte buckets of eight 8-byte entries, each
// left (21 bits) | right (21 bits) | rank (22 bits), filled from the bucket's start (so an
// empty entry ends the search), overflowing into the next bucket. A lookup reads one cache line
// whether the pair is there or not: the pair tables of cl100k_base and o200k_base (233,000 and
// 446,000 pairs) are far larger than the core's caches, so each lookup is a memory access and
// half as many bytes per pair keep more of the table in the shared cache. Ids must be below
// CT_PAIR_MAX_ID and ranks below CT_PAIR_MAX_RANK. The merged token is the rank under
// tiktoken's rule (CT_MERGES_BY_RANK); under a merge list it is merged[rank].
#define CT_PAIR_BITS 21
#define CT_PAIR_MAX_ID ((1 << CT_PAIR_BITS) - 1)        // 2,097,151: ids 0 .. CT_PAIR_MAX_ID - 1
#define CT_PAIR_MAX_RANK ((1 << (CT_PAIR_BITS + 1)) - 1)  // ranks 0 .. CT_PAIR_MAX_RANK - 1
#define CT_PAIR_NONE INT32_MAX                          // the rank of a pair that never merges
#define CT_PAIR_BUCKET 8

typedef struct {
    uint64_t *entries;  // n_buckets * CT_PAIR_BUCKET; UINT64_MAX when empty
    size_t n_buckets, count;
    int32_t *merged;  // by rank (a merge list), or NULL: the merged token is the rank
    size_t n_ranks;
} CtPairMap;

// n_keys: the expected number of pairs (the table grows beyond it). n_ranks > 0: ranks are merge
// list indices below n_ranks, each with its own merged token; 0: the merged token is the rank.
void ct_pair_map_init(CtPairMap *map, size_t n_keys, size_t n_ranks);
void ct_pair_map_free(CtPairMap *map);
// Inserts, or keeps the existing entry when the pair is there with a lower rank. 0 <= left, right
// < CT_PAIR_MAX_ID, 0 <= rank < CT_PAIR_MAX_RANK (checked by the caller).
void ct_pair_map_put(CtPairMap *map, int32_t left, int32_t right, int32_t rank, int32_t merged);

static inline uint64_t ct_pair_key(int32_t left, int32_t right) {
    return (uint64_t)(uint32_t)left << CT_PAIR_BITS | (uint32_t)right;
}
static inline size_t ct_pair_bucket(const CtPairMap *map, uint64_t key) {
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    return (size_t)(((h >> 32) * (uint64_t)map->n_buckets) >> 32);  // n_buckets < 2^32
}
// Starts loading the bucket of (left, right), so that several lookups wait for memory together.
static inline void ct_pair_map_prefetch(const CtPairMap *map, int32_t left, int32_t right) {
    __builtin_prefetch(map->entries + ct_pair_bucket(map, ct_pair_key(left, right)) * CT_PAIR_BUCKET);
}
// The rank of (left, right), or CT_PAIR_NONE when the pair never merges.
static inline int32_t ct_pair_map_rank(const CtPairMap *map, int32_t left, int32_t right) {
    const uint64_t key = ct_pair_key(left, right);
    for (size_t b = ct_pair_bucket(map, key);; b = b + 1 == map->n_buckets ? 0 : b + 1) {
        const uint64_t *e = map->entries + b * CT_PAIR_BUCKET;
        for (int k = 0; k < CT_PAIR_BUCKET; k++) {
            if (e[k] >> (CT_PAIR_BITS + 1) == key) return (int32_t)(e[k] & CT_PAIR_MAX_RANK);
            if (e[k] == UINT64_MAX) return CT_PAIR_NONE;
        }
    }
}
// The token a merge of this rank makes.
static inline int32_t ct_pair_map_merged(const CtPairMap *map, int32_t rank) {
    return map->merged ? map->merged[rank] : rank;
}
