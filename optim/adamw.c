#include "optim/adamw.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/rng.h"

void ct_adamw_init(CtAdamW *opt, size_t n, double lr, double beta1, double beta2, double eps, double weight_decay) {
    *opt = (CtAdamW){.lr = lr, .beta1 = beta1, .beta2 = beta2, .eps = eps, .weight_decay = weight_decay, .n = n};
    opt->ops = ct_ops_cpu();
    opt->m = ct_calloc(n ? n : 1, sizeof(float));
    opt->v = ct_calloc(n ? n : 1, sizeof(float));
}

void ct_adamw_free(CtAdamW *opt) {
    const CtOps *ops = opt->ops ? opt->ops : ct_ops_cpu();
    ops->free(opt->m);
    ops->free(opt->v);
    ct_free(opt->spans);
    opt->m = opt->v = NULL;
    opt->spans = NULL;
    opt->n_spans = 0;
}

static int by_offset(const void *a, const void *b) {
    const CtParamSpan *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

void ct_adamw_set_spans(CtAdamW *opt, const CtParamSpan *spans, int n_spans) {
    ct_free(opt->spans);
    opt->spans = ct_alloc(sizeof(CtParamSpan) * (size_t)(n_spans ? n_spans : 1));
    memcpy(opt->spans, spans, sizeof(CtParamSpan) * (size_t)n_spans);
    qsort(opt->spans, (size_t)n_spans, sizeof(CtParamSpan), by_offset);
    opt->n_spans = n_spans;
}

void ct_adamw_step(CtAdamW *opt, float *params, const float *grads) {
    opt->step++;
    // Scalars as torch computes them: in double (Python floats), then used as float32.
    double bc1 = 1.0 - pow(opt->beta1, (double)opt->step);
    double bc2 = 1.0 - pow(opt->beta2, (double)opt->step);
    CtAdamWScalars s = {
        .keep = (float)(1.0 - opt->lr * opt->weight_decay),
        .one_minus_b1 = (float)(1.0 - opt->beta1),
        .b2 = (float)opt->beta2,
        .one_minus_b2 = (float)(1.0 - opt->beta2),
        .eps = (float)opt->eps,
        .step_size = (float)(opt->lr / bc1),
        .bc2_sqrt = (float)sqrt(bc2),
        .rounding_seed = ct_adamw_rounding_seed(opt->seed, opt->step),
    };
    opt->ops->adamw_update(params, grads, opt->m, opt->v, opt->n, opt->spans, opt->n_spans, &s);
}

uint64_t ct_adamw_rounding_seed(uint64_t seed, long step) {
    CtRng rng;
    ct_rng_seed_stream(&rng, seed, CT_RNG_STREAM_ROUNDING + (uint64_t)step);
    return ct_rng_next(&rng);
}

void ct_adamw_resume_weight_copy(const CtAdamW *opt, const float *params) {
    if (!opt->ops->keep_low_precision_weights || opt->step <= 0) return;
    const uint64_t seed = ct_adamw_rounding_seed(opt->seed, opt->step);
    opt->ops->keep_low_precision_weights(params, opt->n, &seed);
}

static float *move_array(float *host, size_t n, const CtOps *from, const CtOps *to, const char *what) {
    float *dst = to->alloc((n ? n : 1) * sizeof(float), what);
    if (from->host_memory)
        to->upload(dst, host, n * sizeof(float));
    else {  // device to host (or to another backend through the host)
        float *tmp = ct_alloc((n ? n : 1) * sizeof(float));
        from->download(tmp, host, n * sizeof(float));
        to->upload(dst, tmp, n * sizeof(float));
        ct_free(tmp);
    }
    from->free(host);
    return dst;
}

void ct_adamw_move_to(CtAdamW *opt, const CtOps *ops) {
    if (opt->ops == ops) return;
    opt->m = move_array(opt->m, opt->n, opt->ops, ops, "AdamW first moments");
    opt->v = move_array(opt->v, opt->n, opt->ops, ops, "AdamW second moments");
    opt->ops = ops;
}

void ct_adamw_host_snapshot(const CtAdamW *opt, CtAdamW *host) {
    *host = *opt;
    host->ops = ct_ops_cpu();
    host->m = ct_alloc((opt->n ? opt->n : 1) * sizeof(float));
    host->v = ct_alloc((opt->n ? opt->n : 1) * sizeof(float));
    opt->ops->download(host->m, opt->m, opt->n * sizeof(float));
    opt->ops->download(host->v, opt->v, opt->n * sizeof(float));
}
