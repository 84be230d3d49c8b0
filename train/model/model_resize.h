// Growing a model's vocabulary: when SFT's chat template adds special tokens the base model
// never had, the token embedding (and an untied output head) get rows for them, initialised to
// the mean of the existing rows, so the new tokens start as an "average" token rather than
// noise. Every other parameter is copied unchanged.
#pragma once
#include "train/model/model.h"

// Replaces *m by a model with vocab_size new_V (> the current one), with activations for
// max_B × max_T. 0, or -1 + error (m is unchanged then).
int ct_model_grow_vocab(CtModel *m, int new_V, int max_B, int max_T, int recompute);
