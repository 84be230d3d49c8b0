// AdamW on the GPU: host side (scalars, spans); the kernel is in kernels/cuda/adamw.cu.
#ifdef CTRAIN_CUDA
#include "optim/adamw_cuda.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "kernels/cuda/cuda_ops.h"

void ct_adamw_cuda_init(CtAdamWCuda *opt, size_t n, double lr, double beta1, double beta2, double eps,
                        double weight_decay) {
    *opt = (CtAdamWCuda){0};
    opt->cfg = (CtAdamW){.lr = lr, .beta1 = beta1, .beta2 = beta2, .eps = eps, .weight_decay = weight_decay, .n = n};
    opt->m = ct_cuda_malloc(n * sizeof(float), "AdamW first moments");
    opt->v = ct_cuda_malloc(n * sizeof(float), "AdamW second moments");
    ct_cuda_zero(opt->m, n * sizeof(float));
    ct_cuda_zero(opt->v, n * sizeof(float));
}

void ct_adamw_cuda_free(CtAdamWCuda *opt) {
    ct_cuda_free(opt->m);
    ct_cuda_free(opt->v);
    ct_cuda_free(opt->spans_device);
    ct_free(opt->cfg.spans);
    *opt = (CtAdamWCuda){0};
}

static int by_start(const void *a, const void *b) {
    const CtCudaSpan *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

void ct_adamw_cuda_set_spans(CtAdamWCuda *opt, const CtParamSpan *spans, int n_spans) {
    ct_free(opt->cfg.spans);
    opt->cfg.spans = ct_alloc(sizeof(CtParamSpan) * (size_t)(n_spans ? n_spans : 1));
    memcpy(opt->cfg.spans, spans, sizeof(CtParamSpan) * (size_t)n_spans);
    opt->cfg.n_spans = n_spans;
    ct_cuda_free(opt->spans_device);
    opt->spans_device = NULL;
    if (n_spans == 0) return;
    CtCudaSpan *sorted = ct_alloc(sizeof(CtCudaSpan) * (size_t)n_spans);
    for (int i = 0; i < n_spans; i++)
        sorted[i] = (CtCudaSpan){.start = spans[i].offset, .end = spans[i].offset + spans[i].count, .decay = spans[i].decay};
    qsort(sorted, (size_t)n_spans, sizeof(CtCudaSpan), by_start);
    opt->spans_device = ct_cuda_malloc(sizeof(CtCudaSpan) * (size_t)n_spans, "AdamW weight-decay spans");
    ct_cuda_upload(opt->spans_device, sorted, sizeof(CtCudaSpan) * (size_t)n_spans);
    ct_free(sorted);
}

void ct_adamw_cuda_step(CtAdamWCuda *opt, float *params, const float *grads) {
    CtAdamW *c = &opt->cfg;
    c->step++;
    // The scalars exactly as ct_adamw_step computes them: in double, then used as float32.
    double bc1 = 1.0 - pow(c->beta1, (double)c->step);
    double bc2 = 1.0 - pow(c->beta2, (double)c->step);
    ct_cuda_adamw_update(params, grads, opt->m, opt->v, c->n, opt->spans_device, opt->spans_device ? c->n_spans : 0,
                         (float)(1.0 - c->lr * c->weight_decay), (float)(1.0 - c->beta1), (float)c->beta2,
                         (float)(1.0 - c->beta2), (float)c->eps, (float)(c->lr / bc1), (float)sqrt(bc2));
}
#endif
