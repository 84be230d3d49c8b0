// Multi-token prediction, as DeepSeek-V3 trains it (arXiv 2412.19437 §2.2): D modules after the
// main model; module k (1..D) at position i reads the previous depth's hidden state h^{k−1}_i (the
// main model's last residual stream, before its final norm, for k = 1) and the embedding of token
// t_{i+k}, and predicts t_{i+k+1}:
//
//   h'_i  = eh_proj · [norm_e(wte[t_{i+k}]) | norm_h(h^{k−1}_i)]        ([C, 2C]·[2C])
//   h^k_i = Block_{L+k−1}(h'_i)                                         (the family's block, model_block.c)
//   logits = lm_head · norm_k(h^k_i)                                    (the main model's head)
//
// L = L_main + λ/D·Σ_k L_k, L_k the mean cross-entropy over the rows that count at depth k: row i
// predicts targets[i+k] (the batch's target of position i+k, its loss mask and weight with it)
// when i+k lies in the sequence and in the same document as i. The module attends over the same
// positions and documents as the main model. The embedding and the head receive every depth's
// gradient. No layer math here: norms, products, the block and the cross-entropy are the ops';
// the concatenation is data movement (a row copy per half).
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "train/model/lora_hooks.h"
#include "train/model/model_internal.h"

static size_t rows_max(const CtModel *m) { return (size_t)m->max_B * m->max_T; }

// cat[n] = left[n] | right[n] (C numbers each), and its inverse for the gradient.
static void concat_rows(const CtOps *ops, CtAct *cat, const CtAct *left, const CtAct *right, int N, int C) {
    const size_t A = ops->act_bytes, row = (size_t)C * A;
    for (int n = 0; n < N; n++) {
        ops->copy(ct_act_at(A, cat, (size_t)n * 2 * C), ct_act_at(A, left, (size_t)n * C), row);
        ops->copy(ct_act_at(A, cat, (size_t)n * 2 * C + C), ct_act_at(A, right, (size_t)n * C), row);
    }
}
static void split_rows(const CtOps *ops, CtAct *left, CtAct *right, const CtAct *cat, int N, int C) {
    const size_t A = ops->act_bytes, row = (size_t)C * A;
    for (int n = 0; n < N; n++) {
        ops->copy(ct_act_at(A, left, (size_t)n * C), ct_act_at(A, cat, (size_t)n * 2 * C), row);
        ops->copy(ct_act_at(A, right, (size_t)n * C), ct_act_at(A, cat, (size_t)n * 2 * C + C), row);
    }
}

void ct_model_mtp_module_forward(CtModel *m, int k, const CtBlockPass *pass, const CtMtpModuleActs *a,
                                 const CtAct *h_prev, const int32_t *tokens) {
    const CtOps *ops = m->ops;
    const CtMtpTensors *t = &m->w.mtp[k - 1];
    const int N = pass->B * pass->T, C = m->config.d_model;
    // the token embedding alone (no position embedding, no Gemma scale: norm_e follows), no dropout
    ops->embedding_forward(a->emb, tokens, m->w.wte, N, C, 0);
    ct_model_norm_forward(m, a->e_norm, a->e_mean, a->e_rstd, a->emb, t->enorm_w, t->enorm_b, N);
    ct_model_norm_forward(m, a->h_norm, a->h_mean, a->h_rstd, h_prev, t->hnorm_w, t->hnorm_b, N);
    concat_rows(ops, a->cat, a->e_norm, a->h_norm, N, C);
    ops->matmul_forward(a->x, a->cat, t->eh_proj, NULL, N, 2 * C, C);
    if (m->lora) ct_lora_forward(m, m->config.n_layer + k - 1, CT_LORA_EH_PROJ, a->x, a->cat, N);
    ct_model_block_forward(m, m->config.n_layer + k - 1, pass, &a->block);
}

