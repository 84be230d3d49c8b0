#include "train/objectives/step_batches.h"

#include <string.h>

#include "core/alloc.h"

void ct_step_batches_init(CtStepBatches *s, int accum, int rows, int T) {
    memset(s, 0, sizeof *s);
    s->accum = accum;
    s->rows = rows;
    s->T = T;
    size_t n = (size_t)accum * rows * T;
    s->tokens = ct_alloc(n * sizeof(int32_t));
    s->targets = ct_alloc(n * sizeof(int32_t));
    s->positions = ct_alloc(n * sizeof(int32_t));
    s->doc_ids = ct_alloc(n * sizeof(int32_t));
    s->loss_mask = ct_alloc(n);
    s->weights = ct_alloc(n * sizeof(float));
    s->counts = ct_calloc((size_t)accum, sizeof(int64_t));
    s->example_ids = ct_alloc(sizeof(int64_t) * (size_t)accum * (size_t)rows);
    s->margins = ct_calloc((size_t)accum * (size_t)rows, sizeof(double));
}

void ct_step_batches_free(CtStepBatches *s) {
    ct_free(s->tokens);
    ct_free(s->targets);
    ct_free(s->positions);
    ct_free(s->doc_ids);
    ct_free(s->loss_mask);
    ct_free(s->weights);
    ct_free(s->counts);
    ct_free(s->example_ids);
    ct_free(s->margins);
    memset(s, 0, sizeof *s);
}

int ct_step_batches_fetch(CtStepBatches *s, CtLoader *loader) {
    const size_t n = (size_t)s->rows * s->T;
    s->total = 0;
    for (int i = 0; i < s->accum; i++) {
        const CtLoaderBatch *b;
        if (ct_loader_next(loader, &b) != 0) return -1;
        size_t at = (size_t)i * n;
        memcpy(s->tokens + at, b->tokens, n * sizeof(int32_t));
        memcpy(s->targets + at, b->targets, n * sizeof(int32_t));
        memcpy(s->positions + at, b->positions, n * sizeof(int32_t));
        memcpy(s->doc_ids + at, b->doc_ids, n * sizeof(int32_t));
        memcpy(s->loss_mask + at, b->loss_mask, n);
        memcpy(s->example_ids + (size_t)i * s->rows, b->example_ids, sizeof(int64_t) * (size_t)s->rows);
        memcpy(s->margins + (size_t)i * s->rows, b->margins, sizeof(double) * (size_t)s->rows);
        int64_t count = 0;
        for (size_t k = 0; k < n; k++) count += b->loss_mask[k] && b->targets[k] >= 0;
        s->counts[i] = count;
        s->total += count;
    }
    return 0;
}

void ct_step_batches_normalise(CtStepBatches *s, int64_t global_total) {
    const size_t n = (size_t)s->rows * s->T;
    for (int i = 0; i < s->accum; i++) {
        float w = global_total > 0 ? (float)((double)s->counts[i] / (double)global_total) : 0.0f;
        for (size_t k = 0; k < n; k++) s->weights[(size_t)i * n + k] = w;
    }
}

CtBatch ct_step_batch(const CtStepBatches *s, int i, int with_docs) {
    size_t at = (size_t)i * s->rows * s->T;
    CtBatch b = {.tokens = s->tokens + at, .targets = s->targets + at, .loss_mask = s->loss_mask + at,
                 .loss_weights = s->weights + at, .B = s->rows, .T = s->T};
    if (with_docs) {
        b.positions = s->positions + at;
        b.doc_ids = s->doc_ids + at;
    }
    return b;
}
