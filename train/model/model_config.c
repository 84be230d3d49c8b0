#include "train/model/model_config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"

#define GPT2(L, H, C, V, T)                                                                                  \
    {.arch = CT_ARCH_GPT2, .n_layer = L, .n_head = H, .n_kv_head = H, .d_model = C, .d_ff = 4 * (C), .vocab_size = V, \
     .max_seq_len = T, .norm_eps = 1e-5f, .rope_theta = 10000.0f, .tie_embeddings = 1}
#define LLAMA(L, H, KV, C, F, V, T, THETA, TIE)                                                                 \
    {.arch = CT_ARCH_LLAMA, .n_layer = L, .n_head = H, .n_kv_head = KV, .d_model = C, .d_ff = F, .vocab_size = V, \
     .max_seq_len = T, .norm_eps = 1e-5f, .rope_theta = THETA, .tie_embeddings = TIE}

// BERT/RoBERTa: post-LN encoders with the MLM head tied to the embeddings, eps 1e-12 (BERT) / 1e-5 (RoBERTa).
#define BERT(L, H, C, F, V, T)                                                                                    \
    {.arch = CT_ARCH_BERT, .n_layer = L, .n_head = H, .n_kv_head = H, .d_model = C, .d_ff = F, .vocab_size = V,    \
     .max_seq_len = T, .norm_eps = 1e-12f, .tie_embeddings = 1, .type_vocab_size = 2, .pooler = 1}
#define ROBERTA(L, H, C, F, V, T)                                                                                 \
    {.arch = CT_ARCH_ROBERTA, .n_layer = L, .n_head = H, .n_kv_head = H, .d_model = C, .d_ff = F, .vocab_size = V, \
     .max_seq_len = T, .norm_eps = 1e-5f, .tie_embeddings = 1, .type_vocab_size = 1, .pad_token_id = 1, .pooler = 1}

const CtModelPreset ct_model_presets[] = {
    {"gpt2-124m", "GPT-2 small (12 layers, 768 channels, 12 heads)", GPT2(12, 12, 768, 50257, 1024)},
    {"gpt2-350m", "GPT-2 medium (24 layers, 1024 channels, 16 heads)", GPT2(24, 16, 1024, 50257, 1024)},
    {"gpt2-774m", "GPT-2 large (36 layers, 1280 channels, 20 heads)", GPT2(36, 20, 1280, 50257, 1024)},
    {"gpt2-1558m", "GPT-2 XL (48 layers, 1600 channels, 25 heads)", GPT2(48, 25, 1600, 50257, 1024)},
    {"gpt2-tiny", "a small GPT-2 for tests and demos (4 layers, 128 channels, 4 heads, 4096 vocab)",
     GPT2(4, 4, 128, 4096, 256)},
    {"llama-tiny", "TinyStories-size LLaMA (6 layers, 288 channels, 6 heads, 8192 vocab)",
     LLAMA(6, 6, 6, 288, 768, 8192, 256, 10000.0f, 0)},
    {"llama-42m", "llama2.c stories42M shape with GQA (8 layers, 512 channels, 8 heads, 4 kv heads)",
     LLAMA(8, 8, 4, 512, 1376, 32000, 1024, 10000.0f, 0)},
    {"llama-110m", "llama2.c stories110M shape (12 layers, 768 channels, 12 heads)",
     LLAMA(12, 12, 12, 768, 2048, 32000, 1024, 10000.0f, 0)},
    {"llama-1b", "Llama 3.2 1B shape (16 layers, 2048 channels, 32 heads, 8 kv heads, tied)",
     LLAMA(16, 32, 8, 2048, 8192, 128256, 2048, 500000.0f, 1)},
    {"bert-base", "BERT base shape (12 layers, 768 channels, 12 heads, 30522 WordPiece vocab, 512 positions)",
     BERT(12, 12, 768, 3072, 30522, 512)},
    {"bert-tiny", "a small BERT for tests and demos (2 layers, 128 channels, 2 heads, 4096 vocab)",
     BERT(2, 2, 128, 512, 4096, 256)},
    {"roberta-base", "RoBERTa base shape (12 layers, 768 channels, 12 heads, 50265 byte-level BPE vocab, 512 positions)",
     ROBERTA(12, 12, 768, 3072, 50265, 512)},
    {"roberta-tiny", "a small RoBERTa for tests and demos (2 layers, 128 channels, 2 heads, 4096 vocab)",
     ROBERTA(2, 2, 128, 512, 4096, 256)},
};
const int ct_model_n_presets = (int)(sizeof ct_model_presets / sizeof ct_model_presets[0]);

