// GRPO's metrics with TRL's names: the generation batch's (reward, reward_std, rewards/<source>/mean
// and /std, frac_reward_zero_std, completions/*, entropy; RLOO's kl) and the loss's (kl,
// clip_ratio/*), as means over every rank's completions and tokens.
#pragma once
#include <stdint.h>

#include "train/objectives/grpo_loss.h"
#include "train/objectives/grpo_rewards.h"
#include "train/objectives/objective.h"

typedef struct {
    double sums[16 + 2 * CT_REWARDS_MAX];     // the generation batch's, over all ranks
    char names[2 * CT_REWARDS_MAX][96];       // rewards/<source>/mean and /std
} CtGrpoStats;

// This rank's generation batch: n completions.
typedef struct {
    int n;
    const double *rewards, *per_source, *entropy_sum;  // per_source[i·n + j]
    const int *length;
    const uint8_t *truncated;
} CtGrpoBatchView;

// After sampling and scoring: the batch's sums over the ranks. zero_std: this rank's completions
// whose reward std is 0; kl: RLOO's masked sum of old − ref and its count.
void ct_grpo_stats_generation(CtGrpoStats *st, const CtRewards *rewards, const CtGrpoBatchView *b, double zero_std,
                              const double kl[2]);
// The step's metric row: the generation batch's metrics and the loss's (summed over the
// micro-batches; summed here over the ranks), and the progress line's note. rloo: the KL is the
// reward's; beta 0: no kl.
void ct_grpo_stats_row(CtGrpoStats *st, const CtRewards *rewards, int rloo, double beta,
                       const CtGrpoMetrics *loss_metrics, CtStepResult *res);
