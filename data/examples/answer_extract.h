// The answer a model's completion gives, and whether it equals the ground truth: the rule of
// `ctrain eval --task arithmetic` (and of a verifiable reward's exact match).
//
// Extraction:
//   1. When the completion holds "<answer>" and, after it, "</answer>", the answer is the text
//      between the first such pair: the last number in it, or, holding none, that text with
//      surrounding white space removed. An unclosed "<answer>" does not count as a tag.
//   2. Otherwise the last number in the whole completion ("" when it holds none).
// A number is digits with an optional '-' before them (a sign only where no letter or digit
// precedes it: "5-3" holds 5 and 3), thousands separators as ",ddd" groups ("1,234" is 1234;
// "1,2" is 1 and 2), and an optional fraction: '.' and digits ("7." at a sentence's end is 7).
// Numbers are compared in a normal form: no separators, no leading zeros ("007" → "7"), no
// trailing zeros in the fraction ("12.50" → "12.5", "12.0" → "12"), "-0" → "0".
//
// Correctness: the extracted answer, normalised, equals the reference normalised (a reference
// that is one number, white space around it allowed) or, for a reference that is not a number,
// equals its text with surrounding white space removed. An empty answer is never correct.
#pragma once
#include <stddef.h>

// The extracted answer, normalised when it is a number (free with ct_free).
char *ct_extract_answer(const char *completion, size_t len);
// Whether `answer` (as ct_extract_answer gives it) matches `reference`.
int ct_answer_matches(const char *answer, const char *reference);
