// config.json of transformers' GPT2LMHeadModel and LlamaForCausalLM, to and from CtModelConfig.
// Import refuses every setting that would make ctrain compute something other than what
// transformers computes; it never drops a feature silently.
#include <cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "train/hf_interop.h"

typedef struct {
    const cJSON *root;
    const char *source;
} Cfg;

static const cJSON *item(const Cfg *c, const char *key) { return cJSON_GetObjectItemCaseSensitive(c->root, key); }

// An integer key; `def` when absent or null (def < 0: required).
static int get_int(const Cfg *c, const char *key, int def, int *out) {
    const cJSON *v = item(c, key);
    if (!v || cJSON_IsNull(v)) {
        if (def < 0) return ct_error_set("%s: config key '%s' is missing", c->source, key);
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 1 || v->valuedouble > 1e9)
        return ct_error_set("%s: config key '%s' must be a positive integer", c->source, key);
    *out = (int)v->valuedouble;
    return 0;
}

static int get_float(const Cfg *c, const char *key, double def, float *out) {
    const cJSON *v = item(c, key);
    if (!v || cJSON_IsNull(v)) {
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

// A key that must be absent, null, false or equal to `allowed` for ctrain to compute the same.
static int refuse_if_true(const Cfg *c, const char *key, const char *what) {
    const cJSON *v = item(c, key);
    if (v && !cJSON_IsNull(v) && !cJSON_IsFalse(v))
        return ct_error_set("%s: %s = %s is not supported: %s", c->source, key,
                            cJSON_IsTrue(v) ? "true" : cJSON_IsNumber(v) ? "a number" : "set", what);
    return 0;
}

static int parse_gpt2(const Cfg *c, CtModelConfig *m) {
    m->arch = CT_ARCH_GPT2;
    if (get_int(c, "n_layer", -1, &m->n_layer) || get_int(c, "n_head", -1, &m->n_head) ||
        get_int(c, "n_embd", -1, &m->d_model) || get_int(c, "vocab_size", -1, &m->vocab_size) ||
        get_int(c, "n_positions", 1024, &m->max_seq_len) || get_int(c, "n_inner", 4 * m->d_model, &m->d_ff) ||
        get_float(c, "layer_norm_epsilon", 1e-5, &m->norm_eps))
        return -1;
    m->n_kv_head = m->n_head;
    m->rope_theta = 10000.0f;
    m->tie_embeddings = get_bool(c, "tie_word_embeddings", 1);
    const char *act = get_string(c, "activation_function");
    if (act && strcmp(act, "gelu_new") != 0 && strcmp(act, "gelu_pytorch_tanh") != 0)
        return ct_error_set("%s: activation_function '%s' is not supported: ctrain's GPT-2 uses the tanh GELU "
                            "(gelu_new)", c->source, act);
    if (!get_bool(c, "scale_attn_weights", 1))
        return ct_error_set("%s: scale_attn_weights = false is not supported (ctrain scales by 1/sqrt(head size))",
                            c->source);
    if (refuse_if_true(c, "scale_attn_by_inverse_layer_idx", "ctrain does not scale attention by layer") ||
        refuse_if_true(c, "add_cross_attention", "a decoder-only model has no cross-attention"))
        return -1;
    return 0;
}

static int parse_llama(const Cfg *c, const char *family, CtModelConfig *m) {
    m->arch = CT_ARCH_LLAMA;
    if (get_int(c, "num_hidden_layers", -1, &m->n_layer) || get_int(c, "num_attention_heads", -1, &m->n_head) ||
        get_int(c, "hidden_size", -1, &m->d_model) || get_int(c, "intermediate_size", -1, &m->d_ff) ||
        get_int(c, "vocab_size", -1, &m->vocab_size) || get_int(c, "max_position_embeddings", 2048, &m->max_seq_len) ||
        get_int(c, "num_key_value_heads", m->n_head, &m->n_kv_head) ||
        get_float(c, "rms_norm_eps", 1e-6, &m->norm_eps) || get_float(c, "rope_theta", 10000.0, &m->rope_theta))
        return -1;
    m->tie_embeddings = get_bool(c, "tie_word_embeddings", 0);
    const char *act = get_string(c, "hidden_act");
    if (act && strcmp(act, "silu") != 0)
        return ct_error_set("%s: hidden_act '%s' is not supported: ctrain's LLaMA MLP is SwiGLU (silu)", c->source, act);
    int head_dim = 0;
    if (m->d_model % m->n_head == 0 && get_int(c, "head_dim", m->d_model / m->n_head, &head_dim) != 0) return -1;
    if (head_dim && head_dim * m->n_head != m->d_model)
        return ct_error_set("%s: head_dim %d is not hidden_size / num_attention_heads (%d / %d): not supported",
                            c->source, head_dim, m->d_model, m->n_head);
    if (refuse_if_true(c, "attention_bias", "ctrain's LLaMA has no biases on q/k/v/o") ||
        refuse_if_true(c, "mlp_bias", "ctrain's LLaMA has no biases in the MLP") ||
        refuse_if_true(c, "rope_scaling", "ctrain's RoPE has no frequency scaling (Llama 3.1+ 'llama3', linear, "
                                           "dynamic, yarn)"))
        return -1;
    if (strcmp(family, "qwen2") == 0)
        return ct_error_set("%s: Qwen2 models have biases on q/k/v (q_proj.bias ...), which ctrain's LLaMA does not "
                            "support", c->source);
    // Mistral's sliding window changes attention only for sequences longer than the window
    const cJSON *window = item(c, "sliding_window");
    int use_window = get_bool(c, "use_sliding_window", strcmp(family, "mistral") == 0);
    if (use_window && cJSON_IsNumber(window) && window->valuedouble < m->max_seq_len)
        return ct_error_set("%s: sliding_window = %.0f (below max_position_embeddings %d) is not supported: ctrain "
                            "attends to the whole context", c->source, window->valuedouble, m->max_seq_len);
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
    const char *type = get_string(&c, "model_type");
    const cJSON *archs = item(&c, "architectures");
    const char *arch = cJSON_IsArray(archs) && cJSON_IsString(archs->child) ? archs->child->valuestring : NULL;
    int rc;
    if ((type && strcmp(type, "gpt2") == 0) || (!type && arch && strcmp(arch, "GPT2LMHeadModel") == 0)) {
        rc = parse_gpt2(&c, out);
    } else if (type && (strcmp(type, "llama") == 0 || strcmp(type, "mistral") == 0 || strcmp(type, "qwen2") == 0)) {
        rc = parse_llama(&c, type, out);
    } else {
        rc = ct_error_set("%s: model_type '%s' (%s) is not supported; ctrain imports gpt2 (GPT2LMHeadModel) and llama "
                          "(LlamaForCausalLM, and Mistral-style configs that fit)",
                          source, type ? type : "missing", arch ? arch : "no architectures");
    }
    if (rc == 0 && arch && strstr(arch, "ForCausalLM") == NULL && strcmp(arch, "GPT2LMHeadModel") != 0)
        rc = ct_error_set("%s: architecture %s is not a causal language model with a head", source, arch);
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
