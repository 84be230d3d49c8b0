// Gradient clipping by global norm, with PyTorch's semantics (torch.nn.utils.clip_grad_norm_):
// scale = max_norm / (norm + 1e-6), applied only when it is below 1.
#pragma once
#include <stddef.h>

// The L2 norm of g[0..n), accumulated in double.
double ct_grad_norm(const float *g, size_t n);
// Scales g in place when its norm exceeds max_norm (max_norm <= 0: never). Returns the norm
// before clipping.
double ct_clip_grad_norm(float *g, size_t n, double max_norm);
// The factor ct_clip_grad_norm applies for a given norm (1 when no clipping).
double ct_clip_scale(double norm, double max_norm);
