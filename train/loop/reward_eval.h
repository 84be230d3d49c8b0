// A reward model's accuracy on a dpo dataset (`ctrain eval --checkpoint RM --data PAIRS`): every pair
// of a split in file order, scored as the reward objective scores them (train/objectives/reward.h),
// with TRL's metrics and the pair loss (no centering term).
#pragma once
#include <stdint.h>

#include "data/shard/dataset.h"
#include "train/model/model.h"
#include "train/objectives/reward_loss.h"

// m: a reward model (config.reward_head) with activations for 2 rows × T. max_pairs 0: all.
// 0, or -1 + error (a corrupt chunk, a dataset that is not dpo).
int ct_reward_eval(CtModel *m, const CtDataset *d, CtSplit split, int T, uint64_t max_pairs, CtRewardMetrics *out);
