// Pre-tokenization: the split of text into pieces that BPE then encodes one by one.
//
// Each supported pattern has a hand-written scanner that gives exactly the pieces the regular
// expression gives under leftmost-first (backtracking) semantics, as tiktoken's regex engine
// does, with Unicode classes over the whole code space (data/tokenizer/unicode_tables.h):
//   gpt2    's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//           (GPT-2 / r50k / p50k; also HF ByteLevel's use_regex)
//   cl100k  (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//   o200k   case-aware letter runs with optional contractions, \p{N}{1,3}, ... [\r\n/]* (see the .c)
//   qwen2   cl100k with \p{N} in place of \p{N}{1,3}: one digit per piece (Qwen2, Qwen2.5, Qwen3)
// (Llama 3's regex is cl100k's, character for character.)
// Invalid UTF-8: each byte that does not start a valid sequence is a unit of its own with no
// class (as U+FFFD would be: a symbol), so it joins runs of punctuation. Pieces are byte
// ranges of the input, so concatenating them gives the input back, whatever it holds.
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef enum { CT_PATTERN_GPT2 = 0, CT_PATTERN_CL100K = 1, CT_PATTERN_O200K = 2, CT_PATTERN_QWEN2 = 3 } CtPattern;
#define CT_PATTERN_COUNT 4

const char *ct_pattern_name(CtPattern pattern);   // "gpt2", "cl100k", "o200k", "qwen2"
const char *ct_pattern_regex(CtPattern pattern);  // the regular expression, as tiktoken writes it
// "gpt2" (also "r50k", "p50k"), "cl100k" ("cl100k_base", "llama3"), "o200k" ("o200k_base"), "qwen2".
// 0, or -1 + error.
int ct_pattern_from_name(const char *name, CtPattern *out);
// The pattern whose regular expression is exactly `regex` (tiktoken's pat_str, or HF's Split
// regex). 0, or -1 + error naming what is supported.
int ct_pattern_from_regex(const char *regex, CtPattern *out);

// The end of the piece that starts at `pos` (pos < len). The scanner may look at bytes up to
// `len` (the regexes look ahead), so a caller that encodes a slice of a larger text passes the
// whole text's length.
size_t ct_pretokenize_next(CtPattern pattern, const uint8_t *text, size_t len, size_t pos);
// The ends of up to `max` consecutive pieces from `pos`, while a piece starts before `to`
// (pos < to <= len), into ends[]; returns how many. The same pieces as ct_pretokenize_next, with
// one call for many of them (the per-piece call was a large share of the pre-tokenizer's work).
size_t ct_pretokenize_many(CtPattern pattern, const uint8_t *text, size_t len, size_t pos, size_t to, size_t *ends,
                           size_t max);

// A position p in text (0 < p < len) where every pattern is certain to start a piece (a split
// point of the pre-tokenizer whatever came before): after a '\n' and before a unit that is not
// White_Space and not '/', or before a ' ' that follows a letter. Returns the first such p at or
// after `from`, or len when none (a run of spaces, digits or CJK letters with neither has none).
// Used to cut large inputs into chunks that threads encode independently, with the same result.
size_t ct_pretokenize_safe_cut(const uint8_t *text, size_t len, size_t from);
