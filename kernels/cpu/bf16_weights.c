#include "kernels/cpu/bf16_weights.h"

#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/cpu/cpu_ops.h"

enum { MAX_BUFFERS = 64 };  // a few matrices per module, up to CT_MODEL_MAX_MTP_DEPTH modules, and a head

typedef struct {
    const float *params;
    size_t n;
    uint16_t *copy;
} Declared;

static Declared declared[MAX_BUFFERS];

// A float's upper 16 bits, rounded to nearest even (NaN stays NaN: its quiet bit is kept).
static uint16_t bf16_of(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static Declared *find(const float *params) {
    for (int i = 0; i < MAX_BUFFERS; i++)
        if (declared[i].params == params && declared[i].copy) return &declared[i];
    return NULL;
}

void ct_cpu_keep_bf16_weights(const float *params, size_t n) {
    Declared *d = find(params);
    if (d && d->n != n) {
        ct_cpu_forget_bf16_weights(params);
        d = NULL;
    }
    for (int i = 0; !d && i < MAX_BUFFERS; i++)
        if (!declared[i].copy) {
            d = &declared[i];
            *d = (Declared){.params = params, .n = n, .copy = ct_alloc(sizeof(uint16_t) * (n ? n : 1))};
        }
    CT_CHECK(d != NULL, "more weight buffers with a bf16 copy than the CPU keeps (64)");
    for (size_t i = 0; i < n; i++) d->copy[i] = bf16_of(params[i]);
}

void ct_cpu_forget_bf16_weights(const float *params) {
    Declared *d = find(params);
    if (!d) return;
    ct_free(d->copy);
    *d = (Declared){0};
}

size_t ct_cpu_bf16_weights_bytes(void) {
    size_t bytes = 0;
    for (int i = 0; i < MAX_BUFFERS; i++)
        if (declared[i].copy) bytes += sizeof(uint16_t) * declared[i].n;
    return bytes;
}

// The copy of w[0, count) when one declared buffer holds all of it, else NULL.
static const uint16_t *holding(const float *w, size_t count) {
    for (int i = 0; i < MAX_BUFFERS; i++) {
        const Declared *d = &declared[i];
        if (d->copy && w >= d->params && w < d->params + d->n && count <= (size_t)(d->params + d->n - w))
            return d->copy + (w - d->params);
    }
    return NULL;
}

static void matmul_forward(CtAct *out, const CtAct *inp, const float *weight, const float *bias, int N, int C,
                           int OC) {
    const uint16_t *copy = holding(weight, (size_t)OC * (size_t)C);
    if (copy)
        ct_cpu_matmul_forward_bf16w(out, inp, copy, bias, N, C, OC);
    else
        ct_ops_cpu()->matmul_forward(out, inp, weight, bias, N, C, OC);
}

static void keep_low_precision_weights(const float *params, size_t n, const uint64_t *rounding_seed) {
    CT_CHECK(rounding_seed == NULL, "the CPU's bf16 weight copies are rounded to nearest (no training step writes them)");
    ct_cpu_keep_bf16_weights(params, n);
}

static CtOps table;

const CtOps *ct_ops_cpu_bf16_weights(void) {
#pragma omp critical(ct_cpu_bf16_weights_table)
    if (!table.matmul_forward) {
        CtOps t = *ct_ops_cpu();
        t.matmul_forward = matmul_forward;
        t.keep_low_precision_weights = keep_low_precision_weights;
        table = t;
    }
    return &table;
}
