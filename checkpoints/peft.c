// PEFT LoRA adapter folders: adapter_config.json and adapter_model.safetensors. See peft.h.
#include "checkpoints/peft.h"

#include <cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoints/json_file.h"
#include "core/alloc.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/fs.h"

static void join(char *buf, size_t size, const char *dir, const char *name) { ct_path_join(buf, size, dir, name); }

static void add_list(cJSON *o, const char *key, const char *comma_separated) {
    cJSON *list = cJSON_AddArrayToObject(o, key);
    for (const char *p = comma_separated; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)len, p);
        cJSON_AddItemToArray(list, cJSON_CreateString(name));
        p += len + (end ? 1 : 0);
    }
}

static char *config_text(const CtPeftConfig *cfg);

// The folder is whole or, after a failure (a full disk), without what this call wrote: a folder
// this call made is removed, and new weights never sit beside an older adapter_config.json.
int ct_peft_write_folder(const char *dir, const CtNamedTensor *tensors, int n, uint64_t base_hash, const char *config) {
    struct stat st;
    int existed = stat(dir, &st) == 0;
    if (ct_make_dirs(dir) != 0) return -1;
    char hash[32], path[4200];
    snprintf(hash, sizeof hash, "%016" PRIx64, base_hash);
    CtStMetaEntry meta[2] = {{"format", "pt"}, {CT_PEFT_BASE_HASH_KEY, hash}};
    join(path, sizeof path, dir, "adapter_model.safetensors");
    if (ct_st_write(path, tensors, n, meta, base_hash ? 2 : 1) == 0) {
        char config_path[4200];
        join(config_path, sizeof config_path, dir, "adapter_config.json");
        if (ct_write_file_atomic(config_path, config, strlen(config)) == 0) return 0;
    }
    unlink(path);
    if (!existed) rmdir(dir);
    return -1;
}

int ct_peft_write(const char *dir, const CtPeftConfig *cfg, const CtNamedTensor *tensors, int n, uint64_t base_hash) {
    // the tensors under PEFT's names
    CtNamedTensor *t = ct_alloc(sizeof(CtNamedTensor) * (size_t)(n ? n : 1));
    char **names = ct_alloc(sizeof(char *) * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) {
        size_t len = strlen(CT_PEFT_PREFIX) + strlen(tensors[i].name) + 1;
        names[i] = ct_alloc(len);
        snprintf(names[i], len, "%s%s", CT_PEFT_PREFIX, tensors[i].name);
        t[i] = tensors[i];
        t[i].name = names[i];
    }
    char *text = config_text(cfg);
    int rc = ct_peft_write_folder(dir, t, n, base_hash, text);
    free(text);
    for (int i = 0; i < n; i++) ct_free(names[i]);
    ct_free(names);
    ct_free(t);
    return rc;
}

