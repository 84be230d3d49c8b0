// Jinja values: constructors, truth, equality, Python's str() and json.dumps() of them, and
// strings that remember which of their bytes are a message's content.
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "data/examples/jinja_internal.h"

static const JValue NONE = {.kind = JV_NONE}, TRUE_V = {.kind = JV_BOOL, .b = 1}, FALSE_V = {.kind = JV_BOOL, .b = 0};

const JValue *jv_undefined(JCtx *c, const char *what) {
    JValue *v = jarena_alloc(c->arena, sizeof *v);
    v->kind = JV_UNDEFINED;
    v->undefined_name = what ? jarena_strndup(c->arena, what, strlen(what)) : "value";
    return v;
}
const JValue *jv_none(void) { return &NONE; }
const JValue *jv_bool(int b) { return b ? &TRUE_V : &FALSE_V; }

const JValue *jv_int(JCtx *c, long long i) {
    JValue *v = jarena_alloc(c->arena, sizeof *v);
    v->kind = JV_INT;
    v->i = i;
    return v;
}

const JValue *jv_float(JCtx *c, double f) {
    JValue *v = jarena_alloc(c->arena, sizeof *v);
    v->kind = JV_FLOAT;
    v->f = f;
    return v;
}

const JValue *jv_str(JCtx *c, const char *s, size_t len) {
    JValue *v = jarena_alloc(c->arena, sizeof *v);
    v->kind = JV_STR;
    v->s = jarena_strndup(c->arena, s, len);
    v->len = len;
    return v;
}

const JValue *jv_cstr(JCtx *c, const char *s) { return jv_str(c, s, strlen(s)); }

const JValue *jv_substr(JCtx *c, const JValue *v, size_t off, size_t len) {
    JValue *r = jarena_alloc(c->arena, sizeof *r);
    r->kind = JV_STR;
    r->s = v->s + off;  // strings are never written after they are made: share the bytes
    r->len = len;
    JSpan *spans = v->n_spans ? jarena_alloc(c->arena, (size_t)v->n_spans * sizeof *spans) : NULL;
    for (int k = 0; k < v->n_spans; k++) {
        size_t from = v->spans[k].off > off ? v->spans[k].off : off;
        size_t to = v->spans[k].off + v->spans[k].len < off + len ? v->spans[k].off + v->spans[k].len : off + len;
        if (from > to || (from == to && v->spans[k].len > 0)) continue;  // outside (an empty content stays)
        spans[r->n_spans++] = (JSpan){from - off, to - from, v->spans[k].message};
    }
    r->spans = spans;
    return r;
}

const JValue *jv_concat(JCtx *c, const JValue *x, const JValue *y) {
    JValue *r = jarena_alloc(c->arena, sizeof *r);
    r->kind = JV_STR;
    char *s = jarena_alloc(c->arena, x->len + y->len + 1);
    memcpy(s, x->s, x->len);
    memcpy(s + x->len, y->s, y->len);
    r->s = s;
    r->len = x->len + y->len;
    if (x->n_spans + y->n_spans) {
        JSpan *spans = jarena_alloc(c->arena, (size_t)(x->n_spans + y->n_spans) * sizeof *spans);
        for (int k = 0; k < x->n_spans; k++) spans[k] = x->spans[k];
        for (int k = 0; k < y->n_spans; k++)
            spans[x->n_spans + k] = (JSpan){y->spans[k].off + x->len, y->spans[k].len, y->spans[k].message};
        r->spans = spans;
        r->n_spans = x->n_spans + y->n_spans;
    }
    return r;
}

JValue *jv_list(JCtx *c, int cap) {
    JValue *v = jarena_alloc(c->arena, sizeof *v);
    v->kind = JV_LIST;
    v->cap = cap > 4 ? cap : 4;
    v->list = jarena_alloc(c->arena, (size_t)v->cap * sizeof *v->list);
    return v;
}

void jv_list_push(JCtx *c, JValue *list, const JValue *item) {
    if (list->n == list->cap) {
        const JValue **grown = jarena_alloc(c->arena, (size_t)list->cap * 2 * sizeof *grown);
        memcpy(grown, list->list, (size_t)list->n * sizeof *grown);
        list->list = grown;
        list->cap *= 2;
    }
    list->list[list->n++] = item;
}

