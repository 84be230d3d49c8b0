// What a model checkpoint holds and how a run saves and restores it (the HDF5 mechanics are in
// checkpoints/checkpoint.h; the run attributes every checkpoint carries in
// train/interop/checkpoint_meta.h):
//   /model/<name>             the parameters, Hugging Face names, as the model holds them
//   /optim/m/<name>, /optim/v/<name>   AdamW moments (training checkpoints; not in exports)
//   attributes                model_config, config, tokenizer, step, ... (checkpoint_meta.h)
// A LoRA run's checkpoint holds its adapters and refers to its base (train/interop/lora_checkpoint.h):
// this file chooses between the two.
#pragma once
#include <stdint.h>

#include "optim/adamw.h"
#include "train/interop/checkpoint_meta.h"
#include "train/model/model.h"

// Saves the model (and the optimizer's moments when opt is not NULL) atomically; a model with
// adapters saves only them (train/interop/lora_checkpoint.h).
int ct_checkpoint_save(const char *path, const CtModel *m, const CtAdamW *opt, const CtCheckpointMeta *meta);
// Creates `m` with the checkpoint's shape for batches up to max_B × max_T (flags: those of
// ct_model_create) and loads its parameters (and, when opt is not NULL, the optimizer state,
// which must be present; opt's moments are (re)allocated to the model's size, its
// hyperparameters kept). A LoRA run's checkpoint loads its base and adapters: merged into the
// weights without opt, kept apart over the frozen base with opt (resume).
int ct_checkpoint_load(const char *path, CtModel *m, const CtOps *ops, int max_B, int max_T, int flags,
                       CtAdamW *opt, CtCheckpointMeta *meta);

// Loads the base checkpoint at `base_path` (flags of ct_model_create) and checks its hash when
// expected_hash is not 0. 0, or -1 + error naming both files.
int ct_lora_load_base(const char *base_path, uint64_t expected_hash, const char *referrer, CtModel *m,
                      const CtOps *ops, int max_B, int max_T, int flags);
// A LoRA checkpoint's base (frozen) with its adapters kept apart (lora export, merge).
int ct_lora_checkpoint_load_adapters(const char *path, CtModel *m, const CtOps *ops, int flags, CtCheckpointMeta *meta);
