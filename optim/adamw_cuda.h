// AdamW on the GPU: the same update as optim/adamw.h (torch's arithmetic), over device arrays,
// in one kernel over all parameters (kernels/cuda/adamw.cu). The hyper-parameters, the step
// count and the weight-decay spans live in an ordinary CtAdamW (its m and v stay NULL: the
// moments are in device memory here), so code that reads or checkpoints them works unchanged.
// Exists only in CUDA builds (#ifdef CTRAIN_CUDA).
#pragma once
#include <stddef.h>

#include "optim/adamw.h"

typedef struct {
    CtAdamW cfg;          // lr, betas, eps, weight_decay, step, n, spans (host)
    float *m, *v;         // first and second moments, [n], device
    void *spans_device;   // cfg.spans sorted by offset, as CtCudaSpan, device (NULL: none)
} CtAdamWCuda;

// Moments zeroed on the device.
void ct_adamw_cuda_init(CtAdamWCuda *opt, size_t n, double lr, double beta1, double beta2, double eps,
                        double weight_decay);
void ct_adamw_cuda_free(CtAdamWCuda *opt);
// Which spans are decayed (copied, sorted, uploaded). Spans must not overlap.
void ct_adamw_cuda_set_spans(CtAdamWCuda *opt, const CtParamSpan *spans, int n_spans);
// One step with opt->cfg.lr: params and grads are [n] device arrays.
void ct_adamw_cuda_step(CtAdamWCuda *opt, float *params_device, const float *grads_device);
