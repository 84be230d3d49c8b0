// Rendering a parsed template: scopes, statements and expressions with Jinja's (and Python's)
// semantics as transformers' sandboxed environment has them. Everything a rendering makes
// lives in one arena, freed when it ends.
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/examples/jinja_internal.h"

struct CtJinja {
    JArena arena;
    JNode *root;
    char *name;
};

typedef struct Frame {
    JValue *vars;
    struct Frame *parent;
} Frame;

typedef struct {
    JCtx c;
    int depth;  // of eval's recursion
    Frame *frame;
    JValue *globals;
    char *out;
    size_t len, cap;
    JSpan *spans;
    int n_spans, spans_cap;
} Render;

// ct_error_set with the template's name and line in front.
static void *fail(Render *R, int line, const char *fmt, const char *a, const char *b) {
    char what[512];
    snprintf(what, sizeof what, fmt, a, b);
    ct_error_set("%s line %d: %s", R->c.name, line, what);
    return NULL;
}

static void emit(Render *R, const JValue *s) {
    if (R->len + s->len + 1 > R->cap) {
        R->cap = (R->len + s->len + 1) * 2;
        R->out = ct_realloc(R->out, R->cap);
    }
    memcpy(R->out + R->len, s->s, s->len);
    for (int k = 0; k < s->n_spans; k++) {
        if (R->n_spans == R->spans_cap) {
            R->spans_cap = R->spans_cap ? R->spans_cap * 2 : 16;
            R->spans = ct_realloc(R->spans, (size_t)R->spans_cap * sizeof *R->spans);
        }
        R->spans[R->n_spans++] = (JSpan){s->spans[k].off + R->len, s->spans[k].len, s->spans[k].message};
    }
    R->len += s->len;
    R->out[R->len] = '\0';
}

static const JValue *lookup(Render *R, const char *name) {
    for (Frame *f = R->frame; f; f = f->parent) {
        const JValue *v = jv_dict_get(f->vars, name, strlen(name));
        if (v) return v;
    }
    const JValue *v = jv_dict_get(R->globals, name, strlen(name));
    return v ? v : jv_undefined(&R->c, name);
}

static const JValue *eval(Render *R, const JNode *n);

static int as_index(const JValue *v, long long *out) {
    if (v->kind == JV_INT) return *out = v->i, 1;
    if (v->kind == JV_BOOL) return *out = v->b, 1;
    return 0;
}

static const JValue *get_item(Render *R, int line, const JValue *obj, const JValue *key, const char *attr) {
    if (obj->kind == JV_UNDEFINED)
        return fail(R, line, "'%s' is undefined (reading '%s' of it)", obj->undefined_name, attr ? attr : "[...]");
    if ((obj->kind == JV_DICT || obj->kind == JV_NAMESPACE) && key->kind == JV_STR) {
        const JValue *v = jv_dict_get(obj, key->s, key->len);
        return v ? v : jv_undefined(&R->c, jarena_strndup(R->c.arena, key->s, key->len));
    }
    long long i;
    if ((obj->kind == JV_LIST || obj->kind == JV_STR) && as_index(key, &i)) {
        size_t n_chars = 0;
        const size_t *off = obj->kind == JV_STR ? jv_char_offsets(&R->c, obj, &n_chars) : NULL;
        long long n = obj->kind == JV_LIST ? obj->n : (long long)n_chars;
        if (i < 0) i += n;
        if (i < 0 || i >= n) return jv_undefined(&R->c, "an item past the end");
        return obj->kind == JV_LIST ? obj->list[i] : jv_substr(&R->c, obj, off[i], off[i + 1] - off[i]);
    }
    return jv_undefined(&R->c, attr ? attr : "item");
}

