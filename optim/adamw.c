#include "optim/adamw.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"

void ct_adamw_init(CtAdamW *opt, size_t n, double lr, double beta1, double beta2, double eps, double weight_decay) {
    *opt = (CtAdamW){.lr = lr, .beta1 = beta1, .beta2 = beta2, .eps = eps, .weight_decay = weight_decay, .n = n};
    opt->m = ct_calloc(n, sizeof(float));
    opt->v = ct_calloc(n, sizeof(float));
}

void ct_adamw_free(CtAdamW *opt) {
    ct_free(opt->m);
    ct_free(opt->v);
    ct_free(opt->spans);
    opt->m = opt->v = NULL;
    opt->spans = NULL;
    opt->n_spans = 0;
}

void ct_adamw_set_spans(CtAdamW *opt, const CtParamSpan *spans, int n_spans) {
    ct_free(opt->spans);
    opt->spans = ct_alloc(sizeof(CtParamSpan) * (size_t)(n_spans ? n_spans : 1));
    memcpy(opt->spans, spans, sizeof(CtParamSpan) * (size_t)n_spans);
    opt->n_spans = n_spans;
}

// The update of elements [from, to) with decay factor `keep` = 1 − lr·wd (1 without decay).
static void update(const CtAdamW *opt, float *p, const float *g, size_t from, size_t to, float keep, float step_size,
                   float bc2_sqrt) {
    // Every scalar is computed in double and used as float32, as torch does with Python floats.
    const float one_minus_b1 = (float)(1.0 - opt->beta1), b2 = (float)opt->beta2;
    const float one_minus_b2 = (float)(1.0 - opt->beta2), eps = (float)opt->eps;
    const float neg_step = -step_size;
    float *m = opt->m, *v = opt->v;
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

void ct_adamw_step(CtAdamW *opt, float *params, const float *grads) {
    opt->step++;
    // Scalars as torch computes them: in double (Python floats), then used as float32.
    double bc1 = 1.0 - pow(opt->beta1, (double)opt->step);
    double bc2 = 1.0 - pow(opt->beta2, (double)opt->step);
    const float step_size = (float)(opt->lr / bc1);
    const float bc2_sqrt = (float)sqrt(bc2);
    const float keep = (float)(1.0 - opt->lr * opt->weight_decay);
#pragma omp parallel
    {
        if (opt->n_spans == 0) {
            update(opt, params, grads, 0, opt->n, keep, step_size, bc2_sqrt);
        } else {
            size_t covered_to = 0;
            for (int s = 0; s < opt->n_spans; s++) {
                const CtParamSpan *span = &opt->spans[s];
                update(opt, params, grads, span->offset, span->offset + span->count, span->decay ? keep : 1.0f, step_size,
                       bc2_sqrt);
                if (span->offset + span->count > covered_to) covered_to = span->offset + span->count;
            }
            if (covered_to < opt->n) update(opt, params, grads, covered_to, opt->n, keep, step_size, bc2_sqrt);
        }
    }
}