int ct_model_preset(const char *name, CtModelConfig *out) {
    for (int i = 0; i < ct_model_n_presets; i++)
        if (strcmp(ct_model_presets[i].name, name) == 0) {
            *out = ct_model_presets[i].config;
            return 0;
        }
    char list[512] = "";
    for (int i = 0; i < ct_model_n_presets; i++) {
        if (i) strncat(list, ", ", sizeof list - strlen(list) - 1);
        strncat(list, ct_model_presets[i].name, sizeof list - strlen(list) - 1);
    }
    return ct_error_set("unknown model preset '%s' (presets: %s)", name, list);
}

static const char *const arch_names[] = {"gpt2", "llama", "bert", "roberta"};

static const char *const family_names[] = {"llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3",
                                              "mixtral", "qwen2_moe", "qwen3_moe", "olmoe"};
static const char *const rope_type_names[] = {"default", "linear", "dynamic", "yarn", "llama3"};
static const char *const gate_act_names[] = {"silu", "gelu_tanh"};
static const char *const router_names[] = {"softmax", "softmax_norm", "topk_softmax", "sigmoid", "sigmoid_norm"};
static const char *const mtp_style_names[] = {"sequential", "parallel"};
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char *name_of(const char *const *names, int n, int i) { return i >= 0 && i < n ? names[i] : "?"; }
static int index_of(const char *const *names, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0) return i;
    return -1;
}

const char *ct_arch_name(CtArch arch) { return name_of(arch_names, COUNT(arch_names), (int)arch); }
int ct_arch_from_name(const char *name, CtArch *out) {
    int i = index_of(arch_names, COUNT(arch_names), name);
    if (i >= 0) *out = (CtArch)i;
    return i >= 0 ? 0 : -1;
}
const char *ct_family_name(CtFamily f) { return name_of(family_names, COUNT(family_names), (int)f); }
const char *ct_rope_type_name(CtRopeType t) { return name_of(rope_type_names, COUNT(rope_type_names), (int)t); }
const char *ct_gate_act_name(CtGateAct a) { return name_of(gate_act_names, COUNT(gate_act_names), (int)a); }
int ct_family_from_name(const char *name, CtFamily *out) {
    int i = index_of(family_names, COUNT(family_names), name);
    if (i >= 0) *out = (CtFamily)i;
    return i >= 0 ? 0 : -1;
}
int ct_rope_type_from_name(const char *name, CtRopeType *out) {
    int i = index_of(rope_type_names, COUNT(rope_type_names), name);
    if (i >= 0) *out = (CtRopeType)i;
    return i >= 0 ? 0 : -1;
}
int ct_gate_act_from_name(const char *name, CtGateAct *out) {
    int i = index_of(gate_act_names, COUNT(gate_act_names), name);
    if (i >= 0) *out = (CtGateAct)i;
    return i >= 0 ? 0 : -1;
}
const char *ct_mtp_style_name(CtMtpStyle s) { return name_of(mtp_style_names, COUNT(mtp_style_names), (int)s); }
int ct_mtp_style_from_name(const char *name, CtMtpStyle *out) {
    int i = index_of(mtp_style_names, COUNT(mtp_style_names), name);
    if (i >= 0) *out = (CtMtpStyle)i;
    return i >= 0 ? 0 : -1;
}
const char *ct_router_name(CtRouter r) { return name_of(router_names, COUNT(router_names), (int)r); }
int ct_router_from_name(const char *name, CtRouter *out) {
    int i = index_of(router_names, COUNT(router_names), name);
    if (i >= 0) *out = (CtRouter)i;
    return i >= 0 ? 0 : -1;
}

