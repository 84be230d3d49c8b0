// The routed experts' adapters in PEFT's files. See train/interop/lora_peft_experts.h.
#include "train/interop/lora_peft_experts.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "train/model/lora.h"

// 1 when the adapter table has an adapter on layer's `site`.
static int has_site(const CtLora *lora, int layer, CtLoraSite site) {
    for (int i = 0; i < lora->n_adapters; i++)
        if (lora->adapters[i].layer == layer && lora->adapters[i].site == site) return 1;
    return 0;
}

// "model.layers.3.mlp.experts[.base_layer]": PEFT's module of the adapter's wrapper. gate_up_proj's
// wrapper is the inner one when down_proj is adapted too.
static void peft_module(const CtLora *lora, const CtLoraAdapter *a, char *out, size_t size) {
    const size_t stem = strlen(a->module) - strlen(strrchr(a->module, '.'));  // without ".gate_up_proj"
    const int inner = a->site == CT_LORA_EXPERTS_GATE_UP && has_site(lora, a->layer, CT_LORA_EXPERTS_DOWN);
    snprintf(out, size, "%.*s%s", (int)stem, a->module, inner ? ".base_layer" : "");
}

void ct_peft_experts_tensors(const CtModel *m, CtPeftExperts *out) {
    const CtLora *lora = m->lora;
    memset(out, 0, sizeof *out);
    out->n = ct_lora_n_tensors(lora);
    out->tensors = ct_alloc(sizeof(CtNamedTensor) * (size_t)out->n);
    ct_lora_named_tensors(lora, lora->params, out->tensors);
    out->names = ct_calloc((size_t)(2 * lora->n_adapters + 1), sizeof *out->names);
    out->b = ct_calloc((size_t)(lora->n_adapters + 1), sizeof *out->b);
    out->n_b = lora->n_adapters;
    for (int i = 0; i < lora->n_adapters; i++) {
        const CtLoraAdapter *a = &lora->adapters[i];
        if (!a->n_experts) continue;
        const int E = a->n_experts, r = a->r, o = a->out;
        char module[128];
        peft_module(lora, a, module, sizeof module);
        CtNamedTensor *A = &out->tensors[2 * i], *B = &out->tensors[2 * i + 1];
        snprintf(out->names[2 * i], sizeof out->names[0], "%s.lora_A.weight", module);
        snprintf(out->names[2 * i + 1], sizeof out->names[0], "%s.lora_B.weight", module);
        A->name = out->names[2 * i];
        A->ndim = 2;  // [E, r, in] is [E·r, in]
        A->shape[0] = (int64_t)E * r;
        A->shape[1] = a->in;
        float *b = ct_alloc(sizeof(float) * (size_t)E * o * r);
        const float *src = lora->params + a->b_offset;  // [E, out, r]
        for (int e = 0; e < E; e++)
            for (int j = 0; j < o; j++)
                for (int k = 0; k < r; k++) b[(size_t)j * r * E + (size_t)k * E + e] = src[((size_t)e * o + j) * r + k];
        out->b[i] = b;
        *B = (CtNamedTensor){.name = out->names[2 * i + 1], .ndim = 2, .dtype = CT_DTYPE_F32, .data = b};
        B->shape[0] = o;
        B->shape[1] = (int64_t)r * E;
    }
}

void ct_peft_experts_gather(CtModel *m, const CtPeftExperts *f) {
    CtLora *lora = m->lora;
    for (int i = 0; i < lora->n_adapters; i++) {
        const CtLoraAdapter *a = &lora->adapters[i];
        if (!a->n_experts) continue;
        const int E = a->n_experts, r = a->r, o = a->out;
        float *dst = lora->params + a->b_offset;
        for (int e = 0; e < E; e++)
            for (int j = 0; j < o; j++)
                for (int k = 0; k < r; k++)
                    dst[((size_t)e * o + j) * r + k] = f->b[i][(size_t)j * r * E + (size_t)k * E + e];
    }
}

void ct_peft_experts_free(CtPeftExperts *f) {
    for (int i = 0; i < f->n_b; i++) ct_free(f->b[i]);
    ct_free(f->b);
    ct_free(f->tensors);
    ct_free(f->names);
    memset(f, 0, sizeof *f);
}
