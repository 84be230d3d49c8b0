// Generation with a key/value cache, on token ids: each new token runs the model's own forward
// (train/model/model_block.c) for that one position, attending to the keys and values of every
// earlier token kept per layer, so producing n tokens costs O(n) model evaluations of one row
// each instead of recomputing the whole prefix. Turning text into ids and back, and where to
// stop (train/interop/stop_tokens.h), is the caller's.
#pragma once
#include <stdint.h>

#include "core/rng.h"
#include "train/model/model.h"

typedef struct {
    CtModel *model;
    int max_ctx;
    int n_ctx;           // tokens in the cache
    CtAct *k_cache, *v_cache;  // [L, max_ctx, NKV·HD], of the ops' activation type
    // in the model's ops' memory: the block's buffers for one row (train/model/model_internal.h's
    // CtBlockActs), the norm's statistics
    CtAct *x, *norm, *qkv, *atty, *proj, *fch, *fch_act, *logits;
    CtAct *qkv_pre, *branch_pre;  // qk_norm's and post_norms' inputs (NULL without the feature)
    float *mean_rstd;             // [2 + NH + NKV]: a norm's mean and rstd, then the q/k norms' rstd
    CtMoeActs moe;                // an MoE layer's buffers for one row (every MoE layer reuses them)
    int32_t *token_pos;  // [2]: the fed token and its position, in the ops' memory
    float *host_logits;  // [V]: what ct_generator_feed returns (= logits on the CPU)
} CtGenerator;

// Uses the model's parameters (not its training activations). max_ctx ≤ max_seq_len.
void ct_generator_init(CtGenerator *g, CtModel *model, int max_ctx);
void ct_generator_free(CtGenerator *g);
void ct_generator_reset(CtGenerator *g);  // forget the cache
// Feeds one token at the next position; returns the logits[V] of what follows it.
// The cache must not be full (n_ctx < max_ctx).
const float *ct_generator_feed(CtGenerator *g, int32_t token);

typedef struct {
    float temperature;  // 0: greedy (argmax), deterministic
    int top_k;          // 0: off
    float top_p;        // 1: off (nucleus sampling)
} CtSampling;

// Picks the next token from logits[V]. Uses rng only when temperature > 0.
int32_t ct_sample(const float *logits, int V, const CtSampling *s, CtRng *rng);
