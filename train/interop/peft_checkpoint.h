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
// Loads the base (CPU, frozen, batches up to max_B × max_T + the adapter's rows) and the adapter;
// with opt, its moments too. 0, or -1 + error with nothing left allocated.
int ct_peft_checkpoint_load(const char *path, CtModel *m, int max_B, int max_T, int flags, CtAdamW *opt,
                            CtCheckpointMeta *meta);