// Python's slice of a list or string: [start:stop:step], each part optional.
static const JValue *slice(Render *R, const JNode *n) {
    const JValue *obj = eval(R, n->a);
    if (!obj) return NULL;
    long long part[3] = {0, 0, 1};
    int given[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++) {
        if (!n->items[k]) continue;
        const JValue *v = eval(R, n->items[k]);
        if (!v) return NULL;
        if (v->kind == JV_NONE) continue;
        if (!as_index(v, &part[k])) return fail(R, n->line, "slice indices must be integers, not %s%s", jv_kind_name(v), "");
        given[k] = 1;
    }
    if (obj->kind != JV_LIST && obj->kind != JV_STR) return fail(R, n->line, "cannot slice a %s%s", jv_kind_name(obj), "");
    size_t n_chars = 0;  // a string is sliced by characters, as Python slices a str
    const size_t *off = obj->kind == JV_STR ? jv_char_offsets(&R->c, obj, &n_chars) : NULL;
    long long len = obj->kind == JV_LIST ? obj->n : (long long)n_chars, step = part[2];
    if (step == 0) return fail(R, n->line, "slice step cannot be zero%s%s", "", "");
    long long start, stop;
    for (int k = 0; k < 2; k++) {
        long long *dst = k ? &stop : &start, v = part[k];
        if (!given[k]) *dst = k == 0 ? (step > 0 ? 0 : len - 1) : (step > 0 ? len : -1);
        else {
            if (v < 0) v += len;
            if (step > 0) v = v < 0 ? 0 : v > len ? len : v;
            else v = v < -1 ? -1 : v > len - 1 ? len - 1 : v;
            *dst = v;
        }
    }
    if (obj->kind == JV_STR && step == 1)
        return stop > start ? jv_substr(&R->c, obj, off[start], off[stop] - off[start]) : jv_cstr(&R->c, "");
    JValue *list = jv_list(&R->c, 4);
    char *bytes = obj->kind == JV_STR ? jarena_alloc(R->c.arena, obj->len + 1) : NULL;
    size_t n_bytes = 0;
    for (long long i = start; step > 0 ? i < stop : i > stop; i += step) {
        if (bytes) {
            memcpy(bytes + n_bytes, obj->s + off[i], off[i + 1] - off[i]);
            n_bytes += off[i + 1] - off[i];
        } else {
            jv_list_push(&R->c, list, obj->list[i]);
        }
    }
    return bytes ? jv_str(&R->c, bytes, n_bytes) : list;
}

static const JValue *compare(Render *R, int line, const char *op, const JValue *x, const JValue *y) {
    if (strcmp(op, "==") == 0) return jv_bool(jv_equal(x, y));
    if (strcmp(op, "!=") == 0) return jv_bool(!jv_equal(x, y));
    if (strcmp(op, "in") == 0 || strcmp(op, "notin") == 0) {
        int found = 0;
        if (y->kind == JV_STR && x->kind == JV_STR)
            found = x->len == 0 || memmem(y->s, y->len, x->s, x->len) != NULL;
        else if (y->kind == JV_LIST)
            for (int k = 0; k < y->n && !found; k++) found = jv_equal(x, y->list[k]);
        else if ((y->kind == JV_DICT || y->kind == JV_NAMESPACE) && x->kind == JV_STR)
            found = jv_dict_get(y, x->s, x->len) != NULL;
        else if (y->kind != JV_UNDEFINED)
            return fail(R, line, "'in' needs a string, list or dict on its right, not %s%s", jv_kind_name(y), "");
        return jv_bool(strcmp(op, "in") == 0 ? found : !found);
    }
    int order;
    if (x->kind == JV_STR && y->kind == JV_STR) {
        int cmp = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
        order = cmp ? cmp : (x->len > y->len) - (x->len < y->len);
    } else if ((x->kind == JV_INT || x->kind == JV_FLOAT || x->kind == JV_BOOL) &&
               (y->kind == JV_INT || y->kind == JV_FLOAT || y->kind == JV_BOOL)) {
        double a = x->kind == JV_FLOAT ? x->f : x->kind == JV_INT ? (double)x->i : x->b;
        double b = y->kind == JV_FLOAT ? y->f : y->kind == JV_INT ? (double)y->i : y->b;
        order = (a > b) - (a < b);
    } else {
        return fail(R, line, "cannot compare %s with %s", jv_kind_name(x), jv_kind_name(y));
    }
    int r = op[0] == '<' ? (op[1] ? order <= 0 : order < 0) : (op[1] ? order >= 0 : order > 0);
    return jv_bool(r);
}