// The RoPE scaling's parameters, as transformers' _validate_*_rope_parameters demand them.
static int validate_rope_scaling(const CtRopeScaling *s) {
    if ((int)s->type < 0 || (int)s->type >= COUNT(rope_type_names))
        return ct_error_set("model.rope_scaling.type %d is not a known RoPE type", (int)s->type);
    if (s->type == CT_ROPE_DEFAULT) return 0;
    const char *type = ct_rope_type_name(s->type);
    if (!(s->factor > 0)) return ct_error_set("model.rope_scaling.factor must be positive for RoPE type %s", type);
    if ((s->type == CT_ROPE_YARN || s->type == CT_ROPE_LLAMA3) && s->original_max_position < 1)
        return ct_error_set("model.rope_scaling.original_max_position must be positive for RoPE type %s", type);
    if (s->type == CT_ROPE_DYNAMIC && s->original_max_position < 0)
        return ct_error_set("model.rope_scaling.original_max_position must not be negative");
    if (s->type == CT_ROPE_LLAMA3 && !(s->low_freq_factor > 0 && s->high_freq_factor > s->low_freq_factor))
        return ct_error_set("model.rope_scaling: llama3 needs 0 < low_freq_factor < high_freq_factor (got %g and %g)",
                            (double)s->low_freq_factor, (double)s->high_freq_factor);
    if (s->type == CT_ROPE_YARN && (s->beta_fast < 0 || s->beta_slow < 0 || s->mscale < 0 || s->mscale_all_dim < 0 ||
                                    s->attention_factor < 0))
        return ct_error_set("model.rope_scaling: yarn's beta_fast, beta_slow, mscale, mscale_all_dim and "
                            "attention_factor must not be negative");
    return 0;
}

// The variant fields: each a llama-architecture feature, each within its range.
static int validate_variants(const CtModelConfig *c) {
    if ((int)c->family < 0 || (int)c->family >= COUNT(family_names))
        return ct_error_set("model.family %d is not a known family", (int)c->family);
    const int any = c->family || c->head_dim || c->qkv_bias || c->qk_norm || c->rope_scaling.type ||
                    c->rope_local_theta != 0 || c->sliding_window || c->sliding_window_pattern || c->gate_act ||
                    c->post_norms || c->embed_scale || c->query_scale != 0 || c->attn_softcap != 0 ||
                    c->final_softcap != 0;
    if (c->arch != CT_ARCH_LLAMA && any)
        return ct_error_set("%s models have none of the llama variants (family, head_dim, qkv_bias, qk_norm, "
                            "rope_scaling, sliding_window, gate_act, post_norms, embed_scale, query_scale, softcaps)",
                            ct_arch_name(c->arch));
    if (c->head_dim > 2 * 256) return ct_error_set("model.head_dim must be at most 512 (got %d)", c->head_dim);
    if (c->qkv_bias < 0 || c->qkv_bias > 1 || c->post_norms < 0 || c->post_norms > 1 || c->embed_scale < 0 ||
        c->embed_scale > 1)
        return ct_error_set("model.qkv_bias, post_norms and embed_scale are each 0 or 1");
    if (c->qk_norm < 0 || c->qk_norm > 2)
        return ct_error_set("model.qk_norm is 0 (none), 1 (per head) or 2 (over the whole q and k projections)");
    // the whole-projection norms run through the per-head ops as one "head" of n_head·head_dim
    // numbers each for q and for k, which needs the two projections to be as wide
    if (c->qk_norm == 2 && c->n_kv_head != c->n_head)
        return ct_error_set("model.qk_norm 2 (q/k norms over the whole projections, OLMoE's) needs model.n_kv_head "
                            "== model.n_head (got %d and %d)", c->n_kv_head, c->n_head);
    if ((int)c->gate_act < 0 || (int)c->gate_act >= COUNT(gate_act_names))
        return ct_error_set("model.gate_act %d is not silu or gelu_tanh", (int)c->gate_act);
    if (c->sliding_window < 0) return ct_error_set("model.sliding_window must not be negative (0: none)");
    if (c->sliding_window_pattern < 0)
        return ct_error_set("model.sliding_window_pattern must not be negative (0: every layer slides)");
    if (c->sliding_window_pattern && !c->sliding_window)
        return ct_error_set("model.sliding_window_pattern %d needs a model.sliding_window", c->sliding_window_pattern);
    if (c->rope_local_theta != 0 && !(c->rope_local_theta > 1))
        return ct_error_set("model.rope_local_theta must be above 1 (or 0: the layers' common base)");
    if (c->query_scale < 0 || c->attn_softcap < 0 || c->final_softcap < 0 || !isfinite(c->query_scale) ||
        !isfinite(c->attn_softcap) || !isfinite(c->final_softcap))
        return ct_error_set("model.query_scale, attn_softcap and final_softcap must be finite and not negative");
    return validate_rope_scaling(&c->rope_scaling);
}

