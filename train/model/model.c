// The model's forward and backward orchestration (see train/model/model.h for the picture).
#include "train/model/model.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"
#include "train/model/lora.h"
#include "train/model/lora_tokens.h"
#include "train/model/model_internal.h"

int ct_model_create(CtModel *m, const CtModelConfig *config, const CtOps *ops, int max_B, int max_T, int flags) {
    memset(m, 0, sizeof *m);
    if (ct_model_config_validate(config) != 0) return -1;
    if (max_B < 1 || max_T < 1) return ct_error_set("batch size and sequence length must be at least 1");
    if (max_T > config->max_seq_len)
        return ct_error_set("sequence length %d is longer than the model's max_seq_len %d", max_T, config->max_seq_len);
    m->config = *config;
    m->ops = ops;
    m->recompute = (flags & CT_MODEL_RECOMPUTE) != 0;
    m->frozen = (flags & CT_MODEL_FROZEN) != 0;
    m->max_B = max_B;
    m->max_T = max_T;
    ct_model_layout_count(config, &m->n_tensors, &m->n_params);
    m->table = ct_calloc((size_t)m->n_tensors, sizeof(CtParamEntry));
    ct_model_layout_table(config, m->table);
    m->params = ct_alloc(m->n_params * sizeof(float));
    m->grads = m->frozen ? NULL : ct_calloc(m->n_params, sizeof(float));  // frozen: g's pointers stay NULL
    m->w.layers = ct_calloc((size_t)config->n_layer, sizeof(CtLayerTensors));
    m->g.layers = ct_calloc((size_t)config->n_layer, sizeof(CtLayerTensors));
    m->dev_params = m->params;  // the CPU: the ops work on the host buffers themselves
    m->dev_grads = m->grads;
    ct_model_layout_bind(config, m->dev_params, &m->w);
    ct_model_layout_bind(config, m->dev_grads, &m->g);
    m->train_params = m->dev_params;
    m->train_grads = m->dev_grads;
    m->n_train = m->dev_grads ? m->n_params : 0;
    ct_model_activations_alloc(m);
    return 0;
}

void ct_model_free(CtModel *m) {
    ct_lora_detach(m);
    ct_model_free_backend(m);
    ct_free(m->table);
    ct_free(m->host_logits);
    ct_free(m->params);
    ct_free(m->grads);
    ct_free(m->w.layers);
    ct_free(m->g.layers);
    memset(m, 0, sizeof *m);
}

void ct_model_set_dropout(CtModel *m, int training, uint64_t seed) {
    m->training = training;
    m->dropout_seed = seed;
}

// The mask seed of dropout site `site` for the forward's seed. 0: embeddings; for block l,
// 1 + 3·l: attention probabilities, 2 + 3·l and 3 + 3·l: the attention and MLP branches.
static uint64_t dropout_site_seed(const CtModel *m, int site) {
    return m->dropout_seed ^ ((uint64_t)(site + 1) * CT_DROPOUT_SITE_MIX);
}

void ct_model_zero_grad(CtModel *m) {
    if (m->dev_grads) m->ops->zero(m->dev_grads, m->n_params * sizeof(float));
    if (m->train_grads && m->train_grads != m->dev_grads) m->ops->zero(m->train_grads, m->n_train * sizeof(float));
}

// ---- the pieces that differ between the families ----
static int is_llama(const CtModel *m) { return m->config.arch == CT_ARCH_LLAMA; }

static void norm_forward(const CtModel *m, CtAct *out, float *mean, float *rstd, const CtAct *inp, const float *w,
                         const float *b, int N) {
    if (is_llama(m))
        m->ops->rmsnorm_forward(out, rstd, inp, w, N, m->config.d_model, m->config.norm_eps);
    else
        m->ops->layernorm_forward(out, mean, rstd, inp, w, b, N, m->config.d_model, m->config.norm_eps);
}

static void norm_backward(const CtModel *m, CtAct *dinp, float *dw, float *db, const CtAct *dout, const CtAct *inp,
                          const float *w, const float *mean, const float *rstd, int N) {
    if (is_llama(m))
        m->ops->rmsnorm_backward(dinp, dw, dout, inp, w, rstd, N, m->config.d_model);
    else
        m->ops->layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, m->config.d_model);
}

static void mlp_activation_forward(const CtModel *m, CtAct *out, const CtAct *fch, int N) {
    if (is_llama(m))
        m->ops->swiglu_forward(out, fch, N, m->config.d_ff);
    else
        m->ops->gelu_forward(out, fch, (size_t)N * m->config.d_ff);
}