static const JValue *arithmetic(Render *R, int line, const char *op, const JValue *x, const JValue *y) {
    if (op[0] == '~') {
        const JValue *a = x->kind == JV_UNDEFINED ? jv_cstr(&R->c, "") : jv_to_string(&R->c, x);
        const JValue *b = y->kind == JV_UNDEFINED ? jv_cstr(&R->c, "") : jv_to_string(&R->c, y);
        return jv_concat(&R->c, a, b);
    }
    if (op[0] == '+' && x->kind == JV_STR && y->kind == JV_STR) return jv_concat(&R->c, x, y);
    if (op[0] == '+' && x->kind == JV_LIST && y->kind == JV_LIST) {
        JValue *list = jv_list(&R->c, x->n + y->n);
        for (int k = 0; k < x->n; k++) jv_list_push(&R->c, list, x->list[k]);
        for (int k = 0; k < y->n; k++) jv_list_push(&R->c, list, y->list[k]);
        return list;
    }
    int xi = x->kind == JV_INT || x->kind == JV_BOOL, yi = y->kind == JV_INT || y->kind == JV_BOOL;
    if (op[0] == '*' && ((x->kind == JV_STR && yi) || (xi && y->kind == JV_STR))) {
        const JValue *s = x->kind == JV_STR ? x : y;
        long long times = x->kind == JV_STR ? (y->kind == JV_INT ? y->i : y->b) : (x->kind == JV_INT ? x->i : x->b);
        if (times > 0 && s->len && (size_t)times > JINJA_MAX_BYTES / s->len)
            return fail(R, line, "a string repeated past the rendering's memory limit%s%s", "", "");
        const JValue *r = jv_cstr(&R->c, "");
        for (long long k = 0; k < times; k++) r = jv_concat(&R->c, r, s);
        return r;
    }
    if (!(xi || x->kind == JV_FLOAT) || !(yi || y->kind == JV_FLOAT))
    {
        char kinds[64];
        snprintf(kinds, sizeof kinds, "%s and %s", jv_kind_name(x), jv_kind_name(y));
        return fail(R, line, "unsupported operand types for %s: %s", op, kinds);
    }
    long long a = x->kind == JV_INT ? x->i : x->b, b = y->kind == JV_INT ? y->i : y->b;
    double fa = x->kind == JV_FLOAT ? x->f : (double)a, fb = y->kind == JV_FLOAT ? y->f : (double)b;
    int ints = xi && yi;
    if ((op[0] == '/' || op[0] == '%') && (ints ? b == 0 : fb == 0)) return fail(R, line, "division by zero%s%s", "", "");
    switch (op[0]) {
    case '+': return ints ? jv_int(&R->c, a + b) : jv_float(&R->c, fa + fb);
    case '-': return ints ? jv_int(&R->c, a - b) : jv_float(&R->c, fa - fb);
    case '*': return ints ? jv_int(&R->c, a * b) : jv_float(&R->c, fa * fb);
    case '%': {
        if (!ints) return jv_float(&R->c, fa - fb * floor(fa / fb));
        long long m = a % b;
        return jv_int(&R->c, m && ((m < 0) != (b < 0)) ? m + b : m);  // Python's sign rule
    }
    default:
        if (op[1] == '/') {
            if (!ints) return jv_float(&R->c, floor(fa / fb));
            long long q = a / b;
            return jv_int(&R->c, (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q);
        }
        return jv_float(&R->c, fa / fb);
    }
}

static const JValue *binary(Render *R, const JNode *n) {
    const JValue *x = eval(R, n->a);
    if (!x) return NULL;
    if (strcmp(n->op, "and") == 0) return jv_truthy(x) ? eval(R, n->b) : x;
    if (strcmp(n->op, "or") == 0) return jv_truthy(x) ? x : eval(R, n->b);
    const JValue *y = eval(R, n->b);
    if (!y) return NULL;
    char c0 = n->op[0];
    if (c0 == '=' || c0 == '!' || c0 == '<' || c0 == '>' || strcmp(n->op, "in") == 0 || strcmp(n->op, "notin") == 0)
        return compare(R, n->line, n->op, x, y);
    return arithmetic(R, n->line, n->op, x, y);
}

// strftime_now(format): the local time now, as transformers' helper gives it.
static const JValue *strftime_now(Render *R, int line, const JValue *fmt) {
    if (!fmt || fmt->kind != JV_STR) return fail(R, line, "strftime_now needs a format string%s%s", "", "");
    char text[256], *f = jarena_strndup(R->c.arena, fmt->s, fmt->len);
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    size_t n = strftime(text, sizeof text, f, &tm);
    return jv_str(&R->c, text, n);
}

static const JValue *call(Render *R, const JNode *n) {
    const JValue *args[16];
    int n_args = n->n_items;
    if (n_args > 16) return fail(R, n->line, "too many arguments%s%s", "", "");
    for (int k = 0; k < n_args; k++)
        if (!(args[k] = eval(R, n->items[k]))) return NULL;
    if (n->a->kind == JN_GETATTR) {  // a method: s.strip(), d.items(), ...
        const JValue *obj = eval(R, n->a->a);
        if (!obj) return NULL;
        if (obj->kind == JV_STR || obj->kind == JV_DICT || obj->kind == JV_LIST)
            return jinja_method(&R->c, n->line, obj, n->a->name, args, n_args);
    }
    const JValue *f = eval(R, n->a);
    if (!f) return NULL;
    if (f->kind != JV_FUNC) return fail(R, n->line, "%s is not callable (a %s)", n->a->name ? n->a->name : "this", jv_kind_name(f));
    if (strcmp(f->s, "raise_exception") == 0) {
        const JValue *msg = n_args ? jv_to_string(&R->c, args[0]) : jv_cstr(&R->c, "");
        return fail(R, n->line, "the chat template refuses this conversation: %s", jarena_strndup(R->c.arena, msg->s, msg->len), "");
    }
    if (strcmp(f->s, "strftime_now") == 0) return strftime_now(R, n->line, n_args ? args[0] : NULL);
    if (strcmp(f->s, "namespace") == 0 || strcmp(f->s, "dict") == 0) {
        JValue *ns = jv_dict(&R->c, f->s[0] == 'n' ? JV_NAMESPACE : JV_DICT);
        for (int k = 0; k < n_args; k++) {
            if (!n->names[k]) return fail(R, n->line, "%s() takes only name=value arguments%s", f->s, "");
            jv_dict_set(&R->c, ns, n->names[k], args[k]);
        }
        return ns;
    }
    // range(stop) / range(start, stop[, step])
    long long p[3] = {0, 0, 1};
    for (int k = 0; k < n_args && k < 3; k++)
        if (!as_index(args[k], &p[k])) return fail(R, n->line, "range() needs integers%s%s", "", "");
    long long start = n_args >= 2 ? p[0] : 0, stop = n_args >= 2 ? p[1] : p[0], step = n_args == 3 ? p[2] : 1;
    if (step == 0) return fail(R, n->line, "range() step cannot be zero%s%s", "", "");
    long long count = step > 0 ? (stop - start + step - 1) / step : (start - stop - step - 1) / -step;
    if (count > JINJA_MAX_RANGE) return fail(R, n->line, "range() of more than a million numbers%s%s", "", "");
    JValue *list = jv_list(&R->c, 4);
    for (long long i = start; step > 0 ? i < stop : i > stop; i += step) jv_list_push(&R->c, list, jv_int(&R->c, i));
    return list;
}

static const JValue *eval_node(Render *R, const JNode *n);

static const JValue *eval(Render *R, const JNode *n) {
    if (++R->depth > JINJA_MAX_EVAL_DEPTH) {
        R->depth--;
        return fail(R, n->line, "the expression nests too deeply%s%s", "", "");
    }
    const JValue *v = eval_node(R, n);
    R->depth--;
    return v;
}

static const JValue *eval_node(Render *R, const JNode *n) {
    switch (n->kind) {
    case JN_LITERAL: return n->value;
    case JN_NAME: return lookup(R, n->name);
    case JN_GETATTR: {
        const JValue *obj = eval(R, n->a);
        return obj ? get_item(R, n->line, obj, jv_cstr(&R->c, n->name), n->name) : NULL;
    }
    case JN_GETITEM: {
        const JValue *obj = eval(R, n->a), *key = obj ? eval(R, n->b) : NULL;
        return key ? get_item(R, n->line, obj, key, NULL) : NULL;
    }
    case JN_SLICE: return slice(R, n);
    case JN_CALL: return call(R, n);
    case JN_FILTER: case JN_TEST: {
        const JValue *v = eval(R, n->a), *args[16];
        if (!v || n->n_items > 16) return v ? fail(R, n->line, "too many arguments%s%s", "", "") : NULL;
        for (int k = 0; k < n->n_items; k++)
            if (!(args[k] = eval(R, n->items[k]))) return NULL;
        if (n->kind == JN_FILTER) return jinja_filter(&R->c, n->line, n->name, v, args, n->names, n->n_items);
        int r = jinja_test(&R->c, n->line, n->name, v, args, n->n_items);
        return r < 0 ? NULL : jv_bool(r);
    }
    case JN_UNARY: {
        const JValue *v = eval(R, n->a);
        if (!v) return NULL;
        if (n->op[0] == 'n') return jv_bool(!jv_truthy(v));
        if (n->op[0] == '+') return v;
        if (v->kind == JV_INT) return jv_int(&R->c, -v->i);
        if (v->kind == JV_FLOAT) return jv_float(&R->c, -v->f);
        return fail(R, n->line, "bad operand type for unary -: %s%s", jv_kind_name(v), "");
    }
    case JN_BINARY: return binary(R, n);
    case JN_COND: {
        const JValue *cond = eval(R, n->a);
        if (!cond) return NULL;
        if (jv_truthy(cond)) return eval(R, n->b);
        return n->c ? eval(R, n->c) : jv_undefined(&R->c, "the else branch");
    }
    case JN_LIST: {
        JValue *list = jv_list(&R->c, n->n_items);
        for (int k = 0; k < n->n_items; k++) {
            const JValue *v = eval(R, n->items[k]);
            if (!v) return NULL;
            jv_list_push(&R->c, list, v);
        }
        return list;
    }
    case JN_DICT: {
        JValue *dict = jv_dict(&R->c, JV_DICT);
        for (int k = 0; k + 1 < n->n_items; k += 2) {
            const JValue *key = eval(R, n->items[k]), *v = key ? eval(R, n->items[k + 1]) : NULL;
            if (!v) return NULL;
            if (key->kind != JV_STR) return fail(R, n->line, "dict keys must be strings here%s%s", "", "");
            jv_dict_set(&R->c, dict, jarena_strndup(R->c.arena, key->s, key->len), v);
        }
        return dict;
    }
    default: return fail(R, n->line, "not an expression%s%s", "", "");
    }
}

static int exec(Render *R, const JNode *n);

// 0, -1 + error, or LOOP_BREAK / LOOP_CONTINUE on their way up to the loop they end.
enum { LOOP_BREAK = 1, LOOP_CONTINUE = 2 };

static int exec_block(Render *R, const JNode *block) {
    for (int k = 0; k < block->n_items; k++) {
        int rc = exec(R, block->items[k]);
        if (rc != 0) return rc;
    }
    return 0;
}

// The items a for loop walks: a list's items, a dict's keys, a string's characters.
static const JValue *iterable(Render *R, int line, const JValue *v) {
    if (v->kind == JV_LIST || v->kind == JV_UNDEFINED) return v->kind == JV_LIST ? v : jv_list(&R->c, 1);
    JValue *list = jv_list(&R->c, v->n + 1);
    if (v->kind == JV_DICT)
        for (int k = 0; k < v->n; k++) jv_list_push(&R->c, list, jv_cstr(&R->c, v->pairs[k].key));
    else if (v->kind == JV_STR) {
        size_t n;
        const size_t *off = jv_char_offsets(&R->c, v, &n);
        for (size_t k = 0; k < n; k++) jv_list_push(&R->c, list, jv_substr(&R->c, v, off[k], off[k + 1] - off[k]));
    } else
        return fail(R, line, "a %s is not iterable%s", jv_kind_name(v), "");
    return list;
}

static int bind_targets(Render *R, const JNode *n, const JValue *item) {
    if (n->n_names == 1) {
        jv_dict_set(&R->c, R->frame->vars, n->names[0], item);
        return 0;
    }
    if (item->kind != JV_LIST || item->n != n->n_names)
        return fail(R, n->line, "cannot unpack a %s into %s loop variables", jv_kind_name(item), n->n_names == 2 ? "two" : "several"), -1;
    for (int k = 0; k < n->n_names; k++) jv_dict_set(&R->c, R->frame->vars, n->names[k], item->list[k]);
    return 0;
}

static int exec_for(Render *R, const JNode *n) {
    const JValue *source = eval(R, n->a);
    if (!source || !(source = iterable(R, n->line, source))) return -1;
    Frame frame = {jv_dict(&R->c, JV_DICT), R->frame};
    R->frame = &frame;
    int rc = 0;
    JValue *items = jv_list(&R->c, source->n);  // after the loop's `if` filter: loop.* counts these
    for (int k = 0; k < source->n && rc == 0; k++) {
        rc = bind_targets(R, n, source->list[k]);
        const JValue *keep = rc == 0 && n->c ? eval(R, n->c) : jv_bool(1);
        if (!keep) rc = -1;
        else if (jv_truthy(keep)) jv_list_push(&R->c, items, source->list[k]);
    }
    for (int k = 0; k < items->n && rc == 0; k++) {
        JValue *loop = jv_dict(&R->c, JV_DICT);
        jv_dict_set(&R->c, loop, "index", jv_int(&R->c, k + 1));
        jv_dict_set(&R->c, loop, "index0", jv_int(&R->c, k));
        jv_dict_set(&R->c, loop, "revindex", jv_int(&R->c, items->n - k));
        jv_dict_set(&R->c, loop, "revindex0", jv_int(&R->c, items->n - k - 1));
        jv_dict_set(&R->c, loop, "first", jv_bool(k == 0));
        jv_dict_set(&R->c, loop, "last", jv_bool(k == items->n - 1));
        jv_dict_set(&R->c, loop, "length", jv_int(&R->c, items->n));
        jv_dict_set(&R->c, loop, "previtem", k ? items->list[k - 1] : jv_undefined(&R->c, "loop.previtem"));
        jv_dict_set(&R->c, loop, "nextitem", k + 1 < items->n ? items->list[k + 1] : jv_undefined(&R->c, "loop.nextitem"));
        jv_dict_set(&R->c, frame.vars, "loop", loop);
        rc = bind_targets(R, n, items->list[k]);
        if (rc == 0) rc = exec_block(R, n->b);
        if (rc == LOOP_CONTINUE) rc = 0;
        if (rc == LOOP_BREAK) {
            rc = 0;
            break;
        }
    }
    if (rc == 0 && items->n == 0 && n->else_body) rc = exec_block(R, n->else_body);
    R->frame = frame.parent;
    return rc;
}

static int exec_node(Render *R, const JNode *n);

static int exec(Render *R, const JNode *n) {
    if (R->c.arena->used + R->len > JINJA_MAX_BYTES)
        return fail(R, n->line, "the rendering holds more than 64 MiB (a string grown in a loop?)%s%s", "", ""), -1;
    return exec_node(R, n);
}

static int exec_node(Render *R, const JNode *n) {
    switch (n->kind) {
    case JN_TEXT: {
        JValue text = {.kind = JV_STR, .s = n->text, .len = n->text_len};
        emit(R, &text);
        return 0;
    }
    case JN_OUTPUT: {
        const JValue *v = eval(R, n->a);
        if (!v) return -1;
        if (v->kind != JV_UNDEFINED) emit(R, jv_to_string(&R->c, v));
        return 0;
    }
    case JN_IF: {
        const JValue *cond = eval(R, n->a);
        if (!cond) return -1;
        const JNode *branch = jv_truthy(cond) ? n->b : n->c;
        if (!branch) return 0;
        return branch->kind == JN_IF ? exec(R, branch) : exec_block(R, branch);
    }
    case JN_FOR: return exec_for(R, n);
    case JN_SET: {
        const JValue *v = eval(R, n->a);
        if (!v) return -1;
        if (n->n_names == 1) {
            jv_dict_set(&R->c, R->frame->vars, n->names[0], v);
            return 0;
        }
        const JValue *ns = lookup(R, n->names[0]);
        if (ns->kind != JV_NAMESPACE)
            return fail(R, n->line, "'set %s.…' needs a namespace(), and '%s' is not one", n->names[0], n->names[0]), -1;
        jv_dict_set(&R->c, (JValue *)ns, n->names[1], v);
        return 0;
    }
    case JN_BLOCK: return exec_block(R, n);
    case JN_BREAK: return LOOP_BREAK;
    case JN_CONTINUE: return LOOP_CONTINUE;
    default: return fail(R, n->line, "not a statement%s%s", "", ""), -1;
    }
}

CtJinja *ct_jinja_parse(const char *source, const char *name) {
    CtJinja *t = ct_calloc(1, sizeof *t);
    t->name = ct_strdup(name);
    JTokens toks = {0};
    // The tree's text nodes point into the source: it lives in the template's arena, not the caller's.
    const char *own = jarena_strndup(&t->arena, source, strlen(source));
    if (jinja_lex(&t->arena, own, t->name, &toks) != 0 || !(t->root = jinja_parse(&t->arena, &toks, t->name))) {
        ct_jinja_free(t);
        return NULL;
    }
    return t;
}

void ct_jinja_free(CtJinja *t) {
    if (!t) return;
    jarena_free(&t->arena);
    ct_free(t->name);
    ct_free(t);
}

static void set_global(Render *R, const char *name, const JValue *v) { jv_dict_set(&R->c, R->globals, name, v); }

static JValue *func(Render *R, const char *name) {
    JValue *f = jarena_alloc(R->c.arena, sizeof *f);
    f->kind = JV_FUNC;
    f->s = name;
    return f;
}

int ct_jinja_render(const CtJinja *t, const CtJinjaInput *in, CtJinjaOutput *out) {
    memset(out, 0, sizeof *out);
    JArena arena = {0};
    Render R = {.c = {.arena = &arena, .name = t->name}};
    R.globals = jv_dict(&R.c, JV_DICT);
    JValue *messages = jv_list(&R.c, in->n_messages);
    for (int k = 0; k < in->n_messages; k++) {
        JValue *m = jv_dict(&R.c, JV_DICT);
        JValue *content = (JValue *)jv_str(&R.c, in->messages[k].content, in->messages[k].content_len);
        JSpan *span = jarena_alloc(&arena, sizeof *span);
        *span = (JSpan){0, content->len, k};
        content->spans = span;
        content->n_spans = 1;
        jv_dict_set(&R.c, m, "role", jv_cstr(&R.c, in->messages[k].role));
        jv_dict_set(&R.c, m, "content", content);
        jv_list_push(&R.c, messages, m);
    }
    set_global(&R, "messages", messages);
    set_global(&R, "add_generation_prompt", jv_bool(in->add_generation_prompt));
    set_global(&R, "tools", jv_none());  // transformers passes tools=None and documents=None
    set_global(&R, "documents", jv_none());
    if (in->bos_token) set_global(&R, "bos_token", jv_cstr(&R.c, in->bos_token));
    if (in->eos_token) set_global(&R, "eos_token", jv_cstr(&R.c, in->eos_token));
    static const char *const funcs[] = {"raise_exception", "namespace", "strftime_now", "range", "dict"};
    for (int k = 0; k < 5; k++) set_global(&R, funcs[k], func(&R, funcs[k]));
    Frame top = {jv_dict(&R.c, JV_DICT), NULL};
    R.frame = &top;
    int rc = exec_block(&R, t->root);
    if (rc > 0) rc = ct_error_set("%s: '%s' outside a for loop", t->name, rc == LOOP_BREAK ? "break" : "continue");
    if (rc == 0) {
        out->text = R.out ? R.out : ct_calloc(1, 1);
        out->len = R.len;
        out->spans = ct_calloc((size_t)R.n_spans + 1, sizeof *out->spans);
        for (int k = 0; k < R.n_spans; k++) out->spans[k] = (CtJinjaSpan){R.spans[k].off, R.spans[k].len, R.spans[k].message};
        out->n_spans = R.n_spans;
    } else {
        ct_free(R.out);
    }
    ct_free(R.spans);
    jarena_free(&arena);
    return rc;
}

void ct_jinja_output_free(CtJinjaOutput *out) {
    ct_free(out->text);
    ct_free(out->spans);
    memset(out, 0, sizeof *out);
}
