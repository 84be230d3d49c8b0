// GRPO and RLOO as an objective (objective.h), as TRL 1.16's GRPOTrainer and RLOOTrainer run them.
//
// A step: this rank's P = batch_size·grad_accum/G prompts of the global batch (o->prompts; the
// ranks' prompts are disjoint, so each group lives on one rank), G completions of each sampled
// with the policy (grpo_sampler.h), their rewards (grpo_rewards.h: the weighted sum of the
// sources), the advantages (grpo_advantages.h), then for each of the grad_accum micro-batches of
// batch_size completions the policy's forward, the loss (grpo_loss.h) and its backward. With
// num_iterations μ > 1 the same completions serve μ optimizer steps, the ratio taken against
// the log-probabilities they were sampled with (TRL's old_per_token_logps); with β ≠ 0 the
// reference's log-probabilities (a frozen copy of the start, dpo.h's reference) are taken once
// per batch of completions, as TRL does.
//
// Rows: completion j of prompt p is the row prompt ‖ completion (the prompt cut from the left to
// seq_len − max_completion_length tokens), inputs and shifted targets as every objective's, the
// loss mask on the targets that are completion tokens (the stop token included). Log-probs are
// taken at the sampling temperature (the model's logit_temperature).
//
// The shares: every loss_type's micro-batch loss is divided by grad_accum·world (the loop sums
// the ranks' gradients; TRL's DDP averages them, its Trainer divides by the accumulation), and
// dapo's normaliser is the generation batch's loss tokens over all ranks, so that the step's
// gradient is TRL's.
#pragma once
#include <stdio.h>

#include "train/objectives/dpo.h"
#include "train/objectives/grpo_advantages.h"
#include "train/objectives/grpo_loss.h"
#include "train/objectives/grpo_rewards.h"
#include "train/objectives/grpo_sampler.h"
#include "train/objectives/grpo_stats.h"
#include "train/objectives/objective.h"

typedef enum { CT_RL_GRPO = 0, CT_RL_RLOO = 1 } CtRlAlgo;

typedef struct {
    CtRlAlgo algo;
    int G, num_iterations;
    CtGrpoSampleOptions sample;  // sample.stop points at stop[]
    int32_t stop[16];
    CtGrpoLossConfig loss;       // loss.beta: GRPO's KL weight in the loss (0 for RLOO)
    double beta;                 // the KL's weight (GRPO: in the loss; RLOO: in the reward)
    CtScaleRewards scale_rewards;
    int normalize_advantages;    // RLOO
    int mask_truncated;
    int log_completions;         // held-out completions written to samples_path per evaluation
    char samples_path[2100];     // "": none
} CtGrpoSettings;

typedef struct {
    CtGrpoSettings set;
    CtRewards rewards;
    CtDpo ref;  // the KL's reference (its ref / base_as_reference); unused when beta = 0
    int have_ref;
    CtGenerator gen;
    int P, n;            // prompts and completions of this rank per generation batch (n = P·G)
    int have_batch;      // the completions below are the current generation batch
    const CtPrompt *prompts;  // the batch's prompts (the loader's, valid until its next call)
    int32_t *completions;     // [n, max_completion_length]
    int *length;
    uint8_t *truncated;
    double *entropy_sum, *rewards_total, *per_source, *advantages;
    double *old_logp, *ref_logp;  // [n·T] in rows' layout; NULL when not needed
    double *logp, *dlogp;         // [rows·T]: one micro-batch's
    double dapo_tokens;
    CtGrpoStats stats;            // the generation batch's statistics over all ranks
    double last_eval_reward, last_eval_accuracy;  // of the last evaluation (NAN before)
    int eval_failed;  // the held-out rewards could not be computed (the error is set)
} CtGrpoRun;

// grpo_batch.c: the next generation batch: prompts, completions, rows (in o->batches), rewards,
// advantages, old and reference log-probabilities, statistics. 0, or -1 + error.
int ct_grpo_generate(CtGrpoRun *g, CtObjectiveRun *o);
// The rewards of n_prompts·per_prompt completions (completion j of prompts[j / per_prompt] at
// completions + j·stride, length[j] tokens, the stop token left out of its text). 0, or -1 + error.
int ct_grpo_score(CtGrpoRun *g, const CtTokenizer *tok, const CtPrompt *prompts, int n_prompts, int per_prompt,
                  const int32_t *completions, const int *length, int stride, const int32_t *stop, int n_stop,
                  double *per_source, double *total);

// Sizes the run's buffers; o->set and o->model are bound, rows = train.batch_size (batch_size·accum a
// multiple of G, max_completion_length < seq_len: checked at setup). 0.
int ct_grpo_run_init(CtGrpoRun *g, const CtObjectiveRun *o);
void ct_grpo_run_free(CtGrpoRun *g);