static void mlp_activation_backward(const CtModel *m, CtAct *dfch, const CtAct *fch, const CtAct *dout, int N) {
    if (is_llama(m))
        m->ops->swiglu_backward(dfch, dout, fch, N, m->config.d_ff);
    else
        m->ops->gelu_backward(dfch, fch, dout, (size_t)N * m->config.d_ff);
}

// GPT-2's MLP with GELU fused into its products, where the backend has the fused ops. An adapter
// on c_fc adds into the pre-activation after the product (forward); one on c_proj adds into the
// GELU output's gradient before GELU's derivative applies (backward): there the ops run unfused.
// With recompute, backward recomputes gelu(fch) through gelu_forward: its rounding, not the fused
// op's (the fused ops are offered only where the two agree within the table's precision).
static int fused_gelu_forward(const CtModel *m, int l) {
    return !is_llama(m) && m->ops->matmul_bias_gelu_forward && !ct_lora_has_adapter(m, l, CT_LORA_FC);
}
static int fused_gelu_backward(const CtModel *m, int l) {
    return !is_llama(m) && m->ops->matmul_backward_dgelu && !ct_lora_has_adapter(m, l, CT_LORA_FC_OUT);
}

// ---- sizes of one batch ----
typedef struct {
    int B, T, N, C, F, FI, QKV, NH, NKV, HD, V, L;
} Dims;

static Dims dims_of(const CtModel *m, int B, int T) {
    const CtModelConfig *c = &m->config;
    Dims d = {.B = B, .T = T, .N = B * T, .C = c->d_model, .F = c->d_ff, .NH = c->n_head, .NKV = c->n_kv_head,
              .HD = ct_model_head_dim(c), .V = c->vocab_size, .L = c->n_layer};
    d.FI = is_llama(m) ? 2 * d.F : d.F;
    d.QKV = (d.NH + 2 * d.NKV) * d.HD;
    return d;
}

// Per-layer slices of the stored activations (strides are those of the largest batch).
static size_t slice(const CtModel *m, size_t width) { return (size_t)m->max_B * m->max_T * width; }
// The attention's saved state per layer: the backend says how much (CPU: the probabilities).
static size_t att_slice(const CtModel *m) { return m->ops->attention_saved_floats(m->max_B, m->max_T, m->config.n_head); }
// Slice `layer` of a per-layer activation tensor of `width` numbers per token.
static CtAct *act_layer(const CtModel *m, CtAct *base, int layer, size_t width) {
    return ct_act_at(m->ops->act_bytes, base, (size_t)layer * slice(m, width));
}
static CtAct *layer_input(const CtModel *m, int l) {
    return l == 0 ? m->act.encoded : act_layer(m, m->act.residual3, l - 1, (size_t)m->config.d_model);
}

static float token_weight(const CtBatch *b, int n) {
    if (b->targets[n] < 0 || (b->loss_mask && !b->loss_mask[n])) return 0;
    return b->loss_weights ? b->loss_weights[n] : 1;
}

// Where block l's gradients start in dev_grads (its lowest tensor).
static size_t layer_first_grad(const CtModel *m, int l) {
    const CtLayerTensors *t = &m->g.layers[l];
    const float *p[] = {t->ln1_w, t->ln1_b, t->qkv_w, t->qkv_b, t->attn_out_w, t->attn_out_b,
                        t->ln2_w, t->ln2_b, t->fc_w,  t->fc_b,  t->fc_out_w, t->fc_out_b};
    const float *lowest = NULL;
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        if (p[i] && (!lowest || p[i] < lowest)) lowest = p[i];
    return (size_t)(lowest - m->dev_grads);
}

