// Jinja's filters and tests and Python's string and dict methods, the ones chat templates use,
// with the semantics transformers' environment gives them (tojson is json.dumps with
// ensure_ascii off; trim is str.strip). Strings cut from a message's content keep knowing it
// (jv_substr), so trim, strip and split do not lose the loss mask's spans.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/examples/jinja_internal.h"

static const JValue *fail(JCtx *c, int line, const char *fmt, const char *a, const char *b) {
    char what[512];
    snprintf(what, sizeof what, fmt, a, b);
    ct_error_set("%s line %d: %s", c->name, line, what);
    return NULL;
}

// The length of the character at s[at] when it is one to strip: in `chars` (compared as whole
// UTF-8 characters), or Python's whitespace without chars. 0 otherwise.
static size_t strippable_at(const char *s, size_t len, size_t at, const JValue *chars) {
    if (!chars) return jv_space_at(s, len, at);
    size_t n = 1;
    while (at + n < len && ((unsigned char)s[at + n] & 0xC0) == 0x80) n++;
    for (size_t k = 0; k + n <= chars->len; k++)
        if (memcmp(chars->s + k, s + at, n) == 0 && (k + n == chars->len || ((unsigned char)chars->s[k + n] & 0xC0) != 0x80))
            return n;
    return 0;
}

// The same for the character that ends at s[end].
static size_t strippable_before(const char *s, size_t from, size_t end, const JValue *chars) {
    size_t start = end - 1;
    while (start > from && ((unsigned char)s[start] & 0xC0) == 0x80) start--;
    if (!chars) return jv_space_before(s, end) == end - start ? end - start : 0;
    return strippable_at(s, end, start, chars) == end - start ? end - start : 0;
}

// str.strip/lstrip/rstrip(chars): which = 'b'oth, 'l'eft, 'r'ight.
static const JValue *strip(JCtx *c, const JValue *s, const JValue *chars, char which) {
    size_t from = 0, to = s->len, n;
    if (which != 'r')
        while (from < to && (n = strippable_at(s->s, to, from, chars))) from += n;
    if (which != 'l')
        while (to > from && (n = strippable_before(s->s, from, to, chars))) to -= n;
    return jv_substr(c, s, from, to - from);
}

static long long utf8_length(const JValue *s) {
    long long n = 0;
    for (size_t k = 0; k < s->len; k++) n += ((unsigned char)s->s[k] & 0xC0) != 0x80;
    return n;
}

