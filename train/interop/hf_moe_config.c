// The MoE keys of config.json, both ways. See hf_moe_config.h; the defaults are transformers
// 5.23's (what each config class fills in when config.json leaves a key out).
#include "train/interop/hf_moe_config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"

typedef struct {
    CtFamily family;
    const char *experts_key;  // the class's own name for the expert count
    const char *experts_alias;  // the other name its attribute_map accepts (NULL: none)
    int experts, top_k;       // defaults
    int moe_d_ff;             // default moe_intermediate_size (0: the experts are intermediate_size wide)
} MoeFamily;

static const MoeFamily moe_families[] = {
    {CT_FAMILY_MIXTRAL, "num_local_experts", "num_experts", 8, 2, 0},
    {CT_FAMILY_QWEN2_MOE, "num_experts", NULL, 60, 4, 1408},
    {CT_FAMILY_QWEN3_MOE, "num_experts", "num_local_experts", 128, 8, 768},
    {CT_FAMILY_OLMOE, "num_experts", "num_local_experts", 64, 8, 0},
};
#define N_MOE_FAMILIES (sizeof moe_families / sizeof moe_families[0])

static const MoeFamily *moe_family(CtFamily f) {
    for (size_t i = 0; i < N_MOE_FAMILIES; i++)
        if (moe_families[i].family == f) return &moe_families[i];
    return NULL;
}

int ct_hf_family_is_moe(CtFamily family) { return moe_family(family) != NULL; }

static int is_unset(const cJSON *v) { return !v || cJSON_IsNull(v); }

static const cJSON *item(const cJSON *root, const char *key) { return cJSON_GetObjectItemCaseSensitive(root, key); }

// A positive integer key; `def` when absent or null.
static int get_int(const cJSON *root, const char *source, const char *key, int def, int *out) {
    const cJSON *v = item(root, key);
    if (is_unset(v)) return *out = def, 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 1 || v->valuedouble > 1e9)
        return ct_error_set("%s: config key '%s' must be a positive integer", source, key);
    *out = (int)v->valuedouble;
    return 0;
}

static int get_bool(const cJSON *root, const char *source, const char *key, int def, int *out) {
    const cJSON *v = item(root, key);
    if (is_unset(v)) return *out = def, 0;
    if (!cJSON_IsBool(v)) return ct_error_set("%s: config key '%s' must be true or false", source, key);
    *out = cJSON_IsTrue(v);
    return 0;
}

// The expert count under either of the family's names; both given and different is refused
// (which one transformers keeps depends on the order of its attribute assignments).
static int read_experts(const cJSON *root, const char *source, const MoeFamily *f, int *out) {
    int a = 0, b = 0;
    if (get_int(root, source, f->experts_key, 0, &a) != 0) return -1;
    if (f->experts_alias && get_int(root, source, f->experts_alias, 0, &b) != 0) return -1;
    if (a && b && a != b)
        return ct_error_set("%s: %s (%d) and %s (%d) disagree; transformers reads them as one number", source,
                            f->experts_key, a, f->experts_alias, b);
    *out = a ? a : b ? b : f->experts;
    return 0;
}

