// The loss `ctrain eval` reports: a token stream cut into consecutive windows of T tokens (a
// last partial window dropped), each window read by the model on its own, and the
// cross-entropy of tokens 2..T of every window given the tokens before them, averaged over all
// those predicted tokens:
//
//   loss = Σ_w Σ_{t=1}^{T-1} -log p(x_{w,t} | x_{w,0..t-1}) / (n_windows · (T-1))
//
// which is torch.nn.functional.cross_entropy(logits[:, :-1], x[:, 1:]) over the windows x
// [n_windows, T] of transformers' model(x).logits. Only the first T-1 tokens of a window are
// fed: the last one's prediction would have no target.
#pragma once
#include <stdint.h>

#include "train/model/model.h"

// Copies tokens [first, first + n) of the stream into `tokens`. 0, or -1 + error.
typedef int (*CtEvalReadFn)(void *ctx, uint64_t first, uint64_t n, int32_t *tokens);

typedef struct {
    double loss_sum;      // Σ -log p over the predicted tokens (nats)
    uint64_t predicted;   // n_windows · (T-1)
    uint64_t windows;
} CtEvalTotals;

// Evaluates n_windows windows of T tokens (T >= 2) from `read`, B windows per forward pass
// (the model holds batches of B × (T-1)). Shows a progress bar when it takes a while. A token
// outside the model's vocabulary is an error naming its position. 0, or -1 + error.
int ct_eval_windows(CtModel *m, int B, int T, uint64_t n_windows, CtEvalReadFn read, void *ctx, CtEvalTotals *out);