static const JValue *change_case(JCtx *c, const JValue *s, char how) {
    char *t = jarena_strndup(c->arena, s->s, s->len);
    int start = 1;
    for (size_t k = 0; k < s->len; k++) {
        char ch = t[k];
        int upper = how == 'u' || ((how == 'c' && k == 0) || (how == 't' && start));
        if (ch >= 'a' && ch <= 'z' && upper) t[k] = (char)(ch - 32);
        else if (ch >= 'A' && ch <= 'Z' && !upper) t[k] = (char)(ch + 32);
        start = !((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'));
    }
    return jv_str(c, t, s->len);
}

static const JValue *replace(JCtx *c, const JValue *s, const JValue *old, const JValue *new_) {
    if (old->len == 0) return s;
    const JValue *r = jv_cstr(c, "");
    size_t at = 0;
    for (;;) {
        const char *hit = memmem(s->s + at, s->len - at, old->s, old->len);
        size_t end = hit ? (size_t)(hit - s->s) : s->len;
        r = jv_concat(c, r, jv_substr(c, s, at, end - at));
        if (!hit) return r;
        r = jv_concat(c, r, new_);
        at = end + old->len;
    }
}

// str.split(sep=None, maxsplit=-1).
static const JValue *split(JCtx *c, const JValue *s, const JValue *sep, long long maxsplit) {
    JValue *parts = jv_list(c, 4);
    size_t at = 0;
    if (!sep || sep->kind == JV_NONE) {  // runs of Python's whitespace
        size_t n;
        for (;;) {
            while (at < s->len && (n = jv_space_at(s->s, s->len, at))) at += n;
            if (at == s->len) return parts;
            size_t end = at;
            if (maxsplit >= 0 && parts->n == maxsplit) {
                jv_list_push(c, parts, strip(c, jv_substr(c, s, at, s->len - at), NULL, 'r'));
                return parts;
            }
            while (end < s->len && !jv_space_at(s->s, s->len, end)) end++;
            jv_list_push(c, parts, jv_substr(c, s, at, end - at));
            at = end;
        }
    }
    if (sep->len == 0) return NULL;
    for (;;) {
        const char *hit = maxsplit >= 0 && parts->n == maxsplit ? NULL : memmem(s->s + at, s->len - at, sep->s, sep->len);
        size_t end = hit ? (size_t)(hit - s->s) : s->len;
        jv_list_push(c, parts, jv_substr(c, s, at, end - at));
        if (!hit) return parts;
        at = end + sep->len;
    }
}

static int starts_or_ends(const JValue *s, const JValue *affix, int ends) {
    if (affix->kind == JV_LIST) {
        for (int k = 0; k < affix->n; k++)
            if (starts_or_ends(s, affix->list[k], ends)) return 1;
        return 0;
    }
    if (affix->kind != JV_STR || affix->len > s->len) return 0;
    return memcmp(ends ? s->s + s->len - affix->len : s->s, affix->s, affix->len) == 0;
}

static const JValue *items_of(JCtx *c, const JValue *d) {
    JValue *list = jv_list(c, d->n);
    for (int k = 0; k < d->n; k++) {
        JValue *pair = jv_list(c, 2);
        jv_list_push(c, pair, jv_cstr(c, d->pairs[k].key));
        jv_list_push(c, pair, d->pairs[k].value);
        jv_list_push(c, list, pair);
    }
    return list;
}

static const JValue *string_method(JCtx *c, int line, const JValue *s, const char *name, const JValue **args, int n_args) {
    const JValue *a0 = n_args > 0 ? args[0] : NULL;
    if (a0 && a0->kind == JV_NONE) a0 = NULL;
    if (a0 && a0->kind != JV_STR && strcmp(name, "startswith") && strcmp(name, "endswith") && strcmp(name, "split"))
        return fail(c, line, "str.%s() needs a string argument%s", name, "");
    if (strcmp(name, "strip") == 0) return strip(c, s, a0, 'b');
    if (strcmp(name, "lstrip") == 0) return strip(c, s, a0, 'l');
    if (strcmp(name, "rstrip") == 0) return strip(c, s, a0, 'r');
    if (strcmp(name, "upper") == 0) return change_case(c, s, 'u');
    if (strcmp(name, "lower") == 0) return change_case(c, s, 'l');
    if (strcmp(name, "title") == 0) return change_case(c, s, 't');
    if (strcmp(name, "capitalize") == 0) return change_case(c, s, 'c');
    if ((strcmp(name, "startswith") == 0 || strcmp(name, "endswith") == 0) && a0)
        return jv_bool(starts_or_ends(s, a0, name[0] == 'e'));
    if (strcmp(name, "split") == 0) {
        if (a0 && a0->kind != JV_STR) return fail(c, line, "str.split() needs a string separator%s%s", "", "");
        long long maxsplit = n_args > 1 && args[1]->kind == JV_INT ? args[1]->i : -1;
        const JValue *r = split(c, s, a0, maxsplit);
        return r ? r : fail(c, line, "str.split(): empty separator%s%s", "", "");
    }
    if (strcmp(name, "replace") == 0 && n_args == 2 && args[1]->kind == JV_STR) return replace(c, s, a0, args[1]);
    if (strcmp(name, "find") == 0 && a0) {
        const char *hit = memmem(s->s, s->len, a0->s, a0->len);
        return jv_int(c, hit ? (long long)(hit - s->s) : -1);
    }
    if (strcmp(name, "count") == 0 && a0 && a0->len) {
        long long n = 0;
        for (const char *p = s->s, *hit; (hit = memmem(p, s->len - (size_t)(p - s->s), a0->s, a0->len)); p = hit + a0->len) n++;
        return jv_int(c, n);
    }
    return fail(c, line, "unsupported string method '%s' (or its arguments)%s", name, "");
}

const JValue *jinja_method(JCtx *c, int line, const JValue *obj, const char *name, const JValue **args, int n_args) {
    if (obj->kind == JV_STR) return string_method(c, line, obj, name, args, n_args);
    if (obj->kind == JV_DICT) {
        if (strcmp(name, "items") == 0) return items_of(c, obj);
        if (strcmp(name, "keys") == 0 || strcmp(name, "values") == 0) {
            JValue *list = jv_list(c, obj->n);
            for (int k = 0; k < obj->n; k++)
                jv_list_push(c, list, name[0] == 'k' ? jv_cstr(c, obj->pairs[k].key) : obj->pairs[k].value);
            return list;
        }
        if (strcmp(name, "get") == 0 && n_args >= 1 && args[0]->kind == JV_STR) {
            const JValue *v = jv_dict_get(obj, args[0]->s, args[0]->len);
            return v ? v : n_args > 1 ? args[1] : jv_none();
        }
    }
    return fail(c, line, "unsupported method '%s' of a %s", name, jv_kind_name(obj));
}

int jinja_test(JCtx *c, int line, const char *name, const JValue *v, const JValue **args, int n_args) {
    JValueKind k = v->kind;
    if (strcmp(name, "defined") == 0) return k != JV_UNDEFINED;
    if (strcmp(name, "undefined") == 0) return k == JV_UNDEFINED;
    if (strcmp(name, "none") == 0) return k == JV_NONE;
    if (strcmp(name, "string") == 0) return k == JV_STR;
    if (strcmp(name, "number") == 0) return k == JV_INT || k == JV_FLOAT;
    if (strcmp(name, "integer") == 0) return k == JV_INT;
    if (strcmp(name, "float") == 0) return k == JV_FLOAT;
    if (strcmp(name, "boolean") == 0) return k == JV_BOOL;
    if (strcmp(name, "true") == 0) return k == JV_BOOL && v->b;
    if (strcmp(name, "false") == 0) return k == JV_BOOL && !v->b;
    if (strcmp(name, "mapping") == 0) return k == JV_DICT;
    if (strcmp(name, "iterable") == 0) return k == JV_LIST || k == JV_DICT || k == JV_STR;
    if (strcmp(name, "sequence") == 0) return k == JV_LIST || k == JV_DICT || k == JV_STR;
    if (strcmp(name, "callable") == 0) return k == JV_FUNC;
    if (strcmp(name, "lower") == 0 || strcmp(name, "upper") == 0) {
        if (k != JV_STR) return 0;
        for (size_t i = 0; i < v->len; i++)
            if (name[0] == 'l' ? (v->s[i] >= 'A' && v->s[i] <= 'Z') : (v->s[i] >= 'a' && v->s[i] <= 'z')) return 0;
        return 1;
    }
    if ((strcmp(name, "odd") == 0 || strcmp(name, "even") == 0) && k == JV_INT) return (int)((v->i & 1) == (name[0] == 'o'));
    if (n_args == 1) {
        if (strcmp(name, "equalto") == 0 || strcmp(name, "eq") == 0 || strcmp(name, "sameas") == 0) return jv_equal(v, args[0]);
        if (strcmp(name, "ne") == 0) return !jv_equal(v, args[0]);
        if (strcmp(name, "divisibleby") == 0 && k == JV_INT && args[0]->kind == JV_INT && args[0]->i)
            return v->i % args[0]->i == 0;
        if (strcmp(name, "in") == 0) {
            const JValue *hay = args[0];
            if (hay->kind == JV_LIST) {
                for (int i = 0; i < hay->n; i++)
                    if (jv_equal(v, hay->list[i])) return 1;
                return 0;
            }
            if (hay->kind == JV_STR && k == JV_STR) return memmem(hay->s, hay->len, v->s, v->len) != NULL;
            if (hay->kind == JV_DICT && k == JV_STR) return jv_dict_get(hay, v->s, v->len) != NULL;
        }
    }
    fail(c, line, "unsupported test '%s'%s", name, n_args ? " (or its arguments)" : "");
    return -1;
}

// select/reject/selectattr/rejectattr: the items for which the test (default: truth) holds or not.
static const JValue *select_items(JCtx *c, int line, const char *filter, const JValue *v, const JValue **args, int n_args) {
    int by_attr = strstr(filter, "attr") != NULL, keep_if = filter[0] == 's';
    if (v->kind != JV_LIST) return fail(c, line, "%s needs a list, not a %s", filter, jv_kind_name(v));
    if (by_attr && (n_args < 1 || args[0]->kind != JV_STR)) return fail(c, line, "%s needs an attribute name%s", filter, "");
    int first = by_attr ? 1 : 0;
    const char *test = n_args > first && args[first]->kind == JV_STR ? jarena_strndup(c->arena, args[first]->s, args[first]->len) : NULL;
    JValue *out = jv_list(c, v->n);
    for (int k = 0; k < v->n; k++) {
        const JValue *item = v->list[k];
        if (by_attr) {
            const JValue *field = item->kind == JV_DICT ? jv_dict_get(item, args[0]->s, args[0]->len) : NULL;
            item = field ? field : jv_undefined(c, args[0]->s);
        }
        int r = test ? jinja_test(c, line, test, item, args + first + 1, n_args - first - 1) : jv_truthy(item);
        if (r < 0) return NULL;
        if (r == keep_if) jv_list_push(c, out, v->list[k]);
    }
    return out;
}

static const JValue *join(JCtx *c, int line, const JValue *v, const JValue *sep) {
    if (v->kind == JV_STR || v->kind == JV_UNDEFINED) return v->kind == JV_STR ? v : jv_cstr(c, "");
    if (v->kind != JV_LIST) return fail(c, line, "join needs a list, not a %s%s", jv_kind_name(v), "");
    const JValue *r = jv_cstr(c, "");
    for (int k = 0; k < v->n; k++) {
        if (k && sep) r = jv_concat(c, r, sep);
        r = jv_concat(c, r, jv_to_string(c, v->list[k]));
    }
    return r;
}

static const JValue *named_arg(const char *name, const JValue **args, const char **arg_names, int n_args, int position) {
    for (int k = 0; k < n_args; k++)
        if (arg_names && arg_names[k] && strcmp(arg_names[k], name) == 0) return args[k];
    return position < n_args && (!arg_names || !arg_names[position]) ? args[position] : NULL;
}

const JValue *jinja_filter(JCtx *c, int line, const char *name, const JValue *v, const JValue **args,
                           const char **arg_names, int n_args) {
    const JValue *a0 = n_args ? args[0] : NULL;
    if (strcmp(name, "default") == 0 || strcmp(name, "d") == 0) {
        const JValue *boolean = named_arg("boolean", args, arg_names, n_args, 1);
        int use_default = v->kind == JV_UNDEFINED || (boolean && jv_truthy(boolean) && !jv_truthy(v));
        return use_default ? (a0 ? a0 : jv_cstr(c, "")) : v;
    }
    if (strcmp(name, "length") == 0 || strcmp(name, "count") == 0) {
        if (v->kind == JV_STR) return jv_int(c, utf8_length(v));
        if (v->kind == JV_LIST || v->kind == JV_DICT || v->kind == JV_UNDEFINED) return jv_int(c, v->n);
        return fail(c, line, "a %s has no length%s", jv_kind_name(v), "");
    }
    if (strcmp(name, "tojson") == 0) {
        const JValue *indent = named_arg("indent", args, arg_names, n_args, 0);
        return jv_to_json(c, v, indent && indent->kind == JV_INT ? (int)indent->i : -1);
    }
    if (strcmp(name, "string") == 0) return v->kind == JV_UNDEFINED ? jv_cstr(c, "") : jv_to_string(c, v);
    if (strcmp(name, "safe") == 0) return v;
    if (strcmp(name, "list") == 0) {
        if (v->kind == JV_LIST) return v;
        JValue *list = jv_list(c, 4);
        if (v->kind == JV_STR) {
            size_t n;
            const size_t *off = jv_char_offsets(c, v, &n);
            for (size_t k = 0; k < n; k++) jv_list_push(c, list, jv_substr(c, v, off[k], off[k + 1] - off[k]));
        } else if (v->kind == JV_DICT)
            for (int k = 0; k < v->n; k++) jv_list_push(c, list, jv_cstr(c, v->pairs[k].key));
        else if (v->kind != JV_UNDEFINED) return fail(c, line, "list: a %s is not iterable%s", jv_kind_name(v), "");
        return list;
    }
    if (strcmp(name, "items") == 0) {
        if (v->kind == JV_DICT) return items_of(c, v);
        return v->kind == JV_UNDEFINED ? jv_list(c, 1) : fail(c, line, "items needs a dict, not a %s%s", jv_kind_name(v), "");
    }
    if (strcmp(name, "first") == 0 || strcmp(name, "last") == 0) {
        if (v->kind == JV_LIST) return v->n ? v->list[name[0] == 'f' ? 0 : v->n - 1] : jv_undefined(c, name);
        if (v->kind == JV_STR) {
            size_t n;
            const size_t *off = jv_char_offsets(c, v, &n);
            size_t k = name[0] == 'f' ? 0 : n - 1;
            return n ? jv_substr(c, v, off[k], off[k + 1] - off[k]) : jv_undefined(c, name);
        }
        return fail(c, line, "%s needs a list, not a %s", name, jv_kind_name(v));
    }
    if (strcmp(name, "join") == 0) return join(c, line, v, a0 && a0->kind == JV_STR ? a0 : NULL);
    if (strcmp(name, "select") == 0 || strcmp(name, "reject") == 0 || strcmp(name, "selectattr") == 0 ||
        strcmp(name, "rejectattr") == 0)
        return select_items(c, line, name, v, args, n_args);
    if (strcmp(name, "map") == 0) {
        const JValue *attr = named_arg("attribute", args, arg_names, n_args, 99);
        if (!attr || attr->kind != JV_STR || v->kind != JV_LIST) return fail(c, line, "map supports only map(attribute='name') on a list%s%s", "", "");
        JValue *out = jv_list(c, v->n);
        for (int k = 0; k < v->n; k++) {
            const JValue *field = v->list[k]->kind == JV_DICT ? jv_dict_get(v->list[k], attr->s, attr->len) : NULL;
            jv_list_push(c, out, field ? field : jv_undefined(c, attr->s));
        }
        return out;
    }
    if (strcmp(name, "int") == 0) {
        if (v->kind == JV_INT) return v;
        if (v->kind == JV_FLOAT) return jv_int(c, (long long)v->f);
        if (v->kind == JV_STR) return jv_int(c, strtoll(jarena_strndup(c->arena, v->s, v->len), NULL, 10));
        return jv_int(c, v->kind == JV_BOOL ? v->b : 0);
    }
    if (v->kind == JV_UNDEFINED) v = jv_cstr(c, "");  // string filters read an undefined value as ""
    if (v->kind != JV_STR) v = jv_to_string(c, v);
    if (strcmp(name, "trim") == 0) return strip(c, v, a0 && a0->kind == JV_STR ? a0 : NULL, 'b');
    if (strcmp(name, "upper") == 0) return change_case(c, v, 'u');
    if (strcmp(name, "lower") == 0) return change_case(c, v, 'l');
    if (strcmp(name, "capitalize") == 0) return change_case(c, v, 'c');
    if (strcmp(name, "title") == 0) return change_case(c, v, 't');
    if (strcmp(name, "replace") == 0 && n_args == 2 && a0->kind == JV_STR && args[1]->kind == JV_STR)
        return replace(c, v, a0, args[1]);
    return fail(c, line, "unsupported filter '%s'%s", name, n_args ? " (or its arguments)" : "");
}
