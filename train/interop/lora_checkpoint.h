// LoRA runs: building the adapter model a config asks for, and its checkpoints (HDF5):
//   /lora/<module>.lora_A.weight [r, in], /lora/<module>.lora_B.weight [out, r]   the adapters (r per module)
//   /lora/<embedding>.token_adapter.trainable_tokens_delta [n, C]   trained token rows (train/model/lora_tokens.h),
//   /lora/lm_head.token_adapter.trainable_tokens_delta [n, C]       and an untied head's
//   /optim/m/<same names>, /optim/v/<same names>    their AdamW moments (training checkpoints)
//   attributes  lora_config     {"r", "alpha", "dropout", "rslora", "target_modules", "targets",
//                               "target_regex", "layers_to_transform", "layers_pattern", "rank_pattern",
//                               "alpha_pattern", "trainable_token_ids", "trainable_token_head"} (JSON)
//               lora_base       the base checkpoint's path (absolute)
//               lora_base_hash  FNV-1a of the base's float32 parameters (train/model/lora.h)
//               model_config    the base's shape, and the run attributes of train/interop/checkpoint_io.h
// The base's weights are not copied: a LoRA checkpoint is small, and loading it loads the base
// from lora_base, refusing one whose parameters do not hash to lora_base_hash (token ids past its
// vocabulary grow it to model_config's).
#pragma once
#include "train/interop/checkpoint_io.h"
#include "train/model/lora.h"
#include "train/loop/run_config.h"

// The config's lora section as a spec (lora.r > 0). 0, or -1 + error.
int ct_lora_spec_from_config(const CtRunConfig *cfg, CtLoraSpec *spec);
char *ct_lora_spec_json(const CtLoraSpec *spec, const char *target_modules);  // free with free()
int ct_lora_spec_parse_json(const char *json, CtLoraSpec *spec, const char *source);

// A new LoRA run's model: the base from train.init_from, frozen (no gradients), with adapters
// per the lora section initialised from run.seed; logs what trains and what it saves.
int ct_lora_model_from_config(const CtRunConfig *cfg, CtModel *m, const CtOps *ops, int max_B, int max_T, int flags);

// Loads the base checkpoint at `base_path` (flags of ct_model_create) and checks its hash when
// expected_hash is not 0. 0, or -1 + error naming both files.
int ct_lora_load_base(const char *base_path, uint64_t expected_hash, const char *referrer, CtModel *m,
                      const CtOps *ops, int max_B, int max_T, int flags);

// Through ct_checkpoint_save / ct_checkpoint_load (train/interop/checkpoint_io.h) for a model with adapters.
int ct_lora_checkpoint_save(const char *path, const CtModel *m, const CtAdamW *opt, const CtCheckpointMeta *meta);
int ct_lora_checkpoint_load(const char *path, CtModel *m, const CtOps *ops, int max_B, int max_T, int flags,
                            CtAdamW *opt, CtCheckpointMeta *meta);
// A LoRA checkpoint's base (frozen) with its adapters kept apart (lora export, merge).
int ct_lora_checkpoint_load_adapters(const char *path, CtModel *m, const CtOps *ops, int flags, CtCheckpointMeta *meta);
