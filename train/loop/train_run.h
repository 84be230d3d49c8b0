// One training run's state and the steps it goes through, shared by the files of train/loop:
//   train_setup.c      data, loaders, the model (new, resumed or from init_from, LoRA), its device
//   train_setup_dpo.c  DPO's reference
//   train_start.c      what the run says before its first step, and the step-0 evaluation
//   train_loop.c       the loop: next batch -> objective's step -> reduce and clip -> optimizer
//                      step -> evaluate -> save
//   train_report.c     progress lines, evaluations' reports, checkpoints, the final summary
// The entry point (ct_pretrain, train/loop/pretrain.c) runs them in that order.
#pragma once
#include <stdint.h>

#include "core/rng.h"
#include "data/loader/loader.h"
#include "data/shard/dataset.h"
#include "data/tokenizer/bpe.h"
#include "optim/adamw.h"
#include "optim/schedule.h"
#include "train/dist/grad_sync.h"
#include "train/loop/divergence.h"
#include "train/loop/metrics.h"
#include "train/loop/moe_step.h"
#include "train/loop/run_config.h"
#include "train/loop/run_lock.h"
#include "train/model/model.h"
#include "train/objectives/dpo_objective.h"
#include "train/objectives/grpo.h"
#include "train/objectives/classify.h"
#include "train/objectives/mlm.h"
#include "train/objectives/reward.h"
#include "train/objectives/objective.h"
#include "train/objectives/step_batches.h"

typedef struct {
    const CtRunConfig *cfg;
    const CtObjective *objective;  // chosen once from the job's kind
    const char *name;              // the command: "pretrain", "sft", "dpo"
    CtObjectiveKind kind;
    const char *config_json;  // the effective config, stored in checkpoints
    const char *resume_dir;   // NULL: a new run
    int64_t stop_after;       // > 0: checkpoint and stop after this many steps of this invocation
    int lead, world, threads;      // rank 0 alone prints and writes
    CtDataset data;
    CtTokenizer tokenizer;
    int have_tokenizer;
    char tokenizer_path[CT_PATH_MAX + 32];  // the dataset's tokenizer (data.tokenizer, or data.path's tokenizer.json)
    char *tokenizer_json;
    char resume_path[2048];  // the checkpoint resumed from (resume_dir's newest)
    CtModel model;
    int have_model;
    CtAdamW opt;
    CtGradSync sync;  // how the gradients are summed over ranks, clipped and stepped (train/dist/grad_sync.h)
    CtLoader train, val;
    int have_train, have_val;  // have_val: the run evaluates (a validation loader, or grpo's validation prompts)
    CtPromptLoader prompts, val_prompts;  // grpo: the prompts of both splits, instead of train and val
    int have_prompts, have_val_prompts;
    CtStepBatches step_batches;
    CtObjectiveRun obj;  // what the objective's hooks see
    CtDpoRun dpo;        // the dpo objective's state (its reference)
    CtRewardRun reward;  // the reward objective's state
    CtGrpoRun grpo;      // the grpo objective's state
    CtMlmRun mlm;        // the mlm objective's state (its masking tables)
    CtClassifyRun classify;  // the classify objective's examples and labels
    int have_classify;
    char *classify_config_json;  // the run config with classify.labels filled in (config_json points to it)
    CtRng sample_rng;
    CtMetrics metrics;
    int have_metrics;
    CtRunLock lock;  // rank 0: run.out_dir, held for the whole run (train/loop/run_lock.h)
    int64_t step, tokens_seen, first_step, tokens_per_step;
    double best_val, last_val, last_loss, last_exact_match;
    double peak_flops, flops_per_step, unigram;
    char peak_how[400];  // how peak_flops was found (train/loop/mfu_peak.h)
    int vocab_grown_from;
    // Stored in every checkpoint the run writes (ct_alloc'd): the chat template (sft and dpo: the
    // dataset's; else, and for plain-string dpo, the starting checkpoint's) and the model's
    // end-of-sequence ids (the starting or resumed checkpoint's generation_config, as an
    // imported model has it), so chat and generate stop where the model's own would.
    char *chat_template_json;
    char *generation_config_json;
    char last_checkpoint[2048];
    const CtOps *ops;  // run.device's backend: the model trains in its memory
    int eval_failed;   // the validation data could not be read: the run stops with its error
    CtDivergence divergence;  // warns once when the loss or gradient norm explodes
    CtLrSchedule sched;
    int tty;  // stderr is a terminal: the progress line is redrawn in place
    int64_t log_every;
    double compute_time, start_time, ema_tps;
    CtMoeStep moe;  // Mixture of Experts: the routing of the step just taken (train/loop/moe_step.h)
    int64_t stop_by[2];  // ranks that received SIGINT, SIGTERM (summed over the ranks after each step)
} CtRun;

