#include "optim/clip.h"

#include <math.h>

double ct_grad_norm(const float *g, size_t n) {
    double sum = 0;
#pragma omp parallel for reduction(+ : sum) schedule(static)
    for (size_t i = 0; i < n; i++) sum += (double)g[i] * (double)g[i];
    return sqrt(sum);
}

double ct_clip_scale(double norm, double max_norm) {
    if (max_norm <= 0 || !isfinite(norm)) return 1.0;
    double scale = max_norm / (norm + 1e-6);
    return scale < 1.0 ? scale : 1.0;
}

double ct_clip_grad_norm(float *g, size_t n, double max_norm) {
    double norm = ct_grad_norm(g, n);
    double scale = ct_clip_scale(norm, max_norm);
    if (scale < 1.0) {
        float s = (float)scale;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) g[i] *= s;
    }
    return norm;
}
