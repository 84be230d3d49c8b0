// The run attributes of every model checkpoint. See train/interop/checkpoint_meta.h.
#include "train/interop/checkpoint_meta.h"

#include <cJSON.h>
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/version.h"

void ct_checkpoint_meta_init(CtCheckpointMeta *meta) {
    memset(meta, 0, sizeof *meta);
    meta->train_loss = meta->val_loss = meta->best_val_loss = NAN;
}

void ct_checkpoint_meta_free(CtCheckpointMeta *meta) {
    ct_free(meta->run_config_json);
    ct_free(meta->tokenizer_json);
    ct_free(meta->chat_template_json);
    ct_free(meta->generation_config_json);
    meta->run_config_json = meta->tokenizer_json = meta->chat_template_json = meta->generation_config_json = NULL;
}

char *ct_model_config_json(const CtModelConfig *c) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "arch", ct_arch_name(c->arch));
    cJSON_AddNumberToObject(o, "n_layer", c->n_layer);
    cJSON_AddNumberToObject(o, "n_head", c->n_head);
    cJSON_AddNumberToObject(o, "n_kv_head", c->n_kv_head);
    cJSON_AddNumberToObject(o, "d_model", c->d_model);
    cJSON_AddNumberToObject(o, "d_ff", c->d_ff);
    cJSON_AddNumberToObject(o, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(o, "max_seq_len", c->max_seq_len);
    cJSON_AddNumberToObject(o, "norm_eps", c->norm_eps);
    cJSON_AddNumberToObject(o, "rope_theta", c->rope_theta);
    cJSON_AddBoolToObject(o, "tie_embeddings", c->tie_embeddings);
    cJSON_AddNumberToObject(o, "dropout", c->dropout);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static int get_int(const cJSON *o, const char *key, int *out, const char *source) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) return ct_error_set("%s: model_config has no number '%s'", source, key);
    *out = (int)v->valuedouble;
    return 0;
}

int ct_model_config_parse_json(const char *json, CtModelConfig *out, const char *source) {
    memset(out, 0, sizeof *out);
    cJSON *o = cJSON_Parse(json);
    int rc = -1;
    if (!cJSON_IsObject(o)) {
        ct_error_set("%s: model_config is not a JSON object", source);
        goto done;
    }
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(o, "arch");
    if (!cJSON_IsString(arch) || (strcmp(arch->valuestring, "gpt2") != 0 && strcmp(arch->valuestring, "llama") != 0)) {
        ct_error_set("%s: model_config has no arch gpt2 or llama", source);
        goto done;
    }
    out->arch = strcmp(arch->valuestring, "gpt2") == 0 ? CT_ARCH_GPT2 : CT_ARCH_LLAMA;
    if (get_int(o, "n_layer", &out->n_layer, source) || get_int(o, "n_head", &out->n_head, source) ||
        get_int(o, "n_kv_head", &out->n_kv_head, source) || get_int(o, "d_model", &out->d_model, source) ||
        get_int(o, "d_ff", &out->d_ff, source) || get_int(o, "vocab_size", &out->vocab_size, source) ||
        get_int(o, "max_seq_len", &out->max_seq_len, source))
        goto done;
    const cJSON *v;
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(o, "norm_eps"))) out->norm_eps = (float)v->valuedouble;
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(o, "rope_theta"))) out->rope_theta = (float)v->valuedouble;
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(o, "dropout"))) out->dropout = (float)v->valuedouble;
    out->tie_embeddings = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "tie_embeddings"));
    if (ct_model_config_validate(out) != 0) {
        ct_error_prefix("%s: model_config: ", source);
        goto done;
    }
    rc = 0;
done:
    cJSON_Delete(o);
    return rc;
}

