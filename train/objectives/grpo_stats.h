// GRPO's metrics with TRL's names: the generation batch's (reward, reward_std, rewards/<source>/mean
// and /std, frac_reward_zero_std, completions/*, entropy; RLOO's kl) and the loss's (kl,
// clip_ratio/*), as means over every rank's completions and tokens.
#pragma once
#include "train/objectives/grpo.h"

// After sampling and scoring: the batch's sums over the ranks into g->gen_sums. zero_std: this
// rank's completions whose reward std is 0; kl: RLOO's masked sum of old − ref and its count.
void ct_grpo_stats_generation(CtGrpoRun *g, double zero_std, const double kl[2]);
// The step's metric row: the generation batch's metrics and the loss's (summed over the
// micro-batches; summed here over the ranks); progress: the progress line's note.
void ct_grpo_stats_row(CtGrpoRun *g, const CtGrpoMetrics *loss_metrics, CtStepResult *res);
