// PEFT LoRA adapter folders: adapter_config.json and adapter_model.safetensors. See peft.h.
#include "checkpoints/peft.h"

#include <cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/fs.h"

static void join(char *buf, size_t size, const char *dir, const char *name) { ct_path_join(buf, size, dir, name); }

int ct_peft_write(const char *dir, const CtPeftConfig *cfg, const CtNamedTensor *tensors, int n, uint64_t base_hash) {
    if (ct_make_dirs(dir) != 0) return -1;
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
    char hash[32];
    snprintf(hash, sizeof hash, "%016" PRIx64, base_hash);
    CtStMetaEntry meta[2] = {{"format", "pt"}, {CT_PEFT_BASE_HASH_KEY, hash}};
    char path[4200];
    join(path, sizeof path, dir, "adapter_model.safetensors");
    int rc = ct_st_write(path, t, n, meta, base_hash ? 2 : 1);
    for (int i = 0; i < n; i++) ct_free(names[i]);
    ct_free(names);
    ct_free(t);
    if (rc != 0) return -1;

    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "peft_type", "LORA");
    cJSON_AddStringToObject(o, "task_type", "CAUSAL_LM");
    cJSON_AddStringToObject(o, "base_model_name_or_path", cfg->base_model_name_or_path);
    cJSON_AddNumberToObject(o, "r", cfg->r);
    cJSON_AddNumberToObject(o, "lora_alpha", cfg->lora_alpha);
    cJSON_AddNumberToObject(o, "lora_dropout", cfg->lora_dropout);
    cJSON *targets = cJSON_AddArrayToObject(o, "target_modules");
    for (const char *p = cfg->target_modules; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)len, p);
        cJSON_AddItemToArray(targets, cJSON_CreateString(name));
        p += len + (end ? 1 : 0);
    }
    cJSON_AddStringToObject(o, "bias", "none");
    cJSON_AddBoolToObject(o, "fan_in_fan_out", cfg->fan_in_fan_out);
    cJSON_AddBoolToObject(o, "use_rslora", cfg->use_rslora);
    cJSON_AddBoolToObject(o, "use_dora", 0);
    cJSON_AddBoolToObject(o, "init_lora_weights", 1);
    cJSON_AddBoolToObject(o, "inference_mode", 1);
    cJSON_AddNullToObject(o, "modules_to_save");
    cJSON_AddNullToObject(o, "layers_to_transform");
    cJSON_AddNullToObject(o, "layers_pattern");
    cJSON_AddObjectToObject(o, "rank_pattern");
    cJSON_AddObjectToObject(o, "alpha_pattern");
    cJSON_AddNullToObject(o, "revision");
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    join(path, sizeof path, dir, "adapter_config.json");
    rc = ct_write_file_atomic(path, text, strlen(text));
    free(text);
    return rc;
}

static int is_empty_object_or_null(const cJSON *v) {
    return !v || cJSON_IsNull(v) || (cJSON_IsObject(v) && v->child == NULL) || (cJSON_IsArray(v) && v->child == NULL);
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
    static const char *const unsupported[] = {"rank_pattern", "alpha_pattern", "modules_to_save", "layers_to_transform"};
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
        if (!is_empty_object_or_null(cJSON_GetObjectItemCaseSensitive(o, unsupported[i])))
            return ct_error_set("%s: '%s' is set: ctrain supports one rank and alpha for every adapted module and "
                                "no extra trained modules", path, unsupported[i]);
    v = cJSON_GetObjectItemCaseSensitive(o, "target_modules");
    cfg->target_modules[0] = '\0';
    if (cJSON_IsString(v)) {
        if (strchr(v->valuestring, '*') || strchr(v->valuestring, '(') || strchr(v->valuestring, '\\'))
            return ct_error_set("%s: target_modules is a regular expression ('%s'); list the module names instead",
                                path, v->valuestring);
        snprintf(cfg->target_modules, sizeof cfg->target_modules, "%s", v->valuestring);
    } else if (cJSON_IsArray(v) && v->child) {
        const cJSON *item;
        cJSON_ArrayForEach(item, v) {
            if (!cJSON_IsString(item)) return ct_error_set("%s: target_modules must hold strings", path);
            size_t len = strlen(cfg->target_modules);
            snprintf(cfg->target_modules + len, sizeof cfg->target_modules - len, "%s%s", len ? "," : "",
                     item->valuestring);
        }
    } else {
        return ct_error_set("%s: target_modules must be a non-empty list of module names", path);
    }
    v = cJSON_GetObjectItemCaseSensitive(o, "base_model_name_or_path");
    snprintf(cfg->base_model_name_or_path, sizeof cfg->base_model_name_or_path, "%s",
             cJSON_IsString(v) ? v->valuestring : "");
    return 0;
}

// A small JSON file's text (NUL-terminated; free with free()), or NULL + error.
static char *read_text(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return ct_error_errno("%s", path), NULL;
    char *text = NULL;
    size_t len = 0, cap = 0, got;
    char buf[65536];
    while ((got = fread(buf, 1, sizeof buf, fp)) > 0 && len < (16u << 20)) {
        if (len + got + 1 > cap) {
            cap = (len + got + 1) * 2;
            text = realloc(text, cap);
        }
        memcpy(text + len, buf, got);
        len += got;
    }
    fclose(fp);
    if (!text) text = calloc(1, 1);
    text[len] = '\0';
    return text;
}

int ct_peft_read_config(const char *dir, CtPeftConfig *cfg) {
    memset(cfg, 0, sizeof *cfg);
    char path[4200];
    join(path, sizeof path, dir, "adapter_config.json");
    char *text = read_text(path);
    if (!text) return ct_error_prefix("%s is not a PEFT adapter folder: ", dir);
    cJSON *o = cJSON_Parse(text);
    free(text);
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
