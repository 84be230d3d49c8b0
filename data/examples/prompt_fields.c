#include "data/examples/prompt_fields.h"

#include <cJSON.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/input/utf8.h"

static size_t skip_space(const char *s, size_t len, size_t i) {
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    return i;
}

// The end of the string that starts at s[i] ('"'), past its closing quote.
static size_t string_end(const char *s, size_t len, size_t i) {
    for (i++; i < len && s[i] != '"'; i++)
        if (s[i] == '\\') i++;
    return i < len ? i + 1 : len;
}

// The end of the JSON value that starts at s[i]. The line is valid JSON (cJSON parsed it), so
// brackets balance outside strings and a scalar ends at the next separator.
static size_t value_end(const char *s, size_t len, size_t i) {
    if (s[i] == '"') return string_end(s, len, i);
    if (s[i] != '{' && s[i] != '[') {
        while (i < len && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' &&
               s[i] != '\r')
            i++;
        return i;
    }
    int depth = 0;
    while (i < len) {
        if (s[i] == '"') {
            i = string_end(s, len, i);
            continue;
        }
        if (s[i] == '{' || s[i] == '[') depth++;
        if (s[i] == '}' || s[i] == ']') depth--;
        i++;
        if (depth == 0) break;
    }
    return i;
}

// Whether the key spelled s[from..to) (with its quotes and any escapes) is `name`.
static int key_is(const char *s, size_t from, size_t to, const char *name) {
    cJSON *key = cJSON_ParseWithLength(s + from, to - from);
    int same = cJSON_IsString(key) && strcmp(key->valuestring, name) == 0;
    cJSON_Delete(key);
    return same;
}

static int is_prompt_member(const char *s, size_t from, size_t to, const CtTaskPrompt *p) {
    return key_is(s, from, to, p->prompt_key) || (p->used_system && key_is(s, from, to, "system"));
}

// The first byte of s[0..n) that does not begin a valid UTF-8 sequence, or n.
static size_t first_bad_utf8(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = ct_utf8_decode((const uint8_t *)s + i, n - i, &cp);
        if (cp == CT_UTF8_INVALID) return i;
        i += k;
    }
    return n;
}

char *ct_prompt_fields(const char *line, size_t len, const CtTaskPrompt *p, size_t *out_len) {
    char *out = ct_alloc(len + 3);
    size_t n = 0, i = 0;
    if (len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) i = 3;  // a byte-order mark, which cJSON skips too
    i = skip_space(line, len, i);  // at the object's '{'
    out[n++] = '{';
    for (i = skip_space(line, len, i + 1); i < len && line[i] == '"';) {  // past the '{': each "key": value
        const size_t key_from = i, key_to = string_end(line, len, i);
        const size_t value_from = skip_space(line, len, skip_space(line, len, key_to) + 1);  // past the ':'
        const size_t value_to = value_end(line, len, value_from);
        if (!is_prompt_member(line, key_from, key_to, p)) {
            if (n > 1) out[n++] = ',';
            memcpy(out + n, line + key_from, key_to - key_from);
            n += key_to - key_from;
            out[n++] = ':';
            memcpy(out + n, line + value_from, value_to - value_from);
            n += value_to - value_from;
        }
        i = skip_space(line, len, value_to);
        if (i < len && line[i] == ',') i = skip_space(line, len, i + 1);
    }
    out[n++] = '}';
    out[n] = '\0';
    const size_t bad = first_bad_utf8(out, n);
    if (bad < n) {
        const unsigned byte = (unsigned char)out[bad];
        ct_free(out);
        ct_error_set("the fields hold a byte 0x%02x that is not UTF-8 (a reward reads them as JSON text)", byte);
        return NULL;
    }
    *out_len = n;
    return out;
}
