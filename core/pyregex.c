// Python regular expressions for whole-string matching, through POSIX regex. See pyregex.h.
#include "core/pyregex.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

typedef struct {
    char *s;
    size_t len;
} Out;

static void put(Out *o, const char *text) {
    size_t n = strlen(text);
    memcpy(o->s + o->len, text, n);
    o->len += n;
    o->s[o->len] = '\0';
}

static void put_char(Out *o, char c) {
    o->s[o->len++] = c;
    o->s[o->len] = '\0';
}

// The class shorthands (\d \w \s) as sets of ASCII characters.
static int class_shorthand(char c, unsigned char set[128]) {
    for (int i = 1; i < 128; i++) {
        int digit = i >= '0' && i <= '9', alpha = (i >= 'a' && i <= 'z') || (i >= 'A' && i <= 'Z');
        int space = i == ' ' || (i >= '\t' && i <= '\r');
        int in = c == 'd' || c == 'D' ? digit : c == 'w' || c == 'W' ? digit || alpha || i == '_' : space;
        if (c >= 'A' && c <= 'Z') in = !in;  // \D \W \S
        if (in) set[i] = 1;
    }
    return 0;
}

static int is_shorthand(char c) { return c && strchr("dDwWsS", c) != NULL; }

// The character a simple escape stands for (\n, \t, ...), or the character itself.
static char escaped_char(char c) {
    switch (c) {
    case 'n': return '\n';
    case 't': return '\t';
    case 'r': return '\r';
    case 'f': return '\f';
    case 'v': return '\v';
    default: return c;
    }
}

static int unsupported(const char *pattern, const char *what) {
    return ct_error_set("regular expression '%s': %s is not supported (ctrain matches module names with literals, "
                        ".,  [...], groups, |, quantifiers, \\d \\w \\s, ^ and $)", pattern, what);
}

// A Python character class starting after '[' at *pp, written as a POSIX bracket expression
// from the set of characters it holds (POSIX brackets read backslashes literally).
static int translate_class(const char *pattern, const char **pp, Out *o) {
    const char *p = *pp;
    unsigned char set[128] = {0};
    int negate = 0, first = 1;
    if (*p == '^') negate = 1, p++;
    for (;; first = 0) {
        if (!*p) return ct_error_set("regular expression '%s': '[' without its ']'", pattern);
        if (*p == ']' && !first) break;
        int lo;
        if (*p == '\\') {
            p++;
            if (is_shorthand(*p)) {
                class_shorthand(*p++, set);
                continue;
            }
            if (!*p) return ct_error_set("regular expression '%s': ends with a backslash", pattern);
            lo = (unsigned char)escaped_char(*p++);
        } else {
            lo = (unsigned char)*p++;
        }
        int hi = lo;
        if (p[0] == '-' && p[1] && p[1] != ']') {
            p++;
            if (*p == '\\') {
                p++;
                if (!*p || is_shorthand(*p)) return unsupported(pattern, "a range ending in a class shorthand");
                hi = (unsigned char)escaped_char(*p++);
            } else {
                hi = (unsigned char)*p++;
            }
        }
        if (lo >= 128 || hi >= 128) return unsupported(pattern, "a non-ASCII character");
        if (hi < lo) return ct_error_set("regular expression '%s': bad character range", pattern);
        for (int c = lo; c <= hi; c++) set[c] = 1;
    }
    *pp = p + 1;
    set[0] = 0;
    int count = 0;
    for (int c = 1; c < 128; c++) count += set[c];
    if (count == 0) return unsupported(pattern, "an empty character class");
    if (!negate && count == 1 && set['^']) return put(o, "\\^"), 0;
    // ']' first, '^' not first, '-' last: the places where POSIX reads them literally
    put_char(o, '[');
    if (negate) put_char(o, '^');
    if (set[']']) put_char(o, ']');
    for (int c = 1; c < 128; c++)
        if (set[c] && c != ']' && c != '^' && c != '-') put_char(o, (char)c);
    if (set['^']) put_char(o, '^');
    if (set['-']) put_char(o, '-');
    put_char(o, ']');
    return 0;
}

