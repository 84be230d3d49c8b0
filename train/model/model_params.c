// The parameter table of every architecture: Hugging Face names, shapes, offsets in the one
// parameter buffer, and initialisation. One walk over the layout serves three purposes:
// counting, filling the table, and pointing a CtModelTensors at a buffer.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/rng.h"
#include "train/model/model_internal.h"

typedef struct {
    CtParamEntry *table;  // NULL: only count
    int n_tensors;
    size_t n_floats;
    float *base;          // NULL: no pointers wanted
} LayoutWalk;

static float *add_tensor(LayoutWalk *walk, const char *name, int64_t rows, int64_t cols, int hf_transposed,
                         CtParamInit init) {
    size_t numel = (size_t)(rows * (cols ? cols : 1));
    if (walk->table) {
        CtParamEntry *e = &walk->table[walk->n_tensors];
        snprintf(e->name, sizeof e->name, "%s", name);
        e->ndim = cols ? 2 : 1;
        e->shape[0] = rows;
        e->shape[1] = cols;
        e->offset = walk->n_floats;
        e->numel = numel;
        e->hf_transposed = hf_transposed;
        e->init = init;
    }
    float *p = walk->base ? walk->base + walk->n_floats : NULL;
    walk->n_tensors++;
    walk->n_floats += numel;
    return p;
}

#define NAME_MAX_LEN 96
static const char *layer_name(char *buf, const char *prefix, int layer, const char *suffix) {
    snprintf(buf, NAME_MAX_LEN, "%s.%d.%s", prefix, layer, suffix);
    return buf;
}

static void walk_gpt2_layer(const CtModelConfig *c, LayoutWalk *walk, CtLayerTensors *L, int l) {
    const int C = c->d_model, F = c->d_ff, QKV = ct_model_qkv_width(c);  // QKV = 3·C: no grouped heads
    const char *h = "transformer.h";
    char n[NAME_MAX_LEN];
    L->ln1_w = add_tensor(walk, layer_name(n, h, l, "ln_1.weight"), C, 0, 0, CT_INIT_ONES);
    L->ln1_b = add_tensor(walk, layer_name(n, h, l, "ln_1.bias"), C, 0, 0, CT_INIT_ZEROS);
    L->qkv_w = add_tensor(walk, layer_name(n, h, l, "attn.c_attn.weight"), QKV, C, 1, CT_INIT_NORMAL);
    L->qkv_b = add_tensor(walk, layer_name(n, h, l, "attn.c_attn.bias"), QKV, 0, 0, CT_INIT_ZEROS);
    L->attn_out_w = add_tensor(walk, layer_name(n, h, l, "attn.c_proj.weight"), C, C, 1, CT_INIT_NORMAL_RESIDUAL);
    L->attn_out_b = add_tensor(walk, layer_name(n, h, l, "attn.c_proj.bias"), C, 0, 0, CT_INIT_ZEROS);
    L->ln2_w = add_tensor(walk, layer_name(n, h, l, "ln_2.weight"), C, 0, 0, CT_INIT_ONES);
    L->ln2_b = add_tensor(walk, layer_name(n, h, l, "ln_2.bias"), C, 0, 0, CT_INIT_ZEROS);
    L->fc_w = add_tensor(walk, layer_name(n, h, l, "mlp.c_fc.weight"), F, C, 1, CT_INIT_NORMAL);
    L->fc_b = add_tensor(walk, layer_name(n, h, l, "mlp.c_fc.bias"), F, 0, 0, CT_INIT_ZEROS);
    L->fc_out_w = add_tensor(walk, layer_name(n, h, l, "mlp.c_proj.weight"), C, F, 1, CT_INIT_NORMAL_RESIDUAL);
    L->fc_out_b = add_tensor(walk, layer_name(n, h, l, "mlp.c_proj.bias"), C, 0, 0, CT_INIT_ZEROS);
}