// train_setup.c. Everything before the first step; 1 when a resumed run has nothing to do
// (said in one line), 0 ready, -1 + error.
int ct_train_setup(CtRun *r);
void ct_train_free(CtRun *r);
// train_setup_dpo.c: the reference of a DPO run. 0, or -1 + error.
int ct_train_setup_dpo(CtRun *r, int resuming);
// train_setup_grpo.c: GRPO's prompts, and its settings, rewards, reference and buffers. 0, or -1 + error.
int ct_train_open_prompts(CtRun *r);
int ct_train_setup_grpo(CtRun *r);
// train_setup_classify.c: the tokenizer a checkpoint carries; the classifier's model config (labels,
// pooling); the head added to a starting model without one; the objective's state. 0, or -1 + error.
int ct_train_checkpoint_tokenizer(const char *path, CtTokenizer *tok);
int ct_train_classifier_config(CtRun *r, CtModelConfig *want);
int ct_train_add_classifier(CtRun *r, const CtModelConfig *want, int B, int T);
// LoRA classifiers: the head added to the frozen base before the adapters (CtLoraBaseHead of
// train/loop/run_lora.h; ctx a CtClassifierHead), modules_to_save PEFT's SEQ_CLS ones.
typedef struct {
    CtRun *run;
    const CtModelConfig *want;
    int B, T;
} CtClassifierHead;
int ct_train_classifier_lora_head(CtModel *base, void *ctx, char *modules_to_save, size_t size);
int ct_train_setup_classify(CtRun *r);
// Rows of a micro-batch (model activations): the loader's (2 per pair for dpo), or train.batch_size.
int ct_train_rows(const CtRun *r);
// train_start.c: the description of the run, then (a new run) samples and the evaluation at
// step 0. 0, or -1 + error.
int ct_train_start(CtRun *r);
// train_loop.c: the steps up to train.max_steps (or a stop). The exit status: 0, 1 (error
// set), 130/143 interrupted.
int ct_train_run(CtRun *r);
// Catching SIGINT and SIGTERM for a checkpoint before stopping (train_loop.c).
void ct_train_catch_signals(int on);

// train_report.c
void ct_train_print_samples(CtRun *r, const char *when);
// After a step: its metrics line, the divergence watch, the objective's own line, the progress line.
void ct_train_record_step(CtRun *r, const CtStepResult *res, double loss, double norm, double seconds, int eval_now);
// A validation pass and its reports (every rank); at step 0 the start's. 0, or -1 + error.
int ct_train_evaluate(CtRun *r);
// The error of a loss or gradient norm that is not finite.
int ct_train_non_finite(CtRun *r, double loss, double norm);
// The error of a step the objective could not take (a reward command that failed), with what was saved.
int ct_train_step_failed(CtRun *r);
// A checkpoint of this step (every rank: ZeRO-1 gathers the state). 0, or -1 + error.
int ct_train_save(CtRun *r, int write_failed);
int ct_train_save_checkpoint(CtRun *r, const char *path, int with_optimizer);
// After the last step: the reports and the exit status (0, 1 + error, 130/143).
int ct_train_finish(CtRun *r, int stopping, int stopped_early, int write_failed);
