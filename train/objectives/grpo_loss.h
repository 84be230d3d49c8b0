// GRPO's and RLOO's policy loss over one micro-batch of B completions of T tokens, as TRL 1.16
// defines them (GRPOTrainer._compute_loss, RLOOTrainer._compute_loss), with the gradient with
// respect to the policy's per-token log-probabilities. The per-unit math is the CPU kernel
// ct_cpu_grpo_loss (kernels/cpu/grpo.inc); this file picks the units and the normalisation.
//
// Inputs are [B,T] arrays, row b the completion tokens of completion b (prompt and padding
// masked out by `mask`); logp is the policy's log-probability of each token (the fused
// cross-entropy's m->logprobs, widened to double: B·T numbers, as DPO sums its rows in double;
// the float kernel ct_cpu_grpo_loss_f32 is there for a caller that keeps them float), old_logp the sampling policy's (NULL: num_iterations = 1, the old
// policy is the current one held constant), ref_logp the reference's (only read when beta ≠ 0).
// advantages[B] come from grpo_advantages.h.
//
// The gradient reaches the model through the cross-entropy backward the DPO objective already
// uses (train/objectives/dpo.c): the model's loss is Σ w_n·(−logp_n)/K (K = its counted
// tokens, m->loss_count), so ct_model_set_loss_weights(m, w) with w_n = −K·dlogp_n makes
// ct_model_backward the backward of this loss.
#pragma once
#include <stdint.h>

// TRL's `loss_type`: how the masked per-token losses are summed into the loss.
typedef enum {
    CT_GRPO_LOSS_GRPO = 0,     // "grpo": each completion's mean over its tokens, then the mean over completions
    CT_GRPO_LOSS_BNPO = 1,     // "bnpo": Σ over the micro-batch's tokens / their count
    CT_GRPO_LOSS_DR_GRPO = 2,  // "dr_grpo": Σ / (B · max_completion_length), a constant
    CT_GRPO_LOSS_DAPO = 3,     // "dapo" (TRL's default): Σ / the tokens of the whole generation batch
} CtGrpoLossType;

// "grpo" | "bnpo" | "dr_grpo" | "dapo"; -1 when unknown.
int ct_grpo_loss_type_parse(const char *name, CtGrpoLossType *out);
const char *ct_grpo_loss_type_name(CtGrpoLossType type);

typedef struct {
    CtGrpoLossType loss_type;
    double epsilon_low, epsilon_high;  // TRL's `epsilon` and `epsilon_high` (= epsilon when not given)
    double beta;                       // TRL's `beta`: the weight of the k3 KL to the reference
    int max_completion_length;         // dr_grpo's constant
} CtGrpoLossConfig;

// TRL's metrics of the loss as sums and counts, so that ranks and micro-batches add up before
// the means (TRL's global_masked_mean): kl = kl_sum/count (GRPO: masked mean of the k3 KL, only
// when beta ≠ 0; RLOO: ct_rloo_kl_penalty's), clip_ratio/low_mean = low_sum/count, high_mean,
// region_mean likewise; clip_ratio/low_min and /high_max are the min and max over completions
// (of each completion's masked mean for GRPO; its flag for RLOO). Start from ct_grpo_metrics_init.
typedef struct {
    double kl_sum, kl_count;
    double low_sum, high_sum, region_sum, count;
    double low_min, high_max;
} CtGrpoMetrics;

void ct_grpo_metrics_init(CtGrpoMetrics *m);
typedef struct {
    double kl, low_mean, high_mean, region_mean, low_min, high_max;  // NAN where nothing was counted
} CtGrpoMetricMeans;
CtGrpoMetricMeans ct_grpo_metrics_means(const CtGrpoMetrics *m);

// mask_truncated_completions: completion b that did not end in an end-of-sequence or padding
// token (truncated[b] ≠ 0) loses all its tokens from the loss (TRL zeroes its completion_mask).
void ct_grpo_mask_truncated(uint8_t *mask, const uint8_t *truncated, int B, int T);

// weights[B,T]: mask[b,t] / the loss_type's normaliser: Σ weights·per-token loss is the micro-batch's
// loss for grpo, bnpo and dr_grpo as TRL computes it before dividing by the accumulation steps, and
// for dapo Σ / dapo_tokens (ignored otherwise). TRL's dapo normaliser is the generation batch's loss
// tokens over all ranks / num_processes (with steps_per_generation = gradient_accumulation_steps),
// with no division by the accumulation; a caller that divides every loss_type's value by
// accum·world (ctrain grpo: train/objectives/grpo.h) passes dapo_tokens = those tokens / (accum·world).
void ct_grpo_token_weights(double *weights, const uint8_t *mask, int B, int T, CtGrpoLossType type,
                           int max_completion_length, double dapo_tokens);

// GRPO's loss of the micro-batch (TRL's `loss` before the accumulation divide); dlogp[B,T] (may be
// NULL) gets its gradient with respect to logp. Adds the micro-batch's metrics into *metrics
// (may be NULL).
double ct_grpo_loss(const CtGrpoLossConfig *c, double *dlogp, const double *logp, const double *old_logp,
                    const double *ref_logp, const double *advantages, const uint8_t *mask, int B, int T,
                    double dapo_tokens, CtGrpoMetrics *metrics);

// RLOO's loss (TRL's RLOOTrainer): one unit per completion, its log-probability the masked sum over
// its tokens; ρ = exp(Σ logp − old_seq_logp[b]) clipped as GRPO's, the loss the mean over the B
// completions of −min(ρ·A, ρ̄·A) (the KL is in the rewards: ct_rloo_kl_penalty; beta unused here).
// old_seq_logp NULL: the current sums held constant. dlogp[B,T]: mask · d loss / d sequence logp.
double ct_rloo_loss(const CtGrpoLossConfig *c, double *dlogp, const double *logp, const double *old_seq_logp,
                    const double *advantages, const uint8_t *mask, int B, int T, CtGrpoMetrics *metrics);
