// ZeRO stage 1's optimizer state (Rajbhandari et al., "ZeRO: Memory Optimizations Toward Training
// Trillion Parameter Models", 2020): the AdamW moments split across the ranks, 1/world each, and
// the update of one rank's slice. The collectives that feed the slice its gradients and gather the
// parameters and moments back (MPI, NCCL) are in train/dist/zero.h, which has the whole step.
// The slices are cut as NCCL needs them (its reduce-scatter and all-gather take equal parts): the
// buffer, padded to padded = ct_zero_padded_count(n, world) floats, is split into `world` equal
// parts, rank r's slice being the real elements of part r, [r·part, min((r+1)·part, n)); the last
// slices are short (or empty) where the padding falls. On the CPU the collectives are MPI's,
// which take uneven counts, so host buffers need no padding. On the GPU they are NCCL's, in place
// on the caller's buffers, which must hold `padded` floats with zeros past n (ct_model_to_backend
// pads them when CtModel.train_shards says so): every element has exactly one owner either way.
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

// Takes rank's slice (of `world`) of `full`'s moments, spans, step and hyperparameters (full
// holds the whole state in host memory) and puts it in the memory of `ops`, where the parameters
// and gradients live. Logs the moments' bytes per rank. 0, or -1 + error.
int ct_zero_init_slice(CtZero *z, const CtAdamW *full, const CtOps *ops, int rank, int world);
void ct_zero_free(CtZero *z);
// This rank's slice of the summed gradients: its own part of grads on a device (in place), the
// host buffer z->grads otherwise.
float *ct_zero_grad_slice(const CtZero *z, float *grads);
// The squared L2 norm of this rank's gradient slice, and its scaling by the global norm as
// clipping asks (optim/clip.h).
double ct_zero_slice_norm_sq(const CtZero *z, const float *slice);
void ct_zero_clip_slice(const CtZero *z, float *slice, double norm, double max_norm);
// The AdamW step with learning rate lr on this rank's slice of params from its gradient slice
// (ct_zero_grad_slice of the same grads); the slice of params alone is new afterwards.
void ct_zero_step_slice(CtZero *z, float *params, float *grads, double lr);
// The backend's low-precision copy of the weights (kernels/ops.h, keep_low_precision_weights;
// the bf16 CUDA table) as the last step left it: after the all-gather only this rank's slice
// of the copy is fresh, but its stochastic rounding is a function of the weight, the step's
// seed and the index, so every rank re-creates from the gathered params [n] exactly the copy
// each owner wrote. Nothing when the backend keeps no copy, or before the first step.
void ct_zero_refresh_weight_copy(const CtZero *z, const float *params);
// For gathering the moments into full (train/dist/zero.h): full's moments allocated where they
// are NULL ([full->n] floats each; free them with ct_zero_release_state), and this rank's moments
// in host memory (a copy on a device: give it back with ct_zero_host_slice_free).
void ct_zero_alloc_state(const CtZero *z, CtAdamW *full);
CtAdamW ct_zero_host_slice(const CtZero *z);
void ct_zero_host_slice_free(const CtZero *z, CtAdamW *slice);
// Frees full's moments (m and v become NULL; n, the hyperparameters, the spans and the step
// stay, so a gather can fill it again). On any rank; NULL moments are fine.
void ct_zero_release_state(CtAdamW *full);
// n rounded up to a multiple of world: the floats of a buffer sharded in equal parts.
size_t ct_zero_padded_count(size_t n, int world);