float ct_model_forward(CtModel *m, const CtBatch *batch) {
    CT_CHECK(batch->B >= 1 && batch->B <= m->max_B && batch->T >= 1 && batch->T <= m->max_T,
             "the batch is larger than the model's activations were sized for (ct_model_create)");
    if (m->lora) ct_lora_tokens_forward(m, batch);  // LoRA's trainable token rows (train/model/lora_tokens.h)
    m->batch = ct_model_stage_batch(m, batch);  // in the ops' memory, positions filled in
    const CtOps *ops = m->ops;
    const CtModelTensors *w = &m->w;
    CtActivations *a = &m->act;
    const Dims d = dims_of(m, batch->B, batch->T);
    const int32_t *positions = m->batch.positions;
    const CtBatch *staged = &m->batch;

    const float p_drop = m->config.dropout;
    m->dropout_applied = m->training && p_drop > 0;
    const size_t NC = (size_t)d.N * d.C;

    ops->embedding_forward(a->encoded, staged->tokens, w->wte, d.N, d.C, 0);
    if (w->wpe) ops->embedding_forward(a->encoded, positions, w->wpe, d.N, d.C, 1);
    if (m->dropout_applied) ops->dropout_forward(a->encoded, a->encoded, NC, p_drop, dropout_site_seed(m, 0));

    for (int l = 0; l < d.L; l++) {
        const CtLayerTensors *p = &w->layers[l];
        const CtAct *x = layer_input(m, l);
        CtAct *ln1 = ct_act_ln1(m, l), *ln2 = ct_act_ln2(m, l), *fch_act = ct_act_fch_act(m, l);
        float *ln1_mean = a->ln1_mean + (size_t)l * slice(m, 1), *ln1_rstd = a->ln1_rstd + (size_t)l * slice(m, 1);
        float *ln2_mean = a->ln2_mean + (size_t)l * slice(m, 1), *ln2_rstd = a->ln2_rstd + (size_t)l * slice(m, 1);
        CtAct *qkv = act_layer(m, a->qkv, l, d.QKV), *atty = act_layer(m, a->atty, l, d.C);
        float *att = a->att + (size_t)l * att_slice(m);
        CtAct *res2 = act_layer(m, a->residual2, l, d.C), *res3 = act_layer(m, a->residual3, l, d.C);
        CtAct *fch = act_layer(m, a->fch, l, d.FI);

        // attention half: x + proj(attention(qkv(norm(x))))
        norm_forward(m, ln1, ln1_mean, ln1_rstd, x, p->ln1_w, p->ln1_b, d.N);
        ops->matmul_forward(qkv, ln1, p->qkv_w, p->qkv_b, d.N, d.C, d.QKV);
        if (m->lora) ct_lora_forward(m, l, CT_LORA_QKV, qkv, ln1, d.N);  // before RoPE, as in HF
        if (is_llama(m))  // q and k heads rotate in place; v is left alone
            ops->rope_forward(qkv, qkv, positions, d.B, d.T, d.NH + d.NKV, d.HD, d.QKV, m->config.rope_theta);
        ops->attention_forward(atty, att, qkv, staged->doc_ids, m->dropout_applied ? p_drop : 0.0f,
                               dropout_site_seed(m, 1 + 3 * l), d.B, d.T, d.NH, d.NKV, d.HD);
        ops->matmul_forward(a->proj, atty, p->attn_out_w, p->attn_out_b, d.N, d.C, d.C);
        if (m->lora) ct_lora_forward(m, l, CT_LORA_ATTN_OUT, a->proj, atty, d.N);
        if (m->dropout_applied) ops->dropout_forward(a->proj, a->proj, NC, p_drop, dropout_site_seed(m, 2 + 3 * l));
        ops->residual_forward(res2, x, a->proj, NC);
        // MLP half: res2 + proj(act(fc(norm(res2))))
        norm_forward(m, ln2, ln2_mean, ln2_rstd, res2, p->ln2_w, p->ln2_b, d.N);
        if (fused_gelu_forward(m, l)) {
            ops->matmul_bias_gelu_forward(fch_act, fch, ln2, p->fc_w, p->fc_b, d.N, d.C, d.F);
        } else {
            ops->matmul_forward(fch, ln2, p->fc_w, p->fc_b, d.N, d.C, d.FI);
            if (m->lora) ct_lora_forward(m, l, CT_LORA_FC, fch, ln2, d.N);
            mlp_activation_forward(m, fch_act, fch, d.N);
        }
        ops->matmul_forward(a->proj, fch_act, p->fc_out_w, p->fc_out_b, d.N, d.F, d.C);
        if (m->lora) ct_lora_forward(m, l, CT_LORA_FC_OUT, a->proj, fch_act, d.N);
        if (m->dropout_applied) ops->dropout_forward(a->proj, a->proj, NC, p_drop, dropout_site_seed(m, 3 + 3 * l));
        ops->residual_forward(res3, res2, a->proj, NC);
    }

    norm_forward(m, a->lnf, a->lnf_mean, a->lnf_rstd, layer_input(m, d.L), w->lnf_w, w->lnf_b, d.N);
    ops->matmul_forward(a->logits, a->lnf, w->lm_head, NULL, d.N, d.C, d.V);
    m->loss = 0;
    m->loss_count = 0;
    if (!batch->targets) return 0;
    ops->xent_forward(a->losses, a->logprobs, a->lse, a->logits, staged->targets, staged->loss_mask,
                      staged->loss_weights, d.N, d.V);
    if (!ops->host_memory) {  // the per-token values to the host (the loss, DPO and evaluation read them)
        ops->download(m->losses, a->losses, (size_t)d.N * sizeof(float));
        ops->download(m->logprobs, a->logprobs, (size_t)d.N * sizeof(float));
    }
    double sum = 0;
    int count = 0;
    for (int n = 0; n < d.N; n++) {
        sum += m->losses[n];
        count += token_weight(batch, n) != 0;
    }
    m->loss_count = (float)count;
    m->loss = count ? (float)(sum / count) : 0;
    return m->loss;
}