// The Mixture-of-Experts fields: all zero for a dense model; else each within its range.
static int validate_moe(const CtModelConfig *c) {
    if (c->n_experts == 0) {
        if (c->top_k || c->moe_d_ff || c->n_shared_experts || c->shared_expert_gate || c->moe_layer_freq ||
            c->router || c->router_scale != 0)
            return ct_error_set("model.top_k, moe_d_ff, n_shared_experts, shared_expert_gate, moe_layer_freq, router "
                                "and router_scale need model.n_experts (a Mixture of Experts)");
        return 0;
    }
    if (c->arch != CT_ARCH_LLAMA) return ct_error_set("model.n_experts: Mixture-of-Experts layers need model.arch llama");
    if (c->n_experts < 2 || c->n_experts > CT_MOE_MAX_EXPERTS)
        return ct_error_set("model.n_experts must be from 2 to %d (got %d)", CT_MOE_MAX_EXPERTS, c->n_experts);
    if (c->top_k < 1 || c->top_k > c->n_experts || c->top_k > CT_MOE_MAX_TOP_K)
        return ct_error_set("model.top_k must be from 1 to model.n_experts (%d) and at most %d (got %d)", c->n_experts,
                            CT_MOE_MAX_TOP_K, c->top_k);
    if (c->moe_d_ff < 1) return ct_error_set("model.moe_d_ff must be positive (got %d)", c->moe_d_ff);
    if (c->n_shared_experts < 0) return ct_error_set("model.n_shared_experts must not be negative");
    if (c->shared_expert_gate < 0 || c->shared_expert_gate > 1)
        return ct_error_set("model.shared_expert_gate is 0 or 1");
    if (c->shared_expert_gate && !c->n_shared_experts)
        return ct_error_set("model.shared_expert_gate needs model.n_shared_experts");
    if (c->moe_layer_freq < 0) return ct_error_set("model.moe_layer_freq must not be negative (0 or 1: every layer)");
    if (c->moe_layer_freq > c->n_layer)
        return ct_error_set("model.moe_layer_freq %d leaves no MoE layer among %d", c->moe_layer_freq, c->n_layer);
    if ((int)c->router < 0 || (int)c->router >= COUNT(router_names))
        return ct_error_set("model.router %d is not a known router", (int)c->router);
    if (!isfinite(c->router_scale) || c->router_scale < 0)
        return ct_error_set("model.router_scale must be finite and not negative (0: 1)");
    return 0;
}

// The encoders' fields: set for bert/roberta (and their limits), zero for the decoders.
static int validate_encoder(const CtModelConfig *c) {
    if (!ct_model_is_encoder(c)) {
        if (c->type_vocab_size || c->pad_token_id || c->pooler)
            return ct_error_set("model.type_vocab_size, pad_token_id and pooler are for bert/roberta models");
        return 0;
    }
    const char *arch = ct_arch_name(c->arch);
    if (c->type_vocab_size < 1)
        return ct_error_set("model.type_vocab_size must be at least 1 for %s (BERT 2, RoBERTa 1)", arch);
    if (c->pad_token_id < 0 || c->pad_token_id >= c->vocab_size)
        return ct_error_set("model.pad_token_id %d is not a token id", c->pad_token_id);
    if (c->pooler < 0 || c->pooler > 1) return ct_error_set("model.pooler is 0 or 1");
    if (c->n_kv_head != c->n_head)
        return ct_error_set("%s models have no grouped-query heads: model.n_kv_head (%d) must equal model.n_head (%d)",
                            arch, c->n_kv_head, c->n_head);
    if (!c->tie_embeddings)
        return ct_error_set("%s: the MLM head's decoder is the word embedding (model.tie_embeddings true)", arch);
    if (c->mtp_depth || c->reward_head)
        return ct_error_set("%s models have no multi-token prediction or reward head (model.mtp_depth, reward_head)",
                            arch);
    return 0;
}

