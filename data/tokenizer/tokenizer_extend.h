// Adding special tokens to a finished tokenizer: SFT chat templates bring tokens such as
// <|im_start|> that a base tokenizer may lack. New specials get the ids after the last one;
// every existing id, merge and special keeps its meaning, so shards and checkpoints made with
// the base stay valid (the model grows rows for the new ids, see train/model/model_resize.h).
#pragma once
#include "data/tokenizer/bpe.h"

// Adds those of texts[0..n) that are not special tokens yet. Returns how many were added, or
// -1 + error (a text that is already a normal token cannot become special).
int ct_tokenizer_add_specials(CtTokenizer *t, const char *const *texts, int n);
