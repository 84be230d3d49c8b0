// LoRA runs' checkpoints: they hold the adapters, their optimizer
// state and a reference to the base. See train/interop/lora_checkpoint.h.
#include "train/interop/lora_checkpoint.h"

#include <cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "train/model/model_resize.h"

static cJSON *patterns_json(const CtLoraPattern *p, int n) {
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; i < n; i++) cJSON_AddNumberToObject(o, p[i].key, p[i].value);
    return o;
}

char *ct_lora_spec_json(const CtLoraSpec *spec, const char *target_modules) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "r", spec->r);
    cJSON_AddNumberToObject(o, "alpha", spec->alpha);
    cJSON_AddNumberToObject(o, "dropout", spec->dropout);
    cJSON_AddBoolToObject(o, "rslora", spec->rslora);
    cJSON_AddStringToObject(o, "target_modules", target_modules);
    cJSON_AddStringToObject(o, "targets", spec->targets);
    cJSON_AddStringToObject(o, "target_regex", spec->target_regex);
    cJSON_AddStringToObject(o, "target_parameters", spec->target_parameters);
    cJSON *layers = cJSON_AddArrayToObject(o, "layers_to_transform");
    for (int i = 0; i < spec->n_layers; i++) cJSON_AddItemToArray(layers, cJSON_CreateNumber(spec->layers[i]));
    cJSON_AddStringToObject(o, "layers_pattern", spec->layers_pattern);
    cJSON_AddItemToObject(o, "rank_pattern", patterns_json(spec->rank_pattern, spec->n_rank_pattern));
    cJSON_AddItemToObject(o, "alpha_pattern", patterns_json(spec->alpha_pattern, spec->n_alpha_pattern));
    cJSON *ids = cJSON_AddArrayToObject(o, "trainable_token_ids");
    for (int i = 0; i < spec->n_tokens; i++) cJSON_AddItemToArray(ids, cJSON_CreateNumber(spec->token_ids[i]));
    cJSON_AddBoolToObject(o, "trainable_token_head", spec->token_head);
    cJSON_AddStringToObject(o, "modules_to_save", spec->modules_to_save);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static int read_patterns(const cJSON *o, CtLoraPattern *out, int *n) {
    *n = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, o) {
        if (!cJSON_IsNumber(item) || *n >= CT_LORA_MAX_PATTERNS) return -1;
        snprintf(out[*n].key, sizeof out[*n].key, "%s", item->string);
        out[(*n)++].value = item->valuedouble;
    }
    return 0;
}

static int read_ints(const cJSON *list, int32_t *out, int max, int *n) {
    *n = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, list) {
        if (!cJSON_IsNumber(item) || *n >= max) return -1;
        out[(*n)++] = (int32_t)item->valuedouble;
    }
    return 0;
}

static void get_string(const cJSON *o, const char *key, char *dst, size_t size) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    snprintf(dst, size, "%s", cJSON_IsString(v) ? v->valuestring : "");
}

