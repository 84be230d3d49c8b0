// PEFT's prompt-learning adapter folders. See peft_prompt.h.
#include "checkpoints/peft_prompt.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoints/json_file.h"
#include "checkpoints/peft.h"
#include "checkpoints/safetensors.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/fs.h"

static int is_type(const CtPromptAdapterConfig *c, const char *type) { return strcmp(c->peft_type, type) == 0; }

// PEFT 0.21's fields of the type's config class (PromptLearningConfig's, then the type's own).
static char *config_json(const CtPromptAdapterConfig *c) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "peft_type", c->peft_type);
    cJSON_AddStringToObject(o, "task_type", "CAUSAL_LM");
    cJSON_AddStringToObject(o, "base_model_name_or_path", c->base_model_name_or_path);
    cJSON_AddNullToObject(o, "revision");
    cJSON_AddBoolToObject(o, "inference_mode", 1);
    cJSON_AddNumberToObject(o, "num_virtual_tokens", c->num_virtual_tokens);
    cJSON_AddNumberToObject(o, "token_dim", c->token_dim);
    cJSON_AddNumberToObject(o, "num_transformer_submodules", 1);
    cJSON_AddNumberToObject(o, "num_attention_heads", c->num_attention_heads);
    cJSON_AddNumberToObject(o, "num_layers", c->num_layers);
    cJSON_AddNullToObject(o, "modules_to_save");
    if (is_type(c, "PROMPT_TUNING")) {
        cJSON_AddStringToObject(o, "prompt_tuning_init", c->prompt_tuning_init);
        if (c->prompt_tuning_init_text[0])
            cJSON_AddStringToObject(o, "prompt_tuning_init_text", c->prompt_tuning_init_text);
        else
            cJSON_AddNullToObject(o, "prompt_tuning_init_text");
        // PromptTuningConfig refuses TEXT without a tokenizer, even in inference mode where it is not read
        if (c->tokenizer_name_or_path[0])
            cJSON_AddStringToObject(o, "tokenizer_name_or_path", c->tokenizer_name_or_path);
        else
            cJSON_AddNullToObject(o, "tokenizer_name_or_path");
        cJSON_AddNullToObject(o, "tokenizer_kwargs");
    } else if (is_type(c, "P_TUNING")) {
        cJSON_AddStringToObject(o, "encoder_reparameterization_type", c->encoder_reparameterization_type);
        cJSON_AddNumberToObject(o, "encoder_hidden_size", c->encoder_hidden_size);
        cJSON_AddNumberToObject(o, "encoder_num_layers", c->encoder_num_layers);
        cJSON_AddNumberToObject(o, "encoder_dropout", c->encoder_dropout);
    } else if (is_type(c, "PREFIX_TUNING")) {
        if (c->encoder_hidden_size)
            cJSON_AddNumberToObject(o, "encoder_hidden_size", c->encoder_hidden_size);
        else
            cJSON_AddNullToObject(o, "encoder_hidden_size");
        cJSON_AddBoolToObject(o, "prefix_projection", c->prefix_projection);
    }
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    return text;
}

int ct_prompt_adapter_write(const char *dir, const CtPromptAdapterConfig *cfg, const float *prompt_embeddings,
                            int64_t rows, int64_t width, uint64_t base_hash) {
    CtNamedTensor t = {.name = "prompt_embeddings", .ndim = 2, .shape = {rows, width}, .dtype = CT_DTYPE_F32,
                       .data = (void *)prompt_embeddings};
    char *text = config_json(cfg);
    int rc = ct_peft_write_folder(dir, &t, 1, base_hash, text);
    free(text);
    return rc;
}

static cJSON *read_config_json(const char *dir, char *path, size_t size) {
    ct_path_join(path, size, dir, "adapter_config.json");
    char *text = ct_json_file_read(path);
    if (!text) {
        ct_error_prefix("%s is not a PEFT adapter folder: ", dir);
        return NULL;
    }
    cJSON *o = cJSON_Parse(text);
    ct_free(text);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        ct_error_set("%s: not a JSON object", path);
        return NULL;
    }
    return o;
}

static int get_string(const cJSON *o, const char *key, char *dst, size_t size) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= size) return -1;
    snprintf(dst, size, "%s", v->valuestring);
    return 0;
}

int ct_peft_folder_type(const char *dir, char *buf, size_t size) {
    char path[4200];
    cJSON *o = read_config_json(dir, path, sizeof path);
    if (!o) return -1;
    int rc = get_string(o, "peft_type", buf, size) == 0 ? 0 : ct_error_set("%s: no \"peft_type\" string", path);
    cJSON_Delete(o);
    return rc;
}

// A count the config must hold: a positive integer (or, where may_be_null, null / absent: 0).
static int get_count(const cJSON *o, const char *key, int may_be_null, int *out, const char *path) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = 0;
    if ((!v || cJSON_IsNull(v)) && may_be_null) return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 1e9 || v->valuedouble != (double)(int)v->valuedouble)
        return ct_error_set("%s: \"%s\" must be a positive integer", path, key);
    *out = (int)v->valuedouble;
    return 0;
}

