// Exact match of greedy answers on held-out SFT examples: for each example, the prompt is
// everything before its first trained token, the reference is the first trained span (the
// answer and its end-of-turn token); the model answers greedily (key/value cache) until it
// emits that end-of-turn token, and the answer counts when it equals the reference token for
// token.
#pragma once
#include "data/tokenizer/bpe.h"
#include "data/loader/loader.h"
#include "train/model/model.h"

typedef struct {
    int examples, correct;
} CtExactMatch;

// Over the first max_examples examples of an sft loader's split. When tok is not NULL,
// prints the first `show` prompts with their answers and references.
CtExactMatch ct_sft_exact_match(CtModel *m, const CtLoader *sft_loader, int max_examples, const CtTokenizer *tok,
                                int show);