int ct_model_config_validate(const CtModelConfig *c) {
    if ((int)c->arch < 0 || (int)c->arch >= COUNT(arch_names))
        return ct_error_set("model.arch must be gpt2, llama, bert or roberta");
    if (c->n_layer < 1) return ct_error_set("model.n_layer must be at least 1 (got %d)", c->n_layer);
    if (c->n_head < 1 || c->d_model < 1 || c->d_ff < 1 || c->vocab_size < 2 || c->max_seq_len < 1)
        return ct_error_set("model sizes must be positive (n_head %d, d_model %d, d_ff %d, vocab_size %d, max_seq_len %d)",
                            c->n_head, c->d_model, c->d_ff, c->vocab_size, c->max_seq_len);
    if (c->head_dim < 0) return ct_error_set("model.head_dim must be positive, or 0 for d_model / n_head");
    if (!c->head_dim && c->d_model % c->n_head != 0)
        return ct_error_set("model.d_model (%d) must be a multiple of model.n_head (%d)", c->d_model, c->n_head);
    if (c->n_kv_head < 1 || c->n_head % c->n_kv_head != 0)
        return ct_error_set("model.n_head (%d) must be a multiple of model.n_kv_head (%d)", c->n_head, c->n_kv_head);
    if (validate_encoder(c) != 0) return -1;
    if (c->arch == CT_ARCH_GPT2 && c->n_kv_head != c->n_head)
        return ct_error_set("gpt2 models have no grouped-query heads: model.n_kv_head (%d) must equal model.n_head (%d)",
                            c->n_kv_head, c->n_head);
    if (c->arch == CT_ARCH_LLAMA && ct_model_head_dim(c) % 2 != 0)
        return ct_error_set("RoPE needs an even head size (got %d)", ct_model_head_dim(c));
    if (!(c->norm_eps > 0)) return ct_error_set("model.norm_eps must be positive");
    if (c->arch == CT_ARCH_LLAMA && !(c->rope_theta > 1)) return ct_error_set("model.rope_theta must be above 1");
    if (c->dropout < 0 || c->dropout >= 1) return ct_error_set("model.dropout must be in [0, 1)");
    if (validate_moe(c) != 0) return -1;
    if (c->reward_head < 0 || c->reward_head > 1) return ct_error_set("model.reward_head is 0 or 1");
    if (c->reward_head && (c->reward_pad_id < -1 || c->reward_pad_id >= c->vocab_size))
        return ct_error_set("model.reward_pad_id %d is not a token id (or -1)", c->reward_pad_id);
    if (c->mtp_depth < 0 || c->mtp_depth > CT_MODEL_MAX_MTP_DEPTH)
        return ct_error_set("model.mtp_depth must be from 0 to %d (got %d)", CT_MODEL_MAX_MTP_DEPTH, c->mtp_depth);
    if ((int)c->mtp_style < 0 || (int)c->mtp_style >= COUNT(mtp_style_names))
        return ct_error_set("model.mtp_style %d is not sequential or parallel", (int)c->mtp_style);
    // one model, one config: a style without modules would be a second spelling of "no modules"
    if (c->mtp_style != CT_MTP_SEQUENTIAL && c->mtp_depth == 0)
        return ct_error_set("model.mtp_style %s without modules (model.mtp_depth 0)", ct_mtp_style_name(c->mtp_style));
    if (c->mtp_depth && c->n_experts > 0)
        return ct_error_set("model.mtp_depth: multi-token prediction modules on a Mixture-of-Experts model are not "
                            "supported yet; train it with model.mtp_depth 0");
    if (c->mtp_depth && c->reward_head)
        return ct_error_set("model.mtp_depth: a reward model (model.reward_head) has no multi-token prediction; "
                            "set model.mtp_depth 0");
    return validate_variants(c);
}
