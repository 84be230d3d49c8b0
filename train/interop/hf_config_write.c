// config.json for `ctrain export hf`: the model shape in the keys of its family's config class,
// which transformers 5 loads (and 4, through the RoPE keys of both shapes). See hf_interop.h.
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "train/interop/hf_encoder_config.h"
#include "train/interop/hf_interop.h"
#include "train/interop/hf_moe_config.h"
#include "train/interop/hf_rope_config.h"

static const struct {
    const char *model_type, *architecture;
} family_names[] = {
    [CT_FAMILY_LLAMA] = {"llama", "LlamaForCausalLM"},     [CT_FAMILY_MISTRAL] = {"mistral", "MistralForCausalLM"},
    [CT_FAMILY_QWEN2] = {"qwen2", "Qwen2ForCausalLM"},     [CT_FAMILY_QWEN3] = {"qwen3", "Qwen3ForCausalLM"},
    [CT_FAMILY_GEMMA2] = {"gemma2", "Gemma2ForCausalLM"},  [CT_FAMILY_GEMMA3] = {"gemma3_text", "Gemma3ForCausalLM"},
    [CT_FAMILY_PHI3] = {"phi3", "Phi3ForCausalLM"},       [CT_FAMILY_MIXTRAL] = {"mixtral", "MixtralForCausalLM"},
    [CT_FAMILY_QWEN2_MOE] = {"qwen2_moe", "Qwen2MoeForCausalLM"},
    [CT_FAMILY_QWEN3_MOE] = {"qwen3_moe", "Qwen3MoeForCausalLM"},
    [CT_FAMILY_OLMOE] = {"olmoe", "OlmoeForCausalLM"},
};

static void write_gpt2(cJSON *o, const CtModelConfig *m) {
    cJSON_AddItemToArray(cJSON_GetObjectItem(o, "architectures"), cJSON_CreateString("GPT2LMHeadModel"));
    cJSON_AddStringToObject(o, "model_type", "gpt2");
    cJSON_AddNumberToObject(o, "vocab_size", m->vocab_size);
    cJSON_AddNumberToObject(o, "n_positions", m->max_seq_len);
    cJSON_AddNumberToObject(o, "n_ctx", m->max_seq_len);
    cJSON_AddNumberToObject(o, "n_embd", m->d_model);
    cJSON_AddNumberToObject(o, "n_layer", m->n_layer);
    cJSON_AddNumberToObject(o, "n_head", m->n_head);
    cJSON_AddNumberToObject(o, "n_inner", m->d_ff);
    cJSON_AddStringToObject(o, "activation_function", "gelu_new");
    cJSON_AddNumberToObject(o, "layer_norm_epsilon", ct_hf_short_float(m->norm_eps));
    cJSON_AddNumberToObject(o, "resid_pdrop", 0);
    cJSON_AddNumberToObject(o, "embd_pdrop", 0);
    cJSON_AddNumberToObject(o, "attn_pdrop", 0);
    cJSON_AddBoolToObject(o, "scale_attn_weights", 1);
}

// A float key in its shortest form, as a JSON float even when integral ("3.0", not "3"): the
// config classes of transformers 5 check types, and `final_logit_softcapping: 3` is refused.
static void add_float(cJSON *o, const char *key, float f) {
    char text[48];
    if (f == floorf(f) && fabsf(f) < 1e9f) {
        snprintf(text, sizeof text, "%.1f", (double)f);
    } else {
        for (int p = 1; p <= 9; p++) {
            snprintf(text, sizeof text, "%.*g", p, (double)f);
            if (strtof(text, NULL) == f) break;
        }
    }
    cJSON_AddRawToObject(o, key, text);
}

static void add_number_or_null(cJSON *o, const char *key, double v) {
    if (v > 0) cJSON_AddNumberToObject(o, key, v);
    else cJSON_AddNullToObject(o, key);
}

static void add_float_or_null(cJSON *o, const char *key, float v) {
    if (v > 0) add_float(o, key, v);
    else cJSON_AddNullToObject(o, key);
}

// layer_types as transformers 5 lists them (Qwen, Gemma).
static void add_layer_types(cJSON *o, const CtModelConfig *m) {
    cJSON *types = cJSON_AddArrayToObject(o, "layer_types");
    for (int l = 0; l < m->n_layer; l++)
        cJSON_AddItemToArray(types, cJSON_CreateString(ct_model_layer_slides(m, l) ? "sliding_attention" : "full_attention"));
}

