// config.json of transformers' GPT2LMHeadModel and the llama-architecture families (Llama,
// Mistral, Qwen2, Qwen3, Gemma 2, Gemma 3 text, Phi-3, and the Mixture-of-Experts Mixtral,
// Qwen2-MoE, Qwen3-MoE and OLMoE, whose MoE keys hf_moe_config.c reads) into CtModelConfig
// (hf_config_write.c writes it back).
// Import refuses every setting that would make ctrain compute something other than what
// transformers computes; it never drops a feature silently. Each key transformers 5 writes for
// these families is listed below: read, refused unless it keeps the math ctrain has, or harmless
// (with why). A key no list names is reported in one warning line. Messages name HF's keys.
#include <cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "train/interop/hf_encoder_config.h"
#include "train/interop/hf_interop.h"
#include "train/interop/hf_moe_config.h"
#include "train/interop/hf_rope_config.h"

typedef struct {
    const cJSON *root;
    const char *source;
} Cfg;

static const cJSON *item(const Cfg *c, const char *key) { return cJSON_GetObjectItemCaseSensitive(c->root, key); }

static int is_unset(const cJSON *v) { return !v || cJSON_IsNull(v); }

// An integer key; `def` when absent or null (def < 0: required).
static int get_int(const Cfg *c, const char *key, int def, int *out) {
    const cJSON *v = item(c, key);
    if (is_unset(v)) {
        if (def < 0) return ct_error_set("%s: config key '%s' is missing", c->source, key);
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 1 || v->valuedouble > 1e9)
        return ct_error_set("%s: config key '%s' must be a positive integer", c->source, key);
    *out = (int)v->valuedouble;
    return 0;
}

// GPT2Config's attribute_map lets config.json say hidden_size for n_embd (and so on): the
// GPT-2 name wins where both are present, as transformers sets the attribute map's target last.
static int get_int_alias(const Cfg *c, const char *key, const char *alias, int def, int *out) {
    return get_int(c, is_unset(item(c, key)) && !is_unset(item(c, alias)) ? alias : key, def, out);
}

static int get_float(const Cfg *c, const char *key, double def, float *out) {
    const cJSON *v = item(c, key);
    if (is_unset(v)) {
        *out = (float)def;
        return 0;
    }
    if (!cJSON_IsNumber(v) || !(v->valuedouble > 0))
        return ct_error_set("%s: config key '%s' must be a positive number", c->source, key);
    *out = (float)v->valuedouble;
    return 0;
}

