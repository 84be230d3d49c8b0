// The run attributes every model checkpoint carries (plain and LoRA: train/interop/checkpoint_io.h,
// train/interop/lora_checkpoint.h), and the model's shape as JSON:
//   model_config  the resolved model shape as JSON (arch, sizes), so a checkpoint never depends on
//                 what a preset means in another release
//   config        the effective run config (JSON)
//   tokenizer     the tokenizer as tokenizer.json text, tokenizer_hash its fingerprint
//   generation_config  imported models: {"eos_token_id": [ids]}, the ids generation stops at
//   step, tokens_seen, optim_step, loader {seed, epoch, step}, rng, train_loss, val_loss,
//   best_val_loss, created_by
#pragma once
#include <math.h>
#include <stdint.h>

#include "checkpoints/checkpoint.h"
#include "data/loader/loader.h"
#include "train/model/model.h"

typedef struct {
    int64_t step;          // optimizer steps taken
    int64_t tokens_seen;
    CtLoaderState loader;
    uint64_t rng[4];
    double train_loss, val_loss, best_val_loss;  // NAN when unknown
    char *run_config_json;  // may be NULL
    char *tokenizer_json;   // may be NULL
    char *chat_template_json;  // sft runs: the template the data was rendered with; may be NULL
    char *generation_config_json;  // imported models: {"eos_token_id": [ids]}; may be NULL
    uint64_t tokenizer_hash;
} CtCheckpointMeta;

// An empty meta, for declarations: CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
#define CT_CHECKPOINT_META_INIT {.train_loss = NAN, .val_loss = NAN, .best_val_loss = NAN}
void ct_checkpoint_meta_init(CtCheckpointMeta *meta);  // the same, for a meta being reused
void ct_checkpoint_meta_free(CtCheckpointMeta *meta);  // frees the strings

// The model's shape as JSON (free with free()), and back. 0, or -1 + error.
char *ct_model_config_json(const CtModelConfig *c);
int ct_model_config_parse_json(const char *json, CtModelConfig *out, const char *source);

// Reads a checkpoint's model shape and metadata without loading tensors.
int ct_checkpoint_read_meta(const char *path, CtModelConfig *config, CtCheckpointMeta *meta);
// The run attributes of `meta` (step, loader, rng, losses, config, tokenizer) into an open file
// being written, and the model shape and run attributes out of an open file.
int ct_checkpoint_write_meta(CtCheckpoint *c, const CtCheckpointMeta *meta);
int ct_checkpoint_read_meta_open(CtCheckpoint *c, const char *path, CtModelConfig *config, CtCheckpointMeta *meta);
