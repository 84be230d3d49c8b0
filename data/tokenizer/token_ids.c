#include "data/tokenizer/token_ids.h"

#include <string.h>

#include "core/alloc.h"

void ct_ids_grow(CtIds *ids, size_t need) {
    if (need <= ids->cap) return;
    ids->cap = need > 2 * ids->cap ? (need > 256 ? need : 256) : 2 * ids->cap;
    ids->data = ct_realloc(ids->data, ids->cap * sizeof *ids->data);
}

void ct_ids_reserve_for_text(CtIds *ids, size_t bytes) { ct_ids_grow(ids, ids->len + bytes / 3 + 16); }

void ct_ids_append(CtIds *ids, const int32_t *more, size_t n) {
    ct_ids_grow(ids, ids->len + n);
    if (n) memcpy(ids->data + ids->len, more, n * sizeof *more);
    ids->len += n;
}

void ct_ids_free(CtIds *ids) {
    ct_free(ids->data);
    memset(ids, 0, sizeof *ids);
}