int ct_prompt_adapter_read_config(const char *dir, CtPromptAdapterConfig *c) {
    memset(c, 0, sizeof *c);
    char path[4200];
    cJSON *o = read_config_json(dir, path, sizeof path);
    if (!o) return -1;
    int rc = 0;
    char task[64] = "";
    if (get_string(o, "peft_type", c->peft_type, sizeof c->peft_type) != 0)
        rc = ct_error_set("%s: no \"peft_type\" string", path);
    else if (!is_type(c, "PROMPT_TUNING") && !is_type(c, "P_TUNING") && !is_type(c, "PREFIX_TUNING"))
        rc = ct_error_set("%s: peft_type '%s' is not a prompt-learning type (PROMPT_TUNING, P_TUNING, PREFIX_TUNING)",
                          path, c->peft_type);
    else if (get_string(o, "task_type", task, sizeof task) != 0 || strcmp(task, "CAUSAL_LM") != 0)
        rc = ct_error_set("%s: task_type '%s': ctrain reads CAUSAL_LM adapters", path, task);
    if (rc == 0)
        rc = get_count(o, "num_virtual_tokens", 0, &c->num_virtual_tokens, path) ||
                     get_count(o, "token_dim", 0, &c->token_dim, path) ||
                     get_count(o, "num_transformer_submodules", 1, &c->num_transformer_submodules, path) ||
                     get_count(o, "num_attention_heads", 1, &c->num_attention_heads, path) ||
                     get_count(o, "num_layers", 1, &c->num_layers, path) ||
                     get_count(o, "encoder_hidden_size", 1, &c->encoder_hidden_size, path) ||
                     get_count(o, "encoder_num_layers", 1, &c->encoder_num_layers, path)
                 ? -1
                 : 0;
    if (rc == 0 && c->num_transformer_submodules > 1)
        rc = ct_error_set("%s: num_transformer_submodules %d: an encoder-decoder adapter; ctrain's models are "
                          "decoders (1)", path, c->num_transformer_submodules);
    if (rc == 0) {
        get_string(o, "prompt_tuning_init", c->prompt_tuning_init, sizeof c->prompt_tuning_init);
        get_string(o, "prompt_tuning_init_text", c->prompt_tuning_init_text, sizeof c->prompt_tuning_init_text);
        get_string(o, "tokenizer_name_or_path", c->tokenizer_name_or_path, sizeof c->tokenizer_name_or_path);
        get_string(o, "encoder_reparameterization_type", c->encoder_reparameterization_type,
                   sizeof c->encoder_reparameterization_type);
        get_string(o, "base_model_name_or_path", c->base_model_name_or_path, sizeof c->base_model_name_or_path);
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "encoder_dropout");
        c->encoder_dropout = cJSON_IsNumber(d) ? d->valuedouble : 0;
        c->prefix_projection = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "prefix_projection"));
    }
    cJSON_Delete(o);
    return rc;
}

int ct_prompt_adapter_read_embeddings(const char *dir, int64_t rows, int64_t width, float **out, uint64_t *base_hash) {
    *out = NULL;
    char path[4200];
    ct_path_join(path, sizeof path, dir, "adapter_model.safetensors");
    CtSafetensors f;
    if (ct_st_open(&f, path) != 0) return -1;
    int rc = 0;
    const CtStTensor *t = ct_st_find(&f, "prompt_embeddings");
    for (int i = 0; i < f.n_tensors && rc == 0; i++)
        if (strcmp(f.tensors[i].name, "prompt_embeddings") != 0)
            rc = ct_error_set("%s: tensor '%s' is not PEFT's prompt_embeddings (the only tensor a prompt-learning "
                              "adapter saves)", path, f.tensors[i].name);
    if (rc == 0 && !t) rc = ct_error_set("%s: tensor 'prompt_embeddings' is missing", path);
    if (rc == 0 && (t->ndim != 2 || t->shape[0] != rows || t->shape[1] != width))
        rc = ct_error_set("%s: prompt_embeddings has shape [%lld%s%lld]; adapter_config.json and this base need "
                          "[%lld, %lld]", path, (long long)t->shape[0], t->ndim == 2 ? ", " : "?",
                          (long long)(t->ndim == 2 ? t->shape[1] : 0), (long long)rows, (long long)width);
    if (rc == 0) {
        *out = ct_alloc((size_t)rows * (size_t)width * sizeof(float) + 1);
        rc = ct_st_read_f32(&f, t, *out);
        if (rc != 0) {
            ct_free(*out);
            *out = NULL;
        }
    }
    if (rc == 0) {
        const char *h = ct_st_meta(&f, CT_PEFT_BASE_HASH_KEY);
        *base_hash = h ? strtoull(h, NULL, 16) : 0;
    }
    ct_st_close(&f);
    return rc;
}