JValue *jv_dict(JCtx *c, JValueKind kind) {
    JValue *v = jarena_alloc(c->arena, sizeof *v);
    v->kind = kind;
    v->cap = 8;
    v->pairs = jarena_alloc(c->arena, (size_t)v->cap * sizeof *v->pairs);
    return v;
}

void jv_dict_set(JCtx *c, JValue *dict, const char *key, const JValue *value) {
    for (int k = 0; k < dict->n; k++)
        if (strcmp(dict->pairs[k].key, key) == 0) {
            dict->pairs[k].value = value;
            return;
        }
    if (dict->n == dict->cap) {
        JPair *grown = jarena_alloc(c->arena, (size_t)dict->cap * 2 * sizeof *grown);
        memcpy(grown, dict->pairs, (size_t)dict->n * sizeof *grown);
        dict->pairs = grown;
        dict->cap *= 2;
    }
    dict->pairs[dict->n++] = (JPair){jarena_strndup(c->arena, key, strlen(key)), value};
}

const JValue *jv_dict_get(const JValue *dict, const char *key, size_t key_len) {
    for (int k = 0; k < dict->n; k++)
        if (strlen(dict->pairs[k].key) == key_len && memcmp(dict->pairs[k].key, key, key_len) == 0)
            return dict->pairs[k].value;
    return NULL;
}

int jv_truthy(const JValue *v) {
    switch (v->kind) {
    case JV_UNDEFINED: case JV_NONE: return 0;
    case JV_BOOL: return v->b;
    case JV_INT: return v->i != 0;
    case JV_FLOAT: return v->f != 0;
    case JV_STR: return v->len != 0;
    case JV_LIST: case JV_DICT: return v->n != 0;
    default: return 1;
    }
}

static int is_number(const JValue *v) { return v->kind == JV_INT || v->kind == JV_FLOAT || v->kind == JV_BOOL; }
static double number(const JValue *v) { return v->kind == JV_FLOAT ? v->f : v->kind == JV_INT ? (double)v->i : v->b; }

static int equal_at(const JValue *x, const JValue *y, int depth);

int jv_equal(const JValue *x, const JValue *y) { return equal_at(x, y, 0); }

// (A namespace may hold itself: past JINJA_MAX_DEPTH levels values compare unequal.)
static int equal_at(const JValue *x, const JValue *y, int depth) {
    if (depth > JINJA_MAX_DEPTH) return 0;
    if (is_number(x) && is_number(y)) return number(x) == number(y);
    if (x->kind != y->kind) return 0;
    switch (x->kind) {
    case JV_UNDEFINED: case JV_NONE: return 1;
    case JV_STR: return x->len == y->len && memcmp(x->s, y->s, x->len) == 0;
    case JV_LIST:
        if (x->n != y->n) return 0;
        for (int k = 0; k < x->n; k++)
            if (!equal_at(x->list[k], y->list[k], depth + 1)) return 0;
        return 1;
    case JV_DICT:
        if (x->n != y->n) return 0;
        for (int k = 0; k < x->n; k++) {
            const JValue *other = jv_dict_get(y, x->pairs[k].key, strlen(x->pairs[k].key));
            if (!other || !equal_at(x->pairs[k].value, other, depth + 1)) return 0;
        }
        return 1;
    default: return x == y;
    }
}

const char *jv_kind_name(const JValue *v) {
    static const char *const names[] = {"undefined", "none", "bool", "int", "float", "str", "list", "dict", "namespace", "function"};
    return names[v->kind];
}

// A growable byte buffer in the arena's terms (plain ct_alloc, copied into the arena at the end).
typedef struct {
    char *s;
    size_t len, cap;
} Buf;

static void put(Buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = ct_realloc(b->s, b->cap);
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}
static void puts_(Buf *b, const char *s) { put(b, s, strlen(s)); }

// Python's repr() of a float: the shortest text that reads back the same, with ".0" when whole.
static void put_float(Buf *b, double f) {
    char text[64];
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, f);
        double back;
        if (sscanf(text, "%lf", &back) == 1 && back == f) break;
    }
    puts_(b, text);
    if (!strpbrk(text, ".eEn")) puts_(b, ".0");
}

