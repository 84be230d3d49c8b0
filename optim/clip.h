// Gradient clipping by global norm, with PyTorch's semantics (torch.nn.utils.clip_grad_norm_):
// scale = max_norm / (norm + 1e-6), applied only when it is below 1. The sum of squares and the
// scaling are the backend's ops (kernels/ops.h), so g lives where the ops say.
#pragma once
#include <stddef.h>

#include "kernels/ops.h"

// The L2 norm of g[0..n), accumulated in double (host memory: the CPU backend).
double ct_grad_norm(const float *g, size_t n);
// Scales g in place when its norm exceeds max_norm (max_norm <= 0: never). Returns the norm
// before clipping. Host memory.
double ct_clip_grad_norm(float *g, size_t n, double max_norm);
// The same over an array in the memory of `ops`.
double ct_grad_norm_on(const CtOps *ops, const float *g, size_t n);
double ct_clip_grad_norm_on(const CtOps *ops, float *g, size_t n, double max_norm);
// The factor ct_clip_grad_norm applies for a given norm (1 when no clipping).
double ct_clip_scale(double norm, double max_norm);