// The window keys of each family (an absent sliding_window means 4096 to Mistral, Qwen and
// Gemma: "none" is written as null).
static void write_window(cJSON *o, const CtModelConfig *m) {
    switch (m->family) {
    case CT_FAMILY_LLAMA: break;
    case CT_FAMILY_OLMOE: break;
    case CT_FAMILY_MISTRAL:
    case CT_FAMILY_MIXTRAL:
    case CT_FAMILY_PHI3: add_number_or_null(o, "sliding_window", m->sliding_window); break;
    case CT_FAMILY_QWEN3_MOE:  // one window for every layer
        cJSON_AddBoolToObject(o, "use_sliding_window", m->sliding_window > 0);
        add_number_or_null(o, "sliding_window", m->sliding_window);
        break;
    case CT_FAMILY_QWEN2:
    case CT_FAMILY_QWEN3:
    case CT_FAMILY_QWEN2_MOE:
        cJSON_AddBoolToObject(o, "use_sliding_window", m->sliding_window > 0);
        add_number_or_null(o, "sliding_window", m->sliding_window);
        // transformers 4 reads this rule: layers from max_window_layers on slide
        cJSON_AddNumberToObject(o, "max_window_layers", m->sliding_window > 0 && !m->sliding_window_pattern ? 0 : m->n_layer);
        add_layer_types(o, m);
        break;
    case CT_FAMILY_GEMMA2:
    case CT_FAMILY_GEMMA3:
        // Gemma's models build a sliding mask whatever the layers are, and refuse a null window:
        // no window is one as long as the context (with every layer full_attention)
        cJSON_AddNumberToObject(o, "sliding_window", m->sliding_window > 0 ? m->sliding_window : m->max_seq_len);
        if (m->family == CT_FAMILY_GEMMA3 && m->sliding_window_pattern > 0)  // transformers 4's key
            cJSON_AddNumberToObject(o, "sliding_window_pattern", m->sliding_window_pattern);
        add_layer_types(o, m);
        break;
    }
}

static int write_gemma(cJSON *o, const CtModelConfig *m) {
    cJSON_AddStringToObject(o, "hidden_activation", "gelu_pytorch_tanh");
    // query_pre_attn_scalar is an integer in Gemma's config classes (transformers refuses 11.1)
    double scalar = m->query_scale > 0 ? 1.0 / ((double)m->query_scale * m->query_scale) : ct_model_head_dim(m);
    if (!(fabs(scalar - round(scalar)) < 1e-4 * scalar) || round(scalar) < 1)
        return ct_error_set("model.query_scale %g is not n^-1/2 for a whole n, which Gemma's config.json "
                            "(query_pre_attn_scalar, an integer) cannot say", m->query_scale);
    cJSON_AddNumberToObject(o, "query_pre_attn_scalar", round(scalar));
    add_float_or_null(o, "attn_logit_softcapping", m->attn_softcap);
    add_float_or_null(o, "final_logit_softcapping", m->final_softcap);
    cJSON_AddBoolToObject(o, "attention_bias", 0);
    if (m->family == CT_FAMILY_GEMMA3) cJSON_AddBoolToObject(o, "use_bidirectional_attention", 0);
    return 0;
}

static int write_llama(cJSON *o, const CtModelConfig *m) {
    cJSON_AddItemToArray(cJSON_GetObjectItem(o, "architectures"), cJSON_CreateString(family_names[m->family].architecture));
    cJSON_AddStringToObject(o, "model_type", family_names[m->family].model_type);
    cJSON_AddNumberToObject(o, "vocab_size", m->vocab_size);
    cJSON_AddNumberToObject(o, "hidden_size", m->d_model);
    cJSON_AddNumberToObject(o, "intermediate_size", ct_hf_moe_intermediate_size(m));
    cJSON_AddNumberToObject(o, "num_hidden_layers", m->n_layer);
    cJSON_AddNumberToObject(o, "num_attention_heads", m->n_head);
    cJSON_AddNumberToObject(o, "num_key_value_heads", m->n_kv_head);
    cJSON_AddNumberToObject(o, "head_dim", ct_model_head_dim(m));
    cJSON_AddNumberToObject(o, "max_position_embeddings", m->max_seq_len);
    add_float(o, "rms_norm_eps", m->norm_eps);
    ct_hf_rope_write(o, m);
    if (m->family == CT_FAMILY_GEMMA2 || m->family == CT_FAMILY_GEMMA3) {
        if (write_gemma(o, m) != 0) return -1;
    } else {
        cJSON_AddStringToObject(o, "hidden_act", "silu");
        if (m->family == CT_FAMILY_LLAMA || m->family == CT_FAMILY_QWEN3 || m->family == CT_FAMILY_QWEN3_MOE ||
            m->family == CT_FAMILY_OLMOE)
            cJSON_AddBoolToObject(o, "attention_bias", 0);
        if (m->family == CT_FAMILY_LLAMA) cJSON_AddBoolToObject(o, "mlp_bias", 0);
    }
    if (m->family == CT_FAMILY_PHI3) {  // longrope's pretraining length (unused by the default RoPE); dropout off
        cJSON_AddNumberToObject(o, "original_max_position_embeddings", m->max_seq_len);
        // Phi3Config's default padding id is 32000, which nn.Embedding refuses in a smaller vocabulary
        cJSON_AddNullToObject(o, "pad_token_id");
        cJSON_AddNumberToObject(o, "resid_pdrop", 0);
        cJSON_AddNumberToObject(o, "embd_pdrop", 0);
    }
    write_window(o, m);
    cJSON_AddNumberToObject(o, "attention_dropout", 0);
    return ct_hf_moe_write(o, m);
}

