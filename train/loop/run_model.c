// The model a run config asks for. See train/loop/run_model.h.
#include "train/loop/run_model.h"

#include "core/error.h"

// The llama variants' keys over the preset's (a preset that has none: plain LLaMA).
static void apply_variants(const __typeof__(((CtRunConfig *)0)->model) *m, CtModelConfig *out) {
    if (m->family) out->family = (CtFamily)(m->family - 1);
    if (m->head_dim) out->head_dim = m->head_dim;
    if (m->qkv_bias) out->qkv_bias = 1;
    if (m->qk_norm) out->qk_norm = m->qk_norm_over ? 2 : 1;  // 2: over the whole projection (OLMoE)
    if (m->sliding_window) out->sliding_window = m->sliding_window;
    if (m->sliding_window_pattern) out->sliding_window_pattern = m->sliding_window_pattern;
    if (m->gate_act) out->gate_act = (CtGateAct)(m->gate_act - 1);
    if (m->post_norms) out->post_norms = 1;
    if (m->embed_scale) out->embed_scale = 1;
    if (m->rope_local_theta > 0) out->rope_local_theta = m->rope_local_theta;
    if (m->query_scale > 0) out->query_scale = m->query_scale;
    if (m->attn_softcap > 0) out->attn_softcap = m->attn_softcap;
    if (m->final_softcap > 0) out->final_softcap = m->final_softcap;
    if (m->rope_scaling.type) {
        const __typeof__(m->rope_scaling) *r = &m->rope_scaling;
        out->rope_scaling = (CtRopeScaling){.type = (CtRopeType)(r->type - 1),
                                            .factor = r->factor,
                                            .original_max_position = r->original_max_position,
                                            .low_freq_factor = r->low_freq_factor,
                                            .high_freq_factor = r->high_freq_factor,
                                            .beta_fast = r->beta_fast,
                                            .beta_slow = r->beta_slow,
                                            .mscale = r->mscale,
                                            .mscale_all_dim = r->mscale_all_dim,
                                            .attention_factor = r->attention_factor,
                                            .truncate = r->truncate};
    }
}

// The Mixture-of-Experts keys over the preset's (every preset is dense). The router's name was
// checked when the config loaded (run_config.c).
static void apply_moe(const __typeof__(((CtRunConfig *)0)->model) *m, CtModelConfig *out) {
    if (m->n_experts) out->n_experts = m->n_experts;
    if (m->top_k) out->top_k = m->top_k;
    if (m->moe_d_ff) out->moe_d_ff = m->moe_d_ff;
    if (m->n_shared_experts) out->n_shared_experts = m->n_shared_experts;
    if (m->shared_expert_gate) out->shared_expert_gate = 1;
    if (m->moe_layer_freq) out->moe_layer_freq = m->moe_layer_freq;
    if (m->router[0]) ct_router_from_name(m->router, &out->router);
    if (m->router_scale > 0) out->router_scale = m->router_scale;
}

int ct_model_config_from_run(const CtRunConfig *run, CtModelConfig *out) {
    if (ct_model_preset(run->model.preset, out) != 0) return ct_error_prefix("model.preset: ");
    const __typeof__(run->model) *m = &run->model;
    if (m->arch) {  // auto|gpt2|llama|bert|roberta
        const CtArch arch = (CtArch)(m->arch - 1);
        // a decoder preset turned into an encoder: BERT's (RoBERTa's) token types, padding row, pooler, tied head
        if (ct_model_is_encoder(&(CtModelConfig){.arch = arch}) && !ct_model_is_encoder(out)) {
            out->type_vocab_size = arch == CT_ARCH_ROBERTA ? 1 : 2;
            out->pad_token_id = arch == CT_ARCH_ROBERTA ? 1 : 0;
            out->pooler = 1;
            out->tie_embeddings = 1;
        } else if (!ct_model_is_encoder(&(CtModelConfig){.arch = arch})) {
            out->type_vocab_size = out->pad_token_id = out->pooler = 0;
        }
        out->arch = arch;
    }
    if (m->n_layer) out->n_layer = m->n_layer;
    if (m->n_head) {
        // a new head count without a kv count means plain multi-head attention
        out->n_head = m->n_head;
        if (!m->n_kv_head) out->n_kv_head = m->n_head;
    }
    if (m->n_kv_head) out->n_kv_head = m->n_kv_head;
    if (m->d_model) out->d_model = m->d_model;
    if (m->d_ff) out->d_ff = m->d_ff;
    if (m->vocab_size) out->vocab_size = m->vocab_size;
    if (m->max_seq_len) out->max_seq_len = m->max_seq_len;
    if (m->norm_eps > 0) out->norm_eps = m->norm_eps;
    if (m->rope_theta > 0) out->rope_theta = m->rope_theta;
    if (m->tie_embeddings) out->tie_embeddings = m->tie_embeddings == 1;
    out->dropout = m->dropout;
    apply_variants(m, out);
    apply_moe(m, out);
    if (m->mtp_depth) out->mtp_depth = m->mtp_depth;
    out->mtp_style = out->mtp_depth ? (CtMtpStyle)m->mtp_style : CT_MTP_SEQUENTIAL;  // without modules: no style
    return ct_model_config_validate(out);
}
