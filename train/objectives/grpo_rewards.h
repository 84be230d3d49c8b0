// The reward sources of `ctrain grpo`: each scores a batch of completions, and the reward of a
// completion is the weighted sum over the sources (TRL's reward_funcs and reward_weights:
// rewards = Σ_i weight_i · reward_i). The sources, by their names in grpo.reward_funcs:
//
//   exact_match  1 when the completion's answer (ct_extract_answer: the last number, or what
//                <answer>…</answer> holds) matches the prompt's answer field (ct_answer_matches),
//                else 0. The field is a JSON string, or a number taken as the fields spell it
//                ("42", "1.50", 12345678901234567890 keep their digits).
//   numeric      1 when that answer, read as a number, is within grpo.numeric_tolerance of the
//                field read as a number: |x − y| ≤ tol·max(1, |y|); else 0 (an answer that is
//                not a number too). A field that is not a number is an error.
//   regex        1 when the completion matches grpo.reward_regex (POSIX extended; anywhere in
//                the completion unless the pattern anchors itself with ^ or $), else 0.
//   format       1 when the completion has DeepSeek-R1's shape, else 0:
//                  <think>A</think> <answer>B</answer>
//                white space allowed before <think>, between the blocks and after </answer>,
//                nothing else; A holds no <think> or </think>, B no <answer> or </answer>.
//                A prompt that ends with "<think>" (white space after it aside: a chat template
//                that opens the thinking block for the model, as DeepSeek-R1's does) has the
//                completion checked as "<think>" + completion, unless the completion opens the
//                block again itself; either way the same reasoning scores 1.
//   command      a program's verdict: grpo.reward_command (a /bin/sh command line) reads one JSON
//                line per completion on stdin,
//                  {"prompt": "...", "completion": "...", "fields": {the prompt's fields}}
//                and prints one number per line on stdout, in order: exactly n lines, each one
//                number (white space around it allowed; nan and inf are refused). Bytes that are
//                not UTF-8 reach it as U+FFFD. Its stderr passes through. A command that cannot
//                start, exits non-zero or is killed, prints too few or too many lines or a line
//                that is not a number is an error naming it: never a silent zero.
//   model        a reward model's score (`ctrain reward` checkpoint, model.reward_head), loaded
//                frozen on the CPU: the prompt's and the completion's tokens as one sequence,
//                read at its last token that is not the model's reward_pad_id (the rule of
//                train/objectives/reward.h: a completion's stop token, the EOS the model pads
//                with, is skipped, as TRL's re-tokenised text has none). A sequence longer than
//                the model's context (or CtRewardsConfig.model_max_tokens) keeps its last tokens:
//                the completion and the end of the prompt. The model must have the policy's
//                vocabulary (and, when both fingerprints are known, its tokenizer).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "train/objectives/grpo_reward_input.h"

typedef enum {
    CT_REWARD_EXACT_MATCH,
    CT_REWARD_NUMERIC,
    CT_REWARD_REGEX,
    CT_REWARD_FORMAT,
    CT_REWARD_COMMAND,
    CT_REWARD_MODEL,
} CtRewardKind;

#define CT_REWARDS_MAX 8

struct CtRewardModel;  // train/objectives/grpo_reward_model.h

// The configured sources.
typedef struct {
    int n;
    CtRewardKind kind[CT_REWARDS_MAX];
    double weight[CT_REWARDS_MAX];
    char *answer_field;
    double numeric_tolerance;
    int has_regex;
    void *regex;  // regex_t (regex.h stays out of this header)
    char *command;
    struct CtRewardModel *model;
} CtRewards;

typedef struct {
    const char *funcs;    // comma-separated names: exact_match, numeric, regex, format, command, model (each at most once)
    const char *weights;  // comma-separated numbers, one per func; NULL or "" = all 1 (TRL's reward_weights)
    const char *regex;    // the regex source's pattern (POSIX extended)
    const char *command;  // the command source: a shell command line (/bin/sh -c)
    const char *model;    // the model source: a reward-model checkpoint (ctrain reward's HDF5, model.reward_head)
    const char *answer_field;  // the field holding the ground truth (NULL or "": "answer")
    double numeric_tolerance;  // numeric: |x − y| ≤ tol·max(1,|y|)
    int vocab_size;       // the policy's vocabulary: the reward model must have the same; 0 = don't check
    uint64_t tokenizer_hash;  // the policy's tokenizer fingerprint: checked against the reward model's when
                              // both are known (not 0)
    // model: the reward model keeps a training run's activations for model_batch × model_max_tokens
    // tokens (the logits and every layer's; ct_rewards_model_bytes tells how much): for GPT-2 124M
    // 1.44 MB a token at 1,024 tokens a row (1.5 GB a row). Set model_max_tokens to the longest
    // prompt + completion of the run.
    int model_batch;      // model: sequences per forward (0: 4)
    int model_max_tokens; // model: the longest sequence it scores whole (0 or more than its context: its context)
} CtRewardsConfig;

// 0, or -1 + error: a one-line message naming the key (grpo.reward_funcs, grpo.reward_weights,
// grpo.reward_regex, grpo.reward_command, grpo.reward_model) and the problem.
int ct_rewards_init(CtRewards *r, const CtRewardsConfig *c);
void ct_rewards_free(CtRewards *r);
int ct_rewards_count(const CtRewards *r);
// Source i's name as grpo.reward_funcs spells it: TRL's metric "rewards/<name>/mean" takes it.
const char *ct_rewards_name(const CtRewards *r, int i);
double ct_rewards_weight(const CtRewards *r, int i);
CtRewardKind ct_rewards_kind(const CtRewards *r, int i);
// The memory the model source holds (parameters and activations; 0 without it), for the run's log.
size_t ct_rewards_model_bytes(const CtRewards *r);
// "exact_match" → CT_REWARD_EXACT_MATCH; -1 when unknown.
int ct_reward_kind_parse(const char *name, CtRewardKind *out);
const char *ct_reward_kind_name(CtRewardKind kind);

// Scores n completions: per_source[i·n + j] = source i's reward of completion j (may be NULL);
// total[j] = Σ_i weight_i · per_source[i·n + j], summed in source order. 0, or -1 + error
// (naming the source's key, and the completion j where one is at fault).
int ct_rewards_score(CtRewards *r, const CtRewardInput *in, int n, double *per_source, double *total);

// The single rules, for tests and callers that score one completion.
int ct_reward_format_ok(const char *prompt, const char *completion);
