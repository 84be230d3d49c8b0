// An objective: what a training step computes over its micro-batches and how a run evaluates
// it, behind one shape, chosen once at setup (ct_objective_for) so that the training loop
// (train/loop/train_loop.c) reads the same for all of them:
//   lm   pretraining: next-token cross-entropy on every token of text shards (lm.c)
//   sft  supervised fine-tuning: the same loss on response tokens only, examples packed apart,
//        and exact match of greedy answers (sft.c)
//   dpo  preference tuning against a frozen reference (dpo_objective.c; its pieces in dpo.c)
//   reward  a reward model: a scalar head on the LM, TRL's RewardTrainer loss on dpo pairs (reward.c)
//   grpo  reinforcement learning from rewards of sampled completions: GRPO or RLOO (grpo.c); it
//         reads prompts (its own loaders, o->prompts) instead of the loop's token batches
//   mlm   masked-language modelling (BERT): text rows masked, each selected position predicting its
//         own original token (mlm.c, its masking in mlm_mask.c)
// Hooks see the run through CtObjectiveRun: the model, the loaders and the step's batches; an
// objective's own state (DPO's reference) hangs on `state`.
#pragma once
#include <stdint.h>

#include "data/loader/loader.h"
#include "data/loader/prompt_loader.h"
#include "data/shard/dataset.h"
#include "data/tokenizer/bpe.h"
#include "train/dist/grad_sync.h"
#include "train/model/model.h"
#include "train/objectives/step_batches.h"

typedef enum {
    CT_OBJECTIVE_LM = 0,   // pretraining: every next token of text shards
    CT_OBJECTIVE_SFT = 1,  // supervised fine-tuning: only response tokens of sft shards
    CT_OBJECTIVE_DPO = 2,  // preference tuning on dpo shards against a frozen reference
    CT_OBJECTIVE_REWARD = 3,  // a reward model (scalar head) on dpo shards' pairs
    CT_OBJECTIVE_GRPO = 4,    // GRPO / RLOO on prompts shards: sampled completions, their rewards
    CT_OBJECTIVE_MLM = 5,     // masked-language modelling on text shards: the selected tokens of masked rows
} CtObjectiveKind;

// A line an objective adds to metrics.jsonl: {"kind": kind, "step": …, "tokens": …, name: value…}.
#define CT_METRIC_ROW_MAX 32
typedef struct {
    const char *kind;  // "train", "eval"
    int n;             // 0: no line
    const char *names[CT_METRIC_ROW_MAX];
    double values[CT_METRIC_ROW_MAX];
} CtMetricRow;

// Where an objective's metrics go: rank 0's metrics.jsonl, at the run's step (write NULL on
// the other ranks, which write none).
typedef struct {
    void (*write)(void *ctx, const CtMetricRow *row);
    void *ctx;
} CtMetricSink;

// The run's settings an objective reads (from the run config, train/loop/run_config.h).
typedef struct {
    uint64_t seed;        // run.seed: the loaders' order and the dropout masks
    int batch_size;       // train.batch_size (dpo: pairs) on this rank
    int seq_len;          // train.seq_len
    int accum;            // train.grad_accum: micro-batches per step
    int eval_batches;     // train.eval_batches
    int eval_exact_match; // train.eval_exact_match: held-out examples answered greedily (0: off)
    int with_docs;        // pass positions and document ids to attention
    int world;            // ranks in the job
    float aux_loss_coef, router_z_loss_coef;  // train.*: Mixture of Experts' router losses
} CtObjectiveSettings;

typedef struct {
    CtObjectiveSettings set;
    CtModel *model;
    CtLoader *val;              // NULL: no validation split
    CtPromptLoader *prompts, *val_prompts;  // grpo: the prompts of the training and validation splits (val: NULL when none)
    const CtTokenizer *tokenizer;  // NULL: the dataset has none
    CtStepBatches *batches;     // the step's micro-batches, fetched by the loop
    CtGradSync *sync;           // how the gradients become the step's (train/dist/grad_sync.h)
    CtMetricSink metrics;
    const int64_t *step;        // the run's step counter (steps taken)
    // multi-token prediction: the last evaluate's per-depth validation losses (lm, sft; 0 depths: none)
    int val_mtp_depth;
    double val_mtp_loss[CT_MODEL_MAX_MTP_DEPTH];
    void *state;                // the objective's own (dpo: CtDpoRun)
} CtObjectiveRun;

// What a step computed: this rank's share of the step's loss, and the line of its own metrics.
typedef struct {
    double loss;
    int mtp_depth;      // multi-token prediction: the step's per-depth losses (over every rank), or 0
    double mtp_loss[CT_MODEL_MAX_MTP_DEPTH];
    CtMetricRow row;
    char progress[96];  // shown in the progress line after the loss ("": nothing)
    int failed;         // the step could not be taken (error set; every rank knows): the run stops
} CtStepResult;

typedef struct {
    const char *name;        // the command: "pretrain", "sft", "dpo"
    CtShardKind data_kind;   // the shards it reads
    int cross_entropy;       // its loss is a cross-entropy (perplexity, the divergence loss rule)
    int packs_examples;      // rows hold whole examples: attention stays inside each
    int text_samples;        // prints samples and the unigram baseline (pretraining)
    int reads_prompts;       // fetches its own prompts (o->prompts): the loop fetches no token batches
    // Forward and backward over the step's micro-batches (gradients added into the model's).
    CtStepResult (*step)(CtObjectiveRun *o);
    // The validation loss over the fixed validation batches, summed over the ranks (every rank
    // calls it); NAN + error when a batch cannot be read. NULL: the objective has no loss to
    // validate (grpo: its evaluation is exact_match's).
    double (*evaluate)(CtObjectiveRun *o, int *failed);
    // The share of held-out examples answered exactly (NAN: off); show: print the first ones.
    double (*exact_match)(CtObjectiveRun *o, int show);
    void (*report_done)(CtObjectiveRun *o);  // its lines of the final summary; NULL: none
    void (*free)(CtObjectiveRun *o);         // its state; NULL: none
} CtObjective;

extern const CtObjective ct_objective_lm, ct_objective_sft, ct_objective_dpo, ct_objective_reward, ct_objective_grpo,
    ct_objective_mlm;
const CtObjective *ct_objective_for(CtObjectiveKind kind);

// The dropout seed of a micro-batch (step·65536 + index): independent of every other one's.
uint64_t ct_objective_dropout_seed(uint64_t seed, uint64_t micro_batch);
// Mixture of Experts: the router losses' coefficients the model's next backwards apply
// (m->moe.aux_coef, z_coef), for a training step's micro-batches; 0 on a dense model.
void ct_objective_set_router_losses(CtObjectiveRun *o);
// Rewinds the validation loader to its fixed start; the number of batches to evaluate.
uint64_t ct_objective_val_start(CtObjectiveRun *o);
// The chat template a dataset was rendered with (its manifest's source.chat_template), as
// JSON (free with free()); NULL when it has none.
char *ct_objective_chat_template(const char *dataset_dir);
