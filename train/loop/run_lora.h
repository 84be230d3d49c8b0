// LoRA runs: the adapter model a run config's lora section asks for (the adapters themselves are
// in train/model/lora.h, their checkpoints in train/interop/lora_checkpoint.h).
#pragma once
#include "kernels/ops.h"
#include "train/loop/run_config.h"
#include "train/model/lora.h"

// The config's lora section as a spec (lora.r > 0). 0, or -1 + error.
int ct_lora_spec_from_config(const CtRunConfig *cfg, CtLoraSpec *spec);

// What a run adds to the frozen base before the adapters (NULL: nothing): a sequence classifier
// its head (ctrain classify), naming in modules_to_save (PEFT's) the modules that then train in
// full beside the adapters. 0, or -1 + error.
typedef int (*CtLoraBaseHead)(CtModel *base, void *ctx, char *modules_to_save, size_t size);

// A new LoRA run's model: the base from train.init_from, frozen (no gradients), add_head's head,
// and adapters per the lora section initialised from run.seed; logs what trains and what it saves.
int ct_lora_model_from_config(const CtRunConfig *cfg, CtModel *m, const CtOps *ops, int max_B, int max_T, int flags,
                              CtLoraBaseHead add_head, void *ctx);
