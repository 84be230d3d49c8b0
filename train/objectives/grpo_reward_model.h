// The model reward source of GRPO (train/objectives/grpo_rewards.h): a reward model
// (`ctrain reward`'s checkpoint, model.reward_head) held frozen on the CPU, scoring each prompt
// and completion as one sequence at its last token that is not the model's reward_pad_id
// (ct_reward_last_token), `batch` sequences per forward. A sequence longer than max_tokens keeps
// its last max_tokens tokens.
#pragma once
#include <stdint.h>

#include "train/model/model.h"
#include "train/objectives/grpo_reward_input.h"

typedef struct CtRewardModel {
    CtModel model;
    int batch, max_tokens;  // rows per forward, tokens per row
    int32_t pad_id;         // reward_pad_id (−1: none; rows are then padded with 0 after their end)
    int32_t *rows;          // [batch × max_tokens]
    int *last;              // [batch]
    float *scores;          // [batch]
} CtRewardModel;

// Loads `path` (a reward model) for `batch` rows (0: 4) of up to max_tokens (0, or more than its context: its
// max_seq_len). vocab_size (0: not checked) and tokenizer_hash (0: not checked; nor when the
// checkpoint has none) are the policy's, which the reward model must share. 0, or -1 + error
// naming the file.
int ct_reward_model_open(CtRewardModel *rm, const char *path, int vocab_size, uint64_t tokenizer_hash, int batch,
                         int max_tokens);
// out[j]: the score of in[j]'s prompt_ids + completion_ids. 0, or -1 + error.
int ct_reward_model_score(CtRewardModel *rm, const CtRewardInput *in, int n, double *out);
void ct_reward_model_close(CtRewardModel *rm);
