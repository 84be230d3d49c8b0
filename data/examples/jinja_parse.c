// The Jinja parser: statements (for, if, set, generation) and expressions by recursive descent
// in Jinja's precedence (lowest first): `a if c else b`, or, and, not, comparisons and `in`,
// + and -, ~, * / // %, unary minus, then a primary with its postfixes (.attr, [item],
// [a:b:c], (call)) and its filters and tests (`x | f(args)`, `x is not defined`).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/examples/jinja_internal.h"

typedef struct {
    JArena *a;
    const JTokens *t;
    int pos;
    const char *name;
    int failed;
    int depth;  // nesting of expressions and blocks (recursion here), at most JINJA_MAX_DEPTH
} Parser;

static const JToken *peek(const Parser *P) { return &P->t->toks[P->pos]; }
static const JToken *next(Parser *P) { return &P->t->toks[P->pos < P->t->n - 1 ? P->pos++ : P->pos]; }

static void *fail(Parser *P, int line, const char *fmt, const char *arg) {
    if (!P->failed) {
        char what[256];
        snprintf(what, sizeof what, fmt, arg);
        ct_error_set("%s line %d: %s", P->name, line, what);
    }
    P->failed = 1;
    return NULL;
}

static int is_op(const JToken *t, const char *op) { return t->kind == JT_OP && strcmp(t->text, op) == 0; }
static int is_name(const JToken *t, const char *name) { return t->kind == JT_NAME && strcmp(t->text, name) == 0; }

static int expect_op(Parser *P, const char *op) {
    if (is_op(peek(P), op)) return next(P), 1;
    const JToken *t = peek(P);
    fail(P, t->line, "expected '%s'", op);
    return 0;
}

static JNode *node(Parser *P, JNodeKind kind, int line) {
    JNode *n = jarena_alloc(P->a, sizeof *n);
    n->kind = kind;
    n->line = line;
    return n;
}

// A growable list of nodes and names.
static void add_item(Parser *P, JNode *n, JNode *item, const char *name) {
    if ((n->n_items & (n->n_items - 1)) == 0) {  // capacity doubles at powers of two
        int cap = n->n_items ? n->n_items * 2 : 1;
        JNode **items = jarena_alloc(P->a, (size_t)cap * sizeof *items);
        const char **names = jarena_alloc(P->a, (size_t)cap * sizeof *names);
        if (n->n_items) {
            memcpy(items, n->items, (size_t)n->n_items * sizeof *items);
            memcpy(names, n->names, (size_t)n->n_items * sizeof *names);
        }
        n->items = items;
        n->names = names;
    }
    n->names[n->n_items] = name;
    n->items[n->n_items++] = item;
}

static JNode *parse_expr(Parser *P);
static JNode *parse_or(Parser *P);

static JNode *literal(Parser *P, const JToken *t) {
    JNode *n = node(P, JN_LITERAL, t->line);
    JValue *v = jarena_alloc(P->a, sizeof *v);
    switch (t->kind) {
    case JT_STRING: v->kind = JV_STR, v->s = t->text, v->len = t->len; break;
    case JT_INT: v->kind = JV_INT, v->i = t->ival; break;
    default: v->kind = JV_FLOAT, v->f = t->fval; break;
    }
    n->value = v;
    return n;
}

// Call arguments after '(': positional and name=value, up to ')'.
static JNode *parse_args(Parser *P, JNode *call) {
    while (!is_op(peek(P), ")")) {
        const char *arg_name = NULL;
        if (peek(P)->kind == JT_NAME && is_op(&P->t->toks[P->pos + 1], "=")) {
            arg_name = next(P)->text;
            next(P);
        }
        JNode *arg = parse_expr(P);
        if (!arg) return NULL;
        add_item(P, call, arg, arg_name);
        if (!is_op(peek(P), ",")) break;
        next(P);
    }
    return expect_op(P, ")") ? call : NULL;
}

