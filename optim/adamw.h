// AdamW (Loshchilov & Hutter) with PyTorch's update, operation for operation
// (torch.optim.AdamW, single-tensor path), so the two agree to float32 rounding:
//   p ← p·(1 − lr·wd)                         decoupled weight decay (only where it applies)
//   m ← m + (1 − β1)·(g − m)                  (torch's lerp)
//   v ← β2·v + (1 − β2)·g²
//   p ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)
// Weight decay applies per span of the parameter buffer: the run turns it off for biases,
// norm weights and (by option) embeddings. Elements no span covers are decayed.
#pragma once
#include <stddef.h>

typedef struct {
    size_t offset, count;
    int decay;
} CtParamSpan;

typedef struct {
    double lr, beta1, beta2, eps, weight_decay;  // doubles, as Python floats are in torch
    long step;       // steps taken
    size_t n;
    float *m, *v;    // first and second moments, [n]
    CtParamSpan *spans;
    int n_spans;
} CtAdamW;

void ct_adamw_init(CtAdamW *opt, size_t n, double lr, double beta1, double beta2, double eps, double weight_decay);
void ct_adamw_free(CtAdamW *opt);
// Which spans are decayed (copied). Spans must not overlap.
void ct_adamw_set_spans(CtAdamW *opt, const CtParamSpan *spans, int n_spans);
// One step with opt->lr: params and grads are [n].
void ct_adamw_step(CtAdamW *opt, float *params, const float *grads);
