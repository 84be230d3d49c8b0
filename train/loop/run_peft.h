// Prompt-learning runs: the adapter a run config's peft section asks for (the adapters themselves
// are in train/model/peft.h, their checkpoints in train/interop/peft_checkpoint.h).
#pragma once
#include "data/tokenizer/bpe.h"
#include "train/loop/run_config.h"
#include "train/model/peft.h"

// The config's peft section (peft.type ≠ none) as a spec; tok (may be NULL without text init)
// tokenizes peft.prompt_tuning_init_text as transformers' tokenizer(text) does (special tokens of
// the post-processor added). 0, or -1 + error.
int ct_peft_spec_from_config(const CtRunConfig *cfg, const CtTokenizer *tok, CtPeftSpec *spec);

// A new prompt-learning run's model: the base from train.init_from, frozen (no gradients), with
// the adapter initialised from run.seed, for batches up to max_B × max_T (the virtual rows come
// on top); logs what trains.
int ct_peft_model_from_config(const CtRunConfig *cfg, const CtTokenizer *tok, CtModel *m, int max_B, int max_T,
                              int flags);
