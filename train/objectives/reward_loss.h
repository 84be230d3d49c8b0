// The reward model's loss on one preference pair and the metrics of a set of pairs, as TRL's
// RewardTrainer (trl/trainer/reward_trainer.py, compute_loss) defines them. With the scores
// r_c, r_r the model reads at the last token of the chosen and the rejected sequence:
//   ℓ = −log σ(r_c − r_r − m) + c·(r_c + r_r)²
// m the pair's margin (0 without one), c center_rewards_coefficient (0: off). TRL's loss is the
// mean of ℓ over the batch's pairs (its centering term, mean((r_c + r_r)²), is that mean too).
// Gradients: with z = r_c − r_r − m, d(−log σ(z))/dz = −σ(−z), so
//   ∂ℓ/∂r_c = −σ(−z) + 2c(r_c + r_r),   ∂ℓ/∂r_r = σ(−z) + 2c(r_c + r_r).
#pragma once
#include <stdint.h>

typedef struct {
    double loss;
    double d_chosen, d_rejected;  // ∂ℓ/∂r_c, ∂ℓ/∂r_r
} CtRewardValue;

CtRewardValue ct_reward_loss(double r_chosen, double r_rejected, double margin, double center_coef);

// TRL's metrics of a set of pairs (its names): accuracy = share with r_c > r_r (ties count as
// wrong), margin = mean(r_c − r_r), min_reward / mean_reward / max_reward over all 2·pairs
// scores. Accumulate pair by pair (sums: data parallel adds them over ranks), then finish.
typedef struct {
    double loss_sum, correct, margin_sum, reward_sum, min_reward, max_reward;
    int64_t pairs;
} CtRewardStats;

void ct_reward_stats_init(CtRewardStats *s);
void ct_reward_stats_add(CtRewardStats *s, double r_chosen, double r_rejected, double loss);
// Means of a finished set: loss, accuracy, margin, mean_reward (min and max are kept as they are).
typedef struct {
    double loss, accuracy, margin, mean_reward, min_reward, max_reward;
    int64_t pairs;
} CtRewardMetrics;
CtRewardMetrics ct_reward_stats_means(const CtRewardStats *s);