static void walk_gpt2(const CtModelConfig *c, LayoutWalk *walk, CtModelTensors *t) {
    const int C = c->d_model;
    t->wte = add_tensor(walk, "transformer.wte.weight", c->vocab_size, C, 0, CT_INIT_NORMAL);
    t->wpe = add_tensor(walk, "transformer.wpe.weight", c->max_seq_len, C, 0, CT_INIT_NORMAL);
    for (int l = 0; l < c->n_layer; l++) {
        CtLayerTensors scratch = {0};
        walk_gpt2_layer(c, walk, t->layers ? &t->layers[l] : &scratch, l);
    }
    t->lnf_w = add_tensor(walk, "transformer.ln_f.weight", C, 0, 0, CT_INIT_ONES);
    t->lnf_b = add_tensor(walk, "transformer.ln_f.bias", C, 0, 0, CT_INIT_ZEROS);
    t->lm_head = c->tie_embeddings ? t->wte : add_tensor(walk, "lm_head.weight", c->vocab_size, C, 0, CT_INIT_NORMAL);
}

// BERT/RoBERTa (transformers' BertForMaskedLM / RobertaForMaskedLM names, prefix "bert" or
// "roberta"). In a post-LN block ln1 is the norm after the attention half's residual add
// (attention.output.LayerNorm) and ln2 the one after the MLP half's (output.LayerNorm).
// query|key|value weights adjacent, then their biases: the one fused q|k|v product.
static void walk_encoder_layer(const CtModelConfig *c, LayoutWalk *walk, CtLayerTensors *L, const char *prefix, int l) {
    const int C = c->d_model, F = c->d_ff;
    char n[NAME_MAX_LEN], h[48];
    snprintf(h, sizeof h, "%s.encoder.layer", prefix);
    memset(L, 0, sizeof *L);
    L->qkv_w = add_tensor(walk, layer_name(n, h, l, "attention.self.query.weight"), C, C, 0, CT_INIT_NORMAL);
    add_tensor(walk, layer_name(n, h, l, "attention.self.key.weight"), C, C, 0, CT_INIT_NORMAL);
    add_tensor(walk, layer_name(n, h, l, "attention.self.value.weight"), C, C, 0, CT_INIT_NORMAL);
    L->qkv_b = add_tensor(walk, layer_name(n, h, l, "attention.self.query.bias"), C, 0, 0, CT_INIT_ZEROS);
    add_tensor(walk, layer_name(n, h, l, "attention.self.key.bias"), C, 0, 0, CT_INIT_ZEROS);
    add_tensor(walk, layer_name(n, h, l, "attention.self.value.bias"), C, 0, 0, CT_INIT_ZEROS);
    L->attn_out_w = add_tensor(walk, layer_name(n, h, l, "attention.output.dense.weight"), C, C, 0, CT_INIT_NORMAL);
    L->attn_out_b = add_tensor(walk, layer_name(n, h, l, "attention.output.dense.bias"), C, 0, 0, CT_INIT_ZEROS);
    L->ln1_w = add_tensor(walk, layer_name(n, h, l, "attention.output.LayerNorm.weight"), C, 0, 0, CT_INIT_ONES);
    L->ln1_b = add_tensor(walk, layer_name(n, h, l, "attention.output.LayerNorm.bias"), C, 0, 0, CT_INIT_ZEROS);
    L->fc_w = add_tensor(walk, layer_name(n, h, l, "intermediate.dense.weight"), F, C, 0, CT_INIT_NORMAL);
    L->fc_b = add_tensor(walk, layer_name(n, h, l, "intermediate.dense.bias"), F, 0, 0, CT_INIT_ZEROS);
    L->fc_out_w = add_tensor(walk, layer_name(n, h, l, "output.dense.weight"), C, F, 0, CT_INIT_NORMAL);
    L->fc_out_b = add_tensor(walk, layer_name(n, h, l, "output.dense.bias"), C, 0, 0, CT_INIT_ZEROS);
    L->ln2_w = add_tensor(walk, layer_name(n, h, l, "output.LayerNorm.weight"), C, 0, 0, CT_INIT_ONES);
    L->ln2_b = add_tensor(walk, layer_name(n, h, l, "output.LayerNorm.bias"), C, 0, 0, CT_INIT_ZEROS);
}

