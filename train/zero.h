// ZeRO stage 1 (Rajbhandari et al., "ZeRO: Memory Optimizations Toward Training Trillion
// Parameter Models", 2020): the AdamW moments are split across the ranks, 1/world each. A step:
//   g_r ← rank r's slice of Σ_ranks grads             (reduce-scatter: half an all-reduce's traffic)
//   ‖g‖ ← sqrt(Σ_r ‖g_r‖²), g_r scaled as clipping asks (the global norm, as without ZeRO)
//   p_r ← AdamW(p_r, g_r, m_r, v_r)                   (each rank its slice)
//   p   ← all-gather of the p_r                       (the other half)
// Same arithmetic as plain data parallelism; the slices are contiguous, uneven when world does
// not divide n. Checkpoints hold the full moments: for each save they are gathered to rank 0,
// into a temporary when the caller released the full moments after ct_zero_init
// (ct_zero_release_state), so that between saves no rank, rank 0 included, holds more than its
// slice (the full CtAdamW keeps the hyperparameters, the spans and the step).
//
// On the GPU (train/dist_nccl.h) NCCL needs equal parts: the buffers are padded to
// ct_zero_padded_count(n, world) floats instead, each rank owning padded/world of them.
#pragma once
#include <stddef.h>

#include "optim/adamw.h"

typedef struct {
    size_t n, begin, count;  // the whole buffer; this rank's slice [begin, begin+count)
    int *counts;             // per rank
    float *grads;            // [count]: this rank's slice of the summed gradients
    CtAdamW opt;             // over the slice: its moments, the decay spans moved into it
} CtZero;

// Takes this rank's slice of `full`'s moments, spans, step and hyperparameters (full holds the
// whole state: fresh, or loaded from a checkpoint on every rank; free its moments afterwards
// with ct_zero_release_state). Logs the moments' bytes per rank. 0, or -1 + error.
int ct_zero_init(CtZero *z, const CtAdamW *full);
void ct_zero_free(CtZero *z);
// Reduce-scatters grads [n] (every rank's own) and clips this rank's slice by the global norm,
// which it returns (the same on every rank).
double ct_zero_reduce_clip(CtZero *z, const float *grads, double max_norm);
// The AdamW step with learning rate lr on this rank's slice of params [n], then the all-gather.
void ct_zero_update(CtZero *z, float *params, double lr);
// For a checkpoint (every rank calls): root's full gets the whole moments, every rank's full
// the step count. When root's full->m and full->v are NULL (released), they are allocated here,
// [full->n] floats each: free them after the save with ct_zero_release_state.
void ct_zero_gather_state(const CtZero *z, CtAdamW *full, int root);
// Frees full's moments (m and v become NULL; n, the hyperparameters, the spans and the step
// stay, so ct_zero_gather_state can fill it again). On any rank; NULL moments are fine.
void ct_zero_release_state(CtAdamW *full);
// n rounded up to a multiple of world: the floats of a buffer sharded in equal parts.
size_t ct_zero_padded_count(size_t n, int world);
