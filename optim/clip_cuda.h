// Gradient clipping by global norm on the GPU, with optim/clip.h's (torch's) semantics. The
// norm is summed in double in a fixed order (kernels/cuda/adamw.cu): the same bits every run.
// Exists only in CUDA builds (#ifdef CTRAIN_CUDA).
#pragma once
#include <stddef.h>

// The L2 norm of the device array g[0..n).
double ct_cuda_grad_norm(const float *g_device, size_t n);
// Scales g in place when its norm exceeds max_norm (max_norm <= 0: never); returns the norm
// before clipping.
double ct_cuda_clip_grad_norm(float *g_device, size_t n, double max_norm);