int ct_lora_spec_parse_json(const char *json, CtLoraSpec *spec, const char *source) {
    memset(spec, 0, sizeof *spec);
    cJSON *o = cJSON_Parse(json);
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "r"), *alpha = cJSON_GetObjectItemCaseSensitive(o, "alpha");
    const cJSON *targets = cJSON_GetObjectItemCaseSensitive(o, "target_modules");
    int rc = 0;
    if (!cJSON_IsNumber(r) || !cJSON_IsNumber(alpha) || !cJSON_IsString(targets)) {
        rc = ct_error_set("%s: lora_config is not {\"r\", \"alpha\", \"target_modules\", ...}", source);
    } else {
        spec->r = (int)r->valuedouble;
        spec->alpha = alpha->valuedouble;
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "dropout");
        spec->dropout = cJSON_IsNumber(d) ? d->valuedouble : 0;
        spec->rslora = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "rslora"));
        if (cJSON_GetObjectItemCaseSensitive(o, "targets")) {  // what was asked (target_modules: what PEFT records)
            get_string(o, "targets", spec->targets, sizeof spec->targets);
            get_string(o, "target_regex", spec->target_regex, sizeof spec->target_regex);
            get_string(o, "target_parameters", spec->target_parameters, sizeof spec->target_parameters);
        } else {  // checkpoints of earlier versions
            snprintf(spec->targets, sizeof spec->targets, "%s", targets->valuestring);
        }
        get_string(o, "layers_pattern", spec->layers_pattern, sizeof spec->layers_pattern);
        get_string(o, "modules_to_save", spec->modules_to_save, sizeof spec->modules_to_save);
        int n_layers = 0, n_tokens = 0;
        if (read_ints(cJSON_GetObjectItemCaseSensitive(o, "layers_to_transform"), spec->layers, CT_LORA_MAX_LAYERS,
                      &n_layers) != 0 ||
            read_ints(cJSON_GetObjectItemCaseSensitive(o, "trainable_token_ids"), spec->token_ids, CT_LORA_MAX_TOKENS,
                      &n_tokens) != 0 ||
            read_patterns(cJSON_GetObjectItemCaseSensitive(o, "rank_pattern"), spec->rank_pattern,
                          &spec->n_rank_pattern) != 0 ||
            read_patterns(cJSON_GetObjectItemCaseSensitive(o, "alpha_pattern"), spec->alpha_pattern,
                          &spec->n_alpha_pattern) != 0)
            rc = ct_error_set("%s: lora_config has a malformed layers_to_transform, rank_pattern, alpha_pattern or "
                              "trainable_token_ids", source);
        spec->n_layers = n_layers;
        spec->n_tokens = n_tokens;
        spec->token_head = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "trainable_token_head"));
    }
    cJSON_Delete(o);
    return rc;
}

void ct_lora_record_base(CtLora *lora, const char *base_path, uint64_t hash) {
    char abs[PATH_MAX];
    snprintf(lora->base_path, sizeof lora->base_path, "%s", realpath(base_path, abs) ? abs : base_path);
    lora->base_hash = hash;
}

// Writes the adapters as GROUP/<name> over one buffer of the adapter layout.
static int write_adapters(CtCheckpoint *c, const CtLora *lora, const char *group, const float *buffer) {
    const int n = ct_lora_n_tensors(lora);
    CtNamedTensor *t = ct_alloc(sizeof(CtNamedTensor) * (size_t)n);
    ct_lora_named_tensors(lora, buffer, t);
    int rc = ct_ckpt_write_tensors(c, group, t, n);
    ct_free(t);
    return rc;
}

static int read_adapters(CtCheckpoint *c, const CtLora *lora, const char *group, float *buffer) {
    const int n = ct_lora_n_tensors(lora);
    CtNamedTensor *t = ct_alloc(sizeof(CtNamedTensor) * (size_t)n);
    ct_lora_named_tensors(lora, buffer, t);
    int rc = ct_ckpt_read_tensors(c, group, t, n);
    ct_free(t);
    return rc;
}

int ct_lora_checkpoint_save(const char *path, const CtModel *m, const CtAdamW *opt, const CtCheckpointMeta *meta) {
    const CtLora *lora = m->lora;
    CtCheckpoint c;
    if (ct_ckpt_create(&c, path) != 0) return -1;
    char *model_json = ct_model_config_json(&m->config), *lora_json = ct_lora_spec_json(&lora->spec, lora->target_modules);
    int rc = ct_ckpt_set_string(&c, "model_config", model_json) || ct_ckpt_set_string(&c, "lora_config", lora_json) ||
             ct_ckpt_set_string(&c, "lora_base", lora->base_path) ||
             ct_ckpt_set_u64s(&c, "lora_base_hash", &lora->base_hash, 1);
    free(model_json);
    free(lora_json);
    if (rc == 0) rc = write_adapters(&c, lora, "lora", lora->params);
    if (rc == 0 && opt) {
        rc = write_adapters(&c, lora, "optim/m", opt->m) || write_adapters(&c, lora, "optim/v", opt->v) ||
             ct_ckpt_set_int(&c, "optim_step", opt->step);
    }
    if (rc == 0) rc = ct_checkpoint_write_meta(&c, meta);
    if (rc != 0) {
        ct_ckpt_abort(&c);
        return -1;
    }
    return ct_ckpt_commit(&c);
}

