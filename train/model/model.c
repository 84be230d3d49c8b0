// The model's forward over a batch and its backward (see train/model/model.h for the picture).
// The forward of the embeddings, a block and the head is train/model/model_block.c's, shared
// with generation.
#include "train/model/model.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "train/model/lora_hooks.h"
#include "train/model/model_internal.h"
#include "train/model/peft_hooks.h"

int ct_model_create(CtModel *m, const CtModelConfig *config, const CtOps *ops, int max_B, int max_T, int flags) {
    memset(m, 0, sizeof *m);
    if (ct_model_config_validate(config) != 0) return -1;
    if (max_B < 1 || max_T < 1) return ct_error_set("batch size and sequence length must be at least 1");
    if (max_T > config->max_seq_len)
        return ct_error_set("sequence length %d is longer than the model's max_seq_len %d", max_T, config->max_seq_len);
    // a post-LN block's norms read the residual sums, which recompute would have to rebuild
    if (ct_model_is_encoder(config) && (flags & CT_MODEL_RECOMPUTE))
        return ct_error_set("model.recompute is not supported for %s models yet (their post-LN blocks keep "
                            "the residual sums); set model.recompute false", ct_arch_name(config->arch));
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
    const size_t blocks = (size_t)config->n_layer + (size_t)config->mtp_depth;  // the modules' blocks follow
    m->w.layers = ct_calloc(blocks, sizeof(CtLayerTensors));
    m->g.layers = ct_calloc(blocks, sizeof(CtLayerTensors));
    if (config->mtp_depth) {
        m->w.mtp = ct_calloc((size_t)config->mtp_depth, sizeof(CtMtpTensors));
        m->g.mtp = ct_calloc((size_t)config->mtp_depth, sizeof(CtMtpTensors));
    }
    m->dev_params = m->params;  // the CPU: the ops work on the host buffers themselves
    m->dev_grads = m->grads;
    ct_model_layout_bind(config, m->dev_params, &m->w);
    ct_model_layout_bind(config, m->dev_grads, &m->g);
    m->train_params = m->dev_params;
    m->train_grads = m->dev_grads;
    m->n_train = m->dev_grads ? m->n_params : 0;
    ct_model_activations_alloc(m);
    ct_model_moe_stats_create(m);
    return 0;
}

void ct_model_free(CtModel *m) {
    ct_lora_detach(m);
    ct_peft_detach(m);
    ct_model_free_backend(m);
    ct_free(m->table);
    ct_free(m->host_logits);
    ct_free(m->classify_len);
    ct_free(m->params);
    ct_free(m->grads);
    ct_free(m->w.layers);
    ct_free(m->g.layers);
    ct_free(m->w.mtp);
    ct_free(m->g.mtp);
    ct_model_moe_stats_free(m);
    memset(m, 0, sizeof *m);
}

void ct_model_set_dropout(CtModel *m, int training, uint64_t seed) {
    m->training = training;
    m->dropout_seed = seed;
}

void ct_model_zero_grad(CtModel *m) {
    if (m->dev_grads) m->ops->zero(m->dev_grads, m->n_params * sizeof(float));
    if (m->train_grads && m->train_grads != m->dev_grads) m->ops->zero(m->train_grads, m->n_train * sizeof(float));
}

// GPT-2's MLP backward with GELU's derivative fused into the product, where the backend has the
// fused op. An adapter on c_proj adds into the GELU output's gradient before GELU's derivative
// applies: there the ops run unfused. With recompute, backward recomputes gelu(fch) through
// gelu_forward: its rounding, not the fused forward op's (the fused ops are offered only where the
// two agree within the table's precision). The forward's counterpart is in model_block.c.
static int fused_gelu_backward(const CtModel *m, int l) {
    return m->config.arch == CT_ARCH_GPT2 && m->ops->matmul_backward_dgelu &&
           !ct_lora_has_adapter(m, l, CT_LORA_FC_OUT);
}

// Per-layer slices of the stored activations (strides are those of the largest batch).
static size_t slice(const CtModel *m, size_t width) { return (size_t)m->max_B * m->max_T * width; }
// The attention's saved state per layer: the backend says how much (CPU: the probabilities).
// With room for a prefix's P more keys per row (prefix tuning).
static size_t att_slice(const CtModel *m) {
    return m->ops->attention_saved_floats(m->max_B, m->max_T + m->att_extra_keys, m->config.n_head);
}
// Slice `layer` of a per-layer activation tensor of `width` numbers per token.
static CtAct *act_layer(const CtModel *m, CtAct *base, int layer, size_t width) {
    return ct_act_at(m->ops->act_bytes, base, (size_t)layer * slice(m, width));
}
static CtAct *layer_input(const CtModel *m, int l) {
    return l == 0 ? m->act.encoded : act_layer(m, m->act.residual3, l - 1, (size_t)m->config.d_model);
}

