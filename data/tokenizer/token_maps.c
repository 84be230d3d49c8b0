#include "data/tokenizer/token_maps.h"

#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

void ct_bytes_map_init(CtBytesMap *map, size_t n_keys, const uint8_t *pool, const uint32_t *offsets,
                       const uint32_t *lengths) {
    map->n_buckets = (n_keys * 2 + 4) / CT_BYTES_BUCKET + 1;  // at most half full
    size_t cap = map->n_buckets * CT_BYTES_BUCKET;
    map->slots = ct_alloc_huge(cap * sizeof *map->slots);
    for (size_t i = 0; i < cap; i++) map->slots[i] = (CtBytesSlot){0, -1, 0};
    map->count = 0;
    map->pool = pool;
    map->offsets = offsets;
    map->lengths = lengths;
}

void ct_bytes_map_free(CtBytesMap *map) {
    ct_free(map->slots);
    map->slots = NULL;
}

int32_t ct_bytes_map_insert(CtBytesMap *map, int32_t id) {
    const uint8_t *p = map->pool + map->offsets[id];
    size_t n = map->lengths[id];
    uint64_t h = ct_hash_bytes(p, n);
    int32_t existing = ct_bytes_map_find_hashed(map, p, n, h);
    if (existing >= 0) return existing;
    const size_t n_slots = map->n_buckets * CT_BYTES_BUCKET;
    CT_CHECK(++map->count < n_slots, "a bytes map holds at most the keys it was made for");
    size_t i = ct_bytes_first_slot(map, h);
    while (map->slots[i].id >= 0) i = i + 1 == n_slots ? 0 : i + 1;
    map->slots[i] = (CtBytesSlot){ct_bytes_head(p, n), id, ct_bytes_tag(h, n)};
    return -1;
}

// Load at most 3/4: a bucket rarely overflows, and a missing pair ends at an empty entry.
static size_t buckets_for(size_t n_keys) { return (n_keys * 4 / 3 + 16) / CT_PAIR_BUCKET + 1; }

static void pair_map_alloc(CtPairMap *map, size_t n_buckets) {
    map->n_buckets = n_buckets;
    map->entries = ct_alloc_huge(n_buckets * CT_PAIR_BUCKET * sizeof *map->entries);
    memset(map->entries, 0xFF, n_buckets * CT_PAIR_BUCKET * sizeof *map->entries);
    map->count = 0;
}

void ct_pair_map_init(CtPairMap *map, size_t n_keys, size_t n_ranks) {
    pair_map_alloc(map, buckets_for(n_keys));
    map->n_ranks = n_ranks;
    map->merged = n_ranks ? ct_alloc(n_ranks * sizeof *map->merged) : NULL;
}

void ct_pair_map_free(CtPairMap *map) {
    ct_free(map->entries);
    ct_free(map->merged);
    map->entries = NULL;
    map->merged = NULL;
}

// Puts a new entry or lowers the rank of an existing one; 1 when the pair was new.
static int pair_map_place(CtPairMap *map, uint64_t entry) {
    const uint64_t key = entry >> (CT_PAIR_BITS + 1);
    for (size_t b = ct_pair_bucket(map, key);; b = b + 1 == map->n_buckets ? 0 : b + 1) {
        uint64_t *e = map->entries + b * CT_PAIR_BUCKET;
        for (int k = 0; k < CT_PAIR_BUCKET; k++) {
            if (e[k] == UINT64_MAX) {
                e[k] = entry;
                return 1;
            }
            if (e[k] >> (CT_PAIR_BITS + 1) == key) {
                if ((entry & CT_PAIR_MAX_RANK) < (e[k] & CT_PAIR_MAX_RANK)) e[k] = entry;
                return 0;
            }
        }
    }
}

void ct_pair_map_put(CtPairMap *map, int32_t left, int32_t right, int32_t rank, int32_t merged) {
    if ((map->count + 1) * 4 > map->n_buckets * CT_PAIR_BUCKET * 3) {
        uint64_t *old = map->entries;
        size_t old_n = map->n_buckets * CT_PAIR_BUCKET, count = map->count;
        pair_map_alloc(map, map->n_buckets * 2);
        for (size_t i = 0; i < old_n; i++)
            if (old[i] != UINT64_MAX) pair_map_place(map, old[i]);
        map->count = count;
        ct_free(old);
    }
    if (map->merged) map->merged[rank] = merged;
    map->count += (size_t)pair_map_place(map, ct_pair_key(left, right) << (CT_PAIR_BITS + 1) | (uint64_t)rank);
}
