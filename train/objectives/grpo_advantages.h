// Advantages of GRPO and RLOO from the rewards of groups of G completions of one prompt, as TRL
// 1.16 computes them (GRPOTrainer._generate_and_score_completions with the default
// multi_objective_aggregation "sum_then_normalize"; RLOOTrainer's leave-one-out baseline). The
// rewards are the weighted sums over the reward sources, completion g of prompt p at p·G + g;
// every reward is a number (ctrain stops on a reward it cannot read, so TRL's NaN handling of
// unscorable completions has nothing to do here).
#pragma once
#include <stdint.h>

// TRL's `scale_rewards`: the standard deviation the centred rewards are divided by.
typedef enum {
    CT_SCALE_REWARDS_GROUP = 0,  // "group": each group's own (Bessel-corrected) std
    CT_SCALE_REWARDS_BATCH = 1,  // "batch": the std of all rewards of the batch
    CT_SCALE_REWARDS_NONE = 2,   // "none": not scaled (Dr. GRPO)
} CtScaleRewards;

// "group" | "batch" | "none" (TRL's names; TRL's booleans true/false mean group/none). -1 when unknown.
int ct_scale_rewards_parse(const char *name, CtScaleRewards *out);

// GRPO: A_i = (r_i − mean of i's group) / (std + 1e-4), std as `scale` says (not divided for
// "none"); n_groups·G rewards. Returns frac_reward_zero_std: the share of completions whose std
// (the group's, or with "batch" the batch's) is 0 (torch.isclose(std, 0): |std| ≤ 1e-8). A
// single completion (G = 1, or a batch of 1) has std 0, as TRL sets it.
double ct_grpo_advantages(double *advantages, const double *rewards, int n_groups, int G, CtScaleRewards scale);

// RLOO: A_i = r_i − (Σ of the other G − 1 rewards of its group)/(G − 1) (0 when G = 1); with
// `normalize` (TRL's normalize_advantages) then (A − mean A)/(std A + 1e-4) over the batch.
// Returns frac_reward_zero_std over the groups' stds, as GRPO's.
double ct_rloo_advantages(double *advantages, const double *rewards, int n_groups, int G, int normalize);

// RLOO's KL penalty, folded into the rewards before the baseline (first-order estimator, summed
// over the completion): r_b −= β · Σ_t mask[b,t]·(old_logp − ref_logp)[b,t] over B completions of
// T tokens. Adds the masked sum of old − ref and the mask's count into *kl_sum and *kl_count
// (TRL's metric `kl` is their ratio, over all ranks).
void ct_rloo_kl_penalty(double *rewards, const double *old_logp, const double *ref_logp, const uint8_t *mask, int B,
                        int T, double beta, double *kl_sum, double *kl_count);
