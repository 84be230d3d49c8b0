// DPO training pieces (the objective that uses them is dpo_objective.c): the reference model or its
// precomputed log-probabilities, and one micro-batch's forward, loss and gradient.
//
// The policy's and the reference's log-probability of a completion is the sum, over its tokens,
// of the fused cross-entropy's per-token log-probabilities (prompt tokens masked out); for IPO
// the mean per token, as TRL does. The loss of the step is the mean over its pairs (all
// micro-batches). Its gradient flows into the usual backward through per-token weights: the
// model's loss is Σ w_n·(−logp_n)/K, so w_n = K·(−∂L/∂logp_row) turns its backward into the
// backward of L.
#pragma once
#include <stdint.h>

#include "data/loader/loader.h"
#include "train/objectives/dpo_loss.h"
#include "train/model/generate.h"
#include "train/model/model.h"
#include "train/objectives/step_batches.h"

typedef struct {
    CtDpoLoss type;
    double beta, epsilon;
    CtModel ref;
    int have_ref;
    int base_as_reference;  // LoRA policy: the reference is the policy with its adapters off (no copy)
    double *pre_chosen[CT_N_SPLITS], *pre_rejected[CT_N_SPLITS];  // per example, when precomputed
} CtDpo;

typedef struct {
    double loss, reward_chosen, reward_rejected, accuracy, logp_chosen, logp_rejected;
    int64_t pairs;
} CtDpoStats;

// The reference: the checkpoint ref_path; or (empty) the policy as it is now: for a LoRA policy
// its own weights with the adapters switched off (no second model in memory), else a frozen copy.
int ct_dpo_init(CtDpo *d, CtDpoLoss type, double beta, double epsilon, const CtModel *policy, const char *ref_path,
                int rows, int T);
void ct_dpo_free(CtDpo *d);
// The reference's forward of b (its log-probabilities in the returned model's logprobs): the
// reference model, or the LoRA policy with its adapters off (its routing statistics kept). GRPO's
// KL term reads the same reference.
CtModel *ct_dpo_reference_forward(CtDpo *d, CtModel *policy, const CtBatch *b);
// Computes the reference log-probabilities of every pair of a split once (loader: batch 1,
// file order) and, when `drop_model`, frees the reference model afterwards.
int ct_dpo_precompute(CtDpo *d, CtModel *policy, CtLoader *pairs, CtSplit split);
void ct_dpo_drop_model(CtDpo *d);
// One micro-batch i of s: forward the policy (and the reference unless precomputed), add the
// loss of its pairs (each weighing 1/global_pairs) to *stats, and with `backward` add their
// gradient into policy->grads.
void ct_dpo_micro_step(CtDpo *d, CtModel *policy, CtStepBatches *s, int i, int64_t global_pairs, CtSplit split,
                       int backward, CtDpoStats *stats);
void ct_dpo_stats_finish(CtDpoStats *stats);  // sums to means
// The share of the first max_examples pairs whose greedy answer to the prompt is exactly the
// chosen completion, up to and including stop_token (the template's end of turn, or the end of
// text), when it has one (how far generation has moved toward the preferred answers).
double ct_dpo_chosen_match(CtModel *m, const CtLoader *pairs, int max_examples, int32_t stop_token);
