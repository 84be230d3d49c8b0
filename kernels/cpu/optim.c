// The CPU backend's optimizer ops: sum of squares, scaling and the AdamW update (kernels/ops.h).
#include <math.h>

#include "kernels/cpu/cpu_ops.h"

double ct_cpu_sum_squares(const float *x, size_t n) {
    double sum = 0;
#pragma omp parallel for reduction(+ : sum) schedule(static)
    for (size_t i = 0; i < n; i++) sum += (double)x[i] * (double)x[i];
    return sum;
}

void ct_cpu_scale(float *x, size_t n, float s) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

// Elements [from, to) with decay factor `keep`, torch's single-tensor arithmetic in float32.
// The scalars are copied to locals (a store to p, m or v could otherwise alias *s and force a
// reload every element), and the build's -fno-math-errno makes sqrtf the instruction rather than a
// libm call behind an errno branch (vsqrtps rounds exactly as sqrtf). Both keep the loop
// vectorized: the update is then bound by memory, not by one divide at a time (scalar, it took
// 295 ms of a 1.7 s GPT-2 124M step).
static void update(float *restrict p, const float *restrict g, float *restrict m, float *restrict v, size_t from,
                   size_t to, float keep, const CtAdamWScalars *s) {
    const float neg_step = -s->step_size, one_minus_b1 = s->one_minus_b1, one_minus_b2 = s->one_minus_b2;
    const float b2 = s->b2, bc2_sqrt = s->bc2_sqrt, eps = s->eps;
#pragma omp for simd schedule(static) nowait
    for (size_t i = from; i < to; i++) {
        float gi = g[i];
        float pi = p[i] * keep;
        float mi = m[i] + one_minus_b1 * (gi - m[i]);
        float vi = v[i] * b2 + one_minus_b2 * gi * gi;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi + (neg_step * mi) / denom;  // torch's CPU addcdiv_: self + value * t1 / t2
    }
}

void ct_cpu_adamw_update(float *params, const float *grads, float *m, float *v, size_t n, const CtParamSpan *spans,
                         int n_spans, const CtAdamWScalars *s) {
#pragma omp parallel
    {
        // spans sorted by offset (optim/adamw.c sorts them); gaps and the tail are decayed
        size_t at = 0;
        for (int k = 0; k < n_spans; k++) {
            if (spans[k].offset > at) update(params, grads, m, v, at, spans[k].offset, s->keep, s);
            update(params, grads, m, v, spans[k].offset, spans[k].offset + spans[k].count, spans[k].decay ? s->keep : 1.0f,
                   s);
            at = spans[k].offset + spans[k].count;
        }
        if (at < n) update(params, grads, m, v, at, n, s->keep, s);
    }
}