static JNode *parse_list_or_dict(Parser *P, const JToken *open) {
    int dict = is_op(open, "{");
    JNode *n = node(P, dict ? JN_DICT : JN_LIST, open->line);
    const char *close = dict ? "}" : "]";
    while (!is_op(peek(P), close)) {
        JNode *item = parse_expr(P);
        if (!item) return NULL;
        add_item(P, n, item, NULL);
        if (dict) {
            if (!expect_op(P, ":")) return NULL;
            JNode *value = parse_expr(P);
            if (!value) return NULL;
            add_item(P, n, value, NULL);
        }
        if (!is_op(peek(P), ",")) break;
        next(P);
    }
    return expect_op(P, close) ? n : NULL;
}

static JNode *parse_primary(Parser *P) {
    const JToken *t = next(P);
    if (t->kind == JT_STRING || t->kind == JT_INT || t->kind == JT_FLOAT) {
        JNode *n = literal(P, t);
        while (t->kind == JT_STRING && peek(P)->kind == JT_STRING) {  // "a" "b": adjacent literals join
            const JToken *more = next(P);
            JValue *v = (JValue *)n->value;
            char *joined = jarena_alloc(P->a, v->len + more->len + 1);
            memcpy(joined, v->s, v->len);
            memcpy(joined + v->len, more->text, more->len);
            v->s = joined;
            v->len += more->len;
        }
        return n;
    }
    if (t->kind == JT_NAME) {
        static const char *const consts[] = {"true", "True", "false", "False", "none", "None"};
        for (int k = 0; k < 6; k++)
            if (strcmp(t->text, consts[k]) == 0) {
                JNode *n = node(P, JN_LITERAL, t->line);
                n->value = k < 2 ? jv_bool(1) : k < 4 ? jv_bool(0) : jv_none();
                return n;
            }
        JNode *n = node(P, JN_NAME, t->line);
        n->name = t->text;
        return n;
    }
    if (is_op(t, "(")) {
        JNode *inner = parse_expr(P);
        if (!inner) return NULL;
        if (is_op(peek(P), ",")) {  // a tuple: a list here
            JNode *list = node(P, JN_LIST, t->line);
            add_item(P, list, inner, NULL);
            while (is_op(peek(P), ",")) {
                next(P);
                if (is_op(peek(P), ")")) break;
                JNode *item = parse_expr(P);
                if (!item) return NULL;
                add_item(P, list, item, NULL);
            }
            inner = list;
        }
        return expect_op(P, ")") ? inner : NULL;
    }
    if (is_op(t, "[") || is_op(t, "{")) return parse_list_or_dict(P, t);
    if (t->kind == JT_EOF || t->kind == JT_VAR_END || t->kind == JT_BLOCK_END)
        return fail(P, t->line, "an expression is missing%s", "");
    return fail(P, t->line, "unexpected '%s' in an expression", t->text ? t->text : "?");
}

// [a], [a:b], [a:b:c] (each part optional) after '['.
static JNode *parse_subscript(Parser *P, JNode *target, int line) {
    JNode *parts[3] = {NULL, NULL, NULL};
    int n_colons = 0;
    for (;;) {
        if (!is_op(peek(P), ":") && !is_op(peek(P), "]")) {
            parts[n_colons] = parse_expr(P);
            if (!parts[n_colons]) return NULL;
        }
        if (is_op(peek(P), ":") && n_colons < 2) {
            next(P);
            n_colons++;
            continue;
        }
        break;
    }
    if (!expect_op(P, "]")) return NULL;
    if (!n_colons && !parts[0]) return fail(P, line, "an empty subscript ('[]')%s", "");
    JNode *n = node(P, n_colons ? JN_SLICE : JN_GETITEM, line);
    n->a = target;
    if (n_colons) {
        add_item(P, n, parts[0], NULL);
        add_item(P, n, parts[1], NULL);
        add_item(P, n, parts[2], NULL);
    } else {
        n->b = parts[0];
    }
    return n;
}