static int get_bool(const Cfg *c, const char *key, int def) {
    const cJSON *v = item(c, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

static const char *get_string(const Cfg *c, const char *key) {
    const cJSON *v = item(c, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

// A key that must be absent, null or false for ctrain to compute the same.
static int refuse_if_true(const Cfg *c, const char *key, const char *what) {
    const cJSON *v = item(c, key);
    if (!is_unset(v) && !cJSON_IsFalse(v))
        return ct_error_set("%s: %s = %s is not supported: %s", c->source, key,
                            cJSON_IsTrue(v) ? "true" : cJSON_IsNumber(v) ? "a number" : "set", what);
    return 0;
}

// ---- which keys mean what ----

// Read or refused by the parsers below, for every family.
static const char *const common_handled[] = {
    "model_type", "architectures", "vocab_size", "tie_word_embeddings", "add_cross_attention",
    "is_encoder_decoder", "pruned_heads", "quantization_config",
    // DeepSeek-V3's count of multi-token prediction modules (ctrain's `export hf --keep-mtp` writes it
    // beside any family: transformers' classes ignore it and the modules' tensors)
    "num_nextn_predict_layers",
};

// Keys that do not change what the causal LM's forward pass computes, for every family.
static const char *const common_harmless[] = {
    "transformers_version", "_name_or_path",
    // the dtype the weights were saved in: ctrain reads each tensor's own dtype and computes in fp32
    "dtype", "torch_dtype",
    // token ids for generation and padding, read by generate, not by the forward pass
    "bos_token_id", "eos_token_id", "pad_token_id", "sep_token_id", "decoder_start_token_id",
    // what forward returns (caches, hidden states), not the values of the logits
    "use_cache", "output_hidden_states", "output_attentions", "return_dict", "torchscript",
    // the initialisation of weights that are not loaded
    "initializer_range",
    // the remote-code classes trust_remote_code would load instead; ctrain matches the built-in class
    "auto_map",
    // runs the MLP over positions in chunks: the same values
    "chunk_size_feed_forward",
    // heads for other tasks (sequence classification, ...), not the LM head
    "problem_type", "id2label", "label2id", "num_labels", "finetuning_task", "is_decoder", "tie_encoder_decoder",
    // tokenizer, pipeline and generation defaults (older transformers wrote these into config.json)
    "tokenizer_class", "prefix", "task_specific_params", "max_length", "min_length", "do_sample", "early_stopping",
    "num_beams", "num_beam_groups", "diversity_penalty", "temperature", "top_k", "top_p", "typical_p",
    "repetition_penalty", "length_penalty", "no_repeat_ngram_size", "encoder_no_repeat_ngram_size",
    "bad_words_ids", "num_return_sequences", "output_scores", "return_dict_in_generate", "forced_bos_token_id",
    "forced_eos_token_id", "remove_invalid_values", "exponential_decay_length_penalty", "suppress_tokens",
    "begin_suppress_tokens", "cross_attention_hidden_size", "tf_legacy_loss", "use_bfloat16",
};

static const char *const gpt2_handled[] = {
    "n_layer", "num_hidden_layers", "n_head", "num_attention_heads", "n_embd", "hidden_size", "n_positions",
    "max_position_embeddings", "n_inner", "layer_norm_epsilon", "activation_function", "scale_attn_weights",
    "scale_attn_by_inverse_layer_idx",
};

static const char *const gpt2_harmless[] = {
    // dropout: off in evaluation; ctrain trains with its own model.dropout
    "resid_pdrop", "embd_pdrop", "attn_pdrop",
    // GPT2DoubleHeadsModel's classification head
    "summary_type", "summary_use_proj", "summary_activation", "summary_proj_to_labels", "summary_first_dropout",
    // moves the 1/sqrt(d) scale before the product and upcasts to fp32 under mixed precision: the
    // same function, which ctrain evaluates in fp32
    "reorder_and_upcast_attn",
    // the context size of transformers 3 and earlier; the model reads n_positions
    "n_ctx",
};

// Read or refused by the parsers below for every llama-architecture family (each family's own
// keys are in its Family entry).
static const char *const llama_handled[] = {
    "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "hidden_size", "intermediate_size",
    "max_position_embeddings", "rms_norm_eps", "head_dim", "rope_parameters", "rope_theta", "rope_scaling",
    "partial_rotary_factor",
};

static const char *const llama_harmless[] = {
    // dropout on the attention probabilities: off in evaluation; ctrain trains with model.dropout
    "attention_dropout",
};

static int listed(const char *key, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(key, list[i]) == 0) return 1;
    return 0;
}

#define LISTED(key, list) listed(key, list, sizeof list / sizeof list[0])

// One warning line naming the keys no list above knows. transformers' built-in model class
// does not read them either (it reads only its config class's fields), so they cannot change
// its logits; they are named so that a user can tell.
static void warn_unknown_keys(const Cfg *c, CtArch arch, const char *const *family_keys, const char *model_type) {
    char names[512] = "";
    int n = 0, shown = 0;
    for (const cJSON *e = c->root->child; e; e = e->next) {
        const char *k = e->string;
        if (LISTED(k, common_handled) || LISTED(k, common_harmless)) continue;
        if (arch == CT_ARCH_GPT2 ? LISTED(k, gpt2_handled) || LISTED(k, gpt2_harmless)
                                 : LISTED(k, llama_handled) || LISTED(k, llama_harmless))
            continue;
        int own = 0;
        for (int i = 0; family_keys && family_keys[i] && !own; i++) own = strcmp(k, family_keys[i]) == 0;
        if (own) continue;
        size_t len = strlen(names);
        if (len + strlen(k) + 8 < sizeof names)
            snprintf(names + len, sizeof names - len, "%s%s", shown++ ? ", " : "", k);
        n++;
    }
    if (n)
        ct_warn("%s: %d config key%s that ctrain does not know (%s%s), which transformers' built-in %s model does "
                "not read either", c->source, n, n == 1 ? "" : "s", names, shown < n ? ", ..." : "", model_type);
}

// Keys of any family that change what is computed and that ctrain does not have.
static int refuse_common(const Cfg *c) {
    if (refuse_if_true(c, "add_cross_attention", "a decoder-only model has no cross-attention") ||
        refuse_if_true(c, "is_encoder_decoder", "ctrain's models are decoder-only"))
        return -1;
    const cJSON *pruned = item(c, "pruned_heads");
    if (!is_unset(pruned) && !(cJSON_IsObject(pruned) && !pruned->child))
        return ct_error_set("%s: pruned_heads is not supported: ctrain's layers all have num_attention_heads heads",
                            c->source);
    if (!is_unset(item(c, "quantization_config")))
        return ct_error_set("%s: quantization_config is not supported: ctrain reads F32, F16 and BF16 weights (import "
                            "the model before quantization)", c->source);
    return 0;
}

static int parse_gpt2(const Cfg *c, CtModelConfig *m) {
    m->arch = CT_ARCH_GPT2;
    if (get_int_alias(c, "n_layer", "num_hidden_layers", -1, &m->n_layer) ||
        get_int_alias(c, "n_head", "num_attention_heads", -1, &m->n_head) ||
        get_int_alias(c, "n_embd", "hidden_size", -1, &m->d_model) || get_int(c, "vocab_size", -1, &m->vocab_size) ||
        get_int_alias(c, "n_positions", "max_position_embeddings", 1024, &m->max_seq_len) ||
        get_int(c, "n_inner", 4 * m->d_model, &m->d_ff) || get_float(c, "layer_norm_epsilon", 1e-5, &m->norm_eps))
        return -1;
    if (m->d_model % m->n_head != 0)
        return ct_error_set("%s: n_embd (%d) is not a multiple of n_head (%d)", c->source, m->d_model, m->n_head);
    m->n_kv_head = m->n_head;
    m->rope_theta = 10000.0f;  // unused by GPT-2; a valid value for ctrain's config
    m->tie_embeddings = get_bool(c, "tie_word_embeddings", 1);
    const char *act = get_string(c, "activation_function");
    if (act && strcmp(act, "gelu_new") != 0 && strcmp(act, "gelu_pytorch_tanh") != 0)
        return ct_error_set("%s: activation_function '%s' is not supported: ctrain's GPT-2 uses the tanh GELU "
                            "(gelu_new)", c->source, act);
    if (!get_bool(c, "scale_attn_weights", 1))
        return ct_error_set("%s: scale_attn_weights = false is not supported (ctrain scales by 1/sqrt(head size))",
                            c->source);
    return refuse_if_true(c, "scale_attn_by_inverse_layer_idx", "ctrain does not scale attention by layer");
}

// How a family's config class fills what config.json leaves out (transformers 5.23's defaults),
// and the keys its model reads beyond the ones every llama-architecture family reads.
typedef struct {
    const char *model_type, *architecture;
    CtFamily family;
    int max_pos;       // max_position_embeddings
    int n_kv;          // num_key_value_heads (0: num_attention_heads)
    int head_dim;      // head_dim (0: hidden_size / num_attention_heads)
    double eps;        // rms_norm_eps
    int tied;          // tie_word_embeddings
    int window;        // sliding_window (0: none)
    const char *const *keys;  // NULL-terminated
} Family;

static const char *const llama_keys[] = {
    "hidden_act", "attention_bias", "mlp_bias",
    // how Meta's training split the matmuls over devices; transformers 5 does not read it
    "pretraining_tp",
    // LlamaForCausalLM reads no window
    "sliding_window", "use_sliding_window", NULL};
static const char *const mistral_keys[] = {
    "hidden_act", "sliding_window",
    // MistralForCausalLM reads neither (it warns about layer_types and ignores them)
    "use_sliding_window", "layer_types", "max_window_layers", NULL};
static const char *const qwen_keys[] = {
    "hidden_act", "attention_bias", "use_sliding_window", "sliding_window", "max_window_layers", "layer_types", NULL};
static const char *const gemma_keys[] = {
    "hidden_activation", "attention_bias", "query_pre_attn_scalar", "sliding_window", "layer_types",
    "final_logit_softcapping", "attn_logit_softcapping", "sliding_window_pattern", "rope_local_base_freq",
    "use_bidirectional_attention",
    // Gemma 1's activation key: Gemma 2 and 3 read hidden_activation
    "hidden_act",
    // the KV cache class generate uses, not the logits; transformers' private copy of
    // sliding_window_pattern (layer_types is what it reads)
    "cache_implementation", "_sliding_window_pattern", NULL};
static const char *const phi3_keys[] = {
    "hidden_act", "sliding_window",
    // longrope's pretraining length (longrope is refused); dropout, off in evaluation
    "original_max_position_embeddings", "resid_pdrop", "embd_pdrop", NULL};

// The MoE families' keys (the MoE ones: hf_moe_config.h). output_router_logits and
// router_aux_loss_coef add the load-balancing loss to the training loss, not to the logits.
static const char *const mixtral_keys[] = {
    "hidden_act", "sliding_window", "num_local_experts", "num_experts", "num_experts_per_tok", "router_jitter_noise",
    "output_router_logits", "router_aux_loss_coef",
    // MixtralForCausalLM reads no window per layer, as Mistral
    "use_sliding_window", "max_window_layers", "layer_types", NULL};
static const char *const qwen2_moe_keys[] = {
    "hidden_act", "use_sliding_window", "sliding_window", "max_window_layers", "layer_types", "qkv_bias",
    "num_experts", "num_experts_per_tok", "moe_intermediate_size", "shared_expert_intermediate_size",
    "decoder_sparse_step", "mlp_only_layers", "norm_topk_prob", "output_router_logits", "router_aux_loss_coef", NULL};
static const char *const qwen3_moe_keys[] = {
    "hidden_act", "attention_bias", "use_sliding_window", "sliding_window", "num_experts", "num_local_experts",
    "num_experts_per_tok", "moe_intermediate_size", "decoder_sparse_step", "mlp_only_layers", "norm_topk_prob",
    "output_router_logits", "router_aux_loss_coef",
    // the Qwen3 checkpoints' window rule, which Qwen3MoeConfig does not read (its window, when
    // use_sliding_window, covers every layer)
    "max_window_layers", NULL};
static const char *const olmoe_keys[] = {
    "hidden_act", "attention_bias", "clip_qkv", "num_experts", "num_local_experts", "num_experts_per_tok",
    "norm_topk_prob", "output_router_logits", "router_aux_loss_coef", "sliding_window", NULL};

static const Family families_llama[] = {
    {"llama", "LlamaForCausalLM", CT_FAMILY_LLAMA, 2048, 0, 0, 1e-6, 0, 0, llama_keys},
    {"mistral", "MistralForCausalLM", CT_FAMILY_MISTRAL, 131072, 8, 0, 1e-6, 0, 4096, mistral_keys},
    {"qwen2", "Qwen2ForCausalLM", CT_FAMILY_QWEN2, 32768, 32, 0, 1e-6, 0, 4096, qwen_keys},
    {"qwen3", "Qwen3ForCausalLM", CT_FAMILY_QWEN3, 32768, 32, 128, 1e-6, 0, 4096, qwen_keys},
    {"gemma2", "Gemma2ForCausalLM", CT_FAMILY_GEMMA2, 8192, 4, 256, 1e-6, 1, 4096, gemma_keys},
    {"gemma3_text", "Gemma3ForCausalLM", CT_FAMILY_GEMMA3, 131072, 4, 256, 1e-6, 1, 4096, gemma_keys},
    {"phi3", "Phi3ForCausalLM", CT_FAMILY_PHI3, 4096, 0, 0, 1e-5, 0, 0, phi3_keys},
    {"mixtral", "MixtralForCausalLM", CT_FAMILY_MIXTRAL, 131072, 8, 0, 1e-5, 0, 0, mixtral_keys},
    {"qwen2_moe", "Qwen2MoeForCausalLM", CT_FAMILY_QWEN2_MOE, 32768, 16, 0, 1e-6, 0, 4096, qwen2_moe_keys},
    {"qwen3_moe", "Qwen3MoeForCausalLM", CT_FAMILY_QWEN3_MOE, 32768, 4, 0, 1e-6, 0, 4096, qwen3_moe_keys},
    {"olmoe", "OlmoeForCausalLM", CT_FAMILY_OLMOE, 4096, 0, 0, 1e-5, 0, 0, olmoe_keys},
};
#define N_LLAMA_FAMILIES (sizeof families_llama / sizeof families_llama[0])

static int is_gemma(CtFamily f) { return f == CT_FAMILY_GEMMA2 || f == CT_FAMILY_GEMMA3; }

// A float key that may be null: absent -> absent_def, null -> 0 (none), else a positive number.
static int get_optional_float(const Cfg *c, const char *key, double absent_def, float *out) {
    const cJSON *v = item(c, key);
    if (!v) return *out = (float)absent_def, 0;
    if (cJSON_IsNull(v)) return *out = 0, 0;
    return get_float(c, key, 0, out);
}

// Which layers attend through the window: layer_types when given ("sliding_attention" /
// "full_attention"), else the family's rule. 0, or -1 + error.
static int sliding_layers(const Cfg *c, const CtModelConfig *m, uint8_t *slides) {
    const cJSON *types = item(c, "layer_types");
    if (!is_unset(types) && m->family != CT_FAMILY_MISTRAL) {
        if (!cJSON_IsArray(types) || cJSON_GetArraySize(types) != m->n_layer)
            return ct_error_set("%s: layer_types must list num_hidden_layers (%d) layer types", c->source, m->n_layer);
        int l = 0;
        for (const cJSON *t = types->child; t; t = t->next, l++) {
            if (!cJSON_IsString(t) || (strcmp(t->valuestring, "sliding_attention") != 0 &&
                                       strcmp(t->valuestring, "full_attention") != 0))
                return ct_error_set("%s: layer_types[%d] is not supported: ctrain has full_attention and "
                                    "sliding_attention layers", c->source, l);
            slides[l] = strcmp(t->valuestring, "sliding_attention") == 0;
        }
        return 0;
    }
    int pattern = 0, first_window_layer = 0;
    if (m->family == CT_FAMILY_GEMMA2) pattern = 2;
    if (m->family == CT_FAMILY_GEMMA3 && get_int(c, "sliding_window_pattern", 6, &pattern) != 0) return -1;
    if ((m->family == CT_FAMILY_QWEN2 || m->family == CT_FAMILY_QWEN3 || m->family == CT_FAMILY_QWEN2_MOE)) {
        const cJSON *mwl = item(c, "max_window_layers");
        first_window_layer = 28;
        if (cJSON_IsNumber(mwl)) first_window_layer = (int)mwl->valuedouble;
    }
    if (m->family == CT_FAMILY_QWEN2_MOE) {  // Qwen2MoeConfig: every other layer from 0, below max_window_layers
        for (int l = 0; l < m->n_layer; l++) slides[l] = (l + 1) % 2 != 0 && l < first_window_layer;
        return 0;
    }
    for (int l = 0; l < m->n_layer; l++) slides[l] = pattern ? (l + 1) % pattern != 0 : l >= first_window_layer;
    return 0;
}

// The window and ctrain's pattern of sliding layers (every P-th layer global), or a refusal of
// a pattern it cannot express.
static int parse_window(const Cfg *c, const Family *f, CtModelConfig *m) {
    if (m->family == CT_FAMILY_LLAMA) return 0;
    if (m->family == CT_FAMILY_OLMOE) {  // not a key of OlmoeConfig, yet its attention passes it to some kernels
        if (!is_unset(item(c, "sliding_window")))
            return ct_error_set("%s: sliding_window is not supported on olmoe: transformers applies it in some "
                                "attention implementations only (set it to null)", c->source);
        return 0;
    }
    const int qwen = m->family == CT_FAMILY_QWEN2 || m->family == CT_FAMILY_QWEN3 || m->family == CT_FAMILY_QWEN2_MOE ||
                     m->family == CT_FAMILY_QWEN3_MOE;
    if (qwen && !get_bool(c, "use_sliding_window", 0))
        return 0;  // Qwen's config sets the window to None without use_sliding_window
    if (refuse_if_true(c, "use_bidirectional_attention", "ctrain's attention is causal")) return -1;
    const cJSON *w = item(c, "sliding_window");
    if (cJSON_IsNull(w)) return 0;
    int window = f->window;
    if (get_int(c, "sliding_window", f->window ? f->window : 1, &window) != 0) return -1;
    if (!w && !f->window) return 0;
    uint8_t *slides = ct_calloc((size_t)m->n_layer, 1);
    // Mistral, Phi-3, Mixtral and Qwen3-MoE read no layer types: every layer slides
    const int all_slide = m->family == CT_FAMILY_MISTRAL || m->family == CT_FAMILY_PHI3 ||
                          m->family == CT_FAMILY_MIXTRAL || m->family == CT_FAMILY_QWEN3_MOE;
    int rc = all_slide ? 0 : sliding_layers(c, m, slides);
    if (all_slide) memset(slides, 1, (size_t)m->n_layer);
    int n_sliding = 0, first_full = -1;
    for (int l = 0; l < m->n_layer; l++) {
        n_sliding += slides[l];
        if (!slides[l] && first_full < 0) first_full = l;
    }
    int pattern = n_sliding == m->n_layer ? 0 : first_full + 1;
    for (int l = 0; rc == 0 && n_sliding && l < m->n_layer; l++)
        if (slides[l] != (pattern == 0 || (l + 1) % pattern != 0))
            rc = ct_error_set("%s: %s: layer %d %s through the window, which ctrain cannot express (it has every "
                              "layer sliding, or every P-th layer global and the others sliding): not supported",
                              c->source, is_unset(item(c, "layer_types")) ? "max_window_layers" : "layer_types", l,
                              slides[l] ? "attends" : "does not attend");
    ct_free(slides);
    if (rc == 0 && n_sliding) m->sliding_window = window, m->sliding_window_pattern = pattern;
    return rc;
}

// Activation, biases, norms and Gemma's scalings: what each family computes beyond LLaMA.
static int parse_features(const Cfg *c, CtModelConfig *m) {
    const CtFamily fam = m->family;
    if (is_gemma(fam)) {
        const char *act = get_string(c, "hidden_activation");
        if (act && strcmp(act, "gelu_pytorch_tanh") != 0)
            return ct_error_set("%s: hidden_activation '%s' is not supported: ctrain's Gemma MLP is GeGLU with the tanh "
                                "GELU (gelu_pytorch_tanh)", c->source, act);
        m->gate_act = CT_GATE_GELU_TANH;
        m->post_norms = m->embed_scale = 1;
        float scalar = 0;
        if (get_float(c, "query_pre_attn_scalar", 256, &scalar) != 0) return -1;
        m->query_scale = (float)pow(scalar, -0.5);
        if (get_optional_float(c, "attn_logit_softcapping", fam == CT_FAMILY_GEMMA2 ? 50 : 0, &m->attn_softcap) ||
            get_optional_float(c, "final_logit_softcapping", fam == CT_FAMILY_GEMMA2 ? 30 : 0, &m->final_softcap))
            return -1;
    } else {
        const char *act = get_string(c, "hidden_act");
        if (act && strcmp(act, "silu") != 0)
            return ct_error_set("%s: hidden_act '%s' is not supported: ctrain's MLP of this family is SwiGLU (silu)",
                                c->source, act);
    }
    m->qkv_bias = fam == CT_FAMILY_QWEN2;  // Qwen2Attention: q, k and v have biases whatever the config says
    if (fam == CT_FAMILY_QWEN2_MOE) m->qkv_bias = get_bool(c, "qkv_bias", 1);  // Qwen2MoeAttention reads it
    m->qk_norm = fam == CT_FAMILY_QWEN3 || fam == CT_FAMILY_GEMMA3 || fam == CT_FAMILY_QWEN3_MOE;
    if (fam == CT_FAMILY_OLMOE) {  // RMSNorm over the whole q and k projections
        m->qk_norm = 2;
        if (m->n_kv_head != m->n_head)
            return ct_error_set("%s: olmoe with num_key_value_heads (%d) != num_attention_heads (%d) is not supported: "
                                "ctrain normalises q and k over projections of equal width", c->source, m->n_kv_head,
                                m->n_head);
        if (m->head_dim)
            return ct_error_set("%s: head_dim %d is not supported on olmoe: its q norm is hidden_size (%d) wide, so "
                                "its heads are hidden_size / num_attention_heads", c->source, ct_model_head_dim(m),
                                m->d_model);
    }
    if (fam == CT_FAMILY_LLAMA || fam == CT_FAMILY_QWEN3 || is_gemma(fam) || fam == CT_FAMILY_QWEN3_MOE ||
        fam == CT_FAMILY_OLMOE)
        if (refuse_if_true(c, "attention_bias", "ctrain has no biases on q/k/v together with o (Qwen2's q/k/v biases "
                                                "are the ones it has)"))
            return -1;
    if (fam == CT_FAMILY_LLAMA && refuse_if_true(c, "mlp_bias", "ctrain's MLP has no biases")) return -1;
    return 0;
}

static int parse_llama(const Cfg *c, const Family *f, CtModelConfig *m) {
    m->arch = CT_ARCH_LLAMA;
    m->family = f->family;
    if (get_int(c, "num_hidden_layers", -1, &m->n_layer) || get_int(c, "num_attention_heads", -1, &m->n_head) ||
        get_int(c, "hidden_size", -1, &m->d_model) || get_int(c, "intermediate_size", -1, &m->d_ff) ||
        get_int(c, "vocab_size", -1, &m->vocab_size) || get_int(c, "max_position_embeddings", f->max_pos, &m->max_seq_len) ||
        get_int(c, "num_key_value_heads", f->n_kv ? f->n_kv : m->n_head, &m->n_kv_head) ||
        get_float(c, "rms_norm_eps", f->eps, &m->norm_eps))
        return -1;
    // LlamaConfig, Gemma2Config and Gemma3TextConfig refuse this whatever head_dim says; the others
    // need it only to derive head_dim
    const int always = f->family == CT_FAMILY_LLAMA || f->family == CT_FAMILY_GEMMA2 || f->family == CT_FAMILY_GEMMA3;
    if ((always || (!f->head_dim && is_unset(item(c, "head_dim")))) && m->d_model % m->n_head != 0)
        return ct_error_set("%s: hidden_size (%d) is not a multiple of num_attention_heads (%d)", c->source, m->d_model,
                            m->n_head);
    if (m->n_head % m->n_kv_head != 0)
        return ct_error_set("%s: num_attention_heads (%d) is not a multiple of num_key_value_heads (%d)", c->source,
                            m->n_head, m->n_kv_head);
    int head_dim = 0;
    if (get_int(c, "head_dim", f->head_dim ? f->head_dim : m->d_model / m->n_head, &head_dim) != 0) return -1;
    if (head_dim % 2 != 0) return ct_error_set("%s: RoPE needs an even head size; head_dim is %d", c->source, head_dim);
    m->head_dim = head_dim * m->n_head == m->d_model ? 0 : head_dim;
    m->tie_embeddings = get_bool(c, "tie_word_embeddings", f->tied);
    if (parse_features(c, m) != 0 || ct_hf_rope_parse(c->root, c->source, m) != 0 ||
        ct_hf_moe_parse(c->root, c->source, m) != 0)
        return -1;
    return parse_window(c, f, m);
}

#define FAMILIES_TEXT                                                                                       \
    "ctrain imports gpt2 (GPT2LMHeadModel), llama (LlamaForCausalLM), mistral, qwen2, qwen3, gemma2, gemma3_text " \
    "(Gemma3ForCausalLM), phi3, mixtral, qwen2_moe, qwen3_moe, olmoe, and the encoders bert (BertForMaskedLM) and "   \
    "roberta (RobertaForMaskedLM)"

static const Family *family_of(const char *model_type, const char *architecture) {
    for (size_t f = 0; f < N_LLAMA_FAMILIES; f++)
        if ((model_type && strcmp(model_type, families_llama[f].model_type) == 0) ||
            (architecture && strcmp(architecture, families_llama[f].architecture) == 0))
            return &families_llama[f];
    return NULL;
}

// model_type, or when config.json has none, the family its architectures name (all the same one).
static int model_type_of(const Cfg *c, const char **type) {
    *type = get_string(c, "model_type");
    if (*type) return 0;
    const cJSON *archs = item(c, "architectures");
    if (!cJSON_IsArray(archs) || !archs->child)
        return ct_error_set("%s: neither model_type nor architectures says which model this is; " FAMILIES_TEXT,
                            c->source);
    for (const cJSON *a = archs->child; a; a = a->next) {
        const char *found = NULL;
        if (cJSON_IsString(a) && strcmp(a->valuestring, "GPT2LMHeadModel") == 0) found = "gpt2";
        const Family *f = cJSON_IsString(a) ? family_of(NULL, a->valuestring) : NULL;
        if (f) found = f->model_type;
        if (!found)
            return ct_error_set("%s: no model_type, and architectures names %s, which is not a model ctrain imports; "
                                FAMILIES_TEXT, c->source, cJSON_IsString(a) ? a->valuestring : "a non-string");
        if (*type && strcmp(*type, found) != 0)
            return ct_error_set("%s: no model_type, and architectures names models of two families (%s and %s): add "
                                "model_type", c->source, *type, found);
        *type = found;
    }
    return 0;
}

int ct_hf_config_parse(const char *json, const char *source, CtModelConfig *out) {
    memset(out, 0, sizeof *out);
    cJSON *root = cJSON_Parse(json);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return ct_error_set("%s: not a JSON object", source);
    }
    Cfg c = {root, source};
    const char *type = NULL;
    const cJSON *archs = item(&c, "architectures");
    const char *arch = cJSON_IsArray(archs) && cJSON_IsString(archs->child) ? archs->child->valuestring : NULL;
    const char *encoder = get_string(&c, "model_type");  // bert, roberta: their own keys (hf_encoder_config.h)
    if (!encoder) encoder = arch;
    if (ct_hf_is_encoder_type(encoder)) {
        int erc = ct_hf_encoder_config_parse(root, source, encoder, out);
        if (erc == 0) erc = refuse_common(&c) == 0 && ct_model_config_validate(out) == 0 ? 0 : ct_error_prefix("%s: ", source);
        cJSON_Delete(root);
        return erc;
    }
    int rc = model_type_of(&c, &type);
    const Family *family = rc == 0 ? family_of(type, NULL) : NULL;
    if (rc == 0 && strcmp(type, "gpt2") == 0) {
        rc = parse_gpt2(&c, out);
    } else if (family) {
        rc = parse_llama(&c, family, out);
    } else if (rc == 0) {
        rc = ct_error_set("%s: model_type '%s' is not supported; " FAMILIES_TEXT, source, type);
    }
    if (rc == 0) rc = refuse_common(&c);
    const cJSON *nextn = item(&c, "num_nextn_predict_layers");  // 0 is a count too
    if (rc == 0 && !(cJSON_IsNumber(nextn) && nextn->valuedouble == 0))
        rc = get_int(&c, "num_nextn_predict_layers", 0, &out->mtp_depth);
    // *ForSequenceClassification with one label: a reward model (score.weight, model.reward_head)
    if (rc == 0 && arch && strstr(arch, "ForSequenceClassification")) {
        const cJSON *labels = item(&c, "id2label"), *n = item(&c, "num_labels");
        const int count = cJSON_IsNumber(n) ? (int)n->valuedouble : cJSON_IsObject(labels) ? cJSON_GetArraySize(labels) : 2;
        if (count != 1)
            rc = ct_error_set("%s: %s with %d labels: ctrain imports sequence classifiers with one (reward models)",
                              source, arch, count);
        out->reward_head = 1;
        const cJSON *pad = item(&c, "pad_token_id");  // where transformers reads the score
        out->reward_pad_id = cJSON_IsNumber(pad) ? (int)pad->valuedouble : -1;
    } else if (rc == 0 && arch && strstr(arch, "ForCausalLM") == NULL && strcmp(arch, "GPT2LMHeadModel") != 0) {
        rc = ct_error_set("%s: architecture %s is not a causal language model with a head (or a reward model)", source,
                          arch);
    }
    if (rc == 0) warn_unknown_keys(&c, out->arch, family ? family->keys : NULL, type);
    cJSON_Delete(root);
    if (rc == 0 && ct_model_config_validate(out) != 0) return ct_error_prefix("%s: ", source);
    return rc;
}

int ct_parse_byte_size(const char *s, uint64_t *out) {
    char *end;
    double v = strtod(s, &end);
    while (isspace((unsigned char)*end)) end++;
    double unit = 1;
    if (!*end || strcmp(end, "B") == 0) unit = 1;
    else if (strcasecmp(end, "KB") == 0) unit = 1e3;
    else if (strcasecmp(end, "MB") == 0) unit = 1e6;
    else if (strcasecmp(end, "GB") == 0) unit = 1e9;
    else if (strcasecmp(end, "KiB") == 0) unit = 1024.0;
    else if (strcasecmp(end, "MiB") == 0) unit = 1024.0 * 1024;
    else if (strcasecmp(end, "GiB") == 0) unit = 1024.0 * 1024 * 1024;
    else unit = -1;
    if (end == s || unit < 0 || !(v > 0) || v * unit > 1e18)
        return ct_error_set("'%s' is not a size (examples: 5GB, 500MB, 2GiB, 1048576)", s);
    *out = (uint64_t)(v * unit);
    return 0;
}
