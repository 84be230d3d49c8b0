// ZeRO stage 1 (Rajbhandari et al., "ZeRO: Memory Optimizations Toward Training Trillion
// Parameter Models", 2020): the AdamW moments are split across the ranks, 1/world each. A step:
//   g_r ← rank r's slice of Σ_ranks grads             (reduce-scatter: half an all-reduce's traffic)
//   ‖g‖ ← sqrt(Σ_r ‖g_r‖²), g_r scaled as clipping asks (the global norm, as without ZeRO)
//   p_r ← AdamW(p_r, g_r, m_r, v_r)                   (each rank its slice)
//   p   ← all-gather of the p_r                       (the other half)
// Same arithmetic as plain data parallelism. The slices are cut as NCCL needs them (its
// reduce-scatter and all-gather take equal parts): the buffer, padded to
// padded = ct_zero_padded_count(n, world) floats, is split into `world` equal parts, rank r's
// slice being the real elements of part r, [r·part, min((r+1)·part, n)); the last slices are
// short (or empty) where the padding falls. On the CPU the collectives are MPI's, which take
// uneven counts, so host buffers need no padding. On the GPU they are NCCL's, in place on the
// caller's buffers, which must hold `padded` floats with zeros past n (ct_model_to_backend pads
// them when CtModel.train_shards says so): every element has exactly one owner either way.
// Checkpoints hold the full moments: for each save they are gathered to rank 0, into a
// temporary when the caller released the full moments after ct_zero_init
// (ct_zero_release_state), so that between saves no rank, rank 0 included, holds more than its
// slice (the full CtAdamW keeps the hyperparameters, the spans and the step).
#pragma once
#include <stddef.h>

#include "optim/adamw.h"

typedef struct {
    size_t n, begin, count;  // the whole buffer; this rank's slice [begin, begin+count)
    size_t padded;           // n rounded up to a multiple of the ranks: parts of padded/world
    int *counts;             // per rank, the real elements of its part
    int on_device;           // device memory: NCCL collectives, in place on the caller's buffers
    float *grads;            // host: [count], this rank's slice of the summed gradients; device: NULL
    CtAdamW opt;             // over the slice, in the memory of ops: its moments, the decay spans moved into it
} CtZero;

// Takes this rank's slice of `full`'s moments, spans, step and hyperparameters (full holds the
// whole state in host memory: fresh, or loaded from a checkpoint on every rank; free its
// moments afterwards with ct_zero_release_state) and puts it in the memory of `ops`, where the
// parameters and gradients live. A device needs NCCL (ct_nccl_init() done). Logs the moments'
// bytes per rank. 0, or -1 + error.
int ct_zero_init(CtZero *z, const CtAdamW *full, const CtOps *ops);
void ct_zero_free(CtZero *z);
// Reduce-scatters grads [n] (every rank's own; [padded] on a device, whose own part it
// overwrites) and clips this rank's slice by the global norm, which it returns (the same on
// every rank).
double ct_zero_reduce_clip(CtZero *z, float *grads, double max_norm);
// The AdamW step with learning rate lr on this rank's slice of params [n] ([padded] on a
// device) from the gradients ct_zero_reduce_clip left (pass the same grads), then the all-gather.
void ct_zero_update(CtZero *z, float *params, float *grads, double lr);
// The backend's low-precision copy of the weights (kernels/ops.h, keep_low_precision_weights;
// the bf16 CUDA table) as the last step left it: after the all-gather only this rank's slice
// of the copy is fresh, but its stochastic rounding is a function of the weight, the step's
// seed and the index, so every rank re-creates from the gathered params [n] exactly the copy
// each owner wrote. ct_zero_update calls it; call it after resuming too. Nothing when the
// backend keeps no copy, or before the first step.
void ct_zero_refresh_weight_copy(const CtZero *z, const float *params);
// For a checkpoint (every rank calls): root's full gets the whole moments, every rank's full
// the step count. When root's full->m and full->v are NULL (released), they are allocated here,
// [full->n] floats each: free them after the save with ct_zero_release_state.
void ct_zero_gather_state(const CtZero *z, CtAdamW *full, int root);
// Frees full's moments (m and v become NULL; n, the hyperparameters, the spans and the step
// stay, so ct_zero_gather_state can fill it again). On any rank; NULL moments are fine.
void ct_zero_release_state(CtAdamW *full);
// n rounded up to a multiple of world: the floats of a buffer sharded in equal parts.
size_t ct_zero_padded_count(size_t n, int world);