// Block l's slices of the stored activations: what its forward writes and its backward reads.
// A variant's tensors are NULL where the config does not have it.
static CtBlockActs block_acts(const CtModel *m, int l) {
    const CtActivations *a = &m->act;
    const CtModelConfig *c = &m->config;
    const size_t C = (size_t)c->d_model, stats = (size_t)l * slice(m, 1), QKV = (size_t)ct_model_qkv_width(c);
    const int qk = c->qk_norm, post = c->post_norms, moe = ct_model_layer_is_moe(c, l);
    return (CtBlockActs){.x = layer_input(m, l),
                         .ln1 = ct_act_ln1(m, l),
                         .ln1_mean = a->ln1_mean + stats,
                         .ln1_rstd = a->ln1_rstd + stats,
                         .qkv = act_layer(m, a->qkv, l, QKV),
                         .qkv_pre = qk ? act_layer(m, a->qkv_pre, l, QKV) : NULL,
                         .qk_rstd = qk ? a->qk_rstd + (size_t)l * slice(m, (size_t)(c->n_head + c->n_kv_head)) : NULL,
                         .atty = act_layer(m, a->atty, l, (size_t)ct_model_attn_width(c)),
                         .att = a->att + (size_t)l * att_slice(m),
                         .res2 = act_layer(m, a->residual2, l, C),
                         .ln2 = ct_act_ln2(m, l),
                         .ln2_mean = a->ln2_mean + stats,
                         .ln2_rstd = a->ln2_rstd + stats,
                         .fch = moe ? NULL : act_layer(m, a->fch, ct_model_dense_index(c, l), (size_t)ct_model_fc_width(c)),
                         .fch_act = ct_act_fch_act(m, l),
                         .moe = moe ? ct_model_moe_acts(m, l) : (CtMoeActs){0},
                         .proj = a->proj,
                         .attn_pre = post ? act_layer(m, a->attn_pre, l, C) : NULL,
                         .mlp_pre = post ? act_layer(m, a->mlp_pre, l, C) : NULL,
                         .attn_post_rstd = post ? a->attn_post_rstd + stats : NULL,
                         .mlp_post_rstd = post ? a->mlp_post_rstd + stats : NULL,
                         .out = act_layer(m, a->residual3, l, C)};
}

// The largest position of a host batch + 1: what dynamic RoPE scaling reads (T without positions),
// shifted by a prefix's P (its tokens sit at positions P..).
static int rope_len(const CtModel *m, const CtBatch *batch) {
    const int N = batch->B * batch->T;
    if (!batch->positions) return ct_peft_prefix_len(m) + batch->T;
    int top = 0;
    for (int n = 0; n < N; n++)
        if (batch->positions[n] > top) top = batch->positions[n];
    return ct_peft_prefix_len(m) + top + 1;
}

static float token_weight(const CtBatch *b, int n) {
    if (b->targets[n] < 0 || (b->loss_mask && !b->loss_mask[n])) return 0;
    return b->loss_weights ? b->loss_weights[n] : 1;
}

// Where block l's gradients start in dev_grads (its lowest tensor).
static size_t layer_first_grad(const CtModel *m, int l) {
    const CtLayerTensors *t = &m->g.layers[l];
    const float *p[] = {t->ln1_w, t->ln1_b, t->qkv_w, t->qkv_b, t->attn_out_w, t->attn_out_b,
                        t->ln2_w, t->ln2_b, t->fc_w,  t->fc_b,  t->fc_out_w, t->fc_out_b,
                        t->q_norm_w, t->k_norm_w, t->attn_post_w, t->mlp_post_w, t->router_w, t->router_bias,
                        t->experts_w, t->shared_fc_w, t->shared_fc_out_w, t->shared_gate_w};
    const float *lowest = NULL;
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        if (p[i] && (!lowest || p[i] < lowest)) lowest = p[i];
    return (size_t)(lowest - m->dev_grads);
}

// The embeddings and the blocks: the residual stream after the last block, layer_input(m, L).
// *pass_out (may be NULL) gets how the pass's rows see each other (the MTP modules' too).
static CtModelDims trunk_forward(CtModel *m, const CtBatch *batch, CtBlockPass *pass_out) {
    CT_CHECK(batch->B >= 1 && batch->B <= m->max_B && batch->T >= 1 && batch->T <= m->max_T,
             "the batch is larger than the model's activations were sized for (ct_model_create)");
    if (m->lora) ct_lora_tokens_forward(m, batch);  // LoRA's trainable token rows (train/model/lora_tokens.h)
    m->batch = ct_model_stage_batch(m, batch);  // in the ops' memory, positions filled in
    CtActivations *a = &m->act;
    const CtModelDims d = ct_model_dims(m, batch->B, batch->T);
    const CtBatch *staged = &m->batch;
    m->dropout_applied = m->training && m->config.dropout > 0;
    m->rope_len = rope_len(m, batch);
    if (ct_peft_prefix_len(m)) ct_peft_prefix_forward(m);  // this forward's prefix keys and values (prefix tuning)
    const CtBlockPass pass = {.B = d.B, .T = d.T, .positions = staged->positions, .rope_len = m->rope_len,
                              .doc_ids = staged->doc_ids, .dropout = m->dropout_applied ? m->config.dropout : 0.0f,
                              .fused_gelu = 1};

    if (ct_model_is_encoder(&m->config)) {
        const CtEncoderEmbed e = {.x = a->encoded, .sum = a->emb_sum, .mean = a->emb_mean, .rstd = a->emb_rstd,
                                  .tokens = staged->tokens, .positions = staged->positions,
                                  .token_types = staged->token_types};
        ct_model_encoder_embed_forward(m, &e, d.N, pass.dropout);
    } else {
        ct_model_embed_forward(m, a->encoded, staged->tokens, staged->positions, d.N, pass.dropout);
    }
    for (int l = 0; l < d.L; l++) {
        const CtBlockActs acts = block_acts(m, l);
        ct_model_block_forward(m, l, &pass, &acts);
    }
    if (pass_out) *pass_out = pass;
    return d;
}

