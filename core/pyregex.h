// Python `re` patterns over ASCII names, for the places where a file written by a Python tool
// holds a regular expression that ctrain must apply as Python does (PEFT's target_modules,
// rank_pattern, alpha_pattern, layers_pattern). Only whole-string matches are needed
// (re.fullmatch), and for those a pattern's language is all that counts: Python's
// leftmost-first and POSIX's leftmost-longest rules agree on whether the whole string matches.
// So the pattern is translated into a POSIX extended expression and run by the C library:
//   literals, ., [...] with ranges, negation and \d \w \s inside, \d \D \w \W \s \S, \. and the
//   other escaped punctuation, (...), (?:...), (?P<name>...), |, * + ? {m,n} {,n} and their lazy
//   forms (*? +? ?? {m,n}?), ^ and $.
// Look-arounds, back-references, \b, inline flags and non-ASCII text are refused with an error
// that names the construct.
#pragma once
#include <regex.h>

typedef struct {
    regex_t compiled;
    int ok;
} CtPyRegex;

// Compiles `pattern` for whole-string matching. 0, or -1 + error naming the pattern and what
// is not supported.
int ct_pyregex_compile(CtPyRegex *re, const char *pattern);
// 1 when re.fullmatch(pattern, text) would match, else 0.
int ct_pyregex_fullmatch(const CtPyRegex *re, const char *text);
void ct_pyregex_free(CtPyRegex *re);
// One-shot: *match gets re.fullmatch(pattern, text) is not None. 0, or -1 + error.
int ct_pyregex_fullmatch_once(const char *pattern, const char *text, int *match);
