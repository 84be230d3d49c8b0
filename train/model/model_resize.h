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

// A sequence classifier of num_labels on the model (train/model/model_classify.h): a new model whose
// tensors of the same name keep their values and whose others (the head; BERT's pooler when the
// model has none, as BertForMaskedLM has none) are drawn as ct_model_init(seed) draws them, as
// transformers' *ForSequenceClassification.from_pretrained of a base model draws its missing
// weights. RoBERTa's pooler goes (RobertaForSequenceClassification has none). On the CPU.
// Returns 0, or -1 + error.
int ct_model_add_classifier(CtModel *m, int num_labels, CtPooling pooling, uint64_t seed, int max_B, int max_T,
                            int recompute);
