// A Jinja subset for the chat templates models ship in tokenizer_config.json ("chat_template"),
// rendered as Hugging Face's transformers renders them (apply_chat_template: trim_blocks and
// lstrip_blocks on): the statements for (with loop.index/index0/first/last/length/revindex,
// tuple targets, an `if` clause and else; break and continue, as transformers' loopcontrols),
// if/elif/else, set (also ns.attr on a namespace()), generation/endgeneration (transformers'
// marker, rendered transparently) and comments; {{ }}
// and -/+ whitespace control; expressions with literals, lists, dicts, attribute and item
// access, slices (with steps, [::-1]), calls, filters, tests (`is defined`, `is none`, `is
// string`, ...), the operators `+ - * / // % ~`, comparisons, `in`/`not in`, and/or/not and
// `a if cond else b`; the functions raise_exception(msg), namespace(...) and strftime_now(fmt).
// Filters, tests and string/dict methods: jinja_builtins.c. Strings behave as Python's str: indexed
// and sliced by character (UTF-8 code point), stripped of Python's whitespace (Unicode's too).
// Anything else (macros, block set, include, ...) is refused with an error naming the line.
#pragma once
#include <stddef.h>

typedef struct CtJinja CtJinja;

// Parses `source` (named `name` in errors; the template keeps its own copy). NULL + error.
CtJinja *ct_jinja_parse(const char *source, const char *name);
void ct_jinja_free(CtJinja *t);

typedef struct {
    const char *role;
    const char *content;
    size_t content_len;
} CtJinjaMessage;

typedef struct {
    const CtJinjaMessage *messages;
    int n_messages;
    int add_generation_prompt;
    const char *bos_token, *eos_token;  // NULL: undefined
} CtJinjaInput;

// A range of the output that is message `message`'s content (or a part of it, after trim).
typedef struct {
    size_t off, len;
    int message;
} CtJinjaSpan;

typedef struct {
    char *text;  // NUL-terminated; free with ct_jinja_output_free
    size_t len;
    CtJinjaSpan *spans;
    int n_spans;
} CtJinjaOutput;

// Renders; 0, or -1 + error (raise_exception's message, an undefined attribute, a type error),
// naming the template's line.
int ct_jinja_render(const CtJinja *t, const CtJinjaInput *in, CtJinjaOutput *out);
void ct_jinja_output_free(CtJinjaOutput *out);

// The length in bytes of the character at s[at] (UTF-8) when Python's str.isspace() holds for it
// (Unicode's spaces too), else 0.
size_t ct_jinja_space_at(const char *s, size_t len, size_t at);
