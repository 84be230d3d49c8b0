// Activations: sized once for the largest batch (max_B × max_T) and carved out of one block.
// Per-layer tensors are n_layer slices of max_B·max_T rows; smaller batches use the front of
// each slice.
#include <string.h>

#include "core/alloc.h"
#include "train/model_internal.h"

typedef struct {
    void **field;
    size_t count;      // elements (floats or int32)
} ActSlot;

static size_t rows_max(const CtModel *m) { return (size_t)m->max_B * m->max_T; }
static int fi_width(const CtModelConfig *c) { return c->arch == CT_ARCH_LLAMA ? 2 * c->d_ff : c->d_ff; }
static int qkv_width(const CtModelConfig *c) { return (c->n_head + 2 * c->n_kv_head) * ct_model_head_dim(c); }

float *ct_act_ln1(const CtModel *m, int layer) {
    return m->act.ln1 + (m->recompute ? 0 : (size_t)layer * rows_max(m) * m->config.d_model);
}
float *ct_act_ln2(const CtModel *m, int layer) {
    return m->act.ln2 + (m->recompute ? 0 : (size_t)layer * rows_max(m) * m->config.d_model);
}
float *ct_act_fch_act(const CtModel *m, int layer) {
    return m->act.fch_act + (m->recompute ? 0 : (size_t)layer * rows_max(m) * m->config.d_ff);
}

void ct_model_activations_alloc(CtModel *m) {
    const CtModelConfig *c = &m->config;
    const size_t BT = rows_max(m), L = (size_t)c->n_layer, C = (size_t)c->d_model, F = (size_t)c->d_ff;
    const size_t FI = (size_t)fi_width(c), QKV = (size_t)qkv_width(c), V = (size_t)c->vocab_size;
    const size_t att = m->ops->attention_saved_floats(m->max_B, m->max_T, c->n_head);
    const size_t stored_layers = m->recompute ? 1 : L;  // for ln1, ln2, fch_act
    CtActivations *a = &m->act;
    ActSlot slots[] = {
        {(void **)&a->encoded, BT * C},
        {(void **)&a->ln1, stored_layers * BT * C},
        {(void **)&a->ln1_mean, L * BT},
        {(void **)&a->ln1_rstd, L * BT},
        {(void **)&a->qkv, L * BT * QKV},
        {(void **)&a->atty, L * BT * C},
        {(void **)&a->att, L * att},
        {(void **)&a->residual2, L * BT * C},
        {(void **)&a->ln2, stored_layers * BT * C},
        {(void **)&a->ln2_mean, L * BT},
        {(void **)&a->ln2_rstd, L * BT},
        {(void **)&a->fch, L * BT * FI},
        {(void **)&a->fch_act, stored_layers * BT * F},
        {(void **)&a->residual3, L * BT * C},
        {(void **)&a->lnf, BT * C},
        {(void **)&a->lnf_mean, BT},
        {(void **)&a->lnf_rstd, BT},
        {(void **)&a->logits, BT * V},
        {(void **)&a->losses, BT},
        {(void **)&a->logprobs, BT},
        {(void **)&a->lse, BT},
        {(void **)&a->proj, BT * C},
        {(void **)&a->positions, BT},
        {(void **)&a->d_residual, BT * C},
        {(void **)&a->d_norm, BT * C},
        {(void **)&a->d_qkv, BT * QKV},
        {(void **)&a->d_atty, BT * C},
        {(void **)&a->d_fch, BT * FI},
        {(void **)&a->d_fch_act, BT * F},
        {(void **)&a->d_proj, BT * C},
    };
    const int n_slots = (int)(sizeof slots / sizeof slots[0]);
    // each slot rounded up to 16 floats, so every tensor starts on a 64-byte line
    size_t total = 0;
    for (int i = 0; i < n_slots; i++) total += (slots[i].count + 15) & ~(size_t)15;
    m->act_block = m->ops->alloc(total * sizeof(float), "activations");  // zeroed
    size_t at = 0;
    for (int i = 0; i < n_slots; i++) {
        *slots[i].field = m->act_block + at;
        at += (slots[i].count + 15) & ~(size_t)15;
    }
    m->activation_bytes = total * sizeof(float);
    m->recompute_saved_bytes = m->recompute ? (L - 1) * BT * (2 * C + F) * sizeof(float) : 0;
    if (m->ops->host_memory) {  // the per-token results are read where they are
        m->losses = a->losses;
        m->logprobs = a->logprobs;
    }
}
