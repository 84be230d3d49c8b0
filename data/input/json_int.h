// A token id from a cJSON number: an integer in 0..2^31-1. (Casting a double out of int range
// is undefined behaviour, so the range is checked first.)
#pragma once
#include <cjson/cJSON.h>
#include <stdint.h>

static inline int ct_json_token_id(const cJSON *item, int32_t *out) {
    if (!cJSON_IsNumber(item)) return -1;
    double v = item->valuedouble;
    if (!(v >= 0 && v <= 2147483647.0) || v != (double)(int64_t)v) return -1;
    *out = (int32_t)v;
    return 0;
}
