// A growable list of token ids.
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct CtIds {
    int32_t *data;
    size_t len, cap;
} CtIds;

void ct_ids_grow(CtIds *ids, size_t need);  // room for at least `need` ids
// Room for the ids of `bytes` more bytes of text, so that encoding them rarely grows the list
// (each growth copies it): one id per 3 bytes, more than English text gives (about 1 per 4.5)
// with at most the text's own size in spare room; a text that needs more grows as usual.
void ct_ids_reserve_for_text(CtIds *ids, size_t bytes);
static inline void ct_ids_push(CtIds *ids, int32_t id) {
    if (ids->len == ids->cap) ct_ids_grow(ids, ids->len + 1);
    ids->data[ids->len++] = id;
}
void ct_ids_append(CtIds *ids, const int32_t *more, size_t n);
void ct_ids_free(CtIds *ids);
