// The two lookup tables BPE needs, as open-addressing hash tables sized once:
//   CtBytesMap  token bytes -> id  (whole-piece lookup, and building the pair table)
//   CtPairMap   (left id, right id) -> (merge rank, merged id)
// Keys live elsewhere (the tokenizer's byte pool); the tables hold only ids and hashes, so a
// lookup touches one or two cache lines.
#pragma once
#include <stddef.h>
#include <stdint.h>

// A fast hash for short byte strings (pieces are a few bytes on average): 8 bytes at a time,
// multiply-xorshift mixing. Not for untrusted-key DoS resistance; only for speed.
static inline uint64_t ct_hash_bytes(const uint8_t *p, size_t n) {
    const uint64_t m = 0x9E3779B97F4A7C15ull;
    uint64_t h = 0x243F6A8885A308D3ull ^ (n * m);
    while (n >= 8) {
        uint64_t w;
        __builtin_memcpy(&w, p, 8);
        h = (h ^ w) * m;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++) w |= (uint64_t)p[i] << (8 * i);
    h = (h ^ w) * m;
    h ^= h >> 32;
    h *= 0xD6E8FEB86659FD93ull;
    return h ^ (h >> 32);
}

typedef struct {
    uint32_t hash;  // the upper half of the 64-bit hash, to skip most byte comparisons
    int32_t id;     // -1 when the slot is empty
} CtBytesSlot;

typedef struct {
    CtBytesSlot *slots;
    size_t mask;  // capacity - 1 (a power of two)
    const uint8_t *pool;        // token bytes: pool[offsets[id] .. offsets[id] + lengths[id])
    const uint32_t *offsets;
    const uint32_t *lengths;
} CtBytesMap;

void ct_bytes_map_init(CtBytesMap *map, size_t n_keys, const uint8_t *pool, const uint32_t *offsets,
                       const uint32_t *lengths);
void ct_bytes_map_free(CtBytesMap *map);
// Inserts id (its bytes are in the pool); returns the id already there for the same bytes, or -1.
int32_t ct_bytes_map_insert(CtBytesMap *map, int32_t id);
// The id whose bytes are p[0..n), or -1.
static inline int32_t ct_bytes_map_find_hashed(const CtBytesMap *map, const uint8_t *p, size_t n, uint64_t h) {
    uint32_t tag = (uint32_t)(h >> 32);
    for (size_t i = (size_t)h & map->mask;; i = (i + 1) & map->mask) {
        const CtBytesSlot *s = &map->slots[i];
        if (s->id < 0) return -1;
        if (s->hash == tag && map->lengths[s->id] == n &&
            __builtin_memcmp(map->pool + map->offsets[s->id], p, n) == 0)
            return s->id;
    }
}
static inline int32_t ct_bytes_map_find(const CtBytesMap *map, const uint8_t *p, size_t n) {
    return ct_bytes_map_find_hashed(map, p, n, ct_hash_bytes(p, n));
}

typedef struct {
    uint64_t key;  // left << 32 | right; UINT64_MAX when empty
    int32_t rank;
    int32_t merged;
} CtPairSlot;

typedef struct {
    CtPairSlot *slots;
    size_t mask, count;
} CtPairMap;

void ct_pair_map_init(CtPairMap *map, size_t n_keys);
void ct_pair_map_free(CtPairMap *map);
// Inserts or keeps the existing entry when the pair is there with a lower rank. The table
// grows as needed.
void ct_pair_map_put(CtPairMap *map, int32_t left, int32_t right, int32_t rank, int32_t merged);

static inline uint64_t ct_pair_key(int32_t left, int32_t right) { return (uint64_t)(uint32_t)left << 32 | (uint32_t)right; }
static inline size_t ct_pair_slot_index(uint64_t key, size_t mask) {
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h ^ (h >> 31)) & mask;
}
// The entry for (left, right), or NULL when the pair never merges.
static inline const CtPairSlot *ct_pair_map_find(const CtPairMap *map, int32_t left, int32_t right) {
    uint64_t key = ct_pair_key(left, right);
    for (size_t i = ct_pair_slot_index(key, map->mask);; i = (i + 1) & map->mask) {
        const CtPairSlot *s = &map->slots[i];
        if (s->key == key) return s;
        if (s->key == UINT64_MAX) return NULL;
    }
}