// Whether this model's forward runs its multi-token prediction modules (with targets) and its
// backward their loss: only when the objective trains them (mtp_weight > 0), so DPO, GRPO, a
// reference model or a frozen copy do not pay for them.
static int mtp_on(const CtModel *m) { return m->config.mtp_depth > 0 && m->mtp_weight != 0; }
// What the modules read: the last residual stream (sequential), or the trunk state, the input of
// the last block (parallel heads sit beside that block).
static const CtAct *mtp_input(const CtModel *m, int L) {
    return layer_input(m, m->config.mtp_style == CT_MTP_PARALLEL ? L - 1 : L);
}

static float forward_rows(CtModel *m, const CtBatch *batch);

// loss = Σ_n losses[n] / count: the scale of its gradient over the logits (xent_backward's).
static float head_grad_scale(const CtModel *m) { return m->loss_count > 0 ? 1.0f / m->loss_count : 0.0f; }

// A prompt adapter prepends its virtual rows (train/model/peft_hooks.h); the callers see [B,T].
float ct_model_forward(CtModel *m, const CtBatch *batch) {
    if (ct_peft_prepend_rows(m)) return ct_peft_forward(m, batch, forward_rows);
    return forward_rows(m, batch);
}

float ct_model_forward_train(CtModel *m, const CtBatch *batch) {
    m->head_grad = CT_HEAD_GRAD_ASKED;  // forward_rows takes it (through a prompt adapter's forward too)
    return ct_model_forward(m, batch);
}

static float forward_rows(CtModel *m, const CtBatch *batch) {
    CT_CHECK(!(ct_model_is_encoder(&m->config) && m->config.num_labels),
             "an encoder with a classifier has no MLM head: run it with ct_model_classify_forward");
    const CtOps *ops = m->ops;
    CtActivations *a = &m->act;
    const int fuse_head_grad = m->head_grad == CT_HEAD_GRAD_ASKED && ops->xent_forward_backward;
    m->head_grad = CT_HEAD_GRAD_NONE;
    CtBlockPass pass;
    const CtModelDims d = trunk_forward(m, batch, &pass);
    const CtBatch *staged = &m->batch;
    // the modules borrow the logits buffer, so they run before the main head
    if (mtp_on(m) && batch->targets) ct_model_mtp_forward(m, batch, &pass, mtp_input(m, d.L));
    ct_model_head_forward(m, a->logits, a->lnf, a->lnf_mean, a->lnf_rstd, layer_input(m, d.L), d.N);
    if (m->moe.n_layers) ct_model_moe_record(m, d.N);  // routing statistics of every forward
    m->loss = 0;
    m->loss_count = 0;
    if (!batch->targets) return 0;
    const float tau = m->logit_temperature;
    if (tau > 0 && tau != 1) {
        CT_CHECK(m->config.final_softcap == 0, "a logit temperature on a soft-capped model");
        ops->act_scale(a->logits, (size_t)d.N * d.V, 1.0f / tau);
    }
    int count = 0;
    for (int n = 0; n < d.N; n++) count += token_weight(batch, n) != 0;
    m->loss_count = (float)count;
    if (fuse_head_grad && count) {
        // loss = Σ losses / count: the head's gradient (backward's first step) written over the
        // logits in the cross-entropy's own pass over them
        ops->xent_forward_backward(a->losses, a->logprobs, a->lse, a->logits, staged->targets, staged->loss_mask,
                                   staged->loss_weights, head_grad_scale(m), d.N, d.V, m->config.final_softcap);
        m->head_grad = CT_HEAD_GRAD_WRITTEN;
    } else {
        ops->xent_forward(a->losses, a->logprobs, a->lse, a->logits, staged->targets, staged->loss_mask,
                          staged->loss_weights, d.N, d.V);
    }
    if (!ops->host_memory) {  // the per-token values to the host (the loss, DPO and evaluation read them)
        ops->download(m->losses, a->losses, (size_t)d.N * sizeof(float));
        ops->download(m->logprobs, a->logprobs, (size_t)d.N * sizeof(float));
    }
    double sum = 0;
    for (int n = 0; n < d.N; n++) sum += m->losses[n];
    m->loss = count ? (float)(sum / count) : 0;
    return m->loss;
}

