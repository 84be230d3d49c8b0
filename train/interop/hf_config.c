// config.json of transformers' GPT2LMHeadModel and LlamaForCausalLM, to and from CtModelConfig.
// Import refuses every setting that would make ctrain compute something other than what
// transformers computes; it never drops a feature silently. Each key transformers 5 writes for
// these families is listed below: read, refused unless it keeps the math ctrain has, or harmless
// (with why). A key no list names is reported in one warning line. Messages name HF's keys.
#include <cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "train/interop/hf_interop.h"

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

static const char *const llama_handled[] = {
    "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "hidden_size", "intermediate_size",
    "max_position_embeddings", "rms_norm_eps", "hidden_act", "head_dim", "attention_bias", "mlp_bias",
    "rope_parameters", "rope_theta", "rope_scaling", "partial_rotary_factor", "sliding_window",
};

static const char *const llama_harmless[] = {
    // dropout on the attention probabilities: off in evaluation; ctrain trains with model.dropout
    "attention_dropout",
    // how Meta's training split the matmuls over devices; transformers 5's LlamaForCausalLM does
    // not read it (the product is the same)
    "pretraining_tp",
    // Qwen2's switch for its window; neither LlamaForCausalLM nor MistralForCausalLM reads it
    "use_sliding_window",
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
static void warn_unknown_keys(const Cfg *c, CtArch arch, const char *model_type) {
    char names[512] = "";
    int n = 0, shown = 0;
    for (const cJSON *e = c->root->child; e; e = e->next) {
        const char *k = e->string;
        if (LISTED(k, common_handled) || LISTED(k, common_harmless)) continue;
        if (arch == CT_ARCH_GPT2 ? LISTED(k, gpt2_handled) || LISTED(k, gpt2_harmless)
                                 : LISTED(k, llama_handled) || LISTED(k, llama_harmless))
            continue;
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

// RoPE as transformers 5 reads it (RotaryEmbeddingConfigMixin): the block is `rope_scaling`
// (transformers 4's name) when set, else `rope_parameters`; rope_theta comes from the block, else
// the top-level key, else 10000; rope_type (or its old name `type`) defaults to "default".
// ctrain has the default RoPE only: every other type, and every block key that would mean
// something with it, is refused.
static int parse_rope(const Cfg *c, float *out_theta) {
    const char *block_key = "rope_scaling";
    const cJSON *block = item(c, block_key);
    if (is_unset(block) || (cJSON_IsObject(block) && !block->child)) {
        block_key = "rope_parameters";
        block = item(c, block_key);
    }
    if (!is_unset(block) && !cJSON_IsObject(block))
        return ct_error_set("%s: config key '%s' must be an object", c->source, block_key);
    if (is_unset(block)) block = NULL;

    const char *type = "default";
    const cJSON *theta = item(c, "rope_theta"), *partial = item(c, "partial_rotary_factor");
    int theta_in_block = 0, partial_in_block = 0;
    for (const cJSON *e = block ? block->child : NULL; e; e = e->next) {
        if (strcmp(e->string, "rope_type") == 0 || strcmp(e->string, "type") == 0) {
            if (!cJSON_IsString(e))
                return ct_error_set("%s: %s.%s must be a string", c->source, block_key, e->string);
            // rope_type wins over type, as transformers' setdefault does
            if (strcmp(e->string, "rope_type") == 0 || !cJSON_GetObjectItemCaseSensitive(block, "rope_type"))
                type = e->valuestring;
        } else if (strcmp(e->string, "rope_theta") == 0) {
            theta = e, theta_in_block = 1;
        } else if (strcmp(e->string, "partial_rotary_factor") == 0) {
            partial = e, partial_in_block = 1;
        }
    }
    if (strcmp(type, "default") != 0)
        return ct_error_set("%s: %s.rope_type '%s' is not supported: ctrain's RoPE is the original one, without "
                            "frequency scaling (llama3, linear, dynamic, yarn, longrope, ...)",
                            c->source, block_key, type);
    for (const cJSON *e = block ? block->child : NULL; e; e = e->next)
        if (strcmp(e->string, "rope_type") != 0 && strcmp(e->string, "type") != 0 &&
            strcmp(e->string, "rope_theta") != 0 && strcmp(e->string, "partial_rotary_factor") != 0)
            return ct_error_set("%s: %s.%s is not supported: ctrain's RoPE is the original one (rope_type default, "
                                "rope_theta only)", c->source, block_key, e->string);
    // transformers' Llama rotates the whole head whatever this says; a model made with partial
    // rotation would compute something else in both, so it is refused rather than guessed
    if (!is_unset(partial) && !(cJSON_IsNumber(partial) && partial->valuedouble == 1.0))
        return ct_error_set("%s: %s%spartial_rotary_factor is not supported: ctrain rotates the whole head", c->source,
                            partial_in_block ? block_key : "", partial_in_block ? "." : "");
    if (is_unset(theta)) {
        *out_theta = 10000.0f;
        return 0;
    }
    if (!cJSON_IsNumber(theta) || !(theta->valuedouble > 1) || theta->valuedouble > 1e12)
        return ct_error_set("%s: %s%srope_theta must be a number above 1", c->source, theta_in_block ? block_key : "",
                            theta_in_block ? "." : "");
    *out_theta = (float)theta->valuedouble;
    return 0;
}

static int parse_llama(const Cfg *c, const char *family, CtModelConfig *m) {
    m->arch = CT_ARCH_LLAMA;
    if (strcmp(family, "qwen2") == 0)
        return ct_error_set("%s: Qwen2 models have biases on q/k/v (q_proj.bias ...), which ctrain's LLaMA does not "
                            "support", c->source);
    if (get_int(c, "num_hidden_layers", -1, &m->n_layer) || get_int(c, "num_attention_heads", -1, &m->n_head) ||
        get_int(c, "hidden_size", -1, &m->d_model) || get_int(c, "intermediate_size", -1, &m->d_ff) ||
        get_int(c, "vocab_size", -1, &m->vocab_size) || get_int(c, "max_position_embeddings", 2048, &m->max_seq_len) ||
        get_int(c, "num_key_value_heads", m->n_head, &m->n_kv_head) || get_float(c, "rms_norm_eps", 1e-6, &m->norm_eps) ||
        parse_rope(c, &m->rope_theta))
        return -1;
    if (m->d_model % m->n_head != 0)
        return ct_error_set("%s: hidden_size (%d) is not a multiple of num_attention_heads (%d)", c->source, m->d_model,
                            m->n_head);
    if (m->n_head % m->n_kv_head != 0)
        return ct_error_set("%s: num_attention_heads (%d) is not a multiple of num_key_value_heads (%d)", c->source,
                            m->n_head, m->n_kv_head);
    int head_dim = 0;
    if (get_int(c, "head_dim", m->d_model / m->n_head, &head_dim) != 0) return -1;
    if (head_dim * m->n_head != m->d_model)
        return ct_error_set("%s: head_dim %d is not hidden_size / num_attention_heads (%d / %d): not supported",
                            c->source, head_dim, m->d_model, m->n_head);
    if (head_dim % 2 != 0)
        return ct_error_set("%s: RoPE needs an even head size; hidden_size / num_attention_heads = %d", c->source,
                            head_dim);
    m->tie_embeddings = get_bool(c, "tie_word_embeddings", 0);
    const char *act = get_string(c, "hidden_act");
    if (act && strcmp(act, "silu") != 0)
        return ct_error_set("%s: hidden_act '%s' is not supported: ctrain's LLaMA MLP is SwiGLU (silu)", c->source, act);
    if (refuse_if_true(c, "attention_bias", "ctrain's LLaMA has no biases on q/k/v/o") ||
        refuse_if_true(c, "mlp_bias", "ctrain's LLaMA has no biases in the MLP"))
        return -1;
    // MistralForCausalLM masks attention to the last sliding_window positions whenever the key is
    // set (it does not read use_sliding_window); that changes nothing for sequences up to the
    // window. LlamaForCausalLM reads neither key.
    const cJSON *window = item(c, "sliding_window");
    if (strcmp(family, "mistral") == 0 && cJSON_IsNumber(window) && window->valuedouble < m->max_seq_len)
        return ct_error_set("%s: sliding_window = %.0f (below max_position_embeddings %d) is not supported: ctrain "
                            "attends to the whole context", c->source, window->valuedouble, m->max_seq_len);
    return 0;
}

// The families ctrain imports, by model_type and by the class transformers saves in architectures.
static const struct {
    const char *model_type, *architecture;
} families[] = {
    {"gpt2", "GPT2LMHeadModel"},
    {"llama", "LlamaForCausalLM"},
    {"mistral", "MistralForCausalLM"},
    {"qwen2", "Qwen2ForCausalLM"},
};
#define N_FAMILIES (sizeof families / sizeof families[0])
#define FAMILIES_TEXT "ctrain imports gpt2 (GPT2LMHeadModel) and llama (LlamaForCausalLM, and Mistral-style configs that fit)"

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
        for (size_t f = 0; f < N_FAMILIES && cJSON_IsString(a); f++)
            if (strcmp(a->valuestring, families[f].architecture) == 0) found = families[f].model_type;
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
    int rc = model_type_of(&c, &type);
    if (rc == 0 && strcmp(type, "gpt2") == 0) {
        rc = parse_gpt2(&c, out);
    } else if (rc == 0 && (strcmp(type, "llama") == 0 || strcmp(type, "mistral") == 0 || strcmp(type, "qwen2") == 0)) {
        rc = parse_llama(&c, type, out);
    } else if (rc == 0) {
        rc = ct_error_set("%s: model_type '%s' is not supported; " FAMILIES_TEXT, source, type);
    }
    if (rc == 0) rc = refuse_common(&c);
    if (rc == 0 && arch && strstr(arch, "ForCausalLM") == NULL && strcmp(arch, "GPT2LMHeadModel") != 0)
        rc = ct_error_set("%s: architecture %s is not a causal language model with a head", source, arch);
    if (rc == 0) warn_unknown_keys(&c, out->arch, type);
    cJSON_Delete(root);
    if (rc == 0 && ct_model_config_validate(out) != 0) return ct_error_prefix("%s: ", source);
    return rc;
}

// The shortest decimal that reads back as the same float, as a double: 1e-5f prints "1e-05",
// not 9.99999974737875e-06, and importing it again gives the same float.
static double short_float(float f) {
    char buf[32];
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)f);
        if (strtof(buf, NULL) == f) break;
    }
    return strtod(buf, NULL);
}

