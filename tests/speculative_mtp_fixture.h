// Self-speculative decoding's test helpers (tests/test_speculative_mtp*.c): a rule-following
// training text, brief training, plain greedy decoding, and the check that self-speculative
// greedy decoding with the model's modules (either style) gives plain greedy's tokens while the
// drafter's rows and caches equal one training forward over the whole text.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/rng.h"
#include "train/model/model.h"

enum { SPEC_CTX = 40, SPEC_TRAIN_B = 8, SPEC_TRAIN_T = 16 };

typedef struct {
    long drafted_at[2], accepted_at[2];  // drafts proposed and accepted at depth 1 and 2
} SpecCounts;

// t_{i+1} = (7·t_i + 3) mod V or (5·t_i + 1) mod V, one rule per sequence, from a random token.
void spec_rule_sequence(int32_t *t, int n, int V, CtRng *rng);
// `steps` AdamW steps on the rule (batches of SPEC_TRAIN_B × SPEC_TRAIN_T), the modules trained
// beside the model (λ = 1); the model needs room for such a batch.
void spec_train_briefly(CtModel *m, int steps);
// Plain greedy decoding: one feed per token.
void spec_plain_greedy(CtModel *m, const int32_t *prompt, int n, int count, int32_t *out);
// ‖a − b‖ / ‖b‖ over n numbers (2-norms).
double spec_relative_error(const float *a, const float *b, size_t n);
// From now on (in this test's process) the drafters below draft with bf16 copies of the weights
// (ct_mtp_drafter_read_bf16): the output must not change; the modules' rows then match a
// recomputation in fp32 only to bf16's precision.
void spec_draft_in_bf16(int on);
// Self-speculative greedy decoding of `count` tokens, k drafts per round at most; the counts per
// depth add to *c; the drafter's state is checked against a recomputation at the end.
void spec_self_speculative_greedy(CtModel *m, int k, const int32_t *prompt, int n, int count, int32_t *out,
                                  SpecCounts *c, const char *what);
// Prompts of lengths 1, 2, 4 and 7 (rule-following and random ones) to the context's end
// (SPEC_CTX), k = 1..D drafts per round: every output must be plain greedy decoding's.
void spec_greedy_matches_plain(CtModel *m, const char *what, SpecCounts *c);