int ct_lora_checkpoint_open(CtLoraCheckpoint *lc, const char *path, CtCheckpointMeta *meta) {
    memset(lc, 0, sizeof *lc);
    if (ct_ckpt_open(&lc->file, path) != 0) return -1;
    int rc = ct_checkpoint_read_meta_open(&lc->file, path, &lc->config, meta);
    char *lora_json = NULL;
    if (rc == 0)
        rc = ct_ckpt_get_string(&lc->file, "lora_config", &lora_json) ||
                     ct_ckpt_get_string(&lc->file, "lora_base", &lc->base_path) ||
                     ct_ckpt_get_u64s(&lc->file, "lora_base_hash", &lc->base_hash, 1)
                 ? -1
                 : 0;
    if (rc == 0) rc = ct_lora_spec_parse_json(lora_json, &lc->spec, path);
    ct_free(lora_json);
    if (rc != 0) {
        ct_lora_checkpoint_close(lc);
        ct_checkpoint_meta_free(meta);
    }
    return rc;
}

void ct_lora_checkpoint_close(CtLoraCheckpoint *lc) {
    ct_free(lc->base_path);
    lc->base_path = NULL;
    ct_ckpt_close(&lc->file);
}

int ct_lora_base_take_head(CtModel *m, const CtModelConfig *recorded) {
    const int flags = (m->recompute ? CT_MODEL_RECOMPUTE : 0) | (m->frozen ? CT_MODEL_FROZEN : 0);
    if (recorded->reward_head && !m->config.reward_head) {
        if (ct_model_add_reward_head(m, 0, m->max_B, m->max_T, flags) != 0) return -1;
        m->config.reward_pad_id = recorded->reward_pad_id;
    }
    if (!recorded->num_labels || m->config.num_labels) return 0;
    return ct_model_add_classifier(m, recorded->num_labels, recorded->cls_pooling, 0, m->max_B, m->max_T, flags);
}

int ct_lora_checkpoint_read(CtLoraCheckpoint *lc, const char *path, CtModel *m, CtAdamW *opt, int keep) {
    int rc = ct_lora_base_take_head(m, &lc->config);  // its values are the checkpoint's (modules_to_save)
    if (rc == 0) rc = ct_lora_attach(m, &lc->spec);  // token rows past the base's vocabulary grow it to the recorded shape
    if (rc == 0 && memcmp(&m->config, &lc->config, sizeof lc->config) != 0)
        rc = ct_error_set("%s: its base %s has another shape than the one recorded", path, lc->base_path);
    if (rc == 0) {
        ct_lora_record_base(m->lora, lc->base_path, lc->base_hash);
        rc = read_adapters(&lc->file, m->lora, "lora", m->lora->params);
        ct_lora_sync(m, 1);  // the token rows read: the base takes them
    }
    if (rc == 0 && opt) {
        if (!ct_ckpt_has(&lc->file, "optim/m") || !ct_ckpt_has(&lc->file, "optim/v")) {
            rc = ct_error_set("%s: holds no optimizer state for its adapters (best.h5?); resume from a step checkpoint",
                              path);
        } else {
            ct_free(opt->m);
            ct_free(opt->v);
            opt->n = m->n_train;
            opt->m = ct_calloc(opt->n, sizeof(float));
            opt->v = ct_calloc(opt->n, sizeof(float));
            int64_t optim_step = 0;
            rc = read_adapters(&lc->file, m->lora, "optim/m", opt->m) ||
                         read_adapters(&lc->file, m->lora, "optim/v", opt->v) ||
                         ct_ckpt_get_int(&lc->file, "optim_step", &optim_step)
                     ? -1
                     : 0;
            opt->step = (long)optim_step;
        }
        if (rc == 0) ct_lora_report(m);
    } else if (rc == 0 && !keep) {
        ct_lora_merge(m);  // W + s·B·A: a plain model for generation, export, init_from
    }
    return rc;
}