// adapter_config.json of a LoRA adapter (cJSON's memory).
static char *config_text(const CtPeftConfig *cfg) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "peft_type", "LORA");
    cJSON_AddStringToObject(o, "task_type", cfg->task_type[0] ? cfg->task_type : "CAUSAL_LM");
    cJSON_AddStringToObject(o, "base_model_name_or_path", cfg->base_model_name_or_path);
    cJSON_AddNumberToObject(o, "r", cfg->r);
    cJSON_AddNumberToObject(o, "lora_alpha", cfg->lora_alpha);
    cJSON_AddNumberToObject(o, "lora_dropout", cfg->lora_dropout);
    if (cfg->target_is_regex) {
        cJSON_AddStringToObject(o, "target_modules", cfg->target_modules);
    } else if (!cfg->target_modules[0]) {  // target_parameters alone
        cJSON_AddNullToObject(o, "target_modules");
    } else {
        cJSON *targets = cJSON_AddArrayToObject(o, "target_modules");
        for (const char *p = cfg->target_modules; *p;) {
            const char *end = strchr(p, ',');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            char name[512];
            snprintf(name, sizeof name, "%.*s", (int)len, p);
            cJSON_AddItemToArray(targets, cJSON_CreateString(name));
            p += len + (end ? 1 : 0);
        }
    }
    if (cfg->target_parameters[0])
        add_list(o, "target_parameters", cfg->target_parameters);
    else
        cJSON_AddNullToObject(o, "target_parameters");
    cJSON_AddStringToObject(o, "bias", "none");
    cJSON_AddBoolToObject(o, "fan_in_fan_out", cfg->fan_in_fan_out);
    cJSON_AddBoolToObject(o, "use_rslora", cfg->use_rslora);
    cJSON_AddBoolToObject(o, "use_dora", 0);
    cJSON_AddBoolToObject(o, "init_lora_weights", 1);
    cJSON_AddBoolToObject(o, "inference_mode", 1);
    if (cfg->modules_to_save[0])
        add_list(o, "modules_to_save", cfg->modules_to_save);
    else
        cJSON_AddNullToObject(o, "modules_to_save");
    if (cfg->n_layers) {
        cJSON *layers = cJSON_AddArrayToObject(o, "layers_to_transform");
        for (int i = 0; i < cfg->n_layers; i++) cJSON_AddItemToArray(layers, cJSON_CreateNumber(cfg->layers_to_transform[i]));
    } else {
        cJSON_AddNullToObject(o, "layers_to_transform");
    }
    if (cfg->layers_pattern[0] && !strchr(cfg->layers_pattern, ','))
        cJSON_AddStringToObject(o, "layers_pattern", cfg->layers_pattern);
    else if (cfg->layers_pattern[0])
        add_list(o, "layers_pattern", cfg->layers_pattern);
    else
        cJSON_AddNullToObject(o, "layers_pattern");
    cJSON *rank = cJSON_AddObjectToObject(o, "rank_pattern"), *alpha = cJSON_AddObjectToObject(o, "alpha_pattern");
    for (int i = 0; i < cfg->n_rank_pattern; i++)
        cJSON_AddNumberToObject(rank, cfg->rank_pattern[i].key, cfg->rank_pattern[i].value);
    for (int i = 0; i < cfg->n_alpha_pattern; i++)
        cJSON_AddNumberToObject(alpha, cfg->alpha_pattern[i].key, cfg->alpha_pattern[i].value);
    if (cfg->n_tokens) {
        cJSON *ids = cJSON_CreateArray();
        for (int i = 0; i < cfg->n_tokens; i++) cJSON_AddItemToArray(ids, cJSON_CreateNumber(cfg->token_ids[i]));
        if (cfg->n_token_modules == 0) {
            cJSON_AddItemToObject(o, "trainable_token_indices", ids);
        } else {
            cJSON *dict = cJSON_AddObjectToObject(o, "trainable_token_indices");
            for (int i = 0; i < cfg->n_token_modules; i++)
                cJSON_AddItemToObject(dict, cfg->token_modules[i], i ? cJSON_Duplicate(ids, 1) : ids);
        }
    } else {
        cJSON_AddNullToObject(o, "trainable_token_indices");
    }
    cJSON_AddNullToObject(o, "revision");
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    return text;
}

static int is_empty_object_or_null(const cJSON *v) {
    return !v || cJSON_IsNull(v) || (cJSON_IsObject(v) && v->child == NULL) || (cJSON_IsArray(v) && v->child == NULL);
}

// rank_pattern / alpha_pattern: {"regex": number, ...} in file order (PEFT takes the first match).
static int parse_patterns(const cJSON *v, const char *key, int integers, CtPeftPattern *out, int *n, const char *path) {
    *n = 0;
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsObject(v)) return ct_error_set("%s: '%s' must be an object {\"module pattern\": value}", path, key);
    const cJSON *item;
    cJSON_ArrayForEach(item, v) {
        if (*n >= CT_PEFT_MAX_PATTERNS) return ct_error_set("%s: '%s' has more than %d entries", path, key, CT_PEFT_MAX_PATTERNS);
        if (!cJSON_IsNumber(item) || !(item->valuedouble > 0) ||
            (integers && item->valuedouble != (double)(int)item->valuedouble))
            return ct_error_set("%s: '%s' entry '%s' must be a positive %s", path, key, item->string,
                                integers ? "integer" : "number");
        if (strlen(item->string) >= sizeof out[*n].key)
            return ct_error_set("%s: '%s' key '%.40s...' is too long", path, key, item->string);
        snprintf(out[*n].key, sizeof out[*n].key, "%s", item->string);
        out[(*n)++].value = item->valuedouble;
    }
    return 0;
}