static JNode *parse_postfix(Parser *P) {
    JNode *n = parse_primary(P);
    while (n) {
        const JToken *t = peek(P);
        if (is_op(t, ".")) {
            next(P);
            const JToken *attr = next(P);
            if (attr->kind != JT_NAME && attr->kind != JT_INT) return fail(P, attr->line, "expected a name after '.'%s", "");
            JNode *g = node(P, attr->kind == JT_NAME ? JN_GETATTR : JN_GETITEM, t->line);
            g->a = n;
            if (attr->kind == JT_NAME) g->name = attr->text;
            else g->b = literal(P, attr);
            n = g;
        } else if (is_op(t, "[")) {
            next(P);
            n = parse_subscript(P, n, t->line);
        } else if (is_op(t, "(")) {
            next(P);
            JNode *call = node(P, JN_CALL, t->line);
            call->a = n;
            n = parse_args(P, call);
        } else {
            break;
        }
    }
    return n;
}

// Filters (x | name(args)) and tests (x is [not] name [arg]).
static JNode *parse_filters_and_tests(Parser *P, JNode *n) {
    while (n) {
        const JToken *t = peek(P);
        if (is_op(t, "|")) {
            next(P);
            const JToken *name = next(P);
            if (name->kind != JT_NAME) return fail(P, name->line, "expected a filter name after '|'%s", "");
            JNode *f = node(P, JN_FILTER, t->line);
            f->a = n;
            f->name = name->text;
            if (is_op(peek(P), "(")) {
                next(P);
                if (!parse_args(P, f)) return NULL;
            }
            n = f;
        } else if (is_name(t, "is")) {
            next(P);
            int negate = is_name(peek(P), "not") ? (next(P), 1) : 0;
            const JToken *name = next(P);
            if (name->kind != JT_NAME) return fail(P, name->line, "expected a test name after 'is'%s", "");
            JNode *test = node(P, JN_TEST, t->line);
            test->a = n;
            test->name = name->text;
            const JToken *arg = peek(P);
            if (is_op(arg, "(")) {
                next(P);
                if (!parse_args(P, test)) return NULL;
            } else if (arg->kind == JT_STRING || arg->kind == JT_INT || arg->kind == JT_FLOAT ||
                       (arg->kind == JT_NAME && !is_name(arg, "and") && !is_name(arg, "or") && !is_name(arg, "else") &&
                        !is_name(arg, "if") && !is_name(arg, "in") && !is_name(arg, "is") && !is_name(arg, "not"))) {
                JNode *arg_node = parse_primary(P);  // `is equalto 'x'`, `is divisibleby 3`
                if (!arg_node) return NULL;
                add_item(P, test, arg_node, NULL);
            }
            n = test;
            if (negate) {
                JNode *u = node(P, JN_UNARY, t->line);
                u->op = "not";
                u->a = n;
                n = u;
            }
        } else {
            break;
        }
    }
    return n;
}

static JNode *parse_unary(Parser *P);

// parse_unary one level down (- - - x), counted against the nesting limit.
static JNode *parse_expr_nested_unary(Parser *P) {
    if (++P->depth > JINJA_MAX_DEPTH) return fail(P, peek(P)->line, "expressions nest too deeply%s", "");
    JNode *n = parse_unary(P);
    P->depth--;
    return n;
}

static JNode *parse_unary(Parser *P) {
    const JToken *t = peek(P);
    if (is_op(t, "-") || is_op(t, "+")) {
        next(P);
        JNode *u = node(P, JN_UNARY, t->line);
        u->op = t->text;
        u->a = parse_expr_nested_unary(P);
        return u->a ? u : NULL;
    }
    return parse_filters_and_tests(P, parse_postfix(P));
}

