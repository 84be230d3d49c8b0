// ZeRO stage 1 (Rajbhandari et al., "ZeRO: Memory Optimizations Toward Training Trillion
// Parameter Models", 2020) across the ranks: the sharded AdamW state is optim/zero.h's; here are
// the collectives around it (MPI on the CPU, NCCL on the GPU). A step:
//   g_r ← rank r's slice of Σ_ranks grads             (reduce-scatter: half an all-reduce's traffic)
//   ‖g‖ ← sqrt(Σ_r ‖g_r‖²), g_r scaled as clipping asks (the global norm, as without ZeRO)
//   p_r ← AdamW(p_r, g_r, m_r, v_r)                   (each rank its slice)
//   p   ← all-gather of the p_r                       (the other half)
// Same arithmetic as plain data parallelism; optim/zero.h says how the slices are cut.
// Checkpoints hold the full moments: for each save they are gathered to rank 0, into a
// temporary when the caller released the full moments after ct_zero_init
// (ct_zero_release_state), so that between saves no rank, rank 0 included, holds more than its
// slice (the full CtAdamW keeps the hyperparameters, the spans and the step).
#pragma once
#include "optim/zero.h"

// Takes this rank's slice of `full`'s state (full holds the whole state in host memory: fresh, or
// loaded from a checkpoint on every rank; free its moments afterwards with ct_zero_release_state)
// and puts it in the memory of `ops` (optim/zero.h's ct_zero_init_slice). A device needs NCCL
// (ct_nccl_init() done). 0, or -1 + error.
int ct_zero_init(CtZero *z, const CtAdamW *full, const CtOps *ops);
// Reduce-scatters grads [n] (every rank's own; [padded] on a device, whose own part it
// overwrites) and clips this rank's slice by the global norm, which it returns (the same on
// every rank).
double ct_zero_reduce_clip(CtZero *z, float *grads, double max_norm);
// The AdamW step with learning rate lr on this rank's slice of params [n] ([padded] on a
// device) from the gradients ct_zero_reduce_clip left (pass the same grads), then the all-gather
// (and on a device ct_zero_refresh_weight_copy; call that after resuming too).
void ct_zero_update(CtZero *z, float *params, float *grads, double lr);
// For a checkpoint (every rank calls): root's full gets the whole moments, every rank's full
// the step count. When root's full->m and full->v are NULL (released), they are allocated here,
// [full->n] floats each: free them after the save with ct_zero_release_state.
void ct_zero_gather_state(const CtZero *z, CtAdamW *full, int root);
