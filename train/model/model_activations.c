// Activations: sized once for the largest batch (max_B × max_T) and carved out of one block.
// Per-layer tensors are n_layer slices of max_B·max_T rows; smaller batches use the front of
// each slice.
#include <string.h>

#include "core/alloc.h"
#include "train/model/model_internal.h"

typedef struct {
    void **field;
    size_t count;      // elements
    size_t bytes;      // of one element: the ops' act_bytes, or 4 (float, int32)
} ActSlot;

static size_t rows_max(const CtModel *m) { return (size_t)m->max_B * m->max_T; }

static CtAct *layer_slice(const CtModel *m, CtAct *base, int layer, int width) {
    return ct_act_at(m->ops->act_bytes, base, m->recompute ? 0 : (size_t)layer * rows_max(m) * width);
}
CtAct *ct_act_ln1(const CtModel *m, int layer) { return layer_slice(m, m->act.ln1, layer, m->config.d_model); }
CtAct *ct_act_ln2(const CtModel *m, int layer) { return layer_slice(m, m->act.ln2, layer, m->config.d_model); }
CtAct *ct_act_fch_act(const CtModel *m, int layer) { return layer_slice(m, m->act.fch_act, layer, m->config.d_ff); }

void ct_model_activations_alloc(CtModel *m) {
    const CtModelConfig *c = &m->config;
    const size_t BT = rows_max(m), L = (size_t)c->n_layer, C = (size_t)c->d_model, F = (size_t)c->d_ff;
    const size_t FI = (size_t)ct_model_fc_width(c), QKV = (size_t)ct_model_qkv_width(c), V = (size_t)c->vocab_size;
    const size_t AW = (size_t)ct_model_attn_width(c), NHKV = (size_t)(c->n_head + c->n_kv_head);
    const size_t qk = c->qk_norm ? 1 : 0, post = c->post_norms ? 1 : 0;  // 0: the feature's slots are empty
    const size_t att = m->ops->attention_saved_floats(m->max_B, m->max_T, c->n_head);
    const size_t stored_layers = m->recompute ? 1 : L;  // for ln1, ln2, fch_act
    CtActivations *a = &m->act;
    const size_t A = m->ops->act_bytes;
    ActSlot slots[] = {
        {(void **)&a->encoded, BT * C, A},
        {(void **)&a->ln1, stored_layers * BT * C, A},
        {(void **)&a->ln1_mean, L * BT, 4},
        {(void **)&a->ln1_rstd, L * BT, 4},
        {(void **)&a->qkv, L * BT * QKV, A},
        {(void **)&a->qkv_pre, qk * L * BT * QKV, A},
        {(void **)&a->qk_rstd, qk * L * BT * NHKV, 4},
        {(void **)&a->atty, L * BT * AW, A},
        {(void **)&a->attn_pre, post * L * BT * C, A},
        {(void **)&a->attn_post_rstd, post * L * BT, 4},
        {(void **)&a->mlp_pre, post * L * BT * C, A},
        {(void **)&a->mlp_post_rstd, post * L * BT, 4},
        {(void **)&a->att, L * att, 4},
        {(void **)&a->residual2, L * BT * C, A},
        {(void **)&a->ln2, stored_layers * BT * C, A},
        {(void **)&a->ln2_mean, L * BT, 4},
        {(void **)&a->ln2_rstd, L * BT, 4},
        {(void **)&a->fch, L * BT * FI, A},
        {(void **)&a->fch_act, stored_layers * BT * F, A},
        {(void **)&a->residual3, L * BT * C, A},
        {(void **)&a->lnf, BT * C, A},
        {(void **)&a->lnf_mean, BT, 4},
        {(void **)&a->lnf_rstd, BT, 4},
        {(void **)&a->logits, BT * V, A},
        {(void **)&a->losses, BT, 4},
        {(void **)&a->logprobs, BT, 4},
        {(void **)&a->lse, BT, 4},
        {(void **)&a->proj, BT * C, A},
        {(void **)&a->positions, BT, 4},
        {(void **)&a->d_residual, BT * C, A},
        {(void **)&a->d_norm, BT * C, A},
        {(void **)&a->d_qkv, BT * QKV, A},
        {(void **)&a->d_atty, BT * AW, A},
        {(void **)&a->d_post, post * BT * C, A},
        {(void **)&a->d_fch, BT * FI, A},
        {(void **)&a->d_fch_act, BT * F, A},
        {(void **)&a->d_proj, BT * C, A},
    };
    const int n_slots = (int)(sizeof slots / sizeof slots[0]);
    // each slot rounded up to 256 bytes: every tensor starts where cuBLASLt and vector loads like it
    size_t total = 0;
    for (int i = 0; i < n_slots; i++) total += (slots[i].count * slots[i].bytes + 255) & ~(size_t)255;
    m->act_block = m->ops->alloc(total, "activations");  // zeroed
    size_t at = 0;
    for (int i = 0; i < n_slots; i++) {
        *slots[i].field = slots[i].count ? (char *)m->act_block + at : NULL;  // a feature's empty slot: NULL
        at += (slots[i].count * slots[i].bytes + 255) & ~(size_t)255;
    }
    m->activation_bytes = total;
    m->recompute_saved_bytes = m->recompute ? (L - 1) * BT * (2 * C + F) * A : 0;
    if (m->ops->host_memory) {  // the per-token results are read where they are
        m->losses = a->losses;
        m->logprobs = a->logprobs;
    }
}
