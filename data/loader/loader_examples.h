// sft and dpo batches for data/loader/loader.c (text batches are its own): the examples of a split
// held in memory, an order per epoch, and rows laid out from it.
#pragma once
#include "data/loader/loader_types.h"

int ct_loader_open_examples(CtLoader *l);
void ct_loader_close_examples(CtLoader *l);
int ct_loader_plan_examples(CtLoader *l, uint64_t epoch);  // this epoch's order (and sft rows)
int ct_loader_next_examples(CtLoader *l);
