#include "train/zero.h"

#include <limits.h>
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "optim/clip.h"
#include "train/dist.h"

int ct_zero_init(CtZero *z, const CtAdamW *full) {
    memset(z, 0, sizeof *z);
    const int world = ct_dist_world(), rank = ct_dist_rank();
    const size_t n = full->n, base = n / (size_t)world, extra = n % (size_t)world;
    if (base + 1 > (size_t)INT_MAX)
        return ct_error_set("optim.zero: %zu parameters over %d ranks is more than 2^31 per rank; use more ranks", n,
                            world);
    z->n = n;
    z->counts = ct_alloc(sizeof(int) * (size_t)world);
    for (int r = 0; r < world; r++) {
        z->counts[r] = (int)(base + ((size_t)r < extra));
        if (r < rank) z->begin += (size_t)z->counts[r];
    }
    z->count = (size_t)z->counts[rank];
    z->grads = ct_calloc(z->count ? z->count : 1, sizeof(float));
    ct_adamw_init(&z->opt, z->count, full->lr, full->beta1, full->beta2, full->eps, full->weight_decay);
    z->opt.step = full->step;
    z->opt.seed = full->seed;  // a slice rounds its weight copy as the whole would
    memcpy(z->opt.m, full->m + z->begin, sizeof(float) * z->count);
    memcpy(z->opt.v, full->v + z->begin, sizeof(float) * z->count);
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
    char mine[32], all[32];
    ct_format_bytes(mine, sizeof mine, 2.0 * sizeof(float) * (double)(base + (extra > 0)));
    ct_format_bytes(all, sizeof all, 2.0 * sizeof(float) * (double)n);
    ct_log("optim.zero 1: AdamW moments %s per rank (%s in all, split over %d rank%s)", mine, all, world,
           world == 1 ? "" : "s");
    return 0;
}

void ct_zero_free(CtZero *z) {
    ct_adamw_free(&z->opt);
    ct_free(z->grads);
    ct_free(z->counts);
    memset(z, 0, sizeof *z);
}

double ct_zero_reduce_clip(CtZero *z, const float *grads, double max_norm) {
    ct_dist_reduce_scatter_sum_f32(grads, z->grads, z->counts);
    double norm = ct_grad_norm(z->grads, z->count);
    double sq = norm * norm;
    ct_dist_allreduce_sum_f64(&sq, 1);
    norm = sqrt(sq);
    double scale = ct_clip_scale(norm, max_norm);
    if (scale < 1.0) {
        const float s = (float)scale;
        for (size_t i = 0; i < z->count; i++) z->grads[i] *= s;
    }
    return norm;
}

void ct_zero_update(CtZero *z, float *params, double lr) {
    z->opt.lr = lr;
    if (z->count) ct_adamw_step(&z->opt, params + z->begin, z->grads);
    else z->opt.step++;
    ct_dist_allgather_f32(params, z->counts);
}

void ct_zero_gather_state(const CtZero *z, CtAdamW *full, int root) {
    const int is_root = ct_dist_rank() == root;
    CT_CHECK(full->n == z->n, "gather into the CtAdamW that ct_zero_init took its slice from");
    if (is_root && !full->m) full->m = ct_alloc(sizeof(float) * (z->n ? z->n : 1));  // freed by ct_zero_release_state
    if (is_root && !full->v) full->v = ct_alloc(sizeof(float) * (z->n ? z->n : 1));
    ct_dist_gather_f32(z->opt.m, is_root ? full->m : NULL, z->counts, root);
    ct_dist_gather_f32(z->opt.v, is_root ? full->v : NULL, z->counts, root);
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
