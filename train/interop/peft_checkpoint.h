// Prompt-learning runs' checkpoints (HDF5), for every kind of train/model/peft.h:
//   /peft/<tensor>                 the adapter's tensors, PEFT's module-relative names ("embedding.weight",
//                                  "mlp_head.0.weight", ...; "prompt_embeddings" for an inference adapter)
//   /optim/m/<tensor>, /optim/v/<tensor>   their AdamW moments (training checkpoints), optim_step
//   attributes  peft_config     the spec (ct_peft_spec_json)
//               peft_base       the base checkpoint's path (absolute)
//               peft_base_hash  FNV-1a of the base's float32 parameters (ct_lora_base_hash)
//               model_config    the base's shape, and the run attributes of train/interop/checkpoint_meta.h
// No base weights: loading loads the base from peft_base, refuses one whose parameters do not hash
// to peft_base_hash, and attaches the adapter (which stays apart: nothing merges into the weights).
// ct_checkpoint_save / ct_checkpoint_load (train/interop/checkpoint_io.h) come here for such models
// and files.
#pragma once
#include "optim/adamw.h"
#include "train/interop/checkpoint_meta.h"
#include "train/model/peft.h"

int ct_peft_checkpoint_save(const char *path, const CtModel *m, const CtAdamW *opt, const CtCheckpointMeta *meta);
// A prompt-learning checkpoint open for loading: the shape, base and spec it records.
typedef struct {
    CtCheckpoint file;
    CtModelConfig config;
    CtPeftSpec spec;
    char *base_path;
    uint64_t base_hash;
} CtPeftCheckpoint;

// Opens it and reads its run attributes into meta, its base and its spec. 0, or -1 + error with
// nothing left open and meta freed.
int ct_peft_checkpoint_open(CtPeftCheckpoint *pc, const char *path, CtCheckpointMeta *meta);
// Attaches the adapter to m (the base of pc, loaded: ct_checkpoint_load does it) and reads it, and
// its moments into opt when opt is not NULL. 0, or -1 + error (m is then the caller's to free).
int ct_peft_checkpoint_read(CtPeftCheckpoint *pc, const char *path, CtModel *m, CtAdamW *opt);
void ct_peft_checkpoint_close(CtPeftCheckpoint *pc);
