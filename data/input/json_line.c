#include "data/input/json_line.h"

#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/input/utf8.h"

typedef struct {
    const char *s;
    size_t len, pos;
} Cursor;

static void skip_ws(Cursor *c) {
    while (c->pos < c->len && (c->s[c->pos] == ' ' || c->s[c->pos] == '\t' || c->s[c->pos] == '\n' || c->s[c->pos] == '\r'))
        c->pos++;
}

static int fail(const Cursor *c, const char *what) { return ct_error_set("column %zu: %s", c->pos + 1, what); }

static int hex4(const Cursor *c, size_t at, uint32_t *v) {
    if (at + 4 > c->len) return -1;
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char h = c->s[at + i];
        int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
        if (d < 0) return -1;
        *v = *v << 4 | (uint32_t)d;
    }
    return 0;
}

static void put(uint8_t **out, size_t *n, size_t *cap, const uint8_t *bytes, size_t k) {
    if (*n + k > *cap) {
        *cap = (*n + k) * 2 + 64;
        *out = ct_realloc(*out, *cap);
    }
    memcpy(*out + *n, bytes, k);
    *n += k;
}

// Parses the string at c->pos (a '"'); decodes into out when out != NULL.
static int parse_string(Cursor *c, uint8_t **out, size_t *n, size_t *cap) {
    if (c->pos >= c->len || c->s[c->pos] != '"') return fail(c, "expected a string");
    c->pos++;
    while (c->pos < c->len) {
        size_t start = c->pos;
        while (c->pos < c->len && c->s[c->pos] != '"' && c->s[c->pos] != '\\' && (unsigned char)c->s[c->pos] >= 0x20)
            c->pos++;
        if (out && c->pos > start) put(out, n, cap, (const uint8_t *)c->s + start, c->pos - start);
        if (c->pos >= c->len) break;
        char ch = c->s[c->pos];
        if (ch == '"') {
            c->pos++;
            return 0;
        }
        if ((unsigned char)ch < 0x20) return fail(c, "control character in a string");
        // A backslash escape.
        if (c->pos + 1 >= c->len) break;
        char e = c->s[c->pos + 1];
        uint8_t b[4];
        size_t k = 1;
        c->pos += 2;
        switch (e) {
        case '"': b[0] = '"'; break;
        case '\\': b[0] = '\\'; break;
        case '/': b[0] = '/'; break;
        case 'b': b[0] = '\b'; break;
        case 'f': b[0] = '\f'; break;
        case 'n': b[0] = '\n'; break;
        case 'r': b[0] = '\r'; break;
        case 't': b[0] = '\t'; break;
        case 'u': {
            uint32_t cp, lo;
            if (hex4(c, c->pos, &cp) != 0) return fail(c, "bad \\u escape");
            c->pos += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && c->pos + 6 <= c->len && c->s[c->pos] == '\\' && c->s[c->pos + 1] == 'u' &&
                hex4(c, c->pos + 2, &lo) == 0 && lo >= 0xDC00 && lo <= 0xDFFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                c->pos += 6;
            } else if (cp >= 0xD800 && cp <= 0xDFFF) {
                cp = 0xFFFD;  // a lone surrogate
            }
            k = ct_utf8_encode(cp, b);
            break;
        }
        default: return fail(c, "bad escape in a string");
        }
        if (out) put(out, n, cap, b, k);
    }
    return fail(c, "unterminated string");
}

static int skip_value(Cursor *c, int depth);

static int skip_container(Cursor *c, int depth, char close) {
    if (depth > 512) return fail(c, "nesting too deep");
    c->pos++;
    skip_ws(c);
    if (c->pos < c->len && c->s[c->pos] == close) {
        c->pos++;
        return 0;
    }
    for (;;) {
        if (close == '}') {
            skip_ws(c);
            if (parse_string(c, NULL, NULL, NULL) != 0) return -1;
            skip_ws(c);
            if (c->pos >= c->len || c->s[c->pos] != ':') return fail(c, "expected ':'");
            c->pos++;
        }
        if (skip_value(c, depth + 1) != 0) return -1;
        skip_ws(c);
        if (c->pos < c->len && c->s[c->pos] == ',') {
            c->pos++;
            continue;
        }
        if (c->pos < c->len && c->s[c->pos] == close) {
            c->pos++;
            return 0;
        }
        return fail(c, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int skip_value(Cursor *c, int depth) {
    skip_ws(c);
    if (c->pos >= c->len) return fail(c, "expected a value");
    char ch = c->s[c->pos];
    if (ch == '"') return parse_string(c, NULL, NULL, NULL);
    if (ch == '{') return skip_container(c, depth, '}');
    if (ch == '[') return skip_container(c, depth, ']');
    static const char *const words[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(words[i]);
        if (c->pos + n <= c->len && memcmp(c->s + c->pos, words[i], n) == 0) {
            c->pos += n;
            return 0;
        }
    }
    size_t start = c->pos;
    while (c->pos < c->len && strchr("+-0123456789.eE", c->s[c->pos])) c->pos++;
    return c->pos > start ? 0 : fail(c, "expected a value");
}

int ct_json_line_string(const char *line, size_t len, const char *key, uint8_t **out, size_t *out_len, size_t *cap) {
    Cursor c = {line, len, 0};
    size_t key_len = strlen(key);
    int found = 0;
    skip_ws(&c);
    if (c.pos >= c.len || c.s[c.pos] != '{') return fail(&c, "expected a JSON object");
    c.pos++;
    skip_ws(&c);
    if (c.pos < c.len && c.s[c.pos] == '}') {
        c.pos++;
    } else {
        for (;;) {
            skip_ws(&c);
            size_t key_start = c.pos + 1;
            if (parse_string(&c, NULL, NULL, NULL) != 0) return -1;
            int is_key = c.pos - key_start - 1 == key_len && memcmp(c.s + key_start, key, key_len) == 0;
            skip_ws(&c);
            if (c.pos >= c.len || c.s[c.pos] != ':') return fail(&c, "expected ':'");
            c.pos++;
            skip_ws(&c);
            if (is_key && c.pos < c.len && c.s[c.pos] == '"') {
                *out_len = 0;
                if (parse_string(&c, out, out_len, cap) != 0) return -1;
                found = 1;
            } else if (skip_value(&c, 1) != 0) {
                return -1;
            }
            skip_ws(&c);
            if (c.pos < c.len && c.s[c.pos] == ',') {
                c.pos++;
                continue;
            }
            if (c.pos < c.len && c.s[c.pos] == '}') {
                c.pos++;
                break;
            }
            return fail(&c, "expected ',' or '}'");
        }
    }
    skip_ws(&c);
    if (c.pos != c.len) return fail(&c, "text after the JSON object");
    return found ? 0 : 1;
}