// A reward model (model.reward_head) is its family's *ForSequenceClassification with one label:
// transformers reads num_labels from id2label. It scores the last token that is not pad_token_id
// (and refuses batches of more than one sequence without one): the model's reward_pad_id, the id
// ctrain reads its scores by.
static int write_reward_head(cJSON *o, const CtModelConfig *m) {
    char name[96];
    if (m->arch == CT_ARCH_GPT2) {
        snprintf(name, sizeof name, "GPT2ForSequenceClassification");
    } else if (m->family == CT_FAMILY_OLMOE) {
        return ct_error_set("transformers has no OlmoeForSequenceClassification for a reward model to export as");
    } else if (m->family == CT_FAMILY_GEMMA3) {
        snprintf(name, sizeof name, "Gemma3TextForSequenceClassification");
    } else {
        const char *lm = family_names[m->family].architecture;
        snprintf(name, sizeof name, "%.*sForSequenceClassification", (int)(strlen(lm) - strlen("ForCausalLM")), lm);
    }
    cJSON *arch = cJSON_CreateArray();
    cJSON_AddItemToArray(arch, cJSON_CreateString(name));
    cJSON_ReplaceItemInObject(o, "architectures", arch);
    cJSON_AddItemToObject(o, "id2label", cJSON_CreateObject());
    cJSON_AddStringToObject(cJSON_GetObjectItem(o, "id2label"), "0", "LABEL_0");
    cJSON_AddItemToObject(o, "label2id", cJSON_CreateObject());
    cJSON_AddNumberToObject(cJSON_GetObjectItem(o, "label2id"), "LABEL_0", 0);
    cJSON_DeleteItemFromObject(o, "pad_token_id");
    if (m->reward_pad_id >= 0) cJSON_AddNumberToObject(o, "pad_token_id", m->reward_pad_id);
    else cJSON_AddNullToObject(o, "pad_token_id");  // transformers then reads the last token, one sequence a batch
    return 0;
}

char *ct_hf_config_json(const CtModelConfig *m, int bos_id, const int32_t *eos_ids, int n_eos, const char *torch_dtype) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddArrayToObject(o, "architectures");
    if (ct_model_is_encoder(m)) {
        ct_hf_encoder_config_write(o, m);
    } else if (m->arch == CT_ARCH_GPT2) {
        write_gpt2(o, m);
    } else if (write_llama(o, m) != 0) {
        cJSON_Delete(o);
        return NULL;
    }
    cJSON_AddBoolToObject(o, "tie_word_embeddings", m->tie_embeddings);
    cJSON_AddNumberToObject(o, "initializer_range", 0.02);
    cJSON_AddBoolToObject(o, "use_cache", 1);
    if (bos_id >= 0) cJSON_AddNumberToObject(o, "bos_token_id", bos_id);
    if (n_eos == 1) cJSON_AddNumberToObject(o, "eos_token_id", eos_ids[0]);
    if (n_eos > 1) {
        cJSON *list = cJSON_AddArrayToObject(o, "eos_token_id");
        for (int i = 0; i < n_eos; i++) cJSON_AddItemToArray(list, cJSON_CreateNumber(eos_ids[i]));
    }
    if (m->reward_head && write_reward_head(o, m) != 0) {
        cJSON_Delete(o);
        return NULL;
    }
    // transformers 4.56+ reads "dtype", earlier releases "torch_dtype"
    cJSON_AddStringToObject(o, "torch_dtype", torch_dtype);
    cJSON_AddStringToObject(o, "dtype", torch_dtype);
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    return s;
}