// The embeddings (word, position, token type, LayerNorm), the blocks, the pooler, then the MLM
// head: BERT's cls.predictions.{transform.dense, transform.LayerNorm, bias}, RoBERTa's
// lm_head.{dense, layer_norm, bias}. The decoder's weight is the word embedding (tied; transformers
// saves it, when at all, as a copy: cls.predictions.decoder.weight / lm_head.decoder.weight). As
// transformers initialises BERT: every weight normal(0, 0.02), no residual scaling.
static void walk_encoder(const CtModelConfig *c, LayoutWalk *walk, CtModelTensors *t) {
    const int C = c->d_model, roberta = c->arch == CT_ARCH_ROBERTA;
    const char *p = roberta ? "roberta" : "bert";
    char n[NAME_MAX_LEN];
#define PREFIXED(suffix) (snprintf(n, sizeof n, "%s.%s", p, suffix), n)
    t->wte = add_tensor(walk, PREFIXED("embeddings.word_embeddings.weight"), c->vocab_size, C, 0, CT_INIT_NORMAL);
    t->wpe = add_tensor(walk, PREFIXED("embeddings.position_embeddings.weight"), ct_model_position_rows(c), C, 0,
                        CT_INIT_NORMAL);
    t->wtt = add_tensor(walk, PREFIXED("embeddings.token_type_embeddings.weight"), c->type_vocab_size, C, 0,
                        CT_INIT_NORMAL);
    t->emb_ln_w = add_tensor(walk, PREFIXED("embeddings.LayerNorm.weight"), C, 0, 0, CT_INIT_ONES);
    t->emb_ln_b = add_tensor(walk, PREFIXED("embeddings.LayerNorm.bias"), C, 0, 0, CT_INIT_ZEROS);
    for (int l = 0; l < c->n_layer; l++) {
        CtLayerTensors scratch;
        walk_encoder_layer(c, walk, t->layers ? &t->layers[l] : &scratch, p, l);
    }
    t->pooler_w = c->pooler ? add_tensor(walk, PREFIXED("pooler.dense.weight"), C, C, 0, CT_INIT_NORMAL) : NULL;
    t->pooler_b = c->pooler ? add_tensor(walk, PREFIXED("pooler.dense.bias"), C, 0, 0, CT_INIT_ZEROS) : NULL;
#undef PREFIXED
    const char *head = roberta ? "lm_head" : "cls.predictions";
#define HEAD(suffix) (snprintf(n, sizeof n, "%s.%s", head, suffix), n)
    t->mlm_dense_w = add_tensor(walk, HEAD(roberta ? "dense.weight" : "transform.dense.weight"), C, C, 0, CT_INIT_NORMAL);
    t->mlm_dense_b = add_tensor(walk, HEAD(roberta ? "dense.bias" : "transform.dense.bias"), C, 0, 0, CT_INIT_ZEROS);
    t->lnf_w = add_tensor(walk, HEAD(roberta ? "layer_norm.weight" : "transform.LayerNorm.weight"), C, 0, 0, CT_INIT_ONES);
    t->lnf_b = add_tensor(walk, HEAD(roberta ? "layer_norm.bias" : "transform.LayerNorm.bias"), C, 0, 0, CT_INIT_ZEROS);
    t->lm_head_b = add_tensor(walk, HEAD("bias"), c->vocab_size, 0, 0, CT_INIT_ZEROS);
#undef HEAD
    t->lm_head = t->wte;
}