static JNode *binary(Parser *P, const char *op, JNode *a, JNode *b, int line) {
    if (!a || !b) return NULL;
    JNode *n = node(P, JN_BINARY, line);
    n->op = op;
    n->a = a;
    n->b = b;
    return n;
}

static JNode *parse_math2(Parser *P) {
    JNode *n = parse_unary(P);
    while (n) {
        const JToken *t = peek(P);
        if (!(is_op(t, "*") || is_op(t, "/") || is_op(t, "//") || is_op(t, "%"))) break;
        next(P);
        n = binary(P, t->text, n, parse_unary(P), t->line);
    }
    return n;
}

static JNode *parse_concat(Parser *P) {
    JNode *n = parse_math2(P);
    while (n && is_op(peek(P), "~")) {
        int line = next(P)->line;
        n = binary(P, "~", n, parse_math2(P), line);
    }
    return n;
}

static JNode *parse_math1(Parser *P) {
    JNode *n = parse_concat(P);
    while (n && (is_op(peek(P), "+") || is_op(peek(P), "-"))) {
        const JToken *t = next(P);
        n = binary(P, t->text, n, parse_concat(P), t->line);
    }
    return n;
}

static JNode *parse_compare(Parser *P) {
    JNode *n = parse_math1(P);
    static const char *const ops[] = {"==", "!=", "<", ">", "<=", ">="};
    while (n) {
        const JToken *t = peek(P);
        const char *op = NULL;
        for (int k = 0; k < 6 && !op; k++)
            if (is_op(t, ops[k])) op = ops[k];
        if (!op && is_name(t, "in")) op = "in";
        if (!op && is_name(t, "not") && is_name(&P->t->toks[P->pos + 1], "in")) {
            next(P);
            op = "notin";
        }
        if (!op) break;
        next(P);
        n = binary(P, op, n, parse_math1(P), t->line);
    }
    return n;
}

static JNode *parse_not(Parser *P) {
    if (is_name(peek(P), "not")) {
        JNode *u = node(P, JN_UNARY, next(P)->line);
        u->op = "not";
        if (++P->depth > JINJA_MAX_DEPTH) return fail(P, u->line, "expressions nest too deeply%s", "");
        u->a = parse_not(P);
        P->depth--;
        return u->a ? u : NULL;
    }
    return parse_compare(P);
}

static JNode *parse_and(Parser *P) {
    JNode *n = parse_not(P);
    while (n && is_name(peek(P), "and")) {
        int line = next(P)->line;
        n = binary(P, "and", n, parse_not(P), line);
    }
    return n;
}

static JNode *parse_or(Parser *P) {
    JNode *n = parse_and(P);
    while (n && is_name(peek(P), "or")) {
        int line = next(P)->line;
        n = binary(P, "or", n, parse_and(P), line);
    }
    return n;
}

static JNode *parse_expr_inner(Parser *P);

static JNode *parse_expr(Parser *P) {
    if (++P->depth > JINJA_MAX_DEPTH) return fail(P, peek(P)->line, "expressions nest too deeply%s", "");
    JNode *n = parse_expr_inner(P);
    P->depth--;
    return n;
}

static JNode *parse_expr_inner(Parser *P) {
    JNode *n = parse_or(P);
    if (n && is_name(peek(P), "if")) {
        JNode *c = node(P, JN_COND, next(P)->line);
        c->b = n;
        c->a = parse_or(P);
        if (!c->a) return NULL;
        if (is_name(peek(P), "else")) {
            next(P);
            c->c = parse_expr(P);
            if (!c->c) return NULL;
        }
        n = c;
    }
    return n;
}

// ---- statements ----

static JNode *parse_body(Parser *P, const char *const *ends, int n_ends, const char **ended);
static JNode *parse_body_inner(Parser *P, JNode *body, const char *const *ends, int n_ends, const char **ended);

static int expect_block_end(Parser *P) {
    const JToken *t = next(P);
    if (t->kind == JT_BLOCK_END) return 1;
    fail(P, t->line, "expected the end of the tag ('%%}'), found '%s'", t->text ? t->text : "?");
    return 0;
}

