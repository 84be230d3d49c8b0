// The forward of one transformer block, of the embeddings and of the head: the one definition
// that training's forward (train/model/model.c) and decoding with a key/value cache
// (train/model/generate.c) both run. See train/model/model_internal.h.
#include <math.h>

#include "core/rng.h"
#include "train/model/lora_hooks.h"
#include "train/model/model_internal.h"
#include "train/model/peft_hooks.h"
#include "train/model/rope_scaling.h"

static int is_llama(const CtModel *m) { return m->config.arch == CT_ARCH_LLAMA; }
static int is_encoder(const CtModel *m) { return ct_model_is_encoder(&m->config); }

CtModelDims ct_model_dims(const CtModel *m, int B, int T) {
    const CtModelConfig *c = &m->config;
    return (CtModelDims){.B = B, .T = T, .N = B * T, .C = c->d_model, .F = c->d_ff, .FI = ct_model_fc_width(c),
                         .QKV = ct_model_qkv_width(c), .NH = c->n_head, .NKV = c->n_kv_head,
                         .HD = ct_model_head_dim(c), .AW = ct_model_attn_width(c), .V = c->vocab_size,
                         .L = c->n_layer};
}

uint64_t ct_model_dropout_seed(const CtModel *m, int site) {
    return m->dropout_seed ^ ((uint64_t)(site + 1) * CT_DROPOUT_SITE_MIX);
}

// ---- the pieces that differ between the families ----
void ct_model_norm_forward(const CtModel *m, CtAct *out, float *mean, float *rstd, const CtAct *inp, const float *w,
                           const float *b, int N) {
    if (is_llama(m))
        m->ops->rmsnorm_forward(out, rstd, inp, w, N, m->config.d_model, m->config.norm_eps);
    else
        m->ops->layernorm_forward(out, mean, rstd, inp, w, b, N, m->config.d_model, m->config.norm_eps);
}

void ct_model_norm_backward(const CtModel *m, CtAct *dinp, float *dw, float *db, const CtAct *dout, const CtAct *inp,
                            const float *w, const float *mean, const float *rstd, int N) {
    if (is_llama(m))
        m->ops->rmsnorm_backward(dinp, dw, dout, inp, w, rstd, N, m->config.d_model);
    else
        m->ops->layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, m->config.d_model);
}

void ct_model_glu_forward(const CtModel *m, CtAct *out, const CtAct *gate_up, int N, int F) {
    if (m->config.gate_act == CT_GATE_GELU_TANH)
        m->ops->geglu_forward(out, gate_up, N, F);
    else
        m->ops->swiglu_forward(out, gate_up, N, F);
}

void ct_model_glu_backward(const CtModel *m, CtAct *dgate_up, const CtAct *gate_up, const CtAct *dout, int N, int F) {
    if (m->config.gate_act == CT_GATE_GELU_TANH)
        m->ops->geglu_backward(dgate_up, dout, gate_up, N, F);
    else
        m->ops->swiglu_backward(dgate_up, dout, gate_up, N, F);
}

void ct_model_mlp_activation_forward(const CtModel *m, CtAct *out, const CtAct *fch, int N) {
    if (is_llama(m))
        ct_model_glu_forward(m, out, fch, N, m->config.d_ff);
    else if (is_encoder(m))
        m->ops->gelu_erf_forward(out, fch, (size_t)N * m->config.d_ff);
    else
        m->ops->gelu_forward(out, fch, (size_t)N * m->config.d_ff);
}

void ct_model_mlp_activation_backward(const CtModel *m, CtAct *dfch, const CtAct *fch, const CtAct *dout, int N) {
    if (is_llama(m)) {  // the gated units' backward writes d fch; GELU's adds into it
        ct_model_glu_backward(m, dfch, fch, dout, N, m->config.d_ff);
        return;
    }
    m->ops->zero(dfch, (size_t)N * m->config.d_ff * m->ops->act_bytes);
    if (is_encoder(m))
        m->ops->gelu_erf_backward(dfch, fch, dout, (size_t)N * m->config.d_ff);
    else
        m->ops->gelu_backward(dfch, fch, dout, (size_t)N * m->config.d_ff);
}

void ct_model_post_norm_forward(const CtModel *m, CtAct *out, float *rstd, const CtAct *inp, const float *w, int N) {
    m->ops->rmsnorm_forward(out, rstd, inp, w, N, m->config.d_model, m->config.norm_eps);
}