// Depth k's inputs and targets from the host batch: row (b, i) reads token i+k and predicts
// target i+k with its mask and weight; past the sequence's end, or when position i+k lies in
// another document than i, the row has no target (-1) and its input is any valid token (the
// last one: a causal row never reads a later one). Uploads them; returns the rows that count.
static int stage_depth(CtModel *m, const CtBatch *batch, int k, const CtMtpModuleActs *a) {
    struct CtMtp *x = m->mtp;
    const CtOps *ops = m->ops;
    const int B = batch->B, T = batch->T;
    int count = 0;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < T; i++) {
            const size_t n = (size_t)b * T + (size_t)i, src = n + (size_t)k;
            const int inside = i + k < T && (!batch->doc_ids || batch->doc_ids[src] == batch->doc_ids[n]);
            x->h_tokens[n] = batch->tokens[inside ? src : (size_t)b * T + (size_t)(T - 1)];
            x->h_targets[n] = inside ? batch->targets[src] : -1;
            x->h_mask[n] = inside && batch->loss_mask ? batch->loss_mask[src] : 0;
            x->h_weights[n] = inside && batch->loss_weights ? batch->loss_weights[src] : 0;
            const float w = x->h_targets[n] < 0 || (batch->loss_mask && !x->h_mask[n])
                                ? 0.0f
                                : (batch->loss_weights ? x->h_weights[n] : 1.0f);
            count += w != 0;
        }
    const size_t N = (size_t)B * T;
    ops->upload(a->tokens, x->h_tokens, N * sizeof(int32_t));
    ops->upload(a->targets, x->h_targets, N * sizeof(int32_t));
    if (batch->loss_mask) ops->upload(a->loss_mask, x->h_mask, N);
    if (batch->loss_weights) ops->upload(a->loss_weights, x->h_weights, N * sizeof(float));
    x->has_mask = batch->loss_mask != NULL;
    x->has_weights = batch->loss_weights != NULL;
    return count;
}

// logits = lm_head · lnf (then the soft-cap).
static void head_product(CtModel *m, CtAct *logits, const CtAct *lnf, int N) {
    const CtModelConfig *c = &m->config;
    m->ops->matmul_forward(logits, lnf, m->w.lm_head, NULL, N, c->d_model, c->vocab_size);
    if (c->final_softcap > 0) m->ops->softcap_forward(logits, (size_t)N * c->vocab_size, c->final_softcap);
}

// The same into the model's logits buffer, from module a's kept norm.
static void head_logits(CtModel *m, const CtMtpModuleActs *a, int N) { head_product(m, m->act.logits, a->lnf, N); }

void ct_model_mtp_head_forward(CtModel *m, int k, CtAct *logits, CtAct *lnf, float *mean, float *rstd, const CtAct *h,
                               int N) {
    const CtMtpTensors *t = &m->w.mtp[k - 1];
    ct_model_norm_forward(m, lnf, mean, rstd, h, t->norm_w, t->norm_b, N);
    head_product(m, logits, lnf, N);
}

void ct_model_mtp_forward(CtModel *m, const CtBatch *batch, const CtBlockPass *pass, const CtAct *h0) {
    struct CtMtp *x = m->mtp;
    const CtOps *ops = m->ops;
    const int N = batch->B * batch->T;
    const CtAct *h = h0;
    for (int k = 1; k <= m->config.mtp_depth; k++) {
        const CtMtpModuleActs *a = &x->module[k - 1];
        const int count = stage_depth(m, batch, k, a);
        ct_model_mtp_module_forward(m, k, pass, a, h, a->tokens);
        ct_model_mtp_head_forward(m, k, m->act.logits, a->lnf, a->lnf_mean, a->lnf_rstd, a->block.out, N);
        ops->xent_forward(a->losses, a->logprobs, a->lse, m->act.logits, a->targets, x->has_mask ? a->loss_mask : NULL,
                          x->has_weights ? a->loss_weights : NULL, N, m->config.vocab_size);
        const float *losses = a->losses;
        if (!ops->host_memory) {
            ops->download(x->h_losses, a->losses, (size_t)N * sizeof(float));
            losses = x->h_losses;
        }
        double sum = 0;
        for (int n = 0; n < N; n++) sum += losses[n];
        m->mtp_loss[k - 1] = count ? (float)(sum / count) : 0.0f;
        m->mtp_loss_count[k - 1] = (float)count;
        h = a->block.out;
    }
}