// An MoE layer's MLP (Qwen2-MoE / Qwen3-MoE / OLMoE names): the router, its selection bias
// (sigmoid routers: 1-D, so the optimizer never decays it, and backward gives it no gradient),
// each expert's gate, up and down (gate|up adjacent: one [2F', C] product per expert, experts
// 3F'C apart), then the shared expert and its gate.
static void walk_moe_mlp(const CtModelConfig *c, LayoutWalk *walk, CtLayerTensors *L, int l) {
    const int C = c->d_model, E = c->n_experts, F = c->moe_d_ff, FS = c->n_shared_experts * c->moe_d_ff;
    const char *m = "model.layers";
    char n[NAME_MAX_LEN], suffix[64];
    L->router_w = add_tensor(walk, layer_name(n, m, l, "mlp.gate.weight"), E, C, 0, CT_INIT_NORMAL);
    if (ct_model_router_has_bias(c))
        L->router_bias = add_tensor(walk, layer_name(n, m, l, "mlp.gate.e_score_correction_bias"), E, 0, 0,
                                    CT_INIT_ZEROS);
    static const char *const projections[] = {"gate_proj", "up_proj", "down_proj"};
    for (int e = 0; e < E; e++)
        for (int j = 0; j < 3; j++) {
            snprintf(suffix, sizeof suffix, "mlp.experts.%d.%s.weight", e, projections[j]);
            float *w = add_tensor(walk, layer_name(n, m, l, suffix), j < 2 ? F : C, j < 2 ? C : F, 0,
                                  j < 2 ? CT_INIT_NORMAL : CT_INIT_NORMAL_RESIDUAL);
            if (e == 0 && j == 0) L->experts_w = w;
        }
    if (FS > 0) {
        L->shared_fc_w = add_tensor(walk, layer_name(n, m, l, "mlp.shared_expert.gate_proj.weight"), FS, C, 0,
                                    CT_INIT_NORMAL);
        add_tensor(walk, layer_name(n, m, l, "mlp.shared_expert.up_proj.weight"), FS, C, 0, CT_INIT_NORMAL);
        L->shared_fc_out_w = add_tensor(walk, layer_name(n, m, l, "mlp.shared_expert.down_proj.weight"), C, FS, 0,
                                        CT_INIT_NORMAL_RESIDUAL);
    }
    if (c->shared_expert_gate)
        L->shared_gate_w = add_tensor(walk, layer_name(n, m, l, "mlp.shared_expert_gate.weight"), 1, C, 0,
                                      CT_INIT_NORMAL);
}

