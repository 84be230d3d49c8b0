// The encoder families' config.json, both ways. See hf_encoder_config.h; the defaults are
// transformers 5.23's (what BertConfig and RobertaConfig fill in when config.json leaves a key out).
#include "train/interop/hf_encoder_config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"

static const cJSON *item(const cJSON *root, const char *key) { return cJSON_GetObjectItemCaseSensitive(root, key); }
static int is_unset(const cJSON *v) { return !v || cJSON_IsNull(v); }

// A non-negative integer key; `def` when absent or null (def < 0: required).
static int get_int(const cJSON *root, const char *source, const char *key, int def, int min, int *out) {
    const cJSON *v = item(root, key);
    if (is_unset(v)) {
        if (def < 0) return ct_error_set("%s: config key '%s' is missing", source, key);
        return *out = def, 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < min || v->valuedouble > 1e9)
        return ct_error_set("%s: config key '%s' must be an integer of at least %d", source, key, min);
    *out = (int)v->valuedouble;
    return 0;
}

int ct_hf_is_encoder_type(const char *t) {
    return t && (strcmp(t, "bert") == 0 || strcmp(t, "roberta") == 0 || strcmp(t, "BertForMaskedLM") == 0 ||
                 strcmp(t, "RobertaForMaskedLM") == 0);
}

const char *ct_hf_encoder_architecture(const CtModelConfig *m) {
    return m->arch == CT_ARCH_ROBERTA ? "RobertaForMaskedLM" : "BertForMaskedLM";
}

// Every key BertConfig / RobertaConfig (transformers 5.23) and save_pretrained write, read below
// or harmless for the logits of a model in evaluation; others are named in one warning.
static const char *const known_keys[] = {
    "model_type", "architectures", "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
    "intermediate_size", "hidden_act", "max_position_embeddings", "type_vocab_size", "layer_norm_eps",
    "pad_token_id", "position_embedding_type", "is_decoder", "add_cross_attention", "tie_word_embeddings",
    // dropout (off in evaluation; ctrain trains with model.dropout), initialisation, token ids for
    // tokenizers and generation, caches and outputs, and the dtype the weights were saved in
    "hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout", "initializer_range",
    "bos_token_id", "eos_token_id", "sep_token_id", "use_cache", "transformers_version", "dtype", "torch_dtype",
    "_name_or_path", "output_hidden_states", "output_attentions", "return_dict", "chunk_size_feed_forward",
    "gradient_checkpointing", "problem_type", "id2label", "label2id", "num_labels", "tokenizer_class",
};

static void warn_unknown_keys(const cJSON *root, const char *source) {
    char names[512] = "";
    int n = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        int known = 0;
        for (size_t i = 0; i < sizeof known_keys / sizeof known_keys[0] && !known; i++)
            known = strcmp(e->string, known_keys[i]) == 0;
        if (known) continue;
        size_t len = strlen(names);
        if (len + strlen(e->string) + 8 < sizeof names) snprintf(names + len, sizeof names - len, "%s%s", n ? ", " : "", e->string);
        n++;
    }
    if (n)
        ct_warn("%s: %d config key%s that ctrain does not know (%s), which transformers' built-in encoder does not "
                "read either", source, n, n == 1 ? "" : "s", names);
}

// A key whose value must be absent, null, or `allowed` (a string) / false (a bool).
static int refuse_string_other_than(const cJSON *root, const char *source, const char *key, const char *allowed,
                                    const char *why) {
    const cJSON *v = item(root, key);
    if (is_unset(v) || (cJSON_IsString(v) && strcmp(v->valuestring, allowed) == 0)) return 0;
    return ct_error_set("%s: %s = %s is not supported: %s", source, key,
                        cJSON_IsString(v) ? v->valuestring : "a non-string", why);
}
static int refuse_true(const cJSON *root, const char *source, const char *key, const char *why) {
    const cJSON *v = item(root, key);
    if (is_unset(v) || cJSON_IsFalse(v)) return 0;
    return ct_error_set("%s: %s = true is not supported: %s", source, key, why);
}