void ct_model_layer_rope(const CtModel *m, int l, int rope_len, CtRope *rope) {
    const CtModelConfig *c = &m->config;
    const int HD = ct_model_head_dim(c);
    const int local = c->rope_local_theta > 0 && ct_model_layer_slides(c, l);  // Gemma 3's sliding layers
    if (local || c->rope_scaling.type == CT_ROPE_DEFAULT) {  // unscaled: the kernels' own default table
        ct_rope_default(rope, local ? c->rope_local_theta : c->rope_theta, HD);
        return;
    }
    *rope = (CtRope){.n_pairs = HD / 2};
    ct_model_layer_inv_freq(c, l, rope_len, rope->inv_freq, &rope->attention_factor);
}

const CtAttentionOptions *ct_model_attention_options(const CtModel *m, int l, CtAttentionOptions *opt) {
    const CtModelConfig *c = &m->config;
    *opt = (CtAttentionOptions){.scale = c->query_scale,
                                .softcap = c->attn_softcap,
                                .window = ct_model_layer_slides(c, l) ? c->sliding_window : 0,
                                .bidirectional = ct_model_is_encoder(c)};  // encoders: every key of the document
    return opt->scale != 0 || opt->softcap != 0 || opt->window != 0 || opt->bidirectional ? opt : NULL;
}

// GPT-2's MLP (tanh GELU) with GELU fused into its product, where the backend has the fused op and no
// adapter adds into the pre-activation (then the ops run unfused). Backward's counterpart is in
// train/model/model.c.
static int fused_gelu_forward(const CtModel *m, const CtBlockPass *pass, int l) {
    return pass->fused_gelu && m->config.arch == CT_ARCH_GPT2 && m->ops->matmul_bias_gelu_forward &&
           !ct_lora_has_adapter(m, l, CT_LORA_FC);
}

// ---- the forward ----
void ct_model_embed_forward(CtModel *m, CtAct *x, const int32_t *tokens, const int32_t *positions, int N,
                            float dropout) {
    const CtOps *ops = m->ops;
    const int C = m->config.d_model;
    ops->embedding_forward(x, tokens, m->w.wte, N, C, 0);
    if (m->peft) ct_peft_embed_forward(m, x, N);  // a prompt adapter's virtual rows (train/model/peft_hooks.h)
    if (m->w.wpe) ops->embedding_forward(x, positions, m->w.wpe, N, C, 1);
    if (m->config.embed_scale) ops->act_scale(x, (size_t)N * C, ct_model_embed_scale(&m->config));
    if (dropout > 0) ops->dropout_forward(x, x, (size_t)N * C, dropout, ct_model_dropout_seed(m, 0));
}

void ct_model_encoder_embed_forward(CtModel *m, const CtEncoderEmbed *e, int N, float dropout) {
    const CtOps *ops = m->ops;
    const int C = m->config.d_model;
    ops->embedding_forward(e->sum, e->tokens, m->w.wte, N, C, 0);
    ops->embedding_forward(e->sum, e->positions, m->w.wpe, N, C, 1);
    ops->embedding_forward(e->sum, e->token_types, m->w.wtt, N, C, 1);
    ops->layernorm_forward(e->x, e->mean, e->rstd, e->sum, m->w.emb_ln_w, m->w.emb_ln_b, N, C, m->config.norm_eps);
    if (dropout > 0) ops->dropout_forward(e->x, e->x, (size_t)N * C, dropout, ct_model_dropout_seed(m, 0));
}

