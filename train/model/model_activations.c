// Activations: sized once for the largest batch (max_B × max_T) and carved out of one block.
// Per-layer tensors are n_layer slices of max_B·max_T rows; smaller batches use the front of
// each slice.
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
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
// fch_act has slices for the dense layers only (an MoE layer's MLP keeps its own).
CtAct *ct_act_fch_act(const CtModel *m, int layer) {
    if (ct_model_layer_is_moe(&m->config, layer)) return NULL;
    return layer_slice(m, m->act.fch_act, ct_model_dense_index(&m->config, layer), m->config.d_ff);
}

// Sizes of the MoE activations per MoE layer (rows = max_B·max_T tokens; R = rows·K sorted rows).
typedef struct {
    size_t layers, E, K, C, F, FS, rows, R, shared, gate;
} MoeSizes;
static MoeSizes moe_sizes(const CtModel *m) {
    const CtModelConfig *c = &m->config;
    const size_t K = (size_t)c->top_k, rows = rows_max(m);
    return (MoeSizes){.layers = (size_t)ct_model_moe_layers(c), .E = (size_t)c->n_experts, .K = K,
                      .C = (size_t)c->d_model, .F = (size_t)c->moe_d_ff,
                      .FS = (size_t)c->n_shared_experts * (size_t)c->moe_d_ff, .rows = rows, .R = rows * K,
                      .shared = c->n_shared_experts > 0, .gate = c->shared_expert_gate != 0};
}

// Element i of an array of `bytes`-sized elements, or NULL where the array is absent.
static void *element(const void *p, size_t i, size_t bytes) { return p ? (char *)(uintptr_t)p + i * bytes : NULL; }

CtMoeActs ct_model_moe_acts(const CtModel *m, int layer) {
    const MoeSizes z = moe_sizes(m);
    const size_t i = (size_t)ct_model_moe_index(&m->config, layer), A = m->ops->act_bytes;
    const CtMoeActs *b = &m->act.moe.base;  // slice i of each: i × (its elements per layer)
    return (CtMoeActs){.logits = element(b->logits, i * z.rows * z.E, A),
                       .probs = element(b->probs, i * z.rows * z.E, 4),
                       .lse = element(b->lse, i * z.rows, 4),
                       .ids = element(b->ids, i * z.rows * z.K, 4),
                       .weights = element(b->weights, i * z.rows * z.K, 4),
                       .offsets = element(m->act.moe.offsets, i * (z.E + 1), 4),
                       .sorted_token = element(b->sorted_token, i * z.R, 4),
                       .slot_of = element(b->slot_of, i * z.R, 4),
                       .xs = element(b->xs, i * z.R * z.C, A),
                       .eh = element(b->eh, i * z.R * 2 * z.F, A),
                       .eh_act = element(b->eh_act, i * z.R * z.F, A),
                       .ey = element(b->ey, i * z.R * z.C, A),
                       .sh_fch = element(b->sh_fch, i * z.rows * 2 * z.FS, A),
                       .sh_act = element(b->sh_act, i * z.rows * z.FS, A),
                       .sh_out = element(b->sh_out, i * z.rows * z.C, A),
                       .sh_gate = element(b->sh_gate, i * z.rows, A)};
}