void ct_model_mtp_backward(CtModel *m, const CtAct *h0, CtAct *dh0) {
    struct CtMtp *x = m->mtp;
    const CtOps *ops = m->ops;
    const CtModelConfig *c = &m->config;
    const CtModelDims d = ct_model_dims(m, m->batch.B, m->batch.T);
    const int D = c->mtp_depth, N = d.N, C = d.C;
    const size_t NC = (size_t)N * C, A = ops->act_bytes;
    CtActivations *act = &m->act;
    int carry = 0;  // d_carry holds d h^k from module k+1
    for (int k = D; k >= 1; k--) {
        const CtMtpModuleActs *a = &x->module[k - 1];
        const CtMtpTensors *t = &m->w.mtp[k - 1], *gt = &m->g.mtp[k - 1];
        const float count = m->mtp_loss_count[k - 1];
        if (count == 0 && !carry) continue;  // nothing counted here or deeper: no gradient
        // the head: the logits again (the buffer has held the next depth's and the main head's since),
        // then d (λ/D · Σ losses / count) in place, through lm_head into d lnf
        head_logits(m, a, N);
        ops->xent_backward(act->logits, a->lse, a->targets, x->has_mask ? a->loss_mask : NULL,
                           x->has_weights ? a->loss_weights : NULL,
                           count > 0 ? m->mtp_weight / (float)D / count : 0.0f, N, d.V, c->final_softcap);
        ops->zero(act->d_norm, NC * A);
        ops->matmul_backward(act->d_norm, m->g.lm_head, NULL, act->logits, a->lnf, m->w.lm_head, N, C, d.V);
        // d h^k = through shared_head.norm + what module k+1 passed down
        if (carry)
            ops->copy(act->d_residual, x->d_carry, NC * A);
        else
            ops->zero(act->d_residual, NC * A);
        ct_model_norm_backward(m, act->d_residual, gt->norm_w, gt->norm_b, act->d_norm, a->block.out, t->norm_w,
                               a->lnf_mean, a->lnf_rstd, N);
        ct_model_block_backward(m, c->n_layer + k - 1, &a->block, &d);  // d_residual: now d h'
        // h' = cat·eh_projᵀ: d cat = d h'·eh_proj, d eh_proj += d h'ᵀ·cat; then the two halves' norms
        ops->zero(x->d_cat, 2 * NC * A);
        ops->matmul_backward(x->d_cat, gt->eh_proj, NULL, act->d_residual, a->cat, t->eh_proj, N, 2 * C, C);
        if (m->lora) ct_lora_backward(m, c->n_layer + k - 1, CT_LORA_EH_PROJ, x->d_cat, act->d_residual, a->cat, N);
        split_rows(ops, x->d_e, x->d_h, x->d_cat, N, C);
        ops->zero(x->d_emb, NC * A);
        ct_model_norm_backward(m, x->d_emb, gt->enorm_w, gt->enorm_b, x->d_e, a->emb, t->enorm_w, a->e_mean, a->e_rstd,
                               N);
        if (m->g.wte) ops->embedding_backward(m->g.wte, x->d_emb, a->tokens, N, C);  // NULL: frozen
        const CtAct *h_prev = k == 1 ? h0 : x->module[k - 2].block.out;
        CtAct *d_prev = k == 1 ? dh0 : x->d_carry;  // dh0 already holds the main head's part: add
        if (k > 1) ops->zero(x->d_carry, NC * A);
        ct_model_norm_backward(m, d_prev, gt->hnorm_w, gt->hnorm_b, x->d_h, h_prev, t->hnorm_w, a->h_mean, a->h_rstd,
                               N);
        carry = 1;
    }
}

// ---- memory ----
typedef struct {
    void **field;
    size_t bytes;
} MtpSlot;