const float *ct_model_logits(CtModel *m) {
    CT_CHECK(m->head_grad != CT_HEAD_GRAD_WRITTEN,
             "ct_model_forward_train's forward has turned the logits into their gradient: read them after ct_model_forward");
    const int peft = ct_peft_last_expanded(m);
    if (m->ops->host_memory && m->ops->act_bytes == sizeof(float) && !peft) return m->act.logits;
    const size_t n = (size_t)m->batch.B * m->batch.T * m->config.vocab_size;
    if (!m->host_logits) m->host_logits = ct_alloc((size_t)m->max_B * m->max_T * m->config.vocab_size * sizeof(float));
    if (!(m->ops->host_memory && m->ops->act_bytes == sizeof(float))) m->ops->download_act(m->host_logits, m->act.logits, n);
    // a prompt adapter's virtual rows are left out (in place: rows move only toward the start)
    if (peft) ct_peft_compact_logits(m, m->ops->host_memory && m->ops->act_bytes == sizeof(float) ? m->act.logits
                                                                                                   : m->host_logits,
                                     m->host_logits);
    return m->host_logits;
}

// The gradient of a branch's output before the block adds it to the stream, from d res (the
// stream's): through the dropout mask, then (post_norms) back through the output's RMSNorm.
static const CtAct *branch_output_backward(CtModel *m, const CtAct *dres, const CtAct *pre, const float *post_w,
                                           float *post_dw, const float *post_rstd, int site, int N) {
    const CtOps *ops = m->ops;
    const size_t NC = (size_t)N * m->config.d_model;
    const CtAct *dproj = dres;
    if (m->dropout_applied) {
        ops->dropout_backward(m->act.d_proj, dres, NC, m->config.dropout, ct_model_dropout_seed(m, site));
        dproj = m->act.d_proj;
    }
    if (!post_w) return dproj;
    ops->zero(m->act.d_post, NC * ops->act_bytes);
    ops->rmsnorm_backward(m->act.d_post, post_dw, dproj, pre, post_w, post_rstd, N, m->config.d_model);
    return m->act.d_post;
}

// Post-LN (encoders): the block's half ends in out = LN(u), u = in + branch. From d out in dres,
// d u = LNᵀ(d out) replaces it: u's gradient then flows on to `in` (the residual path) and into
// the branch, whose input gradient the half adds to dres at its end (the branch reads `in`
// itself, no norm before it). Uses a->d_norm as scratch (free at the start of a half).
static void post_ln_backward(CtModel *m, CtAct *dres, float *dw, float *db, const CtAct *u, const float *w,
                             const float *mean, const float *rstd, int N) {
    const size_t bytes = (size_t)N * m->config.d_model * m->ops->act_bytes;
    m->ops->zero(m->act.d_norm, bytes);
    m->ops->layernorm_backward(m->act.d_norm, dw, db, dres, u, w, mean, rstd, N, m->config.d_model);
    m->ops->copy(dres, m->act.d_norm, bytes);
}

