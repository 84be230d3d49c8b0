#include "data/tokenizer/token_ids.h"

#include <string.h>

#include "core/alloc.h"

void ct_ids_push(CtIds *ids, int32_t id) {
    if (ids->len == ids->cap) {
        ids->cap = ids->cap ? ids->cap * 2 : 256;
        ids->data = ct_realloc(ids->data, ids->cap * sizeof *ids->data);
    }
    ids->data[ids->len++] = id;
}

void ct_ids_append(CtIds *ids, const int32_t *more, size_t n) {
    if (ids->len + n > ids->cap) {
        ids->cap = ids->len + n > 2 * ids->cap ? ids->len + n : 2 * ids->cap;
        ids->data = ct_realloc(ids->data, ids->cap * sizeof *ids->data);
    }
    if (n) memcpy(ids->data + ids->len, more, n * sizeof *more);
    ids->len += n;
}

void ct_ids_free(CtIds *ids) {
    ct_free(ids->data);
    memset(ids, 0, sizeof *ids);
}
