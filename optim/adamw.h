// AdamW (Loshchilov & Hutter), the minimal form: one learning rate, decoupled weight decay on
// every parameter, bias correction. The full optimizer (schedules, clipping, decay groups,
// ZeRO-1) builds on this later.
#pragma once
#include <stddef.h>

typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
    long step;       // steps taken
    size_t n;
    float *m, *v;    // first and second moments, [n]
} CtAdamW;

void ct_adamw_init(CtAdamW *opt, size_t n, float lr, float beta1, float beta2, float eps, float weight_decay);
void ct_adamw_free(CtAdamW *opt);
// params -= lr · (m̂ / (sqrt(v̂) + eps) + weight_decay · params), with m̂, v̂ bias-corrected.
void ct_adamw_step(CtAdamW *opt, float *params, const float *grads);
