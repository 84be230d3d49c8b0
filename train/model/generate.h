// Generation with a key/value cache, on token ids: each new token runs the model's own forward
// (train/model/model_block.c) for its position, attending to the keys and values of every
// earlier token kept per layer, so producing n tokens costs O(n) model evaluations of one row
// each instead of recomputing the whole prefix. Several tokens can go in one pass (a prompt, or
// a speculative decoder's drafts: train/model/speculative.h), and the cache can be cut back.
// Turning text into ids and back, and where to stop (train/interop/stop_tokens.h), is the caller's.
#pragma once
#include <stdint.h>

#include "core/rng.h"
#include "train/model/model.h"

typedef struct {
    CtModel *model;
    int max_ctx;
    int n_ctx;           // tokens in the cache
    int n_virtual;       // of which a prompt adapter's virtual tokens, the first (train/model/peft.h): kept by reset
    // [L + D, max_ctx, NKV·HD], of the ops' activation type: the model's L layers, then the D
    // multi-token-prediction modules' blocks (model.mtp_depth; their rows are the drafter's to
    // count: ct_generator_mtp_feed)
    CtAct *k_cache, *v_cache;
    // ct_generator_keep_hidden: where each pass copies its residual stream after `hidden_after`
    // blocks, by position ([max_ctx, C], the ops' memory), or NULL
    CtAct *hidden;
    int hidden_after;
    int rows;            // how many rows one pass can feed: the buffers below are sized for it (grown on demand)
    // in the model's ops' memory: the block's buffers for `rows` rows (train/model/model_internal.h's
    // CtBlockActs), the norms' statistics
    CtAct *x, *norm, *qkv, *atty, *proj, *fch, *fch_act, *logits;
    CtAct *qkv_pre, *branch_pre;  // qk_norm's and post_norms' inputs (NULL without the feature)
    float *mean_rstd;             // [rows·(2 + NH + NKV)]: the norms' means, their rstd, then the q/k norms' rstd
    CtMoeActs moe;                // an MoE layer's buffers for `rows` rows (every MoE layer reuses them)
    CtAct *mtp_emb, *mtp_e, *mtp_h, *mtp_cat, *mtp_x;  // a module's inputs: [rows, C] ×3, [rows, 2C], [rows, C]
    int32_t *token_pos;  // [2·rows]: the fed tokens, then their positions, in the ops' memory
    float *host_logits;  // [rows, V]: what ct_generator_feed(_many) returns (= logits on the CPU)
} CtGenerator;

// 0 when the model can generate; -1 + an error naming why not (an encoder, bert/roberta: its
// attention is bidirectional and its head fills in masked tokens, it does not predict the next one).
int ct_generation_check(const CtModelConfig *c);
// Uses the model's parameters (not its training activations). max_ctx ≤ max_seq_len. The model
// must pass ct_generation_check (callers that take models from users check it first).
void ct_generator_init(CtGenerator *g, CtModel *model, int max_ctx);
void ct_generator_free(CtGenerator *g);
void ct_generator_reset(CtGenerator *g);  // forget the cache (but a prompt adapter's virtual tokens)
// Feeds one token at the next position; returns the logits[V] of what follows it.
// The cache must not be full (n_ctx < max_ctx).
const float *ct_generator_feed(CtGenerator *g, int32_t token);
// Feeds n ≥ 1 tokens at positions n_ctx..n_ctx+n−1 in one pass of the blocks over n rows (row t
// attends to the cache and to rows 0..t), appending their keys and values to the cache; returns
// the logits [n, V] (row t: of what follows tokens[t]), valid until the next feed. The same
// numbers as n calls of ct_generator_feed up to the rounding of products over n rows instead of
// one. Needs n_ctx + n ≤ max_ctx. A model with LoRA adapters takes at most its max_B·max_T rows
// per pass (the adapters' scratch): longer feeds run in several passes of that many.
const float *ct_generator_feed_many(CtGenerator *g, const int32_t *tokens, int n);
// feed_many for a prompt: the same pass, but the output head runs on the last row alone (the
// other rows' logits are not wanted: a V × C product per row saved); returns the logits [V] of
// what follows tokens[n − 1]: the last row of feed_many's, up to the rounding of a head product
// over one row instead of n.
const float *ct_generator_feed_prompt(CtGenerator *g, const int32_t *tokens, int n);
// Forgets the cache past its first n_ctx tokens (0 ≤ n_ctx ≤ the current n_ctx): what a
// speculative decoder does with rejected draft tokens. Nothing is recomputed.
void ct_generator_rollback(CtGenerator *g, int n_ctx);
// From now on every pass copies the residual stream of its rows after the first `after_blocks`
// blocks (L: the last hidden state, before the final norm) into by_position[pos·C..] ([max_ctx,
// C] in the model's ops' memory, of its activation type): what multi-token-prediction modules
// draft from (train/model/speculative_mtp.c). NULL stops it.
void ct_generator_keep_hidden(CtGenerator *g, CtAct *by_position, int after_blocks);
// Multi-token-prediction module k (1 ≤ k ≤ model.mtp_depth, train/model/model_mtp.c) over n rows
// at positions pos..pos+n−1, against its own key/value cache (layer L+k−1 of this one's, where
// its rows 0..pos−1 must hold what earlier calls stored; the caller counts them): reads h_prev
// [n, C] (the previous depth's hidden rows) and tokens[n] (host: the token at position i + k for
// row i), writes the module's hidden rows to h_out [n, C] (both the ops' memory), and returns the
// logits [V] of what follows the last row (host; valid until the next feed). pos + n ≤ max_ctx.
// Parallel heads (model.mtp_style parallel): h_prev is the trunk rows (the input of the main
// model's last block) and the tokens are read for nothing but their count.
// With LoRA adapters on the modules, as feed_many: passes of at most max_B·max_T rows.
const float *ct_generator_mtp_feed(CtGenerator *g, int k, const CtAct *h_prev, const int32_t *tokens, int pos, int n,
                                   CtAct *h_out);

typedef struct {
    float temperature;  // 0: greedy (argmax), deterministic
    int top_k;          // 0: off
    float top_p;        // 1: off (nucleus sampling)
} CtSampling;

// Picks the next token from logits[V]. Uses rng only when temperature > 0.
int32_t ct_sample(const float *logits, int V, const CtSampling *s, CtRng *rng);
// The distribution ct_sample draws from when temperature > 0: probs[V] = the softmax of logits / T
// restricted to the top-k tokens and then to the smallest set of likeliest ones reaching top_p
// (the same set ct_sample keeps), renormalised; 0 outside the set.
void ct_sampling_probs(const float *logits, int V, const CtSampling *s, float *probs);
// A token drawn from probs[V] (non-negative, summing to about 1), with one uniform of rng.
int32_t ct_sample_probs(const float *probs, int V, CtRng *rng);