// The MLP half of block l. res3 = res2 + dropout(postnorm(proj)): dres passes through to res2
// unchanged and gains the norm's input gradient. Post-LN: res3 = LN2(u2), u2 = res2 + dropout(proj)
// with proj = mlp(res2): d u2 = LN2ᵀ(dres), then d res2 = d u2 + mlpᵀ(d u2).
static void mlp_backward(CtModel *m, int l, const CtBlockActs *s, const CtModelDims *d) {
    const CtOps *ops = m->ops;
    const CtLayerTensors *p = &m->w.layers[l], *gp = &m->g.layers[l];
    CtActivations *a = &m->act;
    const size_t A = ops->act_bytes;
    const int post_ln = ct_model_is_encoder(&m->config);
    CtAct *dres = a->d_residual;
    if (post_ln) post_ln_backward(m, dres, gp->ln2_w, gp->ln2_b, s->ln2, p->ln2_w, s->ln2_mean, s->ln2_rstd, d->N);
    const CtAct *dproj = branch_output_backward(m, dres, s->mlp_pre, p->mlp_post_w, gp->mlp_post_w, s->mlp_post_rstd,
                                                3 + 3 * l, d->N);
    if (ct_model_layer_is_moe(&m->config, l)) {  // the experts keep their activations; only ln2 is recomputed
        if (m->recompute) ct_model_norm_forward(m, s->ln2, s->ln2_mean, s->ln2_rstd, s->res2, p->ln2_w, p->ln2_b, d->N);
        ops->zero(a->d_norm, (size_t)d->N * d->C * A);
        ct_model_moe_backward(m, l, &s->moe, s->ln2, dproj, a->d_norm, d->N);
        ct_model_norm_backward(m, dres, gp->ln2_w, gp->ln2_b, a->d_norm, s->res2, p->ln2_w, s->ln2_mean, s->ln2_rstd,
                               d->N);
        return;
    }
    if (m->recompute) ct_model_mlp_activation_forward(m, s->fch_act, s->fch, d->N);
    if (fused_gelu_backward(m, l)) {  // d fch = gelu'(fch) ⊙ (dproj·W_proj), written (no zeroing)
        ops->matmul_backward_dgelu(a->d_fch, gp->fc_out_w, gp->fc_out_b, dproj, s->fch_act, s->fch, p->fc_out_w, d->N,
                                   d->F, d->C);
    } else {
        ops->zero(a->d_fch_act, (size_t)d->N * d->F * A);
        ops->matmul_backward(a->d_fch_act, gp->fc_out_w, gp->fc_out_b, dproj, s->fch_act, p->fc_out_w, d->N, d->F, d->C);
        if (m->lora) ct_lora_backward(m, l, CT_LORA_FC_OUT, a->d_fch_act, dproj, s->fch_act, d->N);
        ct_model_mlp_activation_backward(m, a->d_fch, s->fch, a->d_fch_act, d->N);  // writes d fch
    }
    if (m->recompute) ct_model_norm_forward(m, s->ln2, s->ln2_mean, s->ln2_rstd, s->res2, p->ln2_w, p->ln2_b, d->N);
    // the MLP's input: the second norm's output (pre-LN), or res2 itself, whose gradient dres is (post-LN)
    const CtAct *mlp_in = post_ln ? s->res2 : s->ln2;
    CtAct *d_in = post_ln ? dres : a->d_norm;
    if (!post_ln) ops->zero(a->d_norm, (size_t)d->N * d->C * A);
    ops->matmul_backward(d_in, gp->fc_w, gp->fc_b, a->d_fch, mlp_in, p->fc_w, d->N, d->C, d->FI);
    if (m->lora) ct_lora_backward(m, l, CT_LORA_FC, d_in, a->d_fch, mlp_in, d->N);
    if (!post_ln)
        ct_model_norm_backward(m, dres, gp->ln2_w, gp->ln2_b, a->d_norm, s->res2, p->ln2_w, s->ln2_mean, s->ln2_rstd,
                               d->N);
}

// The attention half of block l. res2 = x + dropout(postnorm(proj)): dres (now d res2) passes
// through to x. Then back through attention, RoPE (its transpose), the q/k norms and the product.
// Post-LN: res2 = LN1(u1), u1 = x + dropout(proj(attention(qkv(x)))): d u1 = LN1ᵀ(d res2), then
// d x = d u1 + qkvᵀ(…(d u1)).
static void attention_backward(CtModel *m, int l, const CtBlockActs *s, const CtModelDims *d) {
    const CtOps *ops = m->ops;
    const CtLayerTensors *p = &m->w.layers[l], *gp = &m->g.layers[l];
    CtActivations *a = &m->act;
    const CtBatch *batch = &m->batch;
    const size_t A = ops->act_bytes;
    const int post_ln = ct_model_is_encoder(&m->config);
    CtAct *dres = a->d_residual;
    if (post_ln) post_ln_backward(m, dres, gp->ln1_w, gp->ln1_b, s->ln1, p->ln1_w, s->ln1_mean, s->ln1_rstd, d->N);
    const CtAct *dproj = branch_output_backward(m, dres, s->attn_pre, p->attn_post_w, gp->attn_post_w,
                                                s->attn_post_rstd, 2 + 3 * l, d->N);
    ops->zero(a->d_atty, (size_t)d->N * d->AW * A);
    ops->matmul_backward(a->d_atty, gp->attn_out_w, gp->attn_out_b, dproj, s->atty, p->attn_out_w, d->N, d->AW, d->C);
    if (m->lora) ct_lora_backward(m, l, CT_LORA_ATTN_OUT, a->d_atty, dproj, s->atty, d->N);
    ops->zero(a->d_qkv, (size_t)d->N * d->QKV * A);
    const float att_drop = m->dropout_applied ? m->config.dropout : 0.0f;
    const uint64_t att_seed = ct_model_dropout_seed(m, 1 + 3 * l);
    CtAttentionOptions opt_storage;
    const CtAttentionOptions *opt = ct_model_attention_options(m, l, &opt_storage);
    if (ct_peft_prefix_len(m))  // prefix tuning: the prefix's keys and values get their gradient too
        ops->attention_prefix_backward(a->d_qkv, ct_peft_prefix_dkv(m, l), a->d_atty, s->qkv, ct_peft_prefix_kv(m, l),
                                       ct_peft_prefix_len(m), ct_peft_prefix_stride(m), s->att, att_drop, att_seed,
                                       d->B, d->T, d->NH, d->NKV, d->HD, opt);
    else if (ops->attention_backward_with_out)  // atty is the forward's output, still in place
        ops->attention_backward_with_out(a->d_qkv, a->d_atty, s->atty, s->qkv, s->att, att_drop, att_seed, d->B, d->T,
                                         d->NH, d->NKV, d->HD, opt);
    else
        ops->attention_backward(a->d_qkv, a->d_atty, s->qkv, s->att, att_drop, att_seed, d->B, d->T, d->NH, d->NKV,
                                d->HD, opt);
    if (m->config.arch == CT_ARCH_LLAMA) {
        CtRope rope;
        ct_model_layer_rope(m, l, m->rope_len, &rope);
        ops->rope_backward(a->d_qkv, a->d_qkv, batch->positions, d->B, d->T, d->NH + d->NKV, d->HD, d->QKV, &rope);
    }
    if (m->config.qk_norm) {  // in place: d_qkv becomes the gradient of the product before the norms
        int nh, nkv, hd;
        ct_model_qk_norm_heads(&m->config, &nh, &nkv, &hd);
        ops->qk_norm_backward(a->d_qkv, gp->q_norm_w, gp->k_norm_w, a->d_qkv, s->qkv_pre, p->q_norm_w, p->k_norm_w,
                              s->qk_rstd, d->N, nh, nkv, hd);
    }
    if (m->recompute) ct_model_norm_forward(m, s->ln1, s->ln1_mean, s->ln1_rstd, s->x, p->ln1_w, p->ln1_b, d->N);
    // the product's input: the first norm's output (pre-LN), or x itself, whose gradient dres is (post-LN)
    const CtAct *attn_in = post_ln ? s->x : s->ln1;
    CtAct *d_in = post_ln ? dres : a->d_norm;
    if (!post_ln) ops->zero(a->d_norm, (size_t)d->N * d->C * A);
    ops->matmul_backward(d_in, gp->qkv_w, gp->qkv_b, a->d_qkv, attn_in, p->qkv_w, d->N, d->C, d->QKV);
    if (m->lora) ct_lora_backward(m, l, CT_LORA_QKV, d_in, a->d_qkv, attn_in, d->N);
    if (!post_ln)
        ct_model_norm_backward(m, dres, gp->ln1_w, gp->ln1_b, a->d_norm, s->x, p->ln1_w, s->ln1_mean, s->ln1_rstd,
                               d->N);
}