int ct_hf_encoder_config_parse(const cJSON *root, const char *source, const char *model_type, CtModelConfig *m) {
    memset(m, 0, sizeof *m);
    const int roberta = strcmp(model_type, "roberta") == 0 || strcmp(model_type, "RobertaForMaskedLM") == 0;
    m->arch = roberta ? CT_ARCH_ROBERTA : CT_ARCH_BERT;
    int max_pos = 0;
    if (get_int(root, source, "vocab_size", roberta ? 50265 : 30522, 2, &m->vocab_size) ||
        get_int(root, source, "hidden_size", 768, 1, &m->d_model) ||
        get_int(root, source, "num_hidden_layers", 12, 1, &m->n_layer) ||
        get_int(root, source, "num_attention_heads", 12, 1, &m->n_head) ||
        get_int(root, source, "intermediate_size", 3072, 1, &m->d_ff) ||
        get_int(root, source, "max_position_embeddings", 512, 1, &max_pos) ||
        get_int(root, source, "type_vocab_size", 2, 1, &m->type_vocab_size) ||
        get_int(root, source, "pad_token_id", roberta ? 1 : 0, 0, &m->pad_token_id))
        return -1;
    const cJSON *eps = item(root, "layer_norm_eps");
    m->norm_eps = 1e-12f;  // both classes' default
    if (!is_unset(eps)) {
        if (!cJSON_IsNumber(eps) || !(eps->valuedouble > 0))
            return ct_error_set("%s: config key 'layer_norm_eps' must be a positive number", source);
        m->norm_eps = (float)eps->valuedouble;
    }
    if (m->d_model % m->n_head != 0)
        return ct_error_set("%s: hidden_size (%d) is not a multiple of num_attention_heads (%d)", source, m->d_model,
                            m->n_head);
    m->n_kv_head = m->n_head;
    // RoBERTa's positions start after padding_idx: its table holds padding_idx + 1 rows before them
    m->max_seq_len = max_pos - (roberta ? m->pad_token_id + 1 : 0);
    if (m->max_seq_len < 1)
        return ct_error_set("%s: max_position_embeddings %d leaves no position after RoBERTa's padding rows "
                            "(pad_token_id %d + 1)", source, max_pos, m->pad_token_id);
    const cJSON *tie = item(root, "tie_word_embeddings");
    m->tie_embeddings = 1;
    if (refuse_string_other_than(root, source, "hidden_act", "gelu",
                                 "ctrain's encoders use the exact GELU (transformers' \"gelu\")") ||
        refuse_string_other_than(root, source, "position_embedding_type", "absolute",
                                 "ctrain's encoders have absolute learned positions") ||
        refuse_true(root, source, "is_decoder", "ctrain's bert/roberta attend in both directions") ||
        refuse_true(root, source, "add_cross_attention", "ctrain's encoders have no cross-attention"))
        return -1;
    if (cJSON_IsFalse(tie))
        return ct_error_set("%s: tie_word_embeddings = false is not supported: ctrain's MLM decoder is the word "
                            "embedding", source);
    const cJSON *archs = item(root, "architectures");
    const char *arch = cJSON_IsArray(archs) && cJSON_IsString(archs->child) ? archs->child->valuestring : NULL;
    if (arch && strcmp(arch, ct_hf_encoder_architecture(m)) != 0)
        return ct_error_set("%s: architecture %s is not supported yet: ctrain imports %s (the masked-language model; "
                            "classification heads are a later step)", source, arch, ct_hf_encoder_architecture(m));
    warn_unknown_keys(root, source);
    return 0;
}

void ct_hf_encoder_config_write(cJSON *o, const CtModelConfig *m) {
    const int roberta = m->arch == CT_ARCH_ROBERTA;
    cJSON_AddItemToArray(cJSON_GetObjectItem(o, "architectures"), cJSON_CreateString(ct_hf_encoder_architecture(m)));
    cJSON_AddStringToObject(o, "model_type", roberta ? "roberta" : "bert");
    cJSON_AddNumberToObject(o, "vocab_size", m->vocab_size);
    cJSON_AddNumberToObject(o, "hidden_size", m->d_model);
    cJSON_AddNumberToObject(o, "num_hidden_layers", m->n_layer);
    cJSON_AddNumberToObject(o, "num_attention_heads", m->n_head);
    cJSON_AddNumberToObject(o, "intermediate_size", m->d_ff);
    cJSON_AddStringToObject(o, "hidden_act", "gelu");
    cJSON_AddNumberToObject(o, "max_position_embeddings", ct_model_position_rows(m));
    cJSON_AddNumberToObject(o, "type_vocab_size", m->type_vocab_size);
    // the float's shortest decimal that reads back as it (1e-12, not 9.99999996e-13)
    char eps[32];
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(eps, sizeof eps, "%.*g", digits, (double)m->norm_eps);
        if ((float)strtod(eps, NULL) == m->norm_eps) break;
    }
    cJSON_AddRawToObject(o, "layer_norm_eps", eps);
    cJSON_AddNumberToObject(o, "pad_token_id", m->pad_token_id);
    cJSON_AddStringToObject(o, "position_embedding_type", "absolute");
    cJSON_AddNumberToObject(o, "hidden_dropout_prob", m->dropout);
    cJSON_AddNumberToObject(o, "attention_probs_dropout_prob", m->dropout);
}
