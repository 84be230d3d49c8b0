// Synthetic instruction tasks for SFT demos and tests, as JSON lines {"prompt", "response"}:
//   reverse  "reverse: q w e r" -> "r e w q"   (2 to 6 letters, spaced so each is a token)
//   add      "add: 123 + 458"   -> "581"        (two 3-digit numbers)
// Deterministic for a seed. A model that has not learned the task answers almost none right;
// one that has, almost all.
#pragma once
#include <stdint.h>
#include <stdio.h>

int ct_write_task_examples(FILE *out, const char *task, uint64_t examples, uint64_t seed);
int ct_task_known(const char *task);  // reverse or add (arithmetic: synthetic_arithmetic.h)