// Module k's slots (rows = max_B·max_T); a feature's absent tensors stay NULL, as in the activations.
static int module_slots(const CtModel *m, CtMtpModuleActs *a, MtpSlot *s) {
    const CtModelConfig *c = &m->config;
    const size_t R = rows_max(m), A = m->ops->act_bytes, C = (size_t)c->d_model, F = (size_t)c->d_ff;
    const size_t FI = (size_t)ct_model_fc_width(c), QKV = (size_t)ct_model_qkv_width(c);
    const size_t AW = (size_t)ct_model_attn_width(c), NHKV = (size_t)(c->n_head + c->n_kv_head);
    const size_t qk = c->qk_norm ? 1 : 0, post = c->post_norms ? 1 : 0;
    const size_t att = m->ops->attention_saved_floats(m->max_B, m->max_T, c->n_head);
    CtBlockActs *b = &a->block;
    int n = 0;
#define SLOT(f, size) s[n++] = (MtpSlot){(void **)&(f), (size)}
    SLOT(a->emb, R * C * A);
    SLOT(a->e_norm, R * C * A);
    SLOT(a->h_norm, R * C * A);
    SLOT(a->e_mean, R * 4);
    SLOT(a->e_rstd, R * 4);
    SLOT(a->h_mean, R * 4);
    SLOT(a->h_rstd, R * 4);
    SLOT(a->cat, R * 2 * C * A);
    SLOT(a->x, R * C * A);
    SLOT(b->ln1, R * C * A);
    SLOT(b->ln1_mean, R * 4);
    SLOT(b->ln1_rstd, R * 4);
    SLOT(b->qkv, R * QKV * A);
    SLOT(b->qkv_pre, qk * R * QKV * A);
    SLOT(b->qk_rstd, qk * R * NHKV * 4);
    SLOT(b->atty, R * AW * A);
    SLOT(b->att, att * 4);
    SLOT(b->res2, R * C * A);
    SLOT(b->ln2, R * C * A);
    SLOT(b->ln2_mean, R * 4);
    SLOT(b->ln2_rstd, R * 4);
    SLOT(b->fch, R * FI * A);
    SLOT(b->fch_act, R * F * A);
    SLOT(b->attn_pre, post * R * C * A);
    SLOT(b->mlp_pre, post * R * C * A);
    SLOT(b->attn_post_rstd, post * R * 4);
    SLOT(b->mlp_post_rstd, post * R * 4);
    SLOT(b->out, R * C * A);
    SLOT(a->lnf, R * C * A);
    SLOT(a->lnf_mean, R * 4);
    SLOT(a->lnf_rstd, R * 4);
    SLOT(a->losses, R * 4);
    SLOT(a->logprobs, R * 4);
    SLOT(a->lse, R * 4);
    SLOT(a->tokens, R * 4);
    SLOT(a->targets, R * 4);
    SLOT(a->loss_mask, R);
    SLOT(a->loss_weights, R * 4);
#undef SLOT
    return n;
}

void ct_model_mtp_alloc(CtModel *m) {
    const int D = m->config.mtp_depth;
    if (D == 0) return;
    struct CtMtp *x = ct_calloc(1, sizeof *x);
    m->mtp = x;
    const size_t R = rows_max(m), A = m->ops->act_bytes, C = (size_t)m->config.d_model;
    enum { PER_MODULE = 48 };
    MtpSlot slots[CT_MODEL_MAX_MTP_DEPTH * PER_MODULE + 8];
    int n = 0;
    for (int k = 0; k < D; k++) n += module_slots(m, &x->module[k], slots + n);
    slots[n++] = (MtpSlot){(void **)&x->d_h0, R * C * A};
    slots[n++] = (MtpSlot){(void **)&x->d_carry, R * C * A};
    slots[n++] = (MtpSlot){(void **)&x->d_cat, R * 2 * C * A};
    slots[n++] = (MtpSlot){(void **)&x->d_e, R * C * A};
    slots[n++] = (MtpSlot){(void **)&x->d_h, R * C * A};
    slots[n++] = (MtpSlot){(void **)&x->d_emb, R * C * A};
    size_t total = 0;  // each slot 256-byte aligned, as the activations
    for (int i = 0; i < n; i++) total += (slots[i].bytes + 255) & ~(size_t)255;
    x->block = m->ops->alloc(total, "multi-token prediction activations");
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        *slots[i].field = slots[i].bytes ? (char *)x->block + at : NULL;
        at += (slots[i].bytes + 255) & ~(size_t)255;
    }
    x->bytes = total;
    m->activation_bytes += total;
    for (int k = 0; k < D; k++) {
        x->module[k].block.x = x->module[k].x;
        x->module[k].block.proj = m->act.proj;  // the products' scratch is the model's
    }
    x->h_tokens = ct_alloc(R * sizeof(int32_t));
    x->h_targets = ct_alloc(R * sizeof(int32_t));
    x->h_mask = ct_alloc(R);
    x->h_weights = ct_alloc(R * sizeof(float));
    x->h_losses = ct_alloc(R * sizeof(float));
}

void ct_model_mtp_free(CtModel *m) {
    struct CtMtp *x = m->mtp;
    if (!x) return;
    if (m->ops) m->ops->free(x->block);
    ct_free(x->h_tokens);
    ct_free(x->h_targets);
    ct_free(x->h_mask);
    ct_free(x->h_weights);
    ct_free(x->h_losses);
    ct_free(x);
    m->mtp = NULL;
}
