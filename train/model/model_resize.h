// Growing a model's vocabulary: when SFT's chat template adds special tokens the base model
// never had, the token embedding (and an untied output head) get rows for them, initialised to
// the mean of the existing rows, so the new tokens start as an "average" token rather than
// noise. Every other parameter is copied unchanged.
#pragma once
#include "train/model/model.h"

// Replaces *m by a model with vocab_size new_V (> the current one), with activations for
// max_B × max_T. 0, or -1 + error (m is unchanged then).
int ct_model_grow_vocab(CtModel *m, int new_V, int max_B, int max_T, int recompute);

// Replaces *m (a language model) by the same model with a reward head (model.reward_head): every
// parameter copied, score.weight drawn as ct_model_init(seed) draws it. 0, or -1 + error.
int ct_model_add_reward_head(CtModel *m, uint64_t seed, int max_B, int max_T, int recompute);