// The attention of block l over the pass's rows, or (decoding) over the cache.
static void attention(CtModel *m, int l, const CtBlockPass *pass, const CtBlockActs *a, const CtModelDims *d) {
    const CtOps *ops = m->ops;
    CtAttentionOptions opt_storage;
    const CtAttentionOptions *opt = ct_model_attention_options(m, l, &opt_storage);
    const int P = ct_peft_prefix_len(m);
    if (!pass->k_cache && P && l < m->config.n_layer) {  // prefix tuning: P more keys in front
        ops->attention_prefix_forward(a->atty, a->att, a->qkv, ct_peft_prefix_kv(m, l), P, ct_peft_prefix_stride(m),
                                      pass->doc_ids, pass->dropout,
                                      ct_model_dropout_seed(m, 1 + 3 * l), d->B, d->T, d->NH, d->NKV, d->HD, opt);
        return;
    }
    if (!pass->k_cache) {
        ops->attention_forward(a->atty, a->att, a->qkv, pass->doc_ids, pass->dropout,
                               ct_model_dropout_seed(m, 1 + 3 * l), d->B, d->T, d->NH, d->NKV, d->HD, opt);
        return;
    }
    const size_t A = ops->act_bytes, kv = (size_t)d->NKV * d->HD, layer = (size_t)l * pass->max_ctx * kv;
    CtAct *kc = ct_act_at(A, pass->k_cache, layer), *vc = ct_act_at(A, pass->v_cache, layer);
    // row t (position pos + t) stores its key and value; then each attends to positions 0..pos + t
    for (int t = 0; t < d->T; t++) {
        const CtAct *row = ct_act_at(A, a->qkv, (size_t)t * d->QKV);
        ops->copy(ct_act_at(A, kc, (size_t)(pass->pos + t) * kv), ct_act_at(A, row, (size_t)d->NH * d->HD), A * kv);
        ops->copy(ct_act_at(A, vc, (size_t)(pass->pos + t) * kv), ct_act_at(A, row, (size_t)(d->NH + d->NKV) * d->HD),
                  A * kv);
    }
    ops->attention_decode(a->atty, a->qkv, d->QKV, kc, vc, pass->pos + d->T, d->T, d->NH, d->NKV, d->HD, opt);
}

// q|k|v of block l from `in` (the first norm's output; a post-LN block's input itself): the
// product (+ biases), its adapters, the per-head q/k norms (qk_norm) and RoPE (llama). LoRA adds
// before the norms and RoPE, as in HF.
static void qkv_forward(CtModel *m, int l, const CtBlockPass *pass, const CtBlockActs *a, const CtAct *in,
                        const CtModelDims *d) {
    const CtOps *ops = m->ops;
    const CtLayerTensors *p = &m->w.layers[l];
    CtAct *product = m->config.qk_norm ? a->qkv_pre : a->qkv;
    ops->matmul_forward(product, in, p->qkv_w, p->qkv_b, d->N, d->C, d->QKV);
    if (m->lora) ct_lora_forward(m, l, CT_LORA_QKV, product, in, d->N);
    if (m->config.qk_norm) {
        int nh, nkv, hd;
        ct_model_qk_norm_heads(&m->config, &nh, &nkv, &hd);
        ops->qk_norm_forward(a->qkv, a->qk_rstd, a->qkv_pre, p->q_norm_w, p->k_norm_w, d->N, nh, nkv, hd,
                             m->config.norm_eps);
    }
    if (!is_llama(m)) return;
    CtRope rope;  // q and k heads rotate in place; v is left alone
    ct_model_layer_rope(m, l, pass->rope_len, &rope);
    ops->rope_forward(a->qkv, a->qkv, pass->positions, d->B, d->T, d->NH + d->NKV, d->HD, d->QKV, &rope);
}

// A branch's output (in `pre` with post_norms, else in proj) → proj: the post-norm (Gemma), then dropout.
static void branch_output(CtModel *m, const CtBlockActs *a, const CtAct *pre, float *post_rstd, const float *post_w,
                          const CtBlockPass *pass, int site, int N) {
    if (post_w) ct_model_post_norm_forward(m, a->proj, post_rstd, pre, post_w, N);
    if (pass->dropout > 0)
        m->ops->dropout_forward(a->proj, a->proj, (size_t)N * m->config.d_model, pass->dropout,
                                ct_model_dropout_seed(m, site));
}