static JNode *parse_if(Parser *P, int line) {
    JNode *n = node(P, JN_IF, line);
    n->a = parse_expr(P);
    if (!n->a || !expect_block_end(P)) return NULL;
    static const char *const ends[] = {"elif", "else", "endif"};
    const char *ended = NULL;
    n->b = parse_body(P, ends, 3, &ended);
    if (!n->b) return NULL;
    if (strcmp(ended, "elif") == 0) {  // elif: an if in the else branch, which ends at endif
        if (++P->depth > JINJA_MAX_DEPTH) return fail(P, peek(P)->line, "too many elif branches%s", "");
        n->c = parse_if(P, peek(P)->line);
        P->depth--;
        return n->c ? n : NULL;
    }
    if (strcmp(ended, "else") == 0) {
        if (!expect_block_end(P)) return NULL;
        static const char *const endif[] = {"endif"};
        n->c = parse_body(P, endif, 1, &ended);
        if (!n->c) return NULL;
    }
    return expect_block_end(P) ? n : NULL;
}

static JNode *parse_for(Parser *P, int line) {
    JNode *n = node(P, JN_FOR, line);
    const char *targets[4];
    int n_targets = 0;
    do {
        const JToken *t = next(P);
        if (t->kind != JT_NAME || n_targets == 4) return fail(P, t->line, "expected a loop variable name%s", "");
        targets[n_targets++] = t->text;
    } while (is_op(peek(P), ",") && next(P));
    n->names = jarena_alloc(P->a, sizeof(char *) * (size_t)n_targets);
    memcpy(n->names, targets, sizeof(char *) * (size_t)n_targets);
    n->n_names = n_targets;
    if (!is_name(peek(P), "in")) return fail(P, peek(P)->line, "expected 'in' in a for loop%s", "");
    next(P);
    n->a = parse_or(P);  // not parse_expr: `for x in xs if cond` is a filter, not a conditional
    if (!n->a) return NULL;
    if (is_name(peek(P), "if")) {
        next(P);
        n->c = parse_or(P);
        if (!n->c) return NULL;
    }
    if (is_name(peek(P), "recursive")) return fail(P, peek(P)->line, "recursive loops are not supported%s", "");
    if (!expect_block_end(P)) return NULL;
    static const char *const ends[] = {"else", "endfor"};
    const char *ended = NULL;
    n->b = parse_body(P, ends, 2, &ended);
    if (!n->b) return NULL;
    if (strcmp(ended, "else") == 0) {
        if (!expect_block_end(P)) return NULL;
        static const char *const endfor[] = {"endfor"};
        n->else_body = parse_body(P, endfor, 1, &ended);
        if (!n->else_body) return NULL;
    }
    return expect_block_end(P) ? n : NULL;
}

static JNode *parse_set(Parser *P, int line) {
    JNode *n = node(P, JN_SET, line);
    const JToken *t = next(P);
    if (t->kind != JT_NAME) return fail(P, t->line, "expected a variable name after 'set'%s", "");
    n->names = jarena_alloc(P->a, 2 * sizeof(char *));
    n->names[0] = t->text;
    n->n_names = 1;
    if (is_op(peek(P), ".")) {
        next(P);
        const JToken *attr = next(P);
        if (attr->kind != JT_NAME) return fail(P, attr->line, "expected an attribute name after '.'%s", "");
        n->names[1] = attr->text;
        n->n_names = 2;
    }
    if (is_op(peek(P), ",")) return fail(P, peek(P)->line, "'set' of several names is not supported%s", "");
    if (!is_op(peek(P), "=")) return fail(P, peek(P)->line, "block 'set' (without '=') is not supported%s", "");
    next(P);
    n->a = parse_expr(P);
    return n->a && expect_block_end(P) ? n : NULL;
}

