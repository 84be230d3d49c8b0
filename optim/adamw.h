// AdamW (Loshchilov & Hutter) with PyTorch's update, operation for operation
// (torch.optim.AdamW, single-tensor path), so the two agree to float32 rounding:
//   p ← p·(1 − lr·wd)                         decoupled weight decay (only where it applies)
//   m ← m + (1 − β1)·(g − m)                  (torch's lerp)
//   v ← β2·v + (1 − β2)·g²
//   p ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)
// Weight decay applies per span of the parameter buffer: the run turns it off for biases,
// norm weights and (by option) embeddings. Elements no span covers are decayed.
// The update itself is the backend's adamw_update op (kernels/ops.h): one kernel over all
// parameters on the GPU. Here are the state, the scalars and where the moments live.
// A backend that keeps low-precision copies of the weights (the GPU's bf16 products) rewrites
// them in the same update with stochastic rounding, seeded per step from `seed`.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "kernels/ops.h"

typedef struct {
    double lr, beta1, beta2, eps, weight_decay;  // doubles, as Python floats are in torch
    long step;       // steps taken
    size_t n;
    float *m, *v;    // first and second moments, [n], in the memory of ops (host for the CPU)
    CtParamSpan *spans;  // host, sorted by offset
    int n_spans;
    const CtOps *ops;    // whose memory holds m and v and whose kernel steps (the CPU's by default)
    uint64_t seed;       // of the weight copies' stochastic rounding (0 after init; runs set run.seed)
} CtAdamW;

// Moments zeroed, in host memory (the CPU backend).
void ct_adamw_init(CtAdamW *opt, size_t n, double lr, double beta1, double beta2, double eps, double weight_decay);
void ct_adamw_free(CtAdamW *opt);
// Which spans are decayed (copied and sorted). Spans must not overlap.
void ct_adamw_set_spans(CtAdamW *opt, const CtParamSpan *spans, int n_spans);
// One step with opt->lr: params and grads are [n] arrays in the memory of opt->ops.
void ct_adamw_step(CtAdamW *opt, float *params, const float *grads);
// The rounding seed of step `step` (CtAdamWScalars.rounding_seed): a stream of `seed` per
// step, so every step rounds with new bits and a rerun or a resumed run draws the same ones.
uint64_t ct_adamw_rounding_seed(uint64_t seed, long step);
// After resuming at step opt->step: re-creates the backend's low-precision copy of params
// (kernels/ops.h, keep_low_precision_weights) as that step's update left it, stochastically
// rounded with its seed, so the run continues to the bit. Nothing when the backend keeps no
// copy, or before the first step (the copy is then rounded to nearest, as declared).
void ct_adamw_resume_weight_copy(const CtAdamW *opt, const float *params);
// Moves the moments into the memory of `ops` (their values kept); later steps run there.
void ct_adamw_move_to(CtAdamW *opt, const CtOps *ops);
// A host copy of the whole state for a checkpoint: *host gets the hyper-parameters, step and
// spans by value and new host arrays m, v (free them with ct_free; do not ct_adamw_free it).
void ct_adamw_host_snapshot(const CtAdamW *opt, CtAdamW *host);