int ct_hf_moe_parse(const cJSON *root, const char *source, CtModelConfig *m) {
    const MoeFamily *f = moe_family(m->family);
    if (!f) return 0;
    if (read_experts(root, source, f, &m->n_experts) != 0 ||
        get_int(root, source, "num_experts_per_tok", f->top_k, &m->top_k) != 0)
        return -1;
    if (m->top_k > m->n_experts)
        return ct_error_set("%s: num_experts_per_tok (%d) is more than the %d experts", source, m->top_k, m->n_experts);
    m->moe_d_ff = m->d_ff;
    if (f->moe_d_ff && get_int(root, source, "moe_intermediate_size", f->moe_d_ff, &m->moe_d_ff) != 0) return -1;

    if (m->family == CT_FAMILY_MIXTRAL) {
        const cJSON *jitter = item(root, "router_jitter_noise");
        if (!is_unset(jitter) && (!cJSON_IsNumber(jitter) || jitter->valuedouble != 0))
            return ct_error_set("%s: router_jitter_noise = %g is not supported: ctrain's router has no input noise "
                                "(set it to 0.0; it acts in training only)", source,
                                cJSON_IsNumber(jitter) ? jitter->valuedouble : NAN);
        m->router = CT_ROUTER_TOPK_SOFTMAX;  // softmax, top-k, renormalised: the softmax of the top-k logits
        return 0;
    }
    int norm_topk = 0;
    if (get_bool(root, source, "norm_topk_prob", 0, &norm_topk) != 0) return -1;
    m->router = norm_topk ? CT_ROUTER_SOFTMAX_NORM : CT_ROUTER_SOFTMAX;
    if (m->family == CT_FAMILY_OLMOE) {
        if (!is_unset(item(root, "clip_qkv")))
            return ct_error_set("%s: clip_qkv is not supported: ctrain does not clamp q, k and v (set it to null)",
                                source);
        return 0;
    }
    // Qwen2-MoE and Qwen3-MoE: which layers are MoE
    const cJSON *only = item(root, "mlp_only_layers");
    if (!is_unset(only) && !(cJSON_IsArray(only) && cJSON_GetArraySize(only) == 0))
        return ct_error_set("%s: mlp_only_layers is not supported: ctrain makes every decoder_sparse_step-th layer MoE "
                            "and cannot list dense layers (it must be empty)", source);
    if (get_int(root, source, "decoder_sparse_step", 1, &m->moe_layer_freq) != 0) return -1;
    if (m->moe_layer_freq > m->n_layer)
        return ct_error_set("%s: decoder_sparse_step (%d) is above num_hidden_layers (%d): no layer would be MoE",
                            source, m->moe_layer_freq, m->n_layer);
    if (m->family == CT_FAMILY_QWEN2_MOE) {
        int shared = 0;
        if (get_int(root, source, "shared_expert_intermediate_size", 5632, &shared) != 0) return -1;
        if (shared % m->moe_d_ff != 0)
            return ct_error_set("%s: shared_expert_intermediate_size (%d) is not a multiple of moe_intermediate_size "
                                "(%d): ctrain's shared experts are n · moe_intermediate_size wide", source, shared,
                                m->moe_d_ff);
        m->n_shared_experts = shared / m->moe_d_ff;
        m->shared_expert_gate = 1;  // Qwen2MoeSparseMoeBlock always gates its shared expert
    }
    return 0;
}

int ct_hf_moe_intermediate_size(const CtModelConfig *m) {
    return m->family == CT_FAMILY_MIXTRAL || m->family == CT_FAMILY_OLMOE ? m->moe_d_ff : m->d_ff;
}