// Within a layer: the first norm, q|k|v (weights, then biases when the config has them: each
// fused product is one run of adjacent entries), the per-head q and k norms, o, the norm on the
// attention output (Gemma), the second norm, gate|up, down (or an MoE layer's MLP), the norm on the
// MLP output (Gemma).
// Gemma's post_attention_layernorm is the norm on the attention output and its
// pre_feedforward_layernorm our second norm; elsewhere post_attention_layernorm is the second norm.
static void walk_llama_layer(const CtModelConfig *c, LayoutWalk *walk, CtLayerTensors *L, int l) {
    const int C = c->d_model, F = c->d_ff, HD = ct_model_head_dim(c);
    const int64_t Q = (int64_t)c->n_head * HD, KV = (int64_t)c->n_kv_head * HD;
    const char *m = "model.layers";
    char n[NAME_MAX_LEN];
    memset(L, 0, sizeof *L);
    L->ln1_w = add_tensor(walk, layer_name(n, m, l, "input_layernorm.weight"), C, 0, 0, CT_INIT_ONES);
    // q, k, v adjacent: one [(NH+2·NKV)·HD, C] product computes all three
    L->qkv_w = add_tensor(walk, layer_name(n, m, l, "self_attn.q_proj.weight"), Q, C, 0, CT_INIT_NORMAL);
    add_tensor(walk, layer_name(n, m, l, "self_attn.k_proj.weight"), KV, C, 0, CT_INIT_NORMAL);
    add_tensor(walk, layer_name(n, m, l, "self_attn.v_proj.weight"), KV, C, 0, CT_INIT_NORMAL);
    if (c->qkv_bias) {
        L->qkv_b = add_tensor(walk, layer_name(n, m, l, "self_attn.q_proj.bias"), Q, 0, 0, CT_INIT_ZEROS);
        add_tensor(walk, layer_name(n, m, l, "self_attn.k_proj.bias"), KV, 0, 0, CT_INIT_ZEROS);
        add_tensor(walk, layer_name(n, m, l, "self_attn.v_proj.bias"), KV, 0, 0, CT_INIT_ZEROS);
    }
    if (c->qk_norm) {
        int nh, nkv, norm_width;  // head_dim per head, or the whole projection (OLMoE)
        ct_model_qk_norm_heads(c, &nh, &nkv, &norm_width);
        L->q_norm_w = add_tensor(walk, layer_name(n, m, l, "self_attn.q_norm.weight"), norm_width, 0, 0, CT_INIT_ONES);
        L->k_norm_w = add_tensor(walk, layer_name(n, m, l, "self_attn.k_norm.weight"), norm_width, 0, 0, CT_INIT_ONES);
    }
    L->attn_out_w = add_tensor(walk, layer_name(n, m, l, "self_attn.o_proj.weight"), C, Q, 0, CT_INIT_NORMAL_RESIDUAL);
    if (c->post_norms) {
        L->attn_post_w = add_tensor(walk, layer_name(n, m, l, "post_attention_layernorm.weight"), C, 0, 0, CT_INIT_ONES);
        L->ln2_w = add_tensor(walk, layer_name(n, m, l, "pre_feedforward_layernorm.weight"), C, 0, 0, CT_INIT_ONES);
    } else {
        L->ln2_w = add_tensor(walk, layer_name(n, m, l, "post_attention_layernorm.weight"), C, 0, 0, CT_INIT_ONES);
    }
    if (ct_model_layer_is_moe(c, l)) {
        walk_moe_mlp(c, walk, L, l);
    } else {  // gate and up adjacent: one [2F, C] product, SwiGLU (GeGLU) reads the two halves
        L->fc_w = add_tensor(walk, layer_name(n, m, l, "mlp.gate_proj.weight"), F, C, 0, CT_INIT_NORMAL);
        add_tensor(walk, layer_name(n, m, l, "mlp.up_proj.weight"), F, C, 0, CT_INIT_NORMAL);
        L->fc_out_w = add_tensor(walk, layer_name(n, m, l, "mlp.down_proj.weight"), C, F, 0, CT_INIT_NORMAL_RESIDUAL);
    }
    if (c->post_norms)
        L->mlp_post_w = add_tensor(walk, layer_name(n, m, l, "post_feedforward_layernorm.weight"), C, 0, 0, CT_INIT_ONES);
}

static void walk_llama(const CtModelConfig *c, LayoutWalk *walk, CtModelTensors *t) {
    const int C = c->d_model;
    t->wte = add_tensor(walk, "model.embed_tokens.weight", c->vocab_size, C, 0, CT_INIT_NORMAL);
    t->wpe = NULL;
    for (int l = 0; l < c->n_layer; l++) {
        CtLayerTensors scratch;
        walk_llama_layer(c, walk, t->layers ? &t->layers[l] : &scratch, l);
    }
    t->lnf_w = add_tensor(walk, "model.norm.weight", C, 0, 0, CT_INIT_ONES);
    t->lnf_b = NULL;
    t->lm_head = c->tie_embeddings ? t->wte : add_tensor(walk, "lm_head.weight", c->vocab_size, C, 0, CT_INIT_NORMAL);
}