static int parse_ids(const cJSON *list, CtPeftConfig *cfg, const char *path) {
    int n = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, list) {
        if (!cJSON_IsNumber(item) || item->valuedouble < 0 || n >= CT_PEFT_MAX_TOKENS)
            return ct_error_set("%s: trainable_token_indices must hold token ids (at most %d)", path, CT_PEFT_MAX_TOKENS);
        cfg->token_ids[n++] = (int32_t)item->valuedouble;
    }
    cfg->n_tokens = n;
    return 0;
}

// trainable_token_indices: [ids] (the input embedding) or {"module": [ids], ...} with one list of
// ids for every module (the embedding and the output head).
static int parse_tokens(const cJSON *v, CtPeftConfig *cfg, const char *path) {
    if (!v || cJSON_IsNull(v)) return 0;
    if (cJSON_IsArray(v)) return parse_ids(v, cfg, path);
    if (!cJSON_IsObject(v)) return ct_error_set("%s: trainable_token_indices must be a list or an object", path);
    const cJSON *item;
    CtPeftConfig first;
    cJSON_ArrayForEach(item, v) {
        if (!cJSON_IsArray(item) || cfg->n_token_modules >= 2)
            return ct_error_set("%s: trainable_token_indices: ctrain reads the embedding's and the output head's "
                                "ids, as lists", path);
        if (parse_ids(item, cfg, path) != 0) return -1;
        if (cfg->n_token_modules == 0) {
            memcpy(first.token_ids, cfg->token_ids, sizeof first.token_ids);
            first.n_tokens = cfg->n_tokens;
        } else if (first.n_tokens != cfg->n_tokens ||
                   memcmp(first.token_ids, cfg->token_ids, (size_t)cfg->n_tokens * sizeof(int32_t)) != 0) {
            return ct_error_set("%s: trainable_token_indices gives its modules different ids: ctrain trains the same "
                                "rows of the embedding and the output head", path);
        }
        snprintf(cfg->token_modules[cfg->n_token_modules++], sizeof cfg->token_modules[0], "%s", item->string);
    }
    return 0;
}

// A JSON list of names (no commas) into dst, comma-separated. 0, or -1 + error naming key.
static int join_names(const cJSON *v, char *dst, size_t size, const char *key, const char *path) {
    if (!cJSON_IsArray(v)) return ct_error_set("%s: %s must be a list of names", path, key);
    dst[0] = '\0';
    const cJSON *item;
    cJSON_ArrayForEach(item, v) {
        if (!cJSON_IsString(item) || !item->valuestring[0] || strchr(item->valuestring, ','))
            return ct_error_set("%s: %s must hold names", path, key);
        size_t len = strlen(dst);
        if (len + strlen(item->valuestring) + 2 > size)
            return ct_error_set("%s: %s is too long (%zu bytes at most)", path, key, size);
        snprintf(dst + len, size - len, "%s%s", len ? "," : "", item->valuestring);
    }
    return 0;
}

