#include "train/dist/zero.h"

#include <limits.h>
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "optim/clip.h"
#include "train/dist/dist.h"
#include "train/dist/dist_nccl.h"

int ct_zero_init(CtZero *z, const CtAdamW *full, const CtOps *ops) {
    memset(z, 0, sizeof *z);
    CT_CHECK(full->ops->host_memory, "ct_zero_init takes the full state from host memory");
    const int world = ct_dist_world(), rank = ct_dist_rank();
    const size_t n = full->n, padded = ct_zero_padded_count(n, world), part = padded / (size_t)world;
    if (part > (size_t)INT_MAX)
        return ct_error_set("optim.zero: %zu parameters over %d ranks is more than 2^31 per rank; use more ranks", n,
                            world);
    if (!ops->host_memory && !ct_nccl_built())
        return ct_error_set("optim.zero = 1 on a GPU needs NCCL, and this ctrain was built without it: install NCCL "
                            "(libnccl-dev) and rebuild with make CUDA=1, or set optim.zero = 0");
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

// This rank's slice of the summed gradients: its own part of grads on a device (in place).
static float *grad_slice(const CtZero *z, float *grads) { return z->on_device ? grads + z->begin : z->grads; }

double ct_zero_reduce_clip(CtZero *z, float *grads, double max_norm) {
    float *slice = grad_slice(z, grads);
    if (z->on_device)
        ct_nccl_reduce_scatter_sum_f32(grads, slice, z->padded);  // returns when done: MPI may follow
    else
        ct_dist_reduce_scatter_sum_f32(grads, slice, z->counts);
    const CtOps *ops = z->opt.ops;
    double norm = z->count ? ct_grad_norm_on(ops, slice, z->count) : 0.0;
    double sq = norm * norm;
    ct_dist_allreduce_sum_f64(&sq, 1);
    norm = sqrt(sq);
    double scale = ct_clip_scale(norm, max_norm);
    if (scale < 1.0 && z->count) ops->scale(slice, z->count, (float)scale);
    return norm;
}

void ct_zero_update(CtZero *z, float *params, float *grads, double lr) {
    z->opt.lr = lr;
    if (z->count) ct_adamw_step(&z->opt, params + z->begin, grad_slice(z, grads));
    else z->opt.step++;
    if (z->on_device) {
        ct_nccl_allgather_f32(params, z->padded);
        ct_zero_refresh_weight_copy(z, params);
    } else {
        ct_dist_allgather_f32(params, z->counts);
    }
}

void ct_zero_refresh_weight_copy(const CtZero *z, const float *params) {
    CtAdamW whole = z->opt;  // the step, seed and backend of the slice, over the whole buffer
    whole.n = z->n;
    ct_adamw_resume_weight_copy(&whole, params);
}

void ct_zero_gather_state(const CtZero *z, CtAdamW *full, int root) {
    const int is_root = ct_dist_rank() == root;
    CT_CHECK(full->n == z->n, "gather into the CtAdamW that ct_zero_init took its slice from");
    if (is_root && !full->m) full->m = ct_alloc(sizeof(float) * (z->n ? z->n : 1));  // freed by ct_zero_release_state
    if (is_root && !full->v) full->v = ct_alloc(sizeof(float) * (z->n ? z->n : 1));
    CtAdamW slice = z->opt;  // on a device: a host copy of this rank's moments to send
    if (z->on_device) ct_adamw_host_snapshot(&z->opt, &slice);
    ct_dist_gather_f32(slice.m, is_root ? full->m : NULL, z->counts, root);
    ct_dist_gather_f32(slice.v, is_root ? full->v : NULL, z->counts, root);
    if (z->on_device) {
        ct_free(slice.m);
        ct_free(slice.v);
    }
    full->step = z->opt.step;
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
