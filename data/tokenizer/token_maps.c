#include "data/tokenizer/token_maps.h"

#include <string.h>

#include "core/alloc.h"

static size_t capacity_for(size_t n_keys) {
    size_t cap = 16;
    while (cap < n_keys * 2 + 16) cap <<= 1;  // load factor <= 1/2: short probe chains
    return cap;
}

void ct_bytes_map_init(CtBytesMap *map, size_t n_keys, const uint8_t *pool, const uint32_t *offsets,
                       const uint32_t *lengths) {
    size_t cap = capacity_for(n_keys);
    map->slots = ct_alloc(cap * sizeof *map->slots);
    for (size_t i = 0; i < cap; i++) map->slots[i] = (CtBytesSlot){0, -1, 0};
    map->mask = cap - 1;
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
    size_t i = (size_t)h & map->mask;
    while (map->slots[i].id >= 0) i = (i + 1) & map->mask;
    map->slots[i] = (CtBytesSlot){ct_bytes_head(p, n), id, ct_bytes_tag(h, n)};
    return -1;
}

void ct_pair_map_init(CtPairMap *map, size_t n_keys) {
    size_t cap = capacity_for(n_keys);
    map->slots = ct_alloc(cap * sizeof *map->slots);
    for (size_t i = 0; i < cap; i++) map->slots[i] = (CtPairSlot){UINT64_MAX, 0, 0};
    map->mask = cap - 1;
    map->count = 0;
}

void ct_pair_map_free(CtPairMap *map) {
    ct_free(map->slots);
    map->slots = NULL;
}

static void pair_map_grow(CtPairMap *map) {
    CtPairSlot *old = map->slots;
    size_t old_cap = map->mask + 1;
    size_t cap = old_cap * 2;
    map->slots = ct_alloc(cap * sizeof *map->slots);
    for (size_t i = 0; i < cap; i++) map->slots[i] = (CtPairSlot){UINT64_MAX, 0, 0};
    map->mask = cap - 1;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].key == UINT64_MAX) continue;
        size_t j = ct_pair_slot_index(old[i].key, map->mask);
        while (map->slots[j].key != UINT64_MAX) j = (j + 1) & map->mask;
        map->slots[j] = old[i];
    }
    ct_free(old);
}

void ct_pair_map_put(CtPairMap *map, int32_t left, int32_t right, int32_t rank, int32_t merged) {
    if ((map->count + 1) * 2 > map->mask + 1) pair_map_grow(map);
    uint64_t key = ct_pair_key(left, right);
    size_t i = ct_pair_slot_index(key, map->mask);
    for (;; i = (i + 1) & map->mask) {
        CtPairSlot *s = &map->slots[i];
        if (s->key == key) {
            if (rank < s->rank) *s = (CtPairSlot){key, rank, merged};
            return;
        }
        if (s->key == UINT64_MAX) {
            *s = (CtPairSlot){key, rank, merged};
            map->count++;
            return;
        }
    }
}