void ct_model_block_forward(CtModel *m, int l, const CtBlockPass *pass, const CtBlockActs *a) {
    const CtOps *ops = m->ops;
    const CtLayerTensors *p = &m->w.layers[l];
    const CtModelDims d = ct_model_dims(m, pass->B, pass->T);
    const size_t NC = (size_t)d.N * d.C;
    const int post = m->config.post_norms;
    // pre-LN (gpt2, llama): each half reads the norm of the stream and adds to it;
    // post-LN (encoders): each half reads the stream and its norm follows the add
    const int post_ln = is_encoder(m);

    // attention half: x + postnorm(proj(attention(qkv(norm(x))))),
    // or post-LN: LN1(x + proj(attention(qkv(x))))
    const CtAct *attn_in = a->x;
    if (!post_ln) {
        ct_model_norm_forward(m, a->ln1, a->ln1_mean, a->ln1_rstd, a->x, p->ln1_w, p->ln1_b, d.N);
        attn_in = a->ln1;
    }
    qkv_forward(m, l, pass, a, attn_in, &d);
    attention(m, l, pass, a, &d);
    CtAct *attn_out = post ? a->attn_pre : a->proj;
    ops->matmul_forward(attn_out, a->atty, p->attn_out_w, p->attn_out_b, d.N, d.AW, d.C);
    if (m->lora) ct_lora_forward(m, l, CT_LORA_ATTN_OUT, attn_out, a->atty, d.N);
    branch_output(m, a, attn_out, a->attn_post_rstd, p->attn_post_w, pass, 2 + 3 * l, d.N);
    if (post_ln) {  // ln1 keeps the sum, the norm's input (its backward reads it)
        ops->residual_forward(a->ln1, a->x, a->proj, NC);
        ct_model_norm_forward(m, a->res2, a->ln1_mean, a->ln1_rstd, a->ln1, p->ln1_w, p->ln1_b, d.N);
    } else {
        ops->residual_forward(a->res2, a->x, a->proj, NC);
    }
    // MLP half: res2 + postnorm(proj(act(fc(norm(res2))))), or the Mixture of Experts in place
    // of proj(act(fc(·))) on an MoE layer; post-LN: LN2(res2 + proj(act(fc(res2))))
    const CtAct *mlp_in = a->res2;
    if (!post_ln) {
        ct_model_norm_forward(m, a->ln2, a->ln2_mean, a->ln2_rstd, a->res2, p->ln2_w, p->ln2_b, d.N);
        mlp_in = a->ln2;
    }
    CtAct *mlp_out = post ? a->mlp_pre : a->proj;
    if (ct_model_layer_is_moe(&m->config, l)) {
        ct_model_moe_forward(m, l, &a->moe, mlp_in, mlp_out, d.N);
    } else {
        if (fused_gelu_forward(m, pass, l)) {
            ops->matmul_bias_gelu_forward(a->fch_act, a->fch, mlp_in, p->fc_w, p->fc_b, d.N, d.C, d.F);
        } else {
            ops->matmul_forward(a->fch, mlp_in, p->fc_w, p->fc_b, d.N, d.C, d.FI);
            if (m->lora) ct_lora_forward(m, l, CT_LORA_FC, a->fch, mlp_in, d.N);
            ct_model_mlp_activation_forward(m, a->fch_act, a->fch, d.N);
        }
        ops->matmul_forward(mlp_out, a->fch_act, p->fc_out_w, p->fc_out_b, d.N, d.F, d.C);
        if (m->lora) ct_lora_forward(m, l, CT_LORA_FC_OUT, mlp_out, a->fch_act, d.N);
    }
    branch_output(m, a, mlp_out, a->mlp_post_rstd, p->mlp_post_w, pass, 3 + 3 * l, d.N);
    if (post_ln) {  // ln2 keeps the sum
        ops->residual_forward(a->ln2, a->res2, a->proj, NC);
        ct_model_norm_forward(m, a->out, a->ln2_mean, a->ln2_rstd, a->ln2, p->ln2_w, p->ln2_b, d.N);
    } else {
        ops->residual_forward(a->out, a->res2, a->proj, NC);
    }
}

void ct_model_head_forward(CtModel *m, CtAct *logits, CtAct *lnf, float *lnf_mean, float *lnf_rstd, const CtAct *x,
                           int N) {
    const int C = m->config.d_model;
    if (is_encoder(m)) {  // the MLM head's transform before its norm: GELU(dense(x)) (encoders have no MTP: m->act's buffers)
        m->ops->matmul_forward(m->act.mlm_pre, x, m->w.mlm_dense_w, m->w.mlm_dense_b, N, C, C);
        m->ops->gelu_erf_forward(m->act.mlm_act, m->act.mlm_pre, (size_t)N * C);
        x = m->act.mlm_act;
    }
    ct_model_norm_forward(m, lnf, lnf_mean, lnf_rstd, x, m->w.lnf_w, m->w.lnf_b, N);
    m->ops->matmul_forward(logits, lnf, m->w.lm_head, m->w.lm_head_b, N, C, m->config.vocab_size);
    if (m->config.final_softcap > 0)
        m->ops->softcap_forward(logits, (size_t)N * m->config.vocab_size, m->config.final_softcap);
}
