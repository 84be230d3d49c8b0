#include "optim/clip.h"

#include <math.h>

double ct_grad_norm_on(const CtOps *ops, const float *g, size_t n) { return sqrt(ops->sum_squares(g, n)); }

double ct_clip_scale(double norm, double max_norm) {
    if (max_norm <= 0 || !isfinite(norm)) return 1.0;
    double scale = max_norm / (norm + 1e-6);
    return scale < 1.0 ? scale : 1.0;
}

double ct_clip_grad_norm_on(const CtOps *ops, float *g, size_t n, double max_norm) {
    double norm = ct_grad_norm_on(ops, g, n);
    double scale = ct_clip_scale(norm, max_norm);
    if (scale < 1.0) ops->scale(g, n, (float)scale);
    return norm;
}

double ct_grad_norm(const float *g, size_t n) { return ct_grad_norm_on(ct_ops_cpu(), g, n); }
double ct_clip_grad_norm(float *g, size_t n, double max_norm) { return ct_clip_grad_norm_on(ct_ops_cpu(), g, n, max_norm); }