// What the family's model class computes, against the model's shape; 0, or -1 + error.
static int check_expressible(const CtModelConfig *m) {
    const char *fam = ct_family_name(m->family);
    const int moe = ct_hf_family_is_moe(m->family);
    if (!moe && m->n_experts > 0)
        return ct_error_set("model.n_experts: transformers' %s model has no Mixture-of-Experts layers; set model.family "
                            "to mixtral, qwen2_moe, qwen3_moe or olmoe to export experts", fam);
    if (!moe) return 0;
    if (m->n_experts == 0)
        return ct_error_set("model.family %s is a Mixture of Experts; this model has no experts (model.n_experts 0)",
                            fam);
    const CtRouter r = m->router;
    const int routers_ok = m->family == CT_FAMILY_MIXTRAL ? r == CT_ROUTER_TOPK_SOFTMAX || r == CT_ROUTER_SOFTMAX_NORM
                                                          : r == CT_ROUTER_SOFTMAX || r == CT_ROUTER_SOFTMAX_NORM;
    if (!routers_ok)
        return ct_error_set("model.router %s: transformers' %s routes with %s", ct_router_name(r), fam,
                            m->family == CT_FAMILY_MIXTRAL ? "topk_softmax (= softmax_norm)"
                                                           : "softmax or softmax_norm (norm_topk_prob)");
    if (ct_model_router_scale(m) != 1)
        return ct_error_set("model.router_scale %g: transformers' %s does not scale the routed weights",
                            (double)m->router_scale, fam);
    const int qwen2 = m->family == CT_FAMILY_QWEN2_MOE;
    if (qwen2 && !(m->n_shared_experts > 0 && m->shared_expert_gate))
        return ct_error_set("model.n_shared_experts: transformers' qwen2_moe has a gated shared expert "
                            "(n_shared_experts >= 1 and shared_expert_gate)");
    if (!qwen2 && m->n_shared_experts > 0)
        return ct_error_set("model.n_shared_experts: transformers' %s has no shared experts", fam);
    const int sparse_step = m->family == CT_FAMILY_QWEN2_MOE || m->family == CT_FAMILY_QWEN3_MOE;
    if (!sparse_step && m->moe_layer_freq > 1)
        return ct_error_set("model.moe_layer_freq %d: every layer of transformers' %s is MoE", m->moe_layer_freq, fam);
    const int qk = m->family == CT_FAMILY_QWEN3_MOE ? 1 : m->family == CT_FAMILY_OLMOE ? 2 : 0;
    if (m->qk_norm != qk)
        return ct_error_set("model.qk_norm %d: transformers' %s has %s", m->qk_norm, fam,
                            qk == 1   ? "per-head q/k norms (qk_norm 1: model.qk_norm=true)"
                            : qk == 2 ? "q/k norms over the whole projections (qk_norm 2: model.qk_norm=true "
                                        "model.qk_norm_over=projection)"
                                      : "no q/k norms");
    if (m->family != CT_FAMILY_QWEN2_MOE && m->qkv_bias)
        return ct_error_set("model.qkv_bias: transformers' %s has no q/k/v biases", fam);
    if (m->family == CT_FAMILY_OLMOE && m->sliding_window > 0)
        return ct_error_set("model.sliding_window: transformers' olmoe attends to the whole context");
    if ((m->family == CT_FAMILY_MIXTRAL || m->family == CT_FAMILY_QWEN3_MOE) && m->sliding_window_pattern)
        return ct_error_set("model.sliding_window_pattern: every layer of transformers' %s slides when it has a "
                            "window", fam);
    return 0;
}

int ct_hf_moe_write(cJSON *o, const CtModelConfig *m) {
    if (check_expressible(m) != 0) return -1;
    const MoeFamily *f = moe_family(m->family);
    if (!f) return 0;
    cJSON_AddNumberToObject(o, f->experts_key, m->n_experts);
    cJSON_AddNumberToObject(o, "num_experts_per_tok", m->top_k);
    cJSON_AddBoolToObject(o, "output_router_logits", 0);
    if (m->family == CT_FAMILY_MIXTRAL) {
        cJSON_AddRawToObject(o, "router_jitter_noise", "0.0");
        return 0;
    }
    cJSON_AddBoolToObject(o, "norm_topk_prob", m->router == CT_ROUTER_SOFTMAX_NORM);
    if (m->family == CT_FAMILY_OLMOE) {
        cJSON_AddNullToObject(o, "clip_qkv");
        return 0;
    }
    cJSON_AddNumberToObject(o, "moe_intermediate_size", m->moe_d_ff);
    cJSON_AddNumberToObject(o, "decoder_sparse_step", m->moe_layer_freq > 1 ? m->moe_layer_freq : 1);
    cJSON_AddArrayToObject(o, "mlp_only_layers");
    if (m->family == CT_FAMILY_QWEN2_MOE) {
        cJSON_AddNumberToObject(o, "shared_expert_intermediate_size", (double)m->n_shared_experts * m->moe_d_ff);
        cJSON_AddBoolToObject(o, "qkv_bias", m->qkv_bias);
    }
    return 0;
}