void ct_model_block_backward(CtModel *m, int l, const CtBlockActs *s, const CtModelDims *d) {
    mlp_backward(m, l, s, d);
    attention_backward(m, l, s, d);
}

// d h (h: the last block's output) from d lnf (a->d_norm, the final norm's output gradient),
// written into dh: back through the final norm, and for an encoder through the MLM head's
// transform before it (the encoders' final norm is that head's LayerNorm).
static void final_norm_backward(CtModel *m, CtAct *dh, const CtModelDims *d) {
    const CtOps *ops = m->ops;
    const size_t NC = (size_t)d->N * d->C, bytes = NC * ops->act_bytes;
    CtActivations *a = &m->act;
    if (ct_model_is_encoder(&m->config)) {
        // the MLM head's transform, lnf = LN(t), t = GELU(u), u = h·Wᵀ + b:
        // d t = LNᵀ(d lnf) into d_proj, d u = GELU'(u) ⊙ d t into d_norm (read), d h = d u·W
        ops->zero(a->d_proj, bytes);
        ops->layernorm_backward(a->d_proj, m->g.lnf_w, m->g.lnf_b, a->d_norm, a->mlm_act, m->w.lnf_w, a->lnf_mean,
                                a->lnf_rstd, d->N, d->C);
        ops->zero(a->d_norm, bytes);
        ops->gelu_erf_backward(a->d_norm, a->mlm_pre, a->d_proj, NC);
        ops->zero(dh, bytes);
        ops->matmul_backward(dh, m->g.mlm_dense_w, m->g.mlm_dense_b, a->d_norm, layer_input(m, d->L), m->w.mlm_dense_w,
                             d->N, d->C, d->C);
        return;
    }
    ops->zero(dh, bytes);
    ct_model_norm_backward(m, dh, m->g.lnf_w, m->g.lnf_b, a->d_norm, layer_input(m, d->L), m->w.lnf_w, a->lnf_mean,
                           a->lnf_rstd, d->N);
}

