// The Jinja lexer: template text, {{ }}, {% %} and {# #} with whitespace control as
// transformers configures its environment (trim_blocks: the newline after a block or comment
// tag goes; lstrip_blocks: spaces and tabs before one on its line go; '-' strips all whitespace
// on that side, '+' keeps it), and the tokens of expressions inside the tags.
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/examples/jinja_internal.h"

struct JArenaBlock {
    JArenaBlock *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

void *jarena_alloc(JArena *a, size_t size) {
    size = (size + 15) & ~(size_t)15;
    if (!a->head || a->head->used + size > a->head->cap) {
        size_t cap = size > 65536 ? size : 65536;
        JArenaBlock *b = ct_alloc(sizeof *b + cap);
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += size;
    a->used += size;
    memset(p, 0, size);
    return p;
}

char *jarena_strndup(JArena *a, const char *s, size_t n) {
    char *p = jarena_alloc(a, n + 1);
    if (n) memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void jarena_free(JArena *a) {
    for (JArenaBlock *b = a->head, *next; b; b = next) {
        next = b->next;
        ct_free(b);
    }
    a->head = NULL;
}

static void push(JArena *a, JTokens *t, JToken tok) {
    if (t->n == t->cap) {
        int cap = t->cap ? t->cap * 2 : 256;
        JToken *grown = jarena_alloc(a, (size_t)cap * sizeof *grown);
        if (t->n) memcpy(grown, t->toks, (size_t)t->n * sizeof *grown);
        t->toks = grown;
        t->cap = cap;
    }
    t->toks[t->n++] = tok;
}

typedef struct {
    JArena *a;
    const char *src, *name;
    size_t pos;
    int line;
    JTokens *out;
} Lexer;

static int lex_error(const Lexer *L, const char *what) { return ct_error_set("%s line %d: %s", L->name, L->line, what); }

static int count_lines(const char *s, size_t n) {
    int k = 0;
    for (size_t i = 0; i < n; i++) k += s[i] == '\n';
    return k;
}

// A string literal: '...' or "..." with Python's backslash escapes (\n \t \r \\ \' \" \0).
static int lex_string(Lexer *L) {
    char quote = L->src[L->pos++];
    size_t cap = 64, n = 0;
    char *buf = ct_alloc(cap);
    for (;;) {
        char ch = L->src[L->pos];
        if (!ch) {
            ct_free(buf);
            return lex_error(L, "a string literal is not closed");
        }
        L->pos++;
        if (ch == quote) break;
        if (ch == '\n') L->line++;
        if (ch == '\\') {
            char e = L->src[L->pos++];
            switch (e) {
            case 'n': ch = '\n'; break;
            case 't': ch = '\t'; break;
            case 'r': ch = '\r'; break;
            case '0': ch = '\0'; break;
            case '\\': case '\'': case '"': ch = e; break;
            default: ch = '\\'; L->pos--; break;  // Python keeps unknown escapes as they are
            }
        }
        if (n + 1 >= cap) buf = ct_realloc(buf, cap *= 2);
        buf[n++] = ch;
    }
    JToken t = {.kind = JT_STRING, .text = jarena_strndup(L->a, buf, n), .len = n, .line = L->line};
    ct_free(buf);
    push(L->a, L->out, t);
    return 0;
}

static const char *const OPERATORS[] = {"//", "==", "!=", "<=", ">=", "**", "+", "-", "*", "/", "%", "~", "<", ">",
                                        "=", ".", ",", ":", "|", "(", ")", "[", "]", "{", "}"};

// The tokens inside a tag, up to its end ("}}" or "%}", with an optional '-' or '+' before it).
// Returns the position after the end, or 0 + error.
static size_t lex_tag(Lexer *L, const char *end, int *strip_after, int *keep_after) {
    for (;;) {
        const char *p = L->src + L->pos;
        if (!*p) return lex_error(L, "a tag is not closed"), 0;
        if (*p == '\n') L->line++;
        if (isspace((unsigned char)*p)) {
            L->pos++;
            continue;
        }
        if ((p[0] == '-' || p[0] == '+') && strncmp(p + 1, end, 2) == 0) {
            *strip_after = p[0] == '-';
            *keep_after = p[0] == '+';
            return L->pos + 3;
        }
        if (strncmp(p, end, 2) == 0) return L->pos + 2;
        if (*p == '\'' || *p == '"') {
            if (lex_string(L) != 0) return 0;
            continue;
        }
        JToken t = {.line = L->line, .text = p};
        if (isalpha((unsigned char)*p) || *p == '_') {
            size_t n = 0;
            while (isalnum((unsigned char)p[n]) || p[n] == '_') n++;
            t.kind = JT_NAME;
            t.len = n;
        } else if (isdigit((unsigned char)*p)) {
            char *e;
            t.ival = strtoll(p, &e, 10);
            t.kind = JT_INT;
            if (*e == '.' && isdigit((unsigned char)e[1])) {
                t.fval = strtod(p, &e);
                t.kind = JT_FLOAT;
            }
            t.len = (size_t)(e - p);
        } else {
            for (size_t k = 0; k < sizeof OPERATORS / sizeof *OPERATORS && !t.len; k++)
                if (strncmp(p, OPERATORS[k], strlen(OPERATORS[k])) == 0) t.len = strlen(OPERATORS[k]);
            if (!t.len) {
                char msg[64];
                snprintf(msg, sizeof msg, "unexpected character '%c'", *p);
                return lex_error(L, msg), 0;
            }
            t.kind = JT_OP;
        }
        t.text = jarena_strndup(L->a, p, t.len);
        push(L->a, L->out, t);
        L->pos += t.len;
    }
}

// Appends text [from, to) as a TEXT token, after the whitespace rules of the tag that follows it
// (`open`: "{{", "{%" or "{#", and its marker: '-', '+' or none) and of the tag before it.
static void emit_text(Lexer *L, size_t from, size_t to, int line, char open, char marker) {
    if (marker == '-') {
        while (to > from && isspace((unsigned char)L->src[to - 1])) to--;
    } else if (open != '{' && marker != '+') {  // lstrip_blocks: only blanks since the line began
        size_t k = to;
        while (k > from && (L->src[k - 1] == ' ' || L->src[k - 1] == '\t')) k--;
        if (k == 0 || L->src[k - 1] == '\n') to = k;
    }
    if (to > from) push(L->a, L->out, (JToken){.kind = JT_TEXT, .text = L->src + from, .len = to - from, .line = line});
}

int jinja_lex(JArena *a, const char *src, const char *name, JTokens *out) {
    Lexer L = {.a = a, .src = src, .name = name, .line = 1, .out = out};
    size_t text_from = 0;
    int text_line = 1;
    for (;;) {
        const char *open = strstr(src + L.pos, "{");
        while (open && open[1] != '{' && open[1] != '%' && open[1] != '#') open = strchr(open + 1, '{');
        size_t at = open ? (size_t)(open - src) : strlen(src);
        L.line += count_lines(src + L.pos, at - L.pos);
        if (!open) {
            emit_text(&L, text_from, at, text_line, '{', 0);
            break;
        }
        char kind = open[1], marker = (open[2] == '-' || open[2] == '+') ? open[2] : 0;
        emit_text(&L, text_from, at, text_line, kind, marker);
        L.pos = at + 2 + (marker != 0);
        int strip_after = 0, keep_after = 0;
        size_t after;
        if (kind == '#') {
            const char *close = strstr(src + L.pos, "#}");
            if (!close) return lex_error(&L, "a comment is not closed");
            strip_after = close > src + L.pos && close[-1] == '-';
            keep_after = close > src + L.pos && close[-1] == '+';
            L.line += count_lines(src + L.pos, (size_t)(close - (src + L.pos)));
            after = (size_t)(close - src) + 2;
        } else {
            push(a, out, (JToken){.kind = kind == '{' ? JT_VAR_BEGIN : JT_BLOCK_BEGIN, .line = L.line});
            after = lex_tag(&L, kind == '{' ? "}}" : "%}", &strip_after, &keep_after);
            if (!after) return -1;
            push(a, out, (JToken){.kind = kind == '{' ? JT_VAR_END : JT_BLOCK_END, .line = L.line});
        }
        L.pos = after;
        if (strip_after) {
            while (isspace((unsigned char)src[L.pos])) L.line += src[L.pos++] == '\n';
        } else if (kind != '{' && !keep_after) {  // trim_blocks
            if (src[L.pos] == '\r' && src[L.pos + 1] == '\n') L.pos++;
            if (src[L.pos] == '\n') L.pos++, L.line++;
        }
        text_from = L.pos;
        text_line = L.line;
    }
    push(a, out, (JToken){.kind = JT_EOF, .line = L.line});
    return 0;
}