int ct_checkpoint_write_meta(CtCheckpoint *c, const CtCheckpointMeta *meta) {
    uint64_t loader[3] = {meta->loader.seed, meta->loader.epoch, meta->loader.step};
    int rc = ct_ckpt_set_int(c, "step", meta->step) || ct_ckpt_set_int(c, "tokens_seen", meta->tokens_seen) ||
             ct_ckpt_set_u64s(c, "loader", loader, 3) || ct_ckpt_set_u64s(c, "rng", meta->rng, 4) ||
             ct_ckpt_set_double(c, "train_loss", meta->train_loss) || ct_ckpt_set_double(c, "val_loss", meta->val_loss) ||
             ct_ckpt_set_double(c, "best_val_loss", meta->best_val_loss) ||
             ct_ckpt_set_string(c, "created_by", "ctrain " CTRAIN_VERSION) ||
             ct_ckpt_set_u64s(c, "tokenizer_hash", &meta->tokenizer_hash, 1);
    if (rc == 0 && meta->run_config_json) rc = ct_ckpt_set_string(c, "config", meta->run_config_json);
    if (rc == 0 && meta->tokenizer_json) rc = ct_ckpt_set_string(c, "tokenizer", meta->tokenizer_json);
    if (rc == 0 && meta->chat_template_json) rc = ct_ckpt_set_string(c, "chat_template", meta->chat_template_json);
    if (rc == 0 && meta->generation_config_json)
        rc = ct_ckpt_set_string(c, "generation_config", meta->generation_config_json);
    return rc ? -1 : 0;
}

int ct_checkpoint_read_meta_open(CtCheckpoint *c, const char *path, CtModelConfig *config, CtCheckpointMeta *meta) {
    ct_checkpoint_meta_init(meta);
    char *json = NULL;
    if (ct_ckpt_get_string(c, "model_config", &json) != 0) return ct_error_prefix("not a model checkpoint: ");
    int rc = ct_model_config_parse_json(json, config, path);
    ct_free(json);
    if (rc != 0) return -1;
    uint64_t loader[3] = {0, 0, 0};
    if (ct_ckpt_has(c, "step") && ct_ckpt_get_int(c, "step", &meta->step) != 0) return -1;
    if (ct_ckpt_has(c, "tokens_seen") && ct_ckpt_get_int(c, "tokens_seen", &meta->tokens_seen) != 0) return -1;
    if (ct_ckpt_has(c, "loader") && ct_ckpt_get_u64s(c, "loader", loader, 3) != 0) return -1;
    meta->loader = (CtLoaderState){loader[0], loader[1], loader[2]};
    if (ct_ckpt_has(c, "rng") && ct_ckpt_get_u64s(c, "rng", meta->rng, 4) != 0) return -1;
    if (ct_ckpt_has(c, "train_loss")) ct_ckpt_get_double(c, "train_loss", &meta->train_loss);
    if (ct_ckpt_has(c, "val_loss")) ct_ckpt_get_double(c, "val_loss", &meta->val_loss);
    if (ct_ckpt_has(c, "best_val_loss")) ct_ckpt_get_double(c, "best_val_loss", &meta->best_val_loss);
    if (ct_ckpt_has(c, "tokenizer_hash") && ct_ckpt_get_u64s(c, "tokenizer_hash", &meta->tokenizer_hash, 1) != 0) return -1;
    if (ct_ckpt_has(c, "config") && ct_ckpt_get_string(c, "config", &meta->run_config_json) != 0) return -1;
    if (ct_ckpt_has(c, "tokenizer") && ct_ckpt_get_string(c, "tokenizer", &meta->tokenizer_json) != 0) return -1;
    if (ct_ckpt_has(c, "chat_template") && ct_ckpt_get_string(c, "chat_template", &meta->chat_template_json) != 0)
        return -1;
    if (ct_ckpt_has(c, "generation_config") &&
        ct_ckpt_get_string(c, "generation_config", &meta->generation_config_json) != 0)
        return -1;
    return 0;
}

int ct_checkpoint_read_meta(const char *path, CtModelConfig *config, CtCheckpointMeta *meta) {
    CtCheckpoint c;
    if (ct_ckpt_open(&c, path) != 0) return -1;
    int rc = ct_checkpoint_read_meta_open(&c, path, config, meta);
    ct_ckpt_close(&c);
    if (rc != 0) ct_checkpoint_meta_free(meta);
    return rc;
}