char *ct_hf_config_json(const CtModelConfig *m, int bos_id, int eos_id, const char *torch_dtype) {
    cJSON *o = cJSON_CreateObject();
    cJSON *archs = cJSON_AddArrayToObject(o, "architectures");
    if (m->arch == CT_ARCH_GPT2) {
        cJSON_AddItemToArray(archs, cJSON_CreateString("GPT2LMHeadModel"));
        cJSON_AddStringToObject(o, "model_type", "gpt2");
        cJSON_AddNumberToObject(o, "vocab_size", m->vocab_size);
        cJSON_AddNumberToObject(o, "n_positions", m->max_seq_len);
        cJSON_AddNumberToObject(o, "n_ctx", m->max_seq_len);
        cJSON_AddNumberToObject(o, "n_embd", m->d_model);
        cJSON_AddNumberToObject(o, "n_layer", m->n_layer);
        cJSON_AddNumberToObject(o, "n_head", m->n_head);
        cJSON_AddNumberToObject(o, "n_inner", m->d_ff);
        cJSON_AddStringToObject(o, "activation_function", "gelu_new");
        cJSON_AddNumberToObject(o, "layer_norm_epsilon", short_float(m->norm_eps));
        cJSON_AddNumberToObject(o, "resid_pdrop", 0);
        cJSON_AddNumberToObject(o, "embd_pdrop", 0);
        cJSON_AddNumberToObject(o, "attn_pdrop", 0);
        cJSON_AddBoolToObject(o, "scale_attn_weights", 1);
    } else {
        cJSON_AddItemToArray(archs, cJSON_CreateString("LlamaForCausalLM"));
        cJSON_AddStringToObject(o, "model_type", "llama");
        cJSON_AddNumberToObject(o, "vocab_size", m->vocab_size);
        cJSON_AddNumberToObject(o, "hidden_size", m->d_model);
        cJSON_AddNumberToObject(o, "intermediate_size", m->d_ff);
        cJSON_AddNumberToObject(o, "num_hidden_layers", m->n_layer);
        cJSON_AddNumberToObject(o, "num_attention_heads", m->n_head);
        cJSON_AddNumberToObject(o, "num_key_value_heads", m->n_kv_head);
        cJSON_AddNumberToObject(o, "head_dim", ct_model_head_dim(m));
        cJSON_AddNumberToObject(o, "max_position_embeddings", m->max_seq_len);
        cJSON_AddNumberToObject(o, "rms_norm_eps", short_float(m->norm_eps));
        // transformers 5 reads the rope_parameters block; 4.x reads rope_theta and rope_scaling
        cJSON *rope = cJSON_AddObjectToObject(o, "rope_parameters");
        cJSON_AddStringToObject(rope, "rope_type", "default");
        cJSON_AddNumberToObject(rope, "rope_theta", short_float(m->rope_theta));
        cJSON_AddNumberToObject(o, "rope_theta", short_float(m->rope_theta));
        cJSON_AddNullToObject(o, "rope_scaling");
        cJSON_AddStringToObject(o, "hidden_act", "silu");
        cJSON_AddBoolToObject(o, "attention_bias", 0);
        cJSON_AddBoolToObject(o, "mlp_bias", 0);
        cJSON_AddNumberToObject(o, "attention_dropout", 0);
    }
    cJSON_AddBoolToObject(o, "tie_word_embeddings", m->tie_embeddings);
    cJSON_AddNumberToObject(o, "initializer_range", 0.02);
    cJSON_AddBoolToObject(o, "use_cache", 1);
    if (bos_id >= 0) cJSON_AddNumberToObject(o, "bos_token_id", bos_id);
    if (eos_id >= 0) cJSON_AddNumberToObject(o, "eos_token_id", eos_id);
    // transformers 4.56+ reads "dtype", earlier releases "torch_dtype"
    cJSON_AddStringToObject(o, "torch_dtype", torch_dtype);
    cJSON_AddStringToObject(o, "dtype", torch_dtype);
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    return s;
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