void ct_model_activations_alloc(CtModel *m) {
    const CtModelConfig *c = &m->config;
    const size_t BT = rows_max(m), L = (size_t)c->n_layer, C = (size_t)c->d_model, F = (size_t)c->d_ff;
    const size_t FI = (size_t)ct_model_fc_width(c), QKV = (size_t)ct_model_qkv_width(c), V = (size_t)c->vocab_size;
    const size_t AW = (size_t)ct_model_attn_width(c), NHKV = (size_t)(c->n_head + c->n_kv_head);
    const size_t qk = c->qk_norm ? 1 : 0, post = c->post_norms ? 1 : 0;  // 0: the feature's slots are empty
    const size_t enc = ct_model_is_encoder(c) ? 1 : 0;
    // prefix tuning: P more keys per row (kernels/ops.h's attention_prefix_forward)
    const size_t att = m->ops->attention_saved_floats(m->max_B, m->max_T + m->att_extra_keys, c->n_head);
    const size_t LD = L - (size_t)ct_model_moe_layers(c);  // dense layers: fch and fch_act
    const size_t stored_layers = m->recompute ? 1 : L;  // for ln1, ln2
    const size_t stored_dense = m->recompute ? (LD > 0) : LD;  // for fch_act
    CtActivations *a = &m->act;
    CtMoeActivations *moe = &a->moe;
    const size_t A = m->ops->act_bytes;
    const MoeSizes z = moe_sizes(m);
    const size_t ML = z.layers, sh = z.shared, sg = z.gate, any = ML > 0;
    ActSlot slots[] = {
        {(void **)&a->encoded, BT * C, A},
        {(void **)&a->emb_sum, enc * BT * C, A},
        {(void **)&a->emb_mean, enc * BT, 4},
        {(void **)&a->emb_rstd, enc * BT, 4},
        {(void **)&a->mlm_pre, enc * BT * C, A},
        {(void **)&a->mlm_act, enc * BT * C, A},
        {(void **)&a->token_types, enc * BT, 4},
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
        {(void **)&a->fch, LD * BT * FI, A},
        {(void **)&a->fch_act, stored_dense * BT * F, A},
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
        // Mixture of Experts: every MoE layer's (recompute or not), then backward's scratch
        {(void **)&moe->base.logits, ML * BT * z.E, A},
        {(void **)&moe->base.probs, ML * BT * z.E, 4},
        {(void **)&moe->base.lse, ML * BT, 4},
        {(void **)&moe->base.ids, ML * BT * z.K, 4},
        {(void **)&moe->base.weights, ML * BT * z.K, 4},
        {(void **)&moe->base.sorted_token, ML * z.R, 4},
        {(void **)&moe->base.slot_of, ML * z.R, 4},
        {(void **)&moe->base.xs, ML * z.R * C, A},
        {(void **)&moe->base.eh, ML * z.R * 2 * z.F, A},
        {(void **)&moe->base.eh_act, ML * z.R * z.F, A},
        {(void **)&moe->base.ey, ML * z.R * C, A},
        {(void **)&moe->base.sh_fch, sh * ML * BT * 2 * z.FS, A},
        {(void **)&moe->base.sh_act, sh * ML * BT * z.FS, A},
        {(void **)&moe->base.sh_out, sh * ML * BT * C, A},
        {(void **)&moe->base.sh_gate, sg * ML * BT, A},
        {(void **)&moe->d_logits, any * BT * z.E, A},
        {(void **)&moe->d_weights, any * BT * z.K, 4},
        {(void **)&moe->d_rows, any * z.R * C, A},
        {(void **)&moe->d_eh, any * z.R * 2 * z.F, A},
        {(void **)&moe->d_eh_act, any * z.R * z.F, A},
        {(void **)&moe->d_sh_fch, sh * BT * 2 * z.FS, A},
        {(void **)&moe->d_sh_act, sh * BT * z.FS, A},
        {(void **)&moe->d_sh_out, sh * BT * C, A},
        {(void **)&moe->d_sh_gate, sg * BT, A},
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
    m->recompute_saved_bytes = m->recompute ? ((L - 1) * 2 * C + (LD > 0 ? LD - 1 : 0) * F) * BT * A : 0;
    if (ML) {  // the products launch per expert from these counts: host memory
        moe->offsets = ct_calloc(ML * (z.E + 1), sizeof(int32_t));
        moe->base.offsets = moe->offsets;
        moe->f = ct_calloc(z.E, sizeof(float));
        moe->q_mean = ct_calloc(z.E, sizeof(double));
    }
    if (m->ops->host_memory) {  // the per-token results are read where they are
        m->losses = a->losses;
        m->logprobs = a->logprobs;
    }
    ct_model_mtp_alloc(m);  // the multi-token prediction modules' (nothing without them)
}

void ct_model_activations_free(CtModel *m) {
    if (m->ops) m->ops->free(m->act_block);
    m->act_block = NULL;
    ct_model_mtp_free(m);
    CtMoeActivations *moe = &m->act.moe;
    ct_free(moe->offsets);
    ct_free(moe->f);
    ct_free(moe->q_mean);
    memset(moe, 0, sizeof *moe);
}

int ct_model_set_max_T(CtModel *m, int max_T) {
    CT_CHECK(m->ops->host_memory, "ct_model_set_max_T: a model on the CPU");
    if (max_T < 1 || max_T > m->config.max_seq_len)
        return ct_error_set("sequences of %d rows are longer than the model's max_seq_len %d", max_T,
                            m->config.max_seq_len);
    if (max_T == m->max_T) return 0;
    ct_free(m->host_logits);  // sized by max_T
    m->host_logits = NULL;
    ct_model_activations_free(m);
    m->max_T = max_T;
    ct_model_activations_alloc(m);
    return 0;
}
