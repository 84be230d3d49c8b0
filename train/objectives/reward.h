// The reward model as an objective (objective.h): a causal LM with a scalar head
// (model.reward_head) trained on dpo pairs with TRL's RewardTrainer loss (reward_loss.h).
//
// The dpo loader's rows are inputs and shifted targets: row 2i prompt+chosen, 2i+1 prompt+rejected,
// the last token of each sequence only a target. A reward row is the whole sequence, its input
// tokens then the last target, and the score is read at its last token other than the model's
// reward_pad_id (TRL's rule: transformers reads the last token that is not pad_token_id, and TRL
// pads with the EOS when the tokenizer has no pad token, so the EOS that ends a completion is
// skipped). A sequence of T+1 tokens (the loader's cut keeps the longer completion within T+1) loses
// its first token.
#pragma once
#include <stdint.h>

#include "train/objectives/objective.h"
#include "train/objectives/reward_loss.h"

typedef struct {
    double center_coef;  // reward.center_rewards_coefficient (0: off)
    double last_accuracy;  // of the last evaluation (NAN before)
} CtRewardRun;

// Where a sequence of n tokens is scored: its last token that is not pad_id (−1: none is), or 0
// when every token is (transformers' *ForSequenceClassification: the argmax of index·(id ≠ pad)).
int ct_reward_last_token(const int32_t *seq, int n, int32_t pad_id);
// Row r of a dpo micro-batch (rows × T: tokens, targets; padding targets are −1) as the whole
// sequence into seq[rows × T] (0 after it); last[r]: where it is scored (ct_reward_last_token).
void ct_reward_rows(const int32_t *tokens, const int32_t *targets, int rows, int T, int32_t pad_id, int32_t *seq,
                    int *last);

// One micro-batch i of s (dpo rows): the scores of its pairs, their loss (each pair weighing
// 1/global_pairs; each pair's margin from s->margins, as TRL's RewardTrainer subtracts the
// dataset's "margin") into *stats, and with `backward` its gradient added into the model's.
void ct_reward_micro_step(CtModel *m, const CtStepBatches *s, int i, double center, int64_t global_pairs,
                          int backward, CtRewardStats *stats);