const float *ct_model_logits(CtModel *m) {
    if (m->ops->host_memory && m->ops->act_bytes == sizeof(float)) return m->act.logits;
    const size_t n = (size_t)m->batch.B * m->batch.T * m->config.vocab_size;
    if (!m->host_logits) m->host_logits = ct_alloc((size_t)m->max_B * m->max_T * m->config.vocab_size * sizeof(float));
    m->ops->download_act(m->host_logits, m->act.logits, n);
    return m->host_logits;
}

void ct_model_backward(CtModel *m) {
    const CtBatch *batch = &m->batch;
    CT_CHECK(batch->targets != NULL, "ct_model_backward needs a forward pass with targets");
    const CtOps *ops = m->ops;
    const CtModelTensors *w = &m->w, *g = &m->g;
    CtActivations *a = &m->act;
    const Dims d = dims_of(m, batch->B, batch->T);
    const size_t NC = (size_t)d.N * d.C, A = ops->act_bytes;
    CtAct *dres = a->d_residual;  // d loss / d (residual stream), carried down the blocks
    const float p_drop = m->config.dropout;

    if (m->loss_count == 0) {  // no token counted: the loss is a constant, nothing to add
        if (m->grads_final && !m->lora && m->dev_grads) m->grads_final(m->grads_final_ctx, 0);
        return;
    }
    // loss = Σ losses / count: the head's gradient, in place over the logits
    ops->xent_backward(a->logits, a->lse, batch->targets, batch->loss_mask, batch->loss_weights,
                       1.0f / m->loss_count, d.N, d.V);
    ops->zero(a->d_norm, NC * A);
    ops->matmul_backward(a->d_norm, g->lm_head, NULL, a->logits, a->lnf, w->lm_head, d.N, d.C, d.V);
    if (m->lora) ct_lora_tokens_backward_head(m, d.N);
    ops->zero(dres, NC * A);
    norm_backward(m, dres, g->lnf_w, g->lnf_b, a->d_norm, layer_input(m, d.L), w->lnf_w, a->lnf_mean, a->lnf_rstd,
                  d.N);
    const int hook = m->grads_final && !m->lora && m->dev_grads;
    if (hook) m->grads_final(m->grads_final_ctx, (size_t)(g->lnf_w - m->dev_grads));  // (a tied head is wte, at 0)

    for (int l = d.L - 1; l >= 0; l--) {
        const CtLayerTensors *p = &w->layers[l], *gp = &g->layers[l];
        const CtAct *x = layer_input(m, l);
        CtAct *ln1 = ct_act_ln1(m, l), *ln2 = ct_act_ln2(m, l), *fch_act = ct_act_fch_act(m, l);
        float *ln1_mean = a->ln1_mean + (size_t)l * slice(m, 1), *ln1_rstd = a->ln1_rstd + (size_t)l * slice(m, 1);
        float *ln2_mean = a->ln2_mean + (size_t)l * slice(m, 1), *ln2_rstd = a->ln2_rstd + (size_t)l * slice(m, 1);
        const CtAct *qkv = act_layer(m, a->qkv, l, d.QKV), *atty = act_layer(m, a->atty, l, d.C);
        const float *att = a->att + (size_t)l * att_slice(m);
        const CtAct *res2 = act_layer(m, a->residual2, l, d.C);
        const CtAct *fch = act_layer(m, a->fch, l, d.FI);

        // MLP half. res3 = res2 + dropout(proj): dres passes through to res2 unchanged, and
        // (through the dropout mask) is dproj.
        if (m->recompute) mlp_activation_forward(m, fch_act, fch, d.N);
        const CtAct *dproj = dres;
        if (m->dropout_applied) {
            ops->dropout_backward(a->d_proj, dres, NC, p_drop, dropout_site_seed(m, 3 + 3 * l));
            dproj = a->d_proj;
        }
        if (fused_gelu_backward(m, l)) {  // d fch = gelu'(fch) ⊙ (dproj·W_proj), written (no zeroing)
            ops->matmul_backward_dgelu(a->d_fch, gp->fc_out_w, gp->fc_out_b, dproj, fch_act, fch, p->fc_out_w, d.N, d.F,
                                       d.C);
        } else {
            ops->zero(a->d_fch_act, (size_t)d.N * d.F * A);
            ops->matmul_backward(a->d_fch_act, gp->fc_out_w, gp->fc_out_b, dproj, fch_act, p->fc_out_w, d.N, d.F, d.C);
            if (m->lora) ct_lora_backward(m, l, CT_LORA_FC_OUT, a->d_fch_act, dproj, fch_act, d.N);
            ops->zero(a->d_fch, (size_t)d.N * d.FI * A);
            mlp_activation_backward(m, a->d_fch, fch, a->d_fch_act, d.N);
        }
        if (m->recompute) norm_forward(m, ln2, ln2_mean, ln2_rstd, res2, p->ln2_w, p->ln2_b, d.N);
        ops->zero(a->d_norm, NC * A);
        ops->matmul_backward(a->d_norm, gp->fc_w, gp->fc_b, a->d_fch, ln2, p->fc_w, d.N, d.C, d.FI);
        if (m->lora) ct_lora_backward(m, l, CT_LORA_FC, a->d_norm, a->d_fch, ln2, d.N);
        norm_backward(m, dres, gp->ln2_w, gp->ln2_b, a->d_norm, res2, p->ln2_w, ln2_mean, ln2_rstd, d.N);

        // attention half. res2 = x + dropout(proj): dres now is d res2, passes through to x.
        dproj = dres;
        if (m->dropout_applied) {
            ops->dropout_backward(a->d_proj, dres, NC, p_drop, dropout_site_seed(m, 2 + 3 * l));
            dproj = a->d_proj;
        }
        ops->zero(a->d_atty, NC * A);
        ops->matmul_backward(a->d_atty, gp->attn_out_w, gp->attn_out_b, dproj, atty, p->attn_out_w, d.N, d.C, d.C);
        if (m->lora) ct_lora_backward(m, l, CT_LORA_ATTN_OUT, a->d_atty, dproj, atty, d.N);
        ops->zero(a->d_qkv, (size_t)d.N * d.QKV * A);
        const float att_drop = m->dropout_applied ? p_drop : 0.0f;
        const uint64_t att_seed = dropout_site_seed(m, 1 + 3 * l);
        if (ops->attention_backward_with_out)  // atty is the forward's output, still in place
            ops->attention_backward_with_out(a->d_qkv, a->d_atty, atty, qkv, att, att_drop, att_seed, d.B, d.T, d.NH,
                                             d.NKV, d.HD);
        else
            ops->attention_backward(a->d_qkv, a->d_atty, qkv, att, att_drop, att_seed, d.B, d.T, d.NH, d.NKV, d.HD);
        if (is_llama(m))
            ops->rope_backward(a->d_qkv, a->d_qkv, batch->positions, d.B, d.T, d.NH + d.NKV, d.HD, d.QKV,
                               m->config.rope_theta);
        if (m->recompute) norm_forward(m, ln1, ln1_mean, ln1_rstd, x, p->ln1_w, p->ln1_b, d.N);
        ops->zero(a->d_norm, NC * A);
        ops->matmul_backward(a->d_norm, gp->qkv_w, gp->qkv_b, a->d_qkv, ln1, p->qkv_w, d.N, d.C, d.QKV);
        if (m->lora) ct_lora_backward(m, l, CT_LORA_QKV, a->d_norm, a->d_qkv, ln1, d.N);
        norm_backward(m, dres, gp->ln1_w, gp->ln1_b, a->d_norm, x, p->ln1_w, ln1_mean, ln1_rstd, d.N);
        if (hook) m->grads_final(m->grads_final_ctx, layer_first_grad(m, l));
    }

    if (m->dropout_applied) ops->dropout_backward(dres, dres, NC, p_drop, dropout_site_seed(m, 0));
    if (g->wte) ops->embedding_backward(g->wte, dres, batch->tokens, d.N, d.C);  // NULL: frozen
    if (m->lora) ct_lora_tokens_backward_embedding(m, dres, d.N);
    if (g->wpe) ops->embedding_backward(g->wpe, dres, batch->positions, d.N, d.C);
    if (hook) m->grads_final(m->grads_final_ctx, 0);
}