static void put_repr(Buf *b, const JValue *v, int top, int depth);

static void put_py_string(Buf *b, const JValue *v) {
    // Python's repr of a str: single quotes unless the text has one and no double quote.
    int has_single = memchr(v->s, '\'', v->len) != NULL, has_double = memchr(v->s, '"', v->len) != NULL;
    char q = has_single && !has_double ? '"' : '\'';
    put(b, &q, 1);
    for (size_t k = 0; k < v->len; k++) {
        unsigned char ch = (unsigned char)v->s[k];
        if (ch == '\\' || ch == (unsigned char)q) put(b, "\\", 1), put(b, (const char *)&ch, 1);
        else if (ch == '\n') puts_(b, "\\n");
        else if (ch == '\t') puts_(b, "\\t");
        else if (ch == '\r') puts_(b, "\\r");
        else if (ch < 0x20 || ch == 0x7f) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\x%02x", ch);
            puts_(b, esc);
        } else put(b, (const char *)&ch, 1);
    }
    put(b, &q, 1);
}

static void put_repr(Buf *b, const JValue *v, int top, int depth) {
    char num[32];
    if (depth > JINJA_MAX_DEPTH) {  // a namespace that holds itself
        puts_(b, "...");
        return;
    }
    switch (v->kind) {
    case JV_UNDEFINED: break;
    case JV_NONE: puts_(b, "None"); break;
    case JV_BOOL: puts_(b, v->b ? "True" : "False"); break;
    case JV_INT: snprintf(num, sizeof num, "%lld", v->i), puts_(b, num); break;
    case JV_FLOAT: put_float(b, v->f); break;
    case JV_STR: if (top) put(b, v->s, v->len); else put_py_string(b, v); break;
    case JV_LIST:
        puts_(b, "[");
        for (int k = 0; k < v->n; k++) {
            if (k) puts_(b, ", ");
            put_repr(b, v->list[k], 0, depth + 1);
        }
        puts_(b, "]");
        break;
    case JV_DICT: case JV_NAMESPACE:
        puts_(b, v->kind == JV_NAMESPACE ? "<Namespace {" : "{");
        for (int k = 0; k < v->n; k++) {
            if (k) puts_(b, ", ");
            JValue key = {.kind = JV_STR, .s = v->pairs[k].key, .len = strlen(v->pairs[k].key)};
            put_py_string(b, &key);
            puts_(b, ": ");
            put_repr(b, v->pairs[k].value, 0, depth + 1);
        }
        puts_(b, v->kind == JV_NAMESPACE ? "}>" : "}");
        break;
    case JV_FUNC: puts_(b, "<function "), puts_(b, v->s), puts_(b, ">"); break;
    }
}

static const JValue *from_buf(JCtx *c, Buf *b) {
    const JValue *v = jv_str(c, b->s ? b->s : "", b->len);
    ct_free(b->s);
    return v;
}

const JValue *jv_to_string(JCtx *c, const JValue *v) {
    if (v->kind == JV_STR) return v;
    Buf b = {0};
    put_repr(&b, v, 1, 0);
    return from_buf(c, &b);
}

static void put_json_string(Buf *b, const char *s, size_t len) {
    puts_(b, "\"");
    for (size_t k = 0; k < len; k++) {
        unsigned char ch = (unsigned char)s[k];
        if (ch == '"') puts_(b, "\\\"");
        else if (ch == '\\') puts_(b, "\\\\");
        else if (ch == '\n') puts_(b, "\\n");
        else if (ch == '\r') puts_(b, "\\r");
        else if (ch == '\t') puts_(b, "\\t");
        else if (ch == '\b') puts_(b, "\\b");
        else if (ch == '\f') puts_(b, "\\f");
        else if (ch < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", ch);
            puts_(b, esc);
        } else put(b, (const char *)&ch, 1);
    }
    puts_(b, "\"");
}

static void put_indent(Buf *b, int indent, int depth) {
    puts_(b, "\n");
    for (int k = 0; k < indent * depth; k++) puts_(b, " ");
}

