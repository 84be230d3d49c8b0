// LoRA runs' checkpoints (HDF5):
//   /lora/<module>.lora_A.weight [r, in], /lora/<module>.lora_B.weight [out, r]   the adapters (r per module)
//   /lora/<layer>.mlp.experts.gate_up_proj.lora_A.weight [E, r, in], ...lora_B.weight [E, out, r]
//                                                   an expert parameter's (and down_proj's): one per expert
//   /lora/<embedding>.token_adapter.trainable_tokens_delta [n, C]   trained token rows (train/model/lora_tokens.h),
//   /lora/lm_head.token_adapter.trainable_tokens_delta [n, C]       and an untied head's
//   /lora/classifier.weight, ...                    a classifier's head trained in full (modules_to_save:
//                                                   train/model/lora_saved.h), under the base's names
//   /optim/m/<same names>, /optim/v/<same names>    their AdamW moments (training checkpoints)
//   attributes  lora_config     {"r", "alpha", "dropout", "rslora", "target_modules", "targets",
//                               "target_regex", "target_parameters", "layers_to_transform", "layers_pattern", "rank_pattern",
//                               "alpha_pattern", "trainable_token_ids", "trainable_token_head"} (JSON)
//               lora_base       the base checkpoint's path (absolute)
//               lora_base_hash  FNV-1a of the base's float32 parameters (train/model/lora.h)
//               model_config    the base's shape, and the run attributes of train/interop/checkpoint_meta.h
// The base's weights are not copied: a LoRA checkpoint is small, and loading it loads the base
// from lora_base, refusing one whose parameters do not hash to lora_base_hash (token ids past its
// vocabulary grow it to model_config's). Loading goes through ct_checkpoint_load
// (train/interop/checkpoint_io.h), which loads the base first and then reads the adapters here.
#pragma once
#include "optim/adamw.h"
#include "train/interop/checkpoint_meta.h"
#include "train/model/lora.h"

char *ct_lora_spec_json(const CtLoraSpec *spec, const char *target_modules);  // free with free()
int ct_lora_spec_parse_json(const char *json, CtLoraSpec *spec, const char *source);
// Records in lora which base it adapts: its absolute path and parameter hash.
void ct_lora_record_base(CtLora *lora, const char *base_path, uint64_t hash);

// A sequence classifier's or reward model's adapters (recorded->num_labels, reward_head) go on the
// base with its head: a base without one gets the recorded head (drawn from seed 0; modules_to_save then brings its values).
// 0, or -1 + error.
int ct_lora_base_take_head(CtModel *m, const CtModelConfig *recorded);

// Through ct_checkpoint_save (train/interop/checkpoint_io.h) for a model with adapters.
int ct_lora_checkpoint_save(const char *path, const CtModel *m, const CtAdamW *opt, const CtCheckpointMeta *meta);

// A LoRA checkpoint open for loading: the shape, base and adapters it records.
typedef struct {
    CtCheckpoint file;
    CtModelConfig config;  // the base's shape, grown by trained token rows past its vocabulary
    CtLoraSpec spec;
    char *base_path;
    uint64_t base_hash;
} CtLoraCheckpoint;

// Opens a LoRA run's checkpoint and reads its run attributes into meta, its base and its spec.
// 0, or -1 + error with nothing left open and meta freed.
int ct_lora_checkpoint_open(CtLoraCheckpoint *lc, const char *path, CtCheckpointMeta *meta);
// Attaches the adapters to m (the base of lc, loaded) and reads them, and their moments into opt
// when opt is not NULL. Without opt, keep leaves them apart, otherwise they are merged into the
// weights. 0, or -1 + error (m is then the caller's to free).
int ct_lora_checkpoint_read(CtLoraCheckpoint *lc, const char *path, CtModel *m, CtAdamW *opt, int keep);
void ct_lora_checkpoint_close(CtLoraCheckpoint *lc);
