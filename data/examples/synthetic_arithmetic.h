// The arithmetic task of `ctrain synth instructions --task arithmetic`: sums of a few numbers
// with a ground truth that a program can check (SFT, evaluation, and verifiable rewards).
// One JSON line per example:
//   {"prompt": "What is 12 + 345 + 7?", "response": "364", "answer": "364"}
// or with the think format, a short worked sum before the answer (the format DeepSeek-R1's
// rule-based rewards look for):
//   "response": "<think>12 + 345 = 357, 357 + 7 = 364</think><answer>364</answer>"
// `answer` is always the plain sum, as a string.
//
// The split: whether a sum is held out depends on its operands alone (a hash of them sorted,
// so 12 + 7 and 7 + 12 fall on the same side): one in CT_ARITH_HELDOUT_ONE_IN of the possible
// sums is held out. A train file never holds a prompt of a held-out file, whatever the seeds,
// counts and ranges the two were written with.
#pragma once
#include <stdint.h>
#include <stdio.h>

enum { CT_ARITH_MAX_OPERANDS = 8, CT_ARITH_MAX_DIGITS = 15, CT_ARITH_HELDOUT_ONE_IN = 10 };

typedef enum { CT_ARITH_PLAIN = 0, CT_ARITH_THINK = 1 } CtArithFormat;
typedef enum { CT_ARITH_TRAIN = 0, CT_ARITH_HELDOUT = 1 } CtArithSplit;

typedef struct {
    int min_operands, max_operands;  // 2 ≤ min ≤ max ≤ CT_ARITH_MAX_OPERANDS
    int min_digits, max_digits;      // 1 ≤ min ≤ max ≤ CT_ARITH_MAX_DIGITS (1 digit: 0..9)
    CtArithFormat format;
    CtArithSplit split;
} CtArithOptions;

#define CT_ARITH_OPTIONS_DEFAULT {2, 3, 1, 3, CT_ARITH_PLAIN, CT_ARITH_TRAIN}

// "2-3" or "2" into [lo, hi] within [min, max]. 0, or -1 + error naming `what`.
int ct_arith_parse_range(const char *text, const char *what, int min, int max, int *lo, int *hi);
// Whether the sum of these operands belongs to the held-out split.
int ct_arith_is_heldout(const uint64_t *operands, int n);
// Writes `examples` lines of the options' split, deterministic for the seed. 0, or -1 + error
// (a write failure; ranges so narrow that no sum falls in the held-out split).
int ct_write_arithmetic_examples(FILE *out, const CtArithOptions *o, uint64_t examples, uint64_t seed);