// json.dumps(v, ensure_ascii=False, indent=indent) (transformers' tojson; sort_keys off).
static void put_json(Buf *b, const JValue *v, int indent, int depth) {
    char num[32];
    if (depth > JINJA_MAX_DEPTH) {  // a namespace that holds itself
        puts_(b, "null");
        return;
    }
    switch (v->kind) {
    case JV_UNDEFINED: case JV_NONE: puts_(b, "null"); break;
    case JV_BOOL: puts_(b, v->b ? "true" : "false"); break;
    case JV_INT: snprintf(num, sizeof num, "%lld", v->i), puts_(b, num); break;
    case JV_FLOAT: put_float(b, v->f); break;
    case JV_STR: put_json_string(b, v->s, v->len); break;
    case JV_LIST: case JV_DICT: case JV_NAMESPACE: case JV_FUNC: {
        int list = v->kind == JV_LIST;
        if (v->kind == JV_FUNC || v->n == 0) {
            puts_(b, list ? "[]" : "{}");
            break;
        }
        puts_(b, list ? "[" : "{");
        for (int k = 0; k < v->n; k++) {
            if (k) puts_(b, indent >= 0 ? "," : ", ");
            if (indent >= 0) put_indent(b, indent, depth + 1);
            if (!list) {
                put_json_string(b, v->pairs[k].key, strlen(v->pairs[k].key));
                puts_(b, ": ");
            }
            put_json(b, list ? v->list[k] : v->pairs[k].value, indent, depth + 1);
        }
        if (indent >= 0) put_indent(b, indent, depth);
        puts_(b, list ? "]" : "}");
        break;
    }
    }
}

const JValue *jv_to_json(JCtx *c, const JValue *v, int indent) {
    Buf b = {0};
    put_json(&b, v, indent, 0);
    return from_buf(c, &b);
}

const size_t *jv_char_offsets(JCtx *c, const JValue *v, size_t *n) {
    size_t *off = jarena_alloc(c->arena, (v->len + 1) * sizeof *off), k = 0;
    for (size_t i = 0; i < v->len; i++)
        if (((unsigned char)v->s[i] & 0xC0) != 0x80) off[k++] = i;
    off[k] = v->len;
    *n = k;
    return off;
}

// The code point at s[at] (UTF-8, well formed or not: a stray byte reads as itself), its length in *n.
static unsigned decode(const char *s, size_t len, size_t at, size_t *n) {
    const unsigned char *u = (const unsigned char *)s + at;
    size_t left = len - at;
    if (u[0] < 0x80 || left < 2) return *n = 1, u[0];
    if ((u[0] & 0xE0) == 0xC0) return *n = 2, ((u[0] & 0x1Fu) << 6) | (u[1] & 0x3Fu);
    if ((u[0] & 0xF0) == 0xE0 && left >= 3) return *n = 3, ((u[0] & 0x0Fu) << 12) | ((u[1] & 0x3Fu) << 6) | (u[2] & 0x3Fu);
    if ((u[0] & 0xF8) == 0xF0 && left >= 4)
        return *n = 4, ((u[0] & 0x07u) << 18) | ((u[1] & 0x3Fu) << 12) | ((u[2] & 0x3Fu) << 6) | (u[3] & 0x3Fu);
    return *n = 1, u[0];
}

// Python's str.isspace(): the ASCII blanks, \x1c-\x1f, NEL, NBSP and Unicode's space separators.
static int is_python_space(unsigned cp) {
    return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
           cp == 0x3000;
}

size_t jv_space_at(const char *s, size_t len, size_t at) {
    size_t n;
    unsigned cp = decode(s, len, at, &n);
    return is_python_space(cp) ? n : 0;
}

size_t jv_space_before(const char *s, size_t end) {
    size_t start = end - 1;
    while (start > 0 && end - start < 4 && ((unsigned char)s[start] & 0xC0) == 0x80) start--;
    size_t n;
    unsigned cp = decode(s, end, start, &n);
    return start + n == end && is_python_space(cp) ? n : 0;
}

size_t ct_jinja_space_at(const char *s, size_t len, size_t at) { return jv_space_at(s, len, at); }
