// One completion as the reward sources see it (train/objectives/grpo_rewards.h), with its prompt.
#pragma once
#include <stdint.h>

typedef struct {
    const char *prompt;      // the prompt as text (the decoded prompt tokens; chat template included)
    const char *completion;  // the completion as text, without the stop token that ended it
    const char *fields;      // the prompt's fields: the text of a JSON object, e.g. {"answer": "42"} (may be "{}")
    const int32_t *prompt_ids, *completion_ids;  // the same as token ids (completion_ids include the stop token when it stopped)
    int n_prompt, n_completion;
} CtRewardInput;

