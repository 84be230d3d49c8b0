// The private parts of the Jinja subset (jinja.h): the arena everything lives in, tokens, the
// syntax tree and values. One template's tree lives in its own arena; each rendering's values
// in another, freed when the rendering ends, so nothing here is freed piece by piece.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "data/examples/jinja.h"

// ---- arena ----
typedef struct JArenaBlock JArenaBlock;
typedef struct {
    JArenaBlock *head;
    size_t used;  // bytes handed out (a rendering stops past JINJA_MAX_BYTES)
} JArena;
// What one rendering may hold (values and output): a template that builds more (a string doubled
// in a loop) is refused with an error rather than exhausting memory. Likewise range() lengths,
// nesting depth of the syntax and of values.
#define JINJA_MAX_BYTES ((size_t)64 << 20)
#define JINJA_MAX_RANGE 1000000
#define JINJA_MAX_DEPTH 200
#define JINJA_MAX_EVAL_DEPTH 2000  // chains (a + b + ... , x|f|g...) parse in loops but evaluate recursively
void *jarena_alloc(JArena *a, size_t size);  // zeroed
char *jarena_strndup(JArena *a, const char *s, size_t n);
void jarena_free(JArena *a);

// ---- tokens ----
typedef enum {
    JT_TEXT,         // literal template text (whitespace control already applied)
    JT_VAR_BEGIN,    // {{
    JT_VAR_END,      // }}
    JT_BLOCK_BEGIN,  // {%
    JT_BLOCK_END,    // %}
    JT_NAME,
    JT_STRING,       // text holds the unescaped value
    JT_INT,
    JT_FLOAT,
    JT_OP,           // text holds the operator: + - * / // % ~ == != < > <= >= = . , : | ( ) [ ] { }
    JT_EOF
} JTokKind;

typedef struct {
    JTokKind kind;
    const char *text;
    size_t len;
    int line;
    long long ival;
    double fval;
} JToken;

typedef struct {
    JToken *toks;
    int n, cap;
} JTokens;

// Splits the template into tokens with transformers' settings (trim_blocks, lstrip_blocks) and
// the -/+ markers applied to the text. 0, or -1 + error naming `name` and the line.
int jinja_lex(JArena *a, const char *src, const char *name, JTokens *out);

// ---- syntax tree ----
typedef enum {
    JN_TEXT, JN_OUTPUT, JN_IF, JN_FOR, JN_SET, JN_BLOCK, JN_BREAK, JN_CONTINUE,  // statements (BLOCK: a list)
    JN_LITERAL, JN_NAME, JN_GETATTR, JN_GETITEM, JN_SLICE, JN_CALL, JN_FILTER, JN_TEST,
    JN_UNARY, JN_BINARY, JN_COND, JN_LIST, JN_DICT
} JNodeKind;

typedef struct JNode JNode;
typedef struct JValue JValue;

struct JNode {
    JNodeKind kind;
    int line;
    const char *name;    // NAME, GETATTR attribute, FILTER/TEST name, CALL kwargs' names in args' names
    const char *op;      // UNARY/BINARY operator ("and", "or", "not", "in", "notin", "+", "==", ...)
    JNode *a, *b, *c;    // operands; IF: a = cond, b = then, c = else; FOR: a = iter, b = body, c = filter
    JNode **items;       // BLOCK statements, CALL/FILTER/TEST arguments, LIST items, DICT keys and values
    const char **names;  // argument names (NULL = positional), FOR targets, SET target (ns.attr: [ns, attr])
    int n_items, n_names;
    JNode *else_body;    // FOR's else
    const JValue *value; // LITERAL
    const char *text;    // TEXT
    size_t text_len;
};

// Parses tokens into a statement list. NULL + error naming the line on unsupported syntax.
JNode *jinja_parse(JArena *a, const JTokens *toks, const char *name);

// ---- values ----
typedef enum { JV_UNDEFINED, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_DICT, JV_NAMESPACE, JV_FUNC } JValueKind;

// Where a string's bytes came from: [off, off+len) of the string is bytes of message `message`'s
// content (the renderer reports these ranges so that content is tokenized as text, never as
// special tokens, and the loss mask can find each message).
typedef struct {
    size_t off, len;
    int message;
} JSpan;

typedef struct {
    const char *key;
    const JValue *value;
} JPair;

struct JValue {
    JValueKind kind;
    int b;
    long long i;
    double f;
    const char *s;  // STR (not NUL-terminated inside; len counts), FUNC name
    size_t len;
    const JSpan *spans;
    int n_spans;
    const JValue **list;  // LIST items
    JPair *pairs;         // DICT / NAMESPACE (a namespace's pairs change with set ns.x)
    int n, cap;
    const char *undefined_name;  // UNDEFINED: what was missing, for errors
};

typedef struct {
    JArena *arena;
    const char *name;  // the template's name, for errors
} JCtx;

const JValue *jv_undefined(JCtx *c, const char *what);
const JValue *jv_none(void);
const JValue *jv_bool(int b);
const JValue *jv_int(JCtx *c, long long i);
const JValue *jv_float(JCtx *c, double f);
const JValue *jv_str(JCtx *c, const char *s, size_t len);  // copies
const JValue *jv_cstr(JCtx *c, const char *s);
// A substring of v (a string) keeping the content ranges that fall inside it.
const JValue *jv_substr(JCtx *c, const JValue *v, size_t off, size_t len);
const JValue *jv_concat(JCtx *c, const JValue *x, const JValue *y);
JValue *jv_list(JCtx *c, int cap);
void jv_list_push(JCtx *c, JValue *list, const JValue *item);
JValue *jv_dict(JCtx *c, JValueKind kind);
void jv_dict_set(JCtx *c, JValue *dict, const char *key, const JValue *value);
const JValue *jv_dict_get(const JValue *dict, const char *key, size_t key_len);  // NULL when absent

int jv_truthy(const JValue *v);
int jv_equal(const JValue *x, const JValue *y);
// Python's str(): strings as they are, None, True, 1.5, lists and dicts in Python's repr.
const JValue *jv_to_string(JCtx *c, const JValue *v);
// JSON as Python's json.dumps(ensure_ascii=False) writes it (tojson); indent < 0: one line.
const JValue *jv_to_json(JCtx *c, const JValue *v, int indent);
const char *jv_kind_name(const JValue *v);
// The byte offsets of a string's characters (code points, as Python indexes a str): n + 1 of
// them, the last = len. *n = the number of characters.
const size_t *jv_char_offsets(JCtx *c, const JValue *v, size_t *n);
// Python's str.isspace() on the character at s[at] (UTF-8): its length in bytes, 0 when not a space.
size_t jv_space_at(const char *s, size_t len, size_t at);
// The same for the character that ends at s[end] (exclusive).
size_t jv_space_before(const char *s, size_t end);

// ---- builtins (jinja_builtins.c) ----
// Each returns the value, or NULL + error (ct_error_set naming the template and line).
const JValue *jinja_filter(JCtx *c, int line, const char *name, const JValue *v, const JValue **args,
                           const char **arg_names, int n_args);
// A test (`is NAME`): 0/1, or -1 + error.
int jinja_test(JCtx *c, int line, const char *name, const JValue *v, const JValue **args, int n_args);
// A method of a string or dict (`s.strip()`, `d.items()`); NULL + error when unknown.
const JValue *jinja_method(JCtx *c, int line, const JValue *obj, const char *name, const JValue **args, int n_args);
