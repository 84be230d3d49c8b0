// A growable list of token ids.
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct CtIds {
    int32_t *data;
    size_t len, cap;
} CtIds;

void ct_ids_push(CtIds *ids, int32_t id);
void ct_ids_append(CtIds *ids, const int32_t *more, size_t n);
void ct_ids_free(CtIds *ids);