// From d h in a->d_residual (the last block's output gradient) down: the blocks and the embeddings.
// d_trunk (may be NULL): a gradient of the last block's input from elsewhere (parallel heads read
// it too), added once that block has passed its own down.
static void blocks_backward(CtModel *m, const CtModelDims *dims, const CtAct *d_trunk) {
    const CtBatch *batch = &m->batch;
    const CtOps *ops = m->ops;
    const CtModelTensors *g = &m->g;
    CtActivations *a = &m->act;
    const CtModelDims d = *dims;
    const size_t NC = (size_t)d.N * d.C;
    CtAct *dres = a->d_residual;  // d loss / d (residual stream), carried down the blocks
    const int hook = m->grads_final && !m->lora && !m->peft && m->dev_grads;
    // from the head's first tensor on (a tied head is wte, at 0): the final norm, or an encoder's pooler / MLM transform
    const float *head_first = g->pooler_w ? g->pooler_w : g->mlm_dense_w ? g->mlm_dense_w : g->lnf_w;
    if (hook) m->grads_final(m->grads_final_ctx, (size_t)(head_first - m->dev_grads));

    for (int l = d.L - 1; l >= 0; l--) {
        const CtBlockActs s = block_acts(m, l);
        ct_model_block_backward(m, l, &s, &d);
        if (d_trunk && l == d.L - 1) ops->residual_forward(dres, dres, d_trunk, NC);
        if (hook) m->grads_final(m->grads_final_ctx, layer_first_grad(m, l));
    }

    if (m->dropout_applied) ops->dropout_backward(dres, dres, NC, m->config.dropout, ct_model_dropout_seed(m, 0));
    if (ct_model_is_encoder(&m->config)) {  // x = LN(sum): d sum = LNᵀ(d x), then into the three tables
        ops->zero(a->d_norm, NC * ops->act_bytes);
        ops->layernorm_backward(a->d_norm, g->emb_ln_w, g->emb_ln_b, dres, a->emb_sum, m->w.emb_ln_w, a->emb_mean,
                                a->emb_rstd, d.N, d.C);
        ops->copy(dres, a->d_norm, NC * ops->act_bytes);
        if (g->wtt) ops->embedding_backward(g->wtt, dres, batch->token_types, d.N, d.C);
    }
    // x = s·embedding (Gemma): the embedding rows (and LoRA's token rows) get s·dres
    if (m->config.embed_scale) ops->act_scale(dres, NC, ct_model_embed_scale(&m->config));
    if (g->wte) ops->embedding_backward(g->wte, dres, batch->tokens, d.N, d.C);  // NULL: frozen
    if (m->lora) ct_lora_tokens_backward_embedding(m, dres, d.N);
    if (m->peft) ct_peft_embed_backward(m, dres, d.N);  // a prompt adapter's virtual rows
    if (g->wpe) ops->embedding_backward(g->wpe, dres, batch->positions, d.N, d.C);
    if (ct_peft_prefix_len(m)) ct_peft_prefix_backward(m);  // every layer's prefix gradient is complete
    if (hook) m->grads_final(m->grads_final_ctx, 0);
}

// From d lnf (a->d_norm) down: the final norm, the blocks and the embeddings.
static void trunk_backward(CtModel *m, const CtModelDims *d) {
    final_norm_backward(m, m->act.d_residual, d);
    blocks_backward(m, d, NULL);
}

// With multi-token prediction the modules' backward runs before the blocks (their parameters lie
// after the head's, so the gradients from the final norm on are complete when blocks_backward
// announces them). Sequential: d h^0 is the main head's (through the final norm) plus module 1's.
// Parallel: the main head's d h^0 goes down the last block as without heads; the heads' d z
// (z: that block's input) joins it there.
static void trunk_backward_with_mtp(CtModel *m, const CtModelDims *d) {
    const size_t bytes = (size_t)d->N * d->C * m->ops->act_bytes;
    if (m->config.mtp_style == CT_MTP_PARALLEL) {
        CtAct *dh0 = m->mtp->d_carry, *d_trunk = m->mtp->d_h0;
        final_norm_backward(m, dh0, d);  // the heads use d_residual as scratch: kept aside
        ct_model_mtp_heads_backward(m, d_trunk);
        m->ops->copy(m->act.d_residual, dh0, bytes);
        blocks_backward(m, d, d_trunk);
        return;
    }
    CtAct *dh0 = m->mtp->d_h0;
    final_norm_backward(m, dh0, d);
    ct_model_mtp_backward(m, layer_input(m, d->L), dh0);
    m->ops->copy(m->act.d_residual, dh0, bytes);
    blocks_backward(m, d, NULL);
}

void ct_model_backward(CtModel *m) {
    const CtBatch *batch = &m->batch;
    CT_CHECK(batch->targets != NULL, "ct_model_backward needs a forward pass with targets");
    const CtOps *ops = m->ops;
    const CtModelTensors *w = &m->w, *g = &m->g;
    CtActivations *a = &m->act;
    const CtModelDims d = ct_model_dims(m, batch->B, batch->T);
    const size_t NC = (size_t)d.N * d.C, A = ops->act_bytes;
    const int router_losses = m->moe.n_layers && (m->moe.aux_coef != 0 || m->moe.z_coef != 0);
    const int head_grad_written = m->head_grad == CT_HEAD_GRAD_WRITTEN;
    m->head_grad = CT_HEAD_GRAD_NONE;
    if (m->loss_count == 0 && !router_losses) {  // no token counted: the loss is a constant, nothing to add
        if (m->grads_final && !m->lora && !m->peft && m->dev_grads) m->grads_final(m->grads_final_ctx, 0);
        return;
    }
    // loss = Σ losses / count: the head's gradient, in place over the logits (through the
    // soft-cap when the logits were capped), unless ct_model_forward_train's forward wrote it;
    // with no token counted only the router losses remain
    if (!head_grad_written)
        ops->xent_backward(a->logits, a->lse, batch->targets, batch->loss_mask, batch->loss_weights,
                           head_grad_scale(m), d.N, d.V, m->config.final_softcap);
    // log softmax(z/τ): the logits' gradient is the scaled logits' one over τ
    if (m->logit_temperature > 0 && m->logit_temperature != 1)
        ops->act_scale(a->logits, (size_t)d.N * d.V, 1.0f / m->logit_temperature);
    ops->zero(a->d_norm, NC * A);
    ops->matmul_backward(a->d_norm, g->lm_head, g->lm_head_b, a->logits, a->lnf, w->lm_head, d.N, d.C, d.V);
    if (m->lora) ct_lora_tokens_backward_head(m, d.N);
    if (mtp_on(m))
        trunk_backward_with_mtp(m, &d);
    else
        trunk_backward(m, &d);
}

