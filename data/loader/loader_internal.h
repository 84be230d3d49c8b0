// Shared between data/loader/loader.c (common part, text) and data/loader/loader_examples.c (sft, dpo).
#pragma once
#include "data/loader/loader.h"

uint64_t ct_loader_stream(uint64_t epoch, uint64_t what);
int ct_loader_open_examples(CtLoader *l);
void ct_loader_close_examples(CtLoader *l);
int ct_loader_plan_examples(CtLoader *l, uint64_t epoch);  // this epoch's order (and sft rows)
int ct_loader_next_examples(CtLoader *l);
