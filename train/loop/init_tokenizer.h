// train.init_from's tokenizer against the dataset's: a model starts from a checkpoint only when
// every token id the data uses means what it meant to that model. Accepted: the same tokenizer;
// one that extends it (every id of the model's tokenizer is the same token in the dataset's, and
// new ids follow: a chat template's specials, which get new embedding rows); or one the model's
// extends (the data uses only ids the model knows, with their meaning). Anything else is
// refused in one line naming both tokenizers and the first id that differs.
#pragma once
#include <stdint.h>

#include "data/tokenizer/bpe.h"

// data_tok: the dataset's tokenizer (NULL where the dataset folder has none: then only its
// fingerprint data_hash can be compared). data_source names it (a path). A checkpoint that
// carries no tokenizer cannot be checked: a warning says so. 0, or -1 + error.
int ct_init_tokenizer_check(const char *init_from, const CtTokenizer *data_tok, uint64_t data_hash,
                            const char *data_source);
