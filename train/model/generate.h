// Generation with a key/value cache: each new token runs the model for that one position,
// attending to the keys and values of every earlier token kept per layer, so producing n tokens
// costs O(n) model evaluations of one row each instead of recomputing the whole prefix.
#pragma once
#include <stdint.h>

#include "core/rng.h"
#include "data/tokenizer/bpe.h"
#include "train/model/model.h"

typedef struct {
    CtModel *model;
    int max_ctx;
    int n_ctx;           // tokens in the cache
    CtAct *k_cache, *v_cache;  // [L, max_ctx, NKV·HD], of the ops' activation type
    // one row of activations
    // in the model's ops' memory: activations of one row, and the norm's statistics
    CtAct *x, *norm, *qkv, *atty, *proj, *fch, *fch_act, *logits;
    float *mean_rstd;
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

// The tokens generation stops at (the stop token itself is not printed):
//   the model's end-of-sequence ids: eos_token_id of the checkpoint's generation_config (an
//   imported model's, from its config.json or generation_config.json; a list or one id), or,
//   when the checkpoint names none, the tokenizer's <|endoftext|> (what `ctrain shard` ends
//   each document with);
//   and the chat template's end-of-turn token (<|im_end|> for ChatML, <|eot_id|> for Llama 3).
enum { CT_MAX_STOP_TOKENS = 16 };
typedef struct {
    int32_t ids[CT_MAX_STOP_TOKENS];
    int n;
} CtStopTokens;

// generation_config_json (may be NULL) is the checkpoint's; end_of_turn is -1 without a chat
// template. `source` names the checkpoint in errors. 0, or -1 + error.
int ct_stop_tokens_init(CtStopTokens *s, const char *generation_config_json, const CtTokenizer *tok, int vocab_size,
                        int32_t end_of_turn, const char *source);
int ct_stop_tokens_has(const CtStopTokens *s, int32_t id);
// The ids of "eos_token_id" in a JSON object's text (a number, a list of numbers, or null; key
// absent: *n = 0). Ids at or past vocab_size are left out with a warning (the model cannot
// produce them). 0, or -1 + error naming `source` (not a list of non-negative integers).
int ct_eos_token_ids_parse(const char *json, const char *source, int vocab_size, int32_t *ids, int max, int *n);
// The JSON text the checkpoint stores for these ids: {"eos_token_id": [ids]} (free with ct_free()).
char *ct_generation_config_json(const int32_t *ids, int n);
