// ZeRO stage 1's optimizer state: one rank's slice of the AdamW moments. See optim/zero.h.
#include "optim/zero.h"

#include <limits.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "optim/clip.h"

int ct_zero_init_slice(CtZero *z, const CtAdamW *full, const CtOps *ops, int rank, int world) {
    memset(z, 0, sizeof *z);
    CT_CHECK(full->ops->host_memory, "ct_zero_init takes the full state from host memory");
    const size_t n = full->n, padded = ct_zero_padded_count(n, world), part = padded / (size_t)world;
    if (part > (size_t)INT_MAX)
        return ct_error_set("optim.zero: %zu parameters over %d ranks is more than 2^31 per rank; use more ranks", n,
                            world);
    z->n = n;
    z->padded = padded;
    z->on_device = !ops->host_memory;
    z->counts = ct_alloc(sizeof(int) * (size_t)world);
    for (int r = 0; r < world; r++) {
        const size_t from = (size_t)r * part;  // part r's real elements: the padding is at the end
        z->counts[r] = (int)(from >= n ? 0 : n - from < part ? n - from : part);
    }
    z->begin = (size_t)rank * part;
    z->count = (size_t)z->counts[rank];
    if (!z->on_device) z->grads = ct_calloc(z->count ? z->count : 1, sizeof(float));
    ct_adamw_init(&z->opt, z->count, full->lr, full->beta1, full->beta2, full->eps, full->weight_decay);
    z->opt.step = full->step;
    z->opt.seed = full->seed;  // a slice rounds its weight copy as the whole would
    if (z->count) {
        memcpy(z->opt.m, full->m + z->begin, sizeof(float) * z->count);
        memcpy(z->opt.v, full->v + z->begin, sizeof(float) * z->count);
    }
    // The decay spans, cut to the slice and counted from its start.
    CtParamSpan *spans = ct_alloc(sizeof(CtParamSpan) * (size_t)(full->n_spans ? full->n_spans : 1));
    int k = 0;
    const size_t end = z->begin + z->count;
    for (int s = 0; s < full->n_spans; s++) {
        size_t from = full->spans[s].offset, to = from + full->spans[s].count;
        if (from < z->begin) from = z->begin;
        if (to > end) to = end;
        if (from < to) spans[k++] = (CtParamSpan){from - z->begin, to - from, full->spans[s].decay};
    }
    ct_adamw_set_spans(&z->opt, spans, k);
    ct_free(spans);
    ct_adamw_move_to(&z->opt, ops);  // the slice's moments next to the parameters
    char mine[32], all[32];
    ct_format_bytes(mine, sizeof mine, 2.0 * sizeof(float) * (double)part);
    ct_format_bytes(all, sizeof all, 2.0 * sizeof(float) * (double)n);
    ct_log("optim.zero 1: AdamW moments %s per rank in %s memory (%s in all, split over %d rank%s)", mine,
           z->on_device ? "GPU" : "host", all, world, world == 1 ? "" : "s");
    return 0;
}

void ct_zero_free(CtZero *z) {
    ct_adamw_free(&z->opt);
    ct_free(z->grads);
    ct_free(z->counts);
    memset(z, 0, sizeof *z);
}

float *ct_zero_grad_slice(const CtZero *z, float *grads) { return z->on_device ? grads + z->begin : z->grads; }

double ct_zero_slice_norm_sq(const CtZero *z, const float *slice) {
    double norm = z->count ? ct_grad_norm_on(z->opt.ops, slice, z->count) : 0.0;
    return norm * norm;
}

void ct_zero_clip_slice(const CtZero *z, float *slice, double norm, double max_norm) {
    double scale = ct_clip_scale(norm, max_norm);
    if (scale < 1.0 && z->count) z->opt.ops->scale(slice, z->count, (float)scale);
}

void ct_zero_step_slice(CtZero *z, float *params, float *grads, double lr) {
    z->opt.lr = lr;
    if (z->count) ct_adamw_step(&z->opt, params + z->begin, ct_zero_grad_slice(z, grads));
    else z->opt.step++;
}

void ct_zero_refresh_weight_copy(const CtZero *z, const float *params) {
    CtAdamW whole = z->opt;  // the step, seed and backend of the slice, over the whole buffer
    whole.n = z->n;
    ct_adamw_resume_weight_copy(&whole, params);
}

void ct_zero_alloc_state(const CtZero *z, CtAdamW *full) {
    if (!full->m) full->m = ct_alloc(sizeof(float) * (z->n ? z->n : 1));  // freed by ct_zero_release_state
    if (!full->v) full->v = ct_alloc(sizeof(float) * (z->n ? z->n : 1));
}

CtAdamW ct_zero_host_slice(const CtZero *z) {
    CtAdamW slice = z->opt;  // on a device: a host copy of this rank's moments to send
    if (z->on_device) ct_adamw_host_snapshot(&z->opt, &slice);
    return slice;
}

void ct_zero_host_slice_free(const CtZero *z, CtAdamW *slice) {
    if (!z->on_device) return;
    ct_free(slice->m);
    ct_free(slice->v);
}

void ct_zero_release_state(CtAdamW *full) {
    ct_free(full->m);
    ct_free(full->v);
    full->m = full->v = NULL;
}

size_t ct_zero_padded_count(size_t n, int world) {
    const size_t w = world > 0 ? (size_t)world : 1;
    return (n + w - 1) / w * w;
}