// One statement tag after '{%'; *ended is set when it is one of `ends` (the tag's name is then
// consumed, its arguments and '%}' not).
static JNode *parse_statement(Parser *P, const char *const *ends, int n_ends, const char **ended) {
    const JToken *t = next(P);
    if (t->kind != JT_NAME) return fail(P, t->line, "expected a statement name after '{%%'%s", "");
    for (int k = 0; k < n_ends; k++)
        if (strcmp(t->text, ends[k]) == 0) {
            *ended = ends[k];
            return NULL;
        }
    if (strcmp(t->text, "if") == 0) return parse_if(P, t->line);
    if (strcmp(t->text, "for") == 0) return parse_for(P, t->line);
    if (strcmp(t->text, "set") == 0) return parse_set(P, t->line);
    if (strcmp(t->text, "break") == 0 || strcmp(t->text, "continue") == 0) {  // transformers' loopcontrols
        JNode *n = node(P, t->text[0] == 'b' ? JN_BREAK : JN_CONTINUE, t->line);
        return expect_block_end(P) ? n : NULL;
    }
    if (strcmp(t->text, "generation") == 0) {  // transformers' marker of assistant text: rendered as is
        if (!expect_block_end(P)) return NULL;
        static const char *const end[] = {"endgeneration"};
        const char *e = NULL;
        JNode *body = parse_body(P, end, 1, &e);
        return body && expect_block_end(P) ? body : NULL;
    }
    return fail(P, t->line, "unsupported statement '%s' (this Jinja subset knows for, if, set, break, continue, generation)", t->text);
}

// Statements up to one of `ends` (NULL ends: up to the end of the template).
static JNode *parse_body(Parser *P, const char *const *ends, int n_ends, const char **ended) {
    JNode *body = node(P, JN_BLOCK, peek(P)->line);
    *ended = NULL;
    if (P->depth + 1 > JINJA_MAX_DEPTH) return fail(P, peek(P)->line, "blocks nest too deeply%s", "");
    P->depth++;
    JNode *r = parse_body_inner(P, body, ends, n_ends, ended);
    P->depth--;
    return r;
}

static JNode *parse_body_inner(Parser *P, JNode *body, const char *const *ends, int n_ends, const char **ended) {
    for (;;) {
        const JToken *t = next(P);
        if (t->kind == JT_EOF) {
            if (n_ends) return fail(P, t->line, "the template ends before '{%% %s %%}'", ends[n_ends - 1]);
            return body;
        }
        if (t->kind == JT_TEXT) {
            JNode *n = node(P, JN_TEXT, t->line);
            n->text = t->text;
            n->text_len = t->len;
            add_item(P, body, n, NULL);
        } else if (t->kind == JT_VAR_BEGIN) {
            JNode *n = node(P, JN_OUTPUT, t->line);
            n->a = parse_expr(P);
            if (!n->a) return NULL;
            const JToken *end = next(P);
            if (end->kind != JT_VAR_END) return fail(P, end->line, "expected '}}', found '%s'", end->text ? end->text : "?");
            add_item(P, body, n, NULL);
        } else if (t->kind == JT_BLOCK_BEGIN) {
            JNode *n = parse_statement(P, ends, n_ends, ended);
            if (*ended) return body;
            if (!n) return NULL;
            add_item(P, body, n, NULL);
        } else {
            return fail(P, t->line, "unexpected '%s'", t->text ? t->text : "end of tag");
        }
    }
}

JNode *jinja_parse(JArena *a, const JTokens *toks, const char *name) {
    Parser P = {.a = a, .t = toks, .name = name};
    const char *ended = NULL;
    JNode *root = parse_body(&P, NULL, 0, &ended);
    if (root && ended) return fail(&P, peek(&P)->line, "unexpected end tag '%s'", ended);
    return P.failed ? NULL : root;  // (a failure deep inside may have left a tree with holes)
}