// Multi-token prediction module k (1..D) as DeepSeek-V3 names it: layer n_layer + k − 1 of the
// family's prefix with enorm, hnorm and eh_proj [C, 2C] (columns 0..C−1 read the normalised
// embedding, C..2C−1 the normalised hidden state: the order of DeepSeek-V3's checkpoints and of
// vLLM's torch.cat([enorm(e), hnorm(h)])), the block's own tensors under their usual names, and
// shared_head.norm. The norms are the family's (RMSNorm; GPT-2's LayerNorm with its bias).
// The embedding and the output head are the main model's.
// Parallel heads (model.mtp_style parallel) have no input of their own: head k is the block and
// shared_head.norm under the same names, without enorm, hnorm and eh_proj.
static void walk_mtp(const CtModelConfig *c, LayoutWalk *walk, CtModelTensors *t) {
    const int C = c->d_model, gpt2 = c->arch == CT_ARCH_GPT2, sequential = c->mtp_style == CT_MTP_SEQUENTIAL;
    const char *prefix = gpt2 ? "transformer.h" : "model.layers";
    char n[NAME_MAX_LEN];
    for (int k = 1; k <= c->mtp_depth; k++) {
        const int l = c->n_layer + k - 1;
        CtMtpTensors scratch = {0}, *M = t->mtp ? &t->mtp[k - 1] : &scratch;
        CtLayerTensors block = {0}, *L = t->layers ? &t->layers[l] : &block;
        if (sequential) {
            M->enorm_w = add_tensor(walk, layer_name(n, prefix, l, "enorm.weight"), C, 0, 0, CT_INIT_ONES);
            M->enorm_b = gpt2 ? add_tensor(walk, layer_name(n, prefix, l, "enorm.bias"), C, 0, 0, CT_INIT_ZEROS) : NULL;
            M->hnorm_w = add_tensor(walk, layer_name(n, prefix, l, "hnorm.weight"), C, 0, 0, CT_INIT_ONES);
            M->hnorm_b = gpt2 ? add_tensor(walk, layer_name(n, prefix, l, "hnorm.bias"), C, 0, 0, CT_INIT_ZEROS) : NULL;
            M->eh_proj =
                add_tensor(walk, layer_name(n, prefix, l, "eh_proj.weight"), C, 2 * (int64_t)C, 0, CT_INIT_NORMAL);
        }
        if (gpt2)
            walk_gpt2_layer(c, walk, L, l);
        else
            walk_llama_layer(c, walk, L, l);
        M->norm_w = add_tensor(walk, layer_name(n, prefix, l, "shared_head.norm.weight"), C, 0, 0, CT_INIT_ONES);
        M->norm_b =
            gpt2 ? add_tensor(walk, layer_name(n, prefix, l, "shared_head.norm.bias"), C, 0, 0, CT_INIT_ZEROS) : NULL;
    }
}

// A reward model's scalar head comes last, after the LM head (which stays: the same checkpoint
// still generates); transformers' *ForSequenceClassification names it score.weight [num_labels, C].
static void walk_layout(const CtModelConfig *c, LayoutWalk *walk, CtModelTensors *t) {
    if (c->arch == CT_ARCH_GPT2)
        walk_gpt2(c, walk, t);
    else if (ct_model_is_encoder(c))
        walk_encoder(c, walk, t);
    else
        walk_llama(c, walk, t);
    walk_mtp(c, walk, t);  // after the head: a model without modules keeps its layout
    t->score = c->reward_head ? add_tensor(walk, "score.weight", 1, c->d_model, 0, CT_INIT_NORMAL) : NULL;
}

void ct_model_layout_count(const CtModelConfig *c, int *n_tensors, size_t *n_floats) {
    LayoutWalk walk = {0};
    CtModelTensors t = {0};
    walk_layout(c, &walk, &t);
    *n_tensors = walk.n_tensors;
    *n_floats = walk.n_floats;
}

void ct_model_layout_table(const CtModelConfig *c, CtParamEntry *table) {
    LayoutWalk walk = {.table = table};
    CtModelTensors t = {0};
    walk_layout(c, &walk, &t);
}

void ct_model_layout_bind(const CtModelConfig *c, float *base, CtModelTensors *t) {
    LayoutWalk walk = {.base = base};
    walk_layout(c, &walk, t);
}

