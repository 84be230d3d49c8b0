// Tiny models and batches shared by the model tests.
#pragma once
#include <stdint.h>

#include "core/rng.h"
#include "train/model/model.h"

typedef struct {
    int B, T;
    int32_t tokens[256], targets[256], doc_ids[256], positions[256];
    uint8_t mask[256];
    float weights[256];
    CtBatch batch;
} TinyBatch;

// gpt2: 2 layers, 16 channels, 4 heads. llama: the same with 2 kv heads (GQA).
CtModelConfig tiny_config(CtArch arch);
// The tiny llama with one family's features on (head_dim ≠ d_model/n_head where the family has
// it): "qwen2" (q/k/v biases), "qwen3" (q/k norms, head_dim 8), "olmoe_qk" (q/k norms over the
// whole projections, as many kv heads as heads), "mistral" (a window of 3),
// "gemma2" (GeGLU, post-norms, embedding scale, query scale, attention and final soft-caps, a
// window on every other layer, tied head), "gemma3" (q/k norms, post-norms, a local RoPE base on
// the sliding layers, linear scaling on the global ones), "yarn", "llama3", "dynamic" (RoPE
// scaling that is active within 8 tokens). NULL name or an unknown one: a failed CHECK's config (n_layer 0).
CtModelConfig tiny_variant_config(const char *name);
extern const char *const tiny_variant_names[];  // the names above, NULL-terminated
// Random tokens and targets; `packed` adds two documents per row (doc ids, positions that
// restart), a loss mask over the first tokens and per-token weights, and one ignored target.
void tiny_batch(TinyBatch *tb, CtRng *rng, int B, int T, int V, int packed);
// Overwrites the parameters with larger random values than the GPT-2 init, so gradients are
// large enough to check with float finite differences.
void tiny_randomize_params(CtModel *m, uint64_t seed);

// d loss / d buffer along direction u: central differences of ct_model_forward's loss with the
// n floats at p moved by ±h·u (restored after).
double tiny_directional_fd(CtModel *m, const CtBatch *b, float *p, const float *u, size_t n, float h);

// The encoders (bert, roberta): 2 post-LN layers, 16 channels, 4 heads, vocab 37; BERT with two
// token types, RoBERTa with one and its padding row 1 before the positions; a pooler.
CtModelConfig tiny_encoder_config(CtArch arch);
// A padded MLM batch of B = 2 rows of T ≤ 16 tokens for an encoder config c: row 0 full, row 1 ending
// in three pads (pad_token_id, their own document id 1, targets -1); targets at about half the real
// tokens; BERT's rows are two segments (token types 0, then 1).
typedef struct {
    int32_t tokens[32], targets[32], doc_ids[32], types[32];
    CtBatch batch;
} EncoderBatch;
void tiny_encoder_batch(EncoderBatch *eb, const CtModelConfig *c, int T, uint64_t seed);

// Checks (CHECK_MSG) that a device model's parameter gradients (gpu, on `ops`) equal the CPU
// twin's within tol·10 of each tensor's largest gradient; a tensor whose gradient is 0 up to
// rounding (a pooler, key biases) is held to the largest gradient of the whole model.
void tiny_check_device_grads(const CtOps *ops, const CtModel *cpu, const CtModel *gpu, double tol);
