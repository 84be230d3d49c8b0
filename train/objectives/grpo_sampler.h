// The completions of GRPO and RLOO: G samples of one prompt from the policy with the key/value
// cache (train/model/generate.h). The prompt runs once; each completion starts from its cache.
//
// A completion ends at the first stop token (kept as its last token: TRL's completion mask counts
// the EOS) or after max_len tokens (truncated). Completion g draws from its own stream
// (seed, CT_RNG_STREAM_GRPO + first + g), so a completion is the same whichever rank or batch
// layout samples it. TRL's sampling: softmax(logits/τ), then top-k, then top-p (generate.h's
// ct_sample); the entropy of softmax(logits/τ) is summed for the `entropy` metric.
#pragma once
#include <stdint.h>

#include "train/model/generate.h"

typedef struct {
    CtSampling sampling;   // temperature 0: greedy (evaluation)
    int max_len;           // max_completion_length
    const int32_t *stop;   // ids that end a completion
    int n_stop;
} CtGrpoSampleOptions;

typedef struct {
    int32_t *tokens;       // [G, max_len]
    int *length;           // [G] tokens (the stop token included)
    uint8_t *truncated;    // [G] 1: no stop token within max_len
    double *entropy_sum;   // [G] Σ over its tokens of the sampling distribution's entropy (nats)
} CtGrpoCompletions;

// Samples G completions of prompt[0..n) into out (completion g at index g of each array).
// Needs n + max_len ≤ the generator's max_ctx and n ≥ 1.
void ct_grpo_sample_group(CtGenerator *gen, const int32_t *prompt, int n, int G, const CtGrpoSampleOptions *o,
                          uint64_t seed, uint64_t first, const CtGrpoCompletions *out);