void ct_model_init(CtModel *m, uint64_t seed) {
    const float std = 0.02f, residual_std = 0.02f / sqrtf(2.0f * (float)m->config.n_layer);
    for (int i = 0; i < m->n_tensors; i++) {
        const CtParamEntry *e = &m->table[i];
        float *p = m->params + e->offset;
        CtRng rng;
        ct_rng_seed_stream(&rng, seed, CT_RNG_STREAM_MODEL_INIT + (uint64_t)i);
        switch (e->init) {
        case CT_INIT_NORMAL: ct_rng_fill_normal(&rng, p, e->numel, 0, std); break;
        case CT_INIT_NORMAL_RESIDUAL: ct_rng_fill_normal(&rng, p, e->numel, 0, residual_std); break;
        case CT_INIT_ONES:
            for (size_t j = 0; j < e->numel; j++) p[j] = 1;
            break;
        case CT_INIT_ZEROS: memset(p, 0, e->numel * sizeof(float)); break;
        }
    }
    ct_model_sync_to_device(m);
}

void ct_model_named_tensors(const CtModel *m, int gradients, CtNamedTensor *out) {
    float *base = gradients ? m->grads : m->params;  // host memory (a device model: sync first)
    for (int i = 0; i < m->n_tensors; i++) {
        const CtParamEntry *e = &m->table[i];
        out[i] = (CtNamedTensor){.name = e->name, .ndim = e->ndim, .dtype = CT_DTYPE_F32, .data = base + e->offset};
        out[i].shape[0] = e->shape[0];
        out[i].shape[1] = e->shape[1];
    }
}

// The keys a query sees on average in a causal pass of T tokens: T/2 (the formula's usual
// approximation), or with a window W < T: W − W²/(2T) (W keys each, fewer for the first W).
static double mean_keys_seen(int T, int window) {
    if (window <= 0 || window >= T) return T / 2.0;
    return window - (double)window * window / (2.0 * T);
}

double ct_model_flops_per_token(const CtModelConfig *c, int T, int weights_frozen) {
    const double C = c->d_model, F = c->d_ff, AW = ct_model_attn_width(c);
    double qkv = C * ct_model_qkv_width(c), out = AW * C;
    double mlp = C * ct_model_fc_width(c) + F * C;  // the first product, then the second
    // An MoE layer's active weights per token: the router, top_k experts' gate|up and down, the
    // shared expert and its gate (the sorting, gathering and weighting are not products).
    const double FM = c->moe_d_ff, FS = (double)c->n_shared_experts * c->moe_d_ff;
    double moe = C * c->n_experts + c->top_k * 3 * FM * C + 3 * FS * C + (c->shared_expert_gate ? C : 0);
    // the head: the LM head, or a reward model's score (its training steps never run the LM head)
    double n_matmul = c->reward_head ? C : (double)c->vocab_size * C;
    if (ct_model_is_encoder(c)) n_matmul += C * C;  // the MLM head's dense transform
    for (int l = 0; l < c->n_layer; l++) n_matmul += qkv + out + (ct_model_layer_is_moe(c, l) ? moe : mlp);
    // multi-token prediction: each module's eh_proj [C, 2C] (sequential only), its (dense) block and
    // the shared head again
    const double eh_proj = c->mtp_style == CT_MTP_SEQUENTIAL ? 2 * C * C : 0;
    n_matmul += c->mtp_depth * (eh_proj + qkv + out + mlp + (double)c->vocab_size * C);
    double attention = 0;  // QKᵀ and P·V, 2·AW each per key seen forward, twice that backward
    for (int l = 0; l < c->n_layer + c->mtp_depth; l++)
        attention += 12.0 * AW * (ct_model_is_encoder(c) ? T : mean_keys_seen(T, ct_model_layer_slides(c, l) ? c->sliding_window : 0));
    return (weights_frozen ? 4 : 6) * n_matmul + attention;
}
