#include "optim/adamw.h"

#include <math.h>

#include "core/alloc.h"

void ct_adamw_init(CtAdamW *opt, size_t n, float lr, float beta1, float beta2, float eps, float weight_decay) {
    *opt = (CtAdamW){.lr = lr, .beta1 = beta1, .beta2 = beta2, .eps = eps, .weight_decay = weight_decay, .n = n};
    opt->m = ct_calloc(n, sizeof(float));
    opt->v = ct_calloc(n, sizeof(float));
}

void ct_adamw_free(CtAdamW *opt) {
    ct_free(opt->m);
    ct_free(opt->v);
    opt->m = opt->v = NULL;
}

void ct_adamw_step(CtAdamW *opt, float *params, const float *grads) {
    opt->step++;
    const float b1 = opt->beta1, b2 = opt->beta2, lr = opt->lr, eps = opt->eps, wd = opt->weight_decay;
    const float c1 = 1.0f / (1.0f - powf(b1, (float)opt->step)), c2 = 1.0f / (1.0f - powf(b2, (float)opt->step));
    float *m = opt->m, *v = opt->v;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < opt->n; i++) {
        float g = grads[i];
        m[i] = b1 * m[i] + (1 - b1) * g;
        v[i] = b2 * v[i] + (1 - b2) * g * g;
        params[i] -= lr * ((m[i] * c1) / (sqrtf(v[i] * c2) + eps) + wd * params[i]);
    }
}
