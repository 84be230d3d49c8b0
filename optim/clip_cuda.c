// Global-norm clipping of device gradients (see optim/clip_cuda.h).
#ifdef CTRAIN_CUDA
#include "optim/clip_cuda.h"

#include <math.h>

#include "kernels/cuda/cuda_ops.h"
#include "optim/clip.h"

double ct_cuda_grad_norm(const float *g, size_t n) { return sqrt(ct_cuda_sum_squares(g, n)); }

double ct_cuda_clip_grad_norm(float *g, size_t n, double max_norm) {
    double norm = ct_cuda_grad_norm(g, n);
    double scale = ct_clip_scale(norm, max_norm);
    if (scale < 1.0) ct_cuda_scale(g, n, (float)scale);
    return norm;
}
#endif
