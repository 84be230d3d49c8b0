// Training a model: pretraining (next-token cross-entropy over a text dataset), SFT and DPO,
// with or without LoRA, on one process or data parallel (MPI, NCCL, ZeRO-1): AdamW, a
// learning-rate schedule, clipping, gradient accumulation, periodic validation, samples and
// checkpoints, metrics and a loss plot; resumable to the bit on the CPU. See docs/training.md.
// The loop itself is train/loop/train_loop.c; the objectives are train/objectives/.
#pragma once
#include "train/loop/run_config.h"
#include "train/objectives/objective.h"

typedef struct {
    CtObjectiveKind objective;
    const CtRunConfig *config;
    const char *config_json;  // the effective config, stored in checkpoints
    const char *resume_dir;   // NULL: a new run
    int64_t stop_after;       // > 0: checkpoint and stop after this many steps (time-limited jobs)
} CtPretrainJob;

// Returns the exit status: 0 done, 1 error (printed), 130/143 interrupted by SIGINT/SIGTERM
// after saving a checkpoint.
int ct_pretrain(const CtPretrainJob *job);