// score_n = lnf_n · score (one more product, [N,C]·[1,C]ᵀ) on every token; the caller's rows read
// theirs at last[r]. The LM head is not run: a reward step needs no logits.
void ct_model_reward_forward(CtModel *m, const CtBatch *batch, const int *last, float *scores) {
    CT_CHECK(m->w.score != NULL, "ct_model_reward_forward needs a model with model.reward_head");
    CtActivations *a = &m->act;
    const CtModelDims d = trunk_forward(m, batch, NULL);
    ct_model_norm_forward(m, a->lnf, a->lnf_mean, a->lnf_rstd, layer_input(m, d.L), m->w.lnf_w, m->w.lnf_b, d.N);
    if (m->moe.n_layers) ct_model_moe_record(m, d.N);
    float *g_score = NULL;  // LoRA: the head trained in full is the adapters' (train/model/lora_saved.h)
    const float *score = ct_lora_saved_tensor(m, m->w.score, &g_score);
    m->ops->matmul_forward(a->proj, a->lnf, score, NULL, d.N, d.C, 1);  // proj: [N,C] scratch, N used
    float *all = ct_alloc(sizeof(float) * (size_t)d.N);
    m->ops->download_act(all, a->proj, (size_t)d.N);
    for (int r = 0; r < d.B; r++) {
        CT_CHECK(last[r] >= 0 && last[r] < d.T, "a reward row's last token lies outside the batch");
        scores[r] = all[(size_t)r * d.T + last[r]];
    }
    ct_free(all);
    m->loss = 0;
    m->loss_count = 0;
}

// d score_n is d_scores[r] at n = (r, last[r]) and 0 elsewhere; the head's backward gives
// d lnf_n = d score_n · score and d score += Σ_n d score_n · lnf_n.
void ct_model_reward_backward(CtModel *m, const int *last, const float *d_scores) {
    const CtOps *ops = m->ops;
    CtActivations *a = &m->act;
    const CtModelDims d = ct_model_dims(m, m->batch.B, m->batch.T);
    float *dout = ct_calloc((size_t)d.N, sizeof(float));
    for (int r = 0; r < d.B; r++) dout[(size_t)r * d.T + last[r]] = d_scores[r];
    ops->upload_act(a->logits, dout, (size_t)d.N);  // logits: [N,V] scratch, N used (no LM head ran)
    ct_free(dout);
    ops->zero(a->d_norm, (size_t)d.N * d.C * ops->act_bytes);
    float *g_score = m->g.score;
    const float *score = ct_lora_saved_tensor(m, m->w.score, &g_score);
    ops->matmul_backward(a->d_norm, g_score, NULL, a->logits, a->lnf, score, d.N, d.C, 1);
    trunk_backward(m, &d);
}

// A sequence classifier's trunk (train/model/model_classify.c): the hidden states it pools, [N,C]
// in the ops' memory: an encoder's last block output, a decoder's final norm output (as the reward
// head reads it). The LM and MLM heads do not run.
const CtAct *ct_model_classify_trunk_forward(CtModel *m, const CtBatch *batch) {
    CtActivations *a = &m->act;
    const CtModelDims d = trunk_forward(m, batch, NULL);
    m->loss = 0;
    m->loss_count = 0;
    if (m->moe.n_layers) ct_model_moe_record(m, d.N);
    if (ct_model_is_encoder(&m->config)) return layer_input(m, d.L);
    ct_model_norm_forward(m, a->lnf, a->lnf_mean, a->lnf_rstd, layer_input(m, d.L), m->w.lnf_w, m->w.lnf_b, d.N);
    return a->lnf;
}

CtAct *ct_model_classify_trunk_grad(CtModel *m) {
    return ct_model_is_encoder(&m->config) ? m->act.d_residual : m->act.d_norm;
}

void ct_model_classify_trunk_backward(CtModel *m) {
    const CtModelDims d = ct_model_dims(m, m->batch.B, m->batch.T);
    if (ct_model_is_encoder(&m->config))
        blocks_backward(m, &d, NULL);
    else
        trunk_backward(m, &d);
}
