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
// Random tokens and targets; `packed` adds two documents per row (doc ids, positions that
// restart), a loss mask over the first tokens and per-token weights, and one ignored target.
void tiny_batch(TinyBatch *tb, CtRng *rng, int B, int T, int V, int packed);
// Overwrites the parameters with larger random values than the GPT-2 init, so gradients are
// large enough to check with float finite differences.
void tiny_randomize_params(CtModel *m, uint64_t seed);