// {m}, {m,}, {,n} or {m,n} at p (p at '{'): its length, 0 when Python reads the '{' literally.
static size_t quantifier_length(const char *p, int *has_min) {
    const char *q = p + 1;
    size_t digits = strspn(q, "0123456789");
    *has_min = digits > 0;
    q += digits;
    if (*q == '}') return digits ? (size_t)(q - p + 1) : 0;
    if (*q != ',') return 0;
    q++;
    size_t digits2 = strspn(q, "0123456789");
    q += digits2;
    if (*q != '}' || (!digits && !digits2)) return 0;
    return (size_t)(q - p + 1);
}

static int translate(const char *pattern, Out *o) {
    put(o, "^(");
    for (const char *p = pattern; *p;) {
        unsigned char c = (unsigned char)*p;
        if (c >= 128) return unsupported(pattern, "a non-ASCII character");
        if (c == '\\') {
            char e = p[1];
            if (!e) return ct_error_set("regular expression '%s': ends with a backslash", pattern);
            p += 2;
            if (is_shorthand(e)) {  // as a class of its own: \d is [\d]
                char cls[4] = {'\\', e, ']', '\0'};
                const char *q = cls;
                if (translate_class(pattern, &q, o) != 0) return -1;
                continue;
            }
            if ((e >= '0' && e <= '9') || (e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z')) {
                if (strchr("ntrfv", e)) {
                    put_char(o, escaped_char(e));
                    continue;
                }
                char what[32];
                snprintf(what, sizeof what, "'\\%c'", e);
                return unsupported(pattern, what);
            }
            if (strchr(".[]()*+?{}|^$\\", e)) put_char(o, '\\');
            put_char(o, e);
            continue;
        }
        if (c == '[') {
            p++;
            if (translate_class(pattern, &p, o) != 0) return -1;
            continue;
        }
        if (c == '(') {
            if (p[1] != '?') {
                put_char(o, '(');
                p++;
                continue;
            }
            if (p[2] == ':') {
                p += 3;
            } else if (p[2] == 'P' && p[3] == '<') {
                const char *end = strchr(p, '>');
                if (!end) return ct_error_set("regular expression '%s': unterminated group name", pattern);
                p = end + 1;
            } else {
                return unsupported(pattern, p[2] == '=' || p[2] == '!' || p[2] == '<' ? "a look-around (?=, (?!, (?<"
                                                                                      : "a '(?' extension");
            }
            put_char(o, '(');
            continue;
        }
        if (c == '*' || c == '+' || c == '?') {
            put_char(o, (char)c);
            p++;
            if (*p == '?') p++;  // lazy: the same language
            else if (*p == '+') return unsupported(pattern, "a possessive quantifier");
            continue;
        }
        if (c == '{') {
            int has_min;
            size_t n = quantifier_length(p, &has_min);
            if (!n) {
                put(o, "\\{");
                p++;
                continue;
            }
            put_char(o, '{');
            if (!has_min) put_char(o, '0');
            for (size_t i = 1; i < n; i++) put_char(o, p[i]);
            p += n;
            if (*p == '?') p++;
            continue;
        }
        if (c == '}') {
            put(o, "\\}");
            p++;
            continue;
        }
        put_char(o, (char)c);
        p++;
    }
    put(o, ")$");
    return 0;
}

int ct_pyregex_compile(CtPyRegex *re, const char *pattern) {
    memset(re, 0, sizeof *re);
    // a class may print up to 130 characters for the two of "\\W"
    Out o = {ct_alloc(strlen(pattern) * 80 + 160), 0};
    o.s[0] = '\0';
    int rc = translate(pattern, &o);
    if (rc == 0) {
        int err = regcomp(&re->compiled, o.s, REG_EXTENDED | REG_NOSUB);
        if (err) {
            char msg[128];
            regerror(err, &re->compiled, msg, sizeof msg);
            rc = ct_error_set("regular expression '%s': %s", pattern, msg);
        } else {
            re->ok = 1;
        }
    }
    ct_free(o.s);
    return rc;
}

int ct_pyregex_fullmatch(const CtPyRegex *re, const char *text) {
    return re->ok && regexec(&re->compiled, text, 0, NULL, 0) == 0;
}

void ct_pyregex_free(CtPyRegex *re) {
    if (re->ok) regfree(&re->compiled);
    re->ok = 0;
}

int ct_pyregex_fullmatch_once(const char *pattern, const char *text, int *match) {
    CtPyRegex re;
    if (ct_pyregex_compile(&re, pattern) != 0) return -1;
    *match = ct_pyregex_fullmatch(&re, text);
    ct_pyregex_free(&re);
    return 0;
}