static int parse_config(const cJSON *o, CtPeftConfig *cfg, const char *path) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "peft_type");
    if (!cJSON_IsString(v) || strcmp(v->valuestring, "LORA") != 0)
        return ct_error_set("%s: peft_type is %s%s%s; ctrain reads LoRA adapters (\"LORA\")", path,
                            cJSON_IsString(v) ? "\"" : "", cJSON_IsString(v) ? v->valuestring : "missing",
                            cJSON_IsString(v) ? "\"" : "");
    v = cJSON_GetObjectItemCaseSensitive(o, "r");
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble != (int)v->valuedouble)
        return ct_error_set("%s: 'r' must be a positive integer", path);
    cfg->r = (int)v->valuedouble;
    v = cJSON_GetObjectItemCaseSensitive(o, "lora_alpha");
    if (!cJSON_IsNumber(v) || !(v->valuedouble > 0)) return ct_error_set("%s: 'lora_alpha' must be a positive number", path);
    cfg->lora_alpha = v->valuedouble;
    v = cJSON_GetObjectItemCaseSensitive(o, "lora_dropout");
    cfg->lora_dropout = cJSON_IsNumber(v) ? v->valuedouble : 0;
    cfg->use_rslora = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "use_rslora"));
    cfg->fan_in_fan_out = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "fan_in_fan_out"));
    v = cJSON_GetObjectItemCaseSensitive(o, "bias");
    if (v && !(cJSON_IsString(v) && strcmp(v->valuestring, "none") == 0))
        return ct_error_set("%s: bias is not \"none\": adapters that train biases are not supported", path);
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "use_dora")))
        return ct_error_set("%s: use_dora is true: DoRA adapters are not supported (plain LoRA only)", path);
    // keys that change which modules adapt or how they compute, which ctrain does not implement:
    // refused rather than ignored
    static const char *const unsupported[] = {"exclude_modules", "layer_replication",
                                              "alora_invocation_tokens", "lora_bias", "use_qalora", "use_bdlora"};
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++) {
        v = cJSON_GetObjectItemCaseSensitive(o, unsupported[i]);
        if (!is_empty_object_or_null(v) && !cJSON_IsFalse(v) && !(cJSON_IsString(v) && !v->valuestring[0]))
            return ct_error_set("%s: '%s' is set: ctrain does not implement it (plain LoRA with target_modules, "
                                "target_parameters, layers_to_transform, rank/alpha_pattern and "
                                "trainable_token_indices)", path,
                                unsupported[i]);
    }
    v = cJSON_GetObjectItemCaseSensitive(o, "task_type");
    snprintf(cfg->task_type, sizeof cfg->task_type, "%s", cJSON_IsString(v) ? v->valuestring : "");
    v = cJSON_GetObjectItemCaseSensitive(o, "modules_to_save");
    if (!is_empty_object_or_null(v) &&
        join_names(v, cfg->modules_to_save, sizeof cfg->modules_to_save, "modules_to_save", path) != 0)
        return -1;
    if (parse_patterns(cJSON_GetObjectItemCaseSensitive(o, "rank_pattern"), "rank_pattern", 1, cfg->rank_pattern,
                       &cfg->n_rank_pattern, path) != 0 ||
        parse_patterns(cJSON_GetObjectItemCaseSensitive(o, "alpha_pattern"), "alpha_pattern", 0, cfg->alpha_pattern,
                       &cfg->n_alpha_pattern, path) != 0)
        return -1;
    v = cJSON_GetObjectItemCaseSensitive(o, "layers_to_transform");
    if (cJSON_IsNumber(v)) {
        cfg->layers_to_transform[0] = (int)v->valuedouble;
        cfg->n_layers = 1;
    } else if (cJSON_IsArray(v)) {
        const cJSON *item;
        cJSON_ArrayForEach(item, v) {
            if (!cJSON_IsNumber(item) || item->valuedouble < 0 || cfg->n_layers >= CT_PEFT_MAX_LAYERS)
                return ct_error_set("%s: layers_to_transform must be layer indices (at most %d)", path,
                                    CT_PEFT_MAX_LAYERS);
            cfg->layers_to_transform[cfg->n_layers++] = (int)item->valuedouble;
        }
    } else if (v && !cJSON_IsNull(v)) {
        return ct_error_set("%s: layers_to_transform must be an integer or a list of them", path);
    }
    v = cJSON_GetObjectItemCaseSensitive(o, "layers_pattern");
    if (cJSON_IsString(v)) {
        snprintf(cfg->layers_pattern, sizeof cfg->layers_pattern, "%s", v->valuestring);
    } else if (cJSON_IsArray(v)) {
        const cJSON *item;
        cJSON_ArrayForEach(item, v) {
            if (!cJSON_IsString(item)) return ct_error_set("%s: layers_pattern must hold strings", path);
            size_t len = strlen(cfg->layers_pattern);
            snprintf(cfg->layers_pattern + len, sizeof cfg->layers_pattern - len, "%s%s", len ? "," : "",
                     item->valuestring);
        }
    }
    if (parse_tokens(cJSON_GetObjectItemCaseSensitive(o, "trainable_token_indices"), cfg, path) != 0) return -1;
    v = cJSON_GetObjectItemCaseSensitive(o, "target_parameters");
    if (v && !cJSON_IsNull(v) &&
        join_names(v, cfg->target_parameters, sizeof cfg->target_parameters, "target_parameters", path) != 0)
        return -1;
    v = cJSON_GetObjectItemCaseSensitive(o, "target_modules");
    cfg->target_modules[0] = '\0';
    if (cJSON_IsString(v)) {  // PEFT: a regex fully matched against the module's name, or "all-linear"
        snprintf(cfg->target_modules, sizeof cfg->target_modules, "%s", v->valuestring);
        cfg->target_is_regex = strcasecmp(v->valuestring, "all-linear") != 0;
    } else if (cJSON_IsArray(v) && v->child) {
        const cJSON *item;
        cJSON_ArrayForEach(item, v) {
            if (!cJSON_IsString(item) || strchr(item->valuestring, ','))
                return ct_error_set("%s: target_modules must hold module names", path);
            size_t len = strlen(cfg->target_modules);
            if (len + strlen(item->valuestring) + 2 > sizeof cfg->target_modules)
                return ct_error_set("%s: target_modules is too long (%zu bytes at most)", path,
                                    sizeof cfg->target_modules);
            snprintf(cfg->target_modules + len, sizeof cfg->target_modules - len, "%s%s", len ? "," : "",
                     item->valuestring);
        }
    } else if (!cfg->target_parameters[0] || (v && !cJSON_IsNull(v) && !cJSON_IsArray(v))) {
        return ct_error_set("%s: target_modules must be a non-empty list of module names or a regular expression%s",
                            path, cfg->target_parameters[0] ? " (or null beside target_parameters)" : "");
    }
    v = cJSON_GetObjectItemCaseSensitive(o, "base_model_name_or_path");
    snprintf(cfg->base_model_name_or_path, sizeof cfg->base_model_name_or_path, "%s",
             cJSON_IsString(v) ? v->valuestring : "");
    return 0;
}

