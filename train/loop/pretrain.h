// The pretraining loop: next-token cross-entropy over a text dataset, with AdamW, a learning-
// rate schedule, clipping, gradient accumulation, periodic validation, samples and
// checkpoints, metrics and a loss plot; resumable to the bit on the CPU. See docs/training.md.
#pragma once
#include "train/loop/run_config.h"

typedef enum {
    CT_OBJECTIVE_LM = 0,   // pretraining: every next token of text shards
    CT_OBJECTIVE_SFT = 1,  // supervised fine-tuning: only response tokens of sft shards
    CT_OBJECTIVE_DPO = 2,  // preference tuning on dpo shards against a frozen reference
} CtObjective;

typedef struct {
    CtObjective objective;
    const CtRunConfig *config;
    const char *config_json;  // the effective config, stored in checkpoints
    const char *resume_dir;   // NULL: a new run
    int64_t stop_after;       // > 0: checkpoint and stop after this many steps (time-limited jobs)
} CtPretrainJob;

// Returns the exit status: 0 done, 1 error (printed), 130/143 interrupted by SIGINT/SIGTERM
// after saving a checkpoint.
int ct_pretrain(const CtPretrainJob *job);
