// Speculative decoding: a cheap drafter proposes k tokens, the target model checks them all in
// one pass over k + 1 rows (ct_generator_feed_many), and the longest acceptable prefix is kept
// together with one token of the target's own, so a round yields 1..k+1 tokens for one target
// pass. Leviathan et al. 2023, "Fast Inference from Transformers via Speculative Decoding";
// Chen et al. 2023, "Accelerating Large Language Model Decoding with Speculative Sampling".
//
// Greedy (temperature 0): a draft token is accepted when it is the target's argmax after the
// tokens before it, and the round's last token is the target's argmax; the output is plain
// greedy decoding of the target, token for token (up to ties that the rounding of a pass over
// several rows instead of one could break differently).
// Sampling (temperature > 0): p = the target's distribution and q = the drafter's, both through
// the same temperature / top-k / top-p transform (ct_sampling_probs). Draft token x is accepted
// with probability min(1, p(x)/q(x)); at the first rejection the token is drawn from
// norm(max(0, p − q)); after k acceptances the extra token is drawn from p. Every emitted token
// then follows exactly p given the tokens before it: the distribution plain sampling
// (ct_sample) draws from, with the same temperature, top-k and top-p — though not the same
// random stream, so a seed gives other texts than plain sampling.
//
// The drafter is an interface: a separate draft model (below), or the target's own
// multi-token-prediction modules drafting from its hidden states (train/model/speculative_mtp.h).
#pragma once
#include <stdint.h>

#include "core/rng.h"
#include "train/model/generate.h"

typedef struct CtDrafter {
    void *self;
    // Proposes k ≥ 1 tokens that follow seq[0..len), writes them to draft[k] and, when probs is
    // not NULL, the distribution each was drawn from (probs[i·V..(i+1)·V), after the sampling
    // transform s; greedy drafts pass probs NULL). Returns how many it proposes (1..k).
    int (*propose)(struct CtDrafter *d, const int32_t *seq, int len, int k, const CtSampling *s, CtRng *rng,
                   int32_t *draft, float *probs);
    // The decoder kept seq[0..len): forget anything fed past it.
    void (*rollback)(struct CtDrafter *d, int len);
    // How many tokens a proposal after seq[0..len) may hold at most (the drafter's context): 0 for none.
    int (*room)(const struct CtDrafter *d, int len);
} CtDrafter;

// A separate draft model (same vocabulary as the target) with its own key/value cache: it
// catches up on the tokens it has not seen in one pass, then drafts one token per pass.
void ct_model_drafter_init(CtDrafter *d, CtGenerator *draft);
// A drafter's token from logits[V]: the argmax (s greedy), or drawn from the transformed
// distribution, which probs[V] keeps for the acceptance test.
int32_t ct_drafter_pick(const float *logits, int V, const CtSampling *s, CtRng *rng, float *probs);

typedef struct {
    CtGenerator *target;
    CtDrafter *drafter;
    int k;                 // tokens drafted per round at most
    CtSampling sampling;
    CtRng *rng;
    int32_t *seq;          // the prompt and every token emitted, [max_ctx]
    int len;               // tokens in seq; the target's cache holds seq[0..len−1) (all but the last)
    int32_t *draft;        // [k]
    float *p, *q;          // [k+1, V]: the target's and the drafter's distributions (sampling)
    long drafted, accepted;  // draft tokens proposed, and accepted, over all rounds
    long *drafted_at, *accepted_at;  // [k]: the same per place in the draft (depth 1: the first drafted token)
    long target_passes;
} CtSpeculative;

// prompt[n ≥ 1] with n < target->max_ctx; feeds all but its last token to the target (one pass).
void ct_speculative_init(CtSpeculative *sp, CtGenerator *target, CtDrafter *drafter, int k, const CtSampling *s,
                         CtRng *rng, const int32_t *prompt, int n);
void ct_speculative_free(CtSpeculative *sp);
// One round: writes the 1..k+1 tokens it emits to out (room for k + 1) and returns their number,
// at most max_out (≥ 1; the round drafts fewer tokens near it and near the end of the context);
// 0 when the context is full.
int ct_speculative_round(CtSpeculative *sp, int32_t *out, int max_out);