int ct_peft_read_config(const char *dir, CtPeftConfig *cfg) {
    memset(cfg, 0, sizeof *cfg);
    char path[4200];
    join(path, sizeof path, dir, "adapter_config.json");
    char *text = ct_json_file_read(path);
    if (!text) return ct_error_prefix("%s is not a PEFT adapter folder: ", dir);
    cJSON *o = cJSON_Parse(text);
    ct_free(text);
    int rc = cJSON_IsObject(o) ? parse_config(o, cfg, path) : ct_error_set("%s: not a JSON object", path);
    cJSON_Delete(o);
    return rc;
}

static void shape_text(char *buf, size_t size, int ndim, const int64_t *shape) {
    size_t at = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && at < size; i++)
        at += (size_t)snprintf(buf + at, size - at, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (at < size) snprintf(buf + at, size - at, "]");
}

int ct_peft_read_tensors(const char *dir, const CtNamedTensor *want, int n, uint64_t *base_hash) {
    char path[4200];
    join(path, sizeof path, dir, "adapter_model.safetensors");
    CtSafetensors f;
    if (ct_st_open(&f, path) != 0) return -1;
    int rc = 0;
    const size_t plen = strlen(CT_PEFT_PREFIX);
    // every tensor of the file belongs to an adapter the config asks for
    for (int i = 0; i < f.n_tensors && rc == 0; i++) {
        const char *name = f.tensors[i].name;
        int known = 0;
        if (strncmp(name, CT_PEFT_PREFIX, plen) == 0)
            for (int j = 0; j < n && !known; j++) known = strcmp(name + plen, want[j].name) == 0;
        if (!known)
            rc = ct_error_set("%s: tensor '%s' belongs to no adapter of this model and config (another base model, "
                              "or PEFT features ctrain does not read)", path, name);
    }
    for (int j = 0; j < n && rc == 0; j++) {
        char full[512];
        snprintf(full, sizeof full, "%s%s", CT_PEFT_PREFIX, want[j].name);
        const CtStTensor *t = ct_st_find(&f, full);
        if (!t) {
            rc = ct_error_set("%s: tensor '%s' is missing (adapter_config.json targets its module)", path, full);
            break;
        }
        int same = t->ndim == want[j].ndim;
        for (int d = 0; same && d < t->ndim; d++) same = t->shape[d] == want[j].shape[d];
        if (!same) {
            char got[64], expected[64];
            shape_text(got, sizeof got, t->ndim, t->shape);
            shape_text(expected, sizeof expected, want[j].ndim, want[j].shape);
            rc = ct_error_set("%s: tensor '%s' has shape %s; this base model and r need %s (an adapter of another "
                              "base model?)", path, full, got, expected);
            break;
        }
        rc = ct_st_read_f32(&f, t, want[j].data);
    }
    if (rc == 0 && base_hash) {
        const char *h = ct_st_meta(&f, CT_PEFT_BASE_HASH_KEY);
        *base_hash = h ? strtoull(h, NULL, 16) : 0;
    }
    ct_st_close(&f);
    return rc;
}
