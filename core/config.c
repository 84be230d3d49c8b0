#include "core/config.h"

#include <cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/args.h"
#include "core/error.h"

// ---- small helpers ----

static const char *type_name(CtConfigType type) {
    switch (type) {
    case CT_CFG_INT: return "integer";
    case CT_CFG_FLOAT: return "number";
    case CT_CFG_BOOL: return "boolean";
    case CT_CFG_STRING: return "string";
    case CT_CFG_ENUM: return "string";
    case CT_CFG_LIST: return "list";
    case CT_CFG_NUMBERS: return "numbers";
    }
    return "?";
}

static const char *json_kind(const cJSON *v) {
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    if (cJSON_IsNull(v)) return "null";
    return "an invalid value";
}

// The index of `word` in "a|b|c", or -1.
static int choice_index(const char *choices, const char *word) {
    size_t len = strlen(word);
    int index = 0;
    for (const char *p = choices; *p; index++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && strncmp(p, word, n) == 0) return index;
        if (!bar) break;
        p = bar + 1;
    }
    return -1;
}

static void choice_name(const char *choices, int index, char *buf, size_t size) {
    const char *p = choices;
    for (int i = 0; i < index && p; i++) {
        p = strchr(p, '|');
        if (p) p++;
    }
    if (!p) {
        snprintf(buf, size, "?");
        return;
    }
    const char *bar = strchr(p, '|');
    snprintf(buf, size, "%.*s", (int)(bar ? (size_t)(bar - p) : strlen(p)), p);
}

// "a, b or c" from "a|b|c"
static void choices_list(const char *choices, char *buf, size_t size) {
    size_t j = 0;
    int count = 1;
    for (const char *p = choices; *p; p++) count += *p == '|';
    int seen = 0;
    for (const char *p = choices; *p && j + 6 < size; p++) {
        if (*p == '|') {
            seen++;
            const char *sep = seen == count - 1 ? " or " : ", ";
            j += (size_t)snprintf(buf + j, size - j, "%s", sep);
        } else {
            buf[j++] = *p;
        }
    }
    buf[j < size ? j : size - 1] = '\0';
}

// Integers exactly, other numbers in their shortest round-tripping form.
static void number_text(double v, char *buf, size_t size) {
    if (v == floor(v) && fabs(v) < 1e17) {
        snprintf(buf, size, "%.0f", v);
        return;
    }
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, size, "%.*g", p, v);
        if (strtod(buf, NULL) == v) return;
    }
}

static void range_text(const CtConfigKey *k, char *buf, size_t size) {
    int has_lo = isfinite(k->min), has_hi = isfinite(k->max);
    char lo[40], hi[40];
    number_text(k->min, lo, sizeof lo);
    number_text(k->max, hi, sizeof hi);
    if (has_lo && has_hi)
        snprintf(buf, size, "%s to %s", lo, hi);
    else if (has_lo)
        snprintf(buf, size, "at least %s", lo);
    else if (has_hi)
        snprintf(buf, size, "at most %s", hi);
    else
        snprintf(buf, size, "any %s", type_name(k->type));
}

static size_t edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 99;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const CtConfigKey *ct_config_find_key(const CtConfigSchema *schema, const char *key) {
    for (int i = 0; i < schema->n_keys; i++)
        if (strcmp(schema->keys[i].key, key) == 0) return &schema->keys[i];
    return NULL;
}

static int section_known(const CtConfigSchema *schema, const char *name) {
    for (int i = 0; i < schema->n_sections; i++)
        if (strcmp(schema->sections[i].section, name) == 0) return 1;
    return 0;
}

// The part of "section.name" after the dot.
static const char *key_name(const CtConfigKey *k) { return strchr(k->key, '.') + 1; }

static int key_in_section(const CtConfigKey *k, const char *section) {
    size_t n = strlen(section);
    return strncmp(k->key, section, n) == 0 && k->key[n] == '.';
}

static int unknown_key_error(const CtConfigSchema *schema, const char *source, const char *full_key) {
    // Suggest the closest known key, and list the keys of the section when there is one.
    const char *best = NULL;
    size_t best_d = 3;
    for (int i = 0; i < schema->n_keys; i++) {
        size_t d = edit_distance(full_key, schema->keys[i].key);
        if (d < best_d) best_d = d, best = schema->keys[i].key;
    }
    char section[64];
    const char *dot = strchr(full_key, '.');
    snprintf(section, sizeof section, "%.*s", dot ? (int)(dot - full_key) : 0, full_key);
    char known[1024] = "";
    size_t j = 0;
    if (section_known(schema, section))
        for (int i = 0; i < schema->n_keys && j + 2 < sizeof known; i++)
            if (key_in_section(&schema->keys[i], section))
                j += (size_t)snprintf(known + j, sizeof known - j, "%s%s", j ? ", " : "",
                                      key_name(&schema->keys[i]));
    char hint[1200] = "";
    if (best && j)
        snprintf(hint, sizeof hint, " (did you mean '%s'? keys in '%s': %s)", best, section, known);
    else if (best)
        snprintf(hint, sizeof hint, " (did you mean '%s'?)", best);
    else if (j)
        snprintf(hint, sizeof hint, " (keys in '%s': %s)", section, known);
    return ct_error_set("%s: unknown key '%s'%s", source, full_key, hint);
}

static int unknown_section_error(const CtConfigSchema *schema, const char *source, const char *name) {
    char list[512] = "";
    size_t j = 0;
    const char *best = NULL;
    size_t best_d = 3;
    for (int i = 0; i < schema->n_sections && j + 2 < sizeof list; i++) {
        j += (size_t)snprintf(list + j, sizeof list - j, "%s%s", i ? ", " : "", schema->sections[i].section);
        size_t d = edit_distance(name, schema->sections[i].section);
        if (d < best_d) best_d = d, best = schema->sections[i].section;
    }
    if (best) return ct_error_set("%s: unknown section '%s' (did you mean '%s'? sections: %s)", source, name, best, list);
    return ct_error_set("%s: unknown section '%s' (sections: %s)", source, name, list);
}

// ---- storing values ----

static int store_int(const CtConfigKey *k, void *cfg, double v, const char *source, const char *shown) {
    if (v != floor(v) || fabs(v) > 9007199254740992.0)
        return ct_error_set("%s: '%s' must be an integer, got %s", source, k->key, shown);
    if (v < k->min || v > k->max) {
        char range[96];
        range_text(k, range, sizeof range);
        return ct_error_set("%s: '%s' = %s is out of range (allowed: %s)", source, k->key, shown, range);
    }
    char *field = (char *)cfg + k->offset;
    if (k->size == sizeof(int64_t))
        *(int64_t *)field = (int64_t)v;
    else if (k->size == sizeof(int))
        *(int *)field = (int)v;
    else
        CT_FATAL("integer config fields are int or int64_t", "bad field size for '%s'", k->key);
    return 0;
}

static int store_float(const CtConfigKey *k, void *cfg, double v, const char *source, const char *shown) {
    if (!isfinite(v)) return ct_error_set("%s: '%s' must be a finite number, got %s", source, k->key, shown);
    if (v < k->min || v > k->max) {
        char range[96];
        range_text(k, range, sizeof range);
        return ct_error_set("%s: '%s' = %s is out of range (allowed: %s)", source, k->key, shown, range);
    }
    char *field = (char *)cfg + k->offset;
    if (k->size == sizeof(double))
        *(double *)field = v;
    else if (k->size == sizeof(float))
        *(float *)field = (float)v;
    else
        CT_FATAL("float config fields are float or double", "bad field size for '%s'", k->key);
    return 0;
}

static int store_string(const CtConfigKey *k, void *cfg, const char *s, const char *source) {
    char *field = (char *)cfg + k->offset;
    if (k->type == CT_CFG_ENUM) {
        int index = choice_index(k->choices, s);
        if (index < 0) {
            char list[256];
            choices_list(k->choices, list, sizeof list);
            return ct_error_set("%s: '%s' = '%s' is not allowed (choose %s)", source, k->key, s, list);
        }
        *(int *)field = index;
        return 0;
    }
    size_t len = strlen(s);
    if (len >= k->size)
        return ct_error_set("%s: '%s' is too long (%zu bytes; at most %zu)", source, k->key, len, k->size - 1);
    memcpy(field, s, len + 1);
    return 0;
}

// A list: one string, or an array of strings, kept joined by commas (no element may hold one).
static int store_list(const CtConfigKey *k, void *cfg, const cJSON *v, const char *source) {
    if (cJSON_IsString(v)) return store_string(k, cfg, v->valuestring, source);
    if (!cJSON_IsArray(v))
        return ct_error_set("%s: '%s' must be a list of strings (or one string), got %s", source, k->key, json_kind(v));
    char joined[4096] = "";
    size_t len = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, v) {
        if (!cJSON_IsString(item) || !item->valuestring[0] || strchr(item->valuestring, ','))
            return ct_error_set("%s: '%s' must hold non-empty strings without commas", source, k->key);
        size_t n = strlen(item->valuestring);
        if (len + n + 2 > sizeof joined)
            return ct_error_set("%s: '%s' is too long", source, k->key);
        if (len) joined[len++] = ',';
        memcpy(joined + len, item->valuestring, n + 1);
        len += n;
    }
    return store_string(k, cfg, joined, source);
}

// A list of numbers written "1,0.5" (a default or the command line): each item a finite number.
static int store_numbers_text(const CtConfigKey *k, void *cfg, const char *text, const char *source) {
    for (const char *p = text; *p;) {
        const char *end = strchr(p, ',');
        char item[64];
        const size_t n = end ? (size_t)(end - p) : strlen(p);
        snprintf(item, sizeof item, "%.*s", (int)(n < 63 ? n : 63), p);
        double v;
        if (n == 0 || n >= 63 || ct_parse_double(item, &v) != 0 || !isfinite(v))
            return ct_error_set("%s: '%s' must be a list of numbers, got '%s' in '%s'", source, k->key, item, text);
        p += n + (end ? 1 : 0);
    }
    return store_string(k, cfg, text, source);
}

// A JSON array of numbers, kept as their texts joined by commas (each reads back exactly).
static int store_numbers(const CtConfigKey *k, void *cfg, const cJSON *v, const char *source) {
    if (!cJSON_IsArray(v))
        return ct_error_set("%s: '%s' must be a list of numbers, got %s", source, k->key, json_kind(v));
    char joined[4096] = "";
    size_t len = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, v) {
        if (!cJSON_IsNumber(item))
            return ct_error_set("%s: '%s' must be a list of numbers, got %s in it", source, k->key, json_kind(item));
        char text[32];
        snprintf(text, sizeof text, "%.17g", item->valuedouble);
        const size_t n = strlen(text);
        if (len + n + 2 > sizeof joined) return ct_error_set("%s: '%s' is too long", source, k->key);
        if (len) joined[len++] = ',';
        memcpy(joined + len, text, n + 1);
        len += n;
    }
    return store_string(k, cfg, joined, source);
}

// A value written as text (a default, or a command-line override).
static int store_text(const CtConfigKey *k, void *cfg, const char *text, const char *source) {
    char shown[160];
    snprintf(shown, sizeof shown, "'%s'", text);
    switch (k->type) {
    case CT_CFG_INT: {
        double v;
        if (ct_parse_double(text, &v) != 0)
            return ct_error_set("%s: '%s' must be an integer, got %s", source, k->key, shown);
        return store_int(k, cfg, v, source, text);
    }
    case CT_CFG_FLOAT: {
        double v;
        if (ct_parse_double(text, &v) != 0)
            return ct_error_set("%s: '%s' must be a number, got %s", source, k->key, shown);
        return store_float(k, cfg, v, source, text);
    }
    case CT_CFG_BOOL: {
        int v;
        if (strcmp(text, "true") == 0 || strcmp(text, "1") == 0)
            v = 1;
        else if (strcmp(text, "false") == 0 || strcmp(text, "0") == 0)
            v = 0;
        else
            return ct_error_set("%s: '%s' must be true or false, got %s", source, k->key, shown);
        *(int *)((char *)cfg + k->offset) = v;
        return 0;
    }
    case CT_CFG_NUMBERS: return store_numbers_text(k, cfg, text, source);
    case CT_CFG_STRING:
    case CT_CFG_LIST:  // on the command line a list is written "a,b,c"
    case CT_CFG_ENUM: return store_string(k, cfg, text, source);
    }
    return -1;
}

static int store_json(const CtConfigKey *k, void *cfg, const cJSON *v, const char *source) {
    char shown[160];
    if (cJSON_IsNumber(v))
        snprintf(shown, sizeof shown, "%.17g", v->valuedouble);
    else if (cJSON_IsString(v))
        snprintf(shown, sizeof shown, "\"%.140s\"", v->valuestring);
    else
        snprintf(shown, sizeof shown, "%s", json_kind(v));
    switch (k->type) {
    case CT_CFG_INT:
        if (!cJSON_IsNumber(v))
            return ct_error_set("%s: '%s' must be an integer, got %s", source, k->key, json_kind(v));
        snprintf(shown, sizeof shown, "%.17g", v->valuedouble);
        return store_int(k, cfg, v->valuedouble, source, shown);
    case CT_CFG_FLOAT:
        if (!cJSON_IsNumber(v)) return ct_error_set("%s: '%s' must be a number, got %s", source, k->key, json_kind(v));
        return store_float(k, cfg, v->valuedouble, source, shown);
    case CT_CFG_BOOL:
        if (!cJSON_IsBool(v))
            return ct_error_set("%s: '%s' must be true or false, got %s", source, k->key, json_kind(v));
        *(int *)((char *)cfg + k->offset) = cJSON_IsTrue(v);
        return 0;
    case CT_CFG_STRING:
    case CT_CFG_ENUM:
        if (!cJSON_IsString(v)) return ct_error_set("%s: '%s' must be a string, got %s", source, k->key, json_kind(v));
        return store_string(k, cfg, v->valuestring, source);
    case CT_CFG_LIST: return store_list(k, cfg, v, source);
    case CT_CFG_NUMBERS: return store_numbers(k, cfg, v, source);
    }
    return -1;
}

// ---- schema, defaults, loading ----

void ct_config_validate_schema(const CtConfigSchema *schema) {
    static char scratch[1 << 16];
    for (int i = 0; i < schema->n_keys; i++) {
        const CtConfigKey *k = &schema->keys[i];
        const char *dot = strchr(k->key, '.');
        if (!dot) CT_FATAL("config keys are written section.name", "config key '%s' has no section", k->key);
        char section[64];
        snprintf(section, sizeof section, "%.*s", (int)(dot - k->key), k->key);
        if (!section_known(schema, section))
            CT_FATAL("declare the section in the schema", "config key '%s' is in an undeclared section", k->key);
        for (int j = 0; j < i; j++)
            if (strcmp(schema->keys[j].key, k->key) == 0)
                CT_FATAL("each key is declared once", "config key '%s' is declared twice", k->key);
        if (k->offset + k->size > sizeof scratch) CT_FATAL("config struct too large", "key '%s'", k->key);
        if (store_text(k, scratch, k->def, "schema default") != 0)
            CT_FATAL("fix the default in the schema", "%s", ct_error_message());
    }
}

void ct_config_set_defaults(const CtConfigSchema *schema, void *cfg) {
    for (int i = 0; i < schema->n_keys; i++)
        if (store_text(&schema->keys[i], cfg, schema->keys[i].def, "schema default") != 0)
            CT_FATAL("fix the default in the schema", "%s", ct_error_message());
}

int ct_config_apply_override(const CtConfigSchema *schema, void *cfg, const char *key, const char *value) {
    const CtConfigKey *k = ct_config_find_key(schema, key);
    if (!k) {
        const char *dot = strchr(key, '.');
        char section[64];
        snprintf(section, sizeof section, "%.*s", dot ? (int)(dot - key) : (int)strlen(key), key);
        if (!section_known(schema, section)) return unknown_section_error(schema, "command line", section);
        return unknown_key_error(schema, "command line", key);
    }
    return store_text(k, cfg, value, "command line");
}

// "line:column" of a byte offset in text.
static void text_position(const char *text, size_t offset, int *line, int *column) {
    *line = 1;
    *column = 1;
    for (size_t i = 0; i < offset && text[i]; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *column = 1;
        } else {
            (*column)++;
        }
    }
}

int ct_config_apply_text(const CtConfigSchema *schema, void *cfg, const char *text, const char *source) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    if (!root) {
        const char *where = cJSON_GetErrorPtr();
        size_t offset = where && where >= text ? (size_t)(where - text) : 0;
        size_t rest = offset;
        while (text[rest] == ' ' || text[rest] == '\t' || text[rest] == '\r' || text[rest] == '\n') rest++;
        int line, column;
        if (!text[rest]) {
            text_position(text, strlen(text), &line, &column);
            return ct_error_set("%s:%d:%d: invalid JSON (unexpected end of file)", source, line, column);
        }
        // cJSON may point just past the offending character: step back onto it when the
        // pointer sits on whitespace.
        if (rest != offset)
            while (offset > 0 && (text[offset] == ' ' || text[offset] == '\t' || text[offset] == '\r' || text[offset] == '\n'))
                offset--;
        text_position(text, offset, &line, &column);
        char near[24];
        size_t j = 0;
        for (const char *p = text + offset; *p && *p != '\n' && *p != '\r' && j + 1 < sizeof near; p++) near[j++] = *p;
        near[j] = '\0';
        return ct_error_set("%s:%d:%d: invalid JSON near '%s'", source, line, column, near);
    }
    int rc = 0;
    if (!cJSON_IsObject(root)) {
        rc = ct_error_set("%s: the top level must be a JSON object of sections, like {\"run\": {\"seed\": 1}}", source);
        goto done;
    }
    for (const cJSON *sec = root->child; sec; sec = sec->next) {
        for (const cJSON *prev = root->child; prev != sec; prev = prev->next)
            if (strcmp(prev->string, sec->string) == 0) {
                rc = ct_error_set("%s: section '%s' appears twice", source, sec->string);
                goto done;
            }
        if (!section_known(schema, sec->string)) {
            rc = unknown_section_error(schema, source, sec->string);
            goto done;
        }
        if (!cJSON_IsObject(sec)) {
            rc = ct_error_set("%s: section '%s' must be an object of keys, got %s", source, sec->string, json_kind(sec));
            goto done;
        }
        for (const cJSON *item = sec->child; item; item = item->next) {
            char full[256];
            snprintf(full, sizeof full, "%s.%s", sec->string, item->string);
            for (const cJSON *prev = sec->child; prev != item; prev = prev->next)
                if (strcmp(prev->string, item->string) == 0) {
                    rc = ct_error_set("%s: key '%s' appears twice", source, full);
                    goto done;
                }
            const CtConfigKey *k = ct_config_find_key(schema, full);
            if (!k) {
                rc = unknown_key_error(schema, source, full);
                goto done;
            }
            if (store_json(k, cfg, item, source) != 0) {
                rc = -1;
                goto done;
            }
        }
    }
done:
    cJSON_Delete(root);
    return rc;
}

int ct_config_apply_file(const CtConfigSchema *schema, void *cfg, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return ct_error_errno("%s: cannot open config", path);
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return ct_error_errno("%s: cannot read config", path);
    }
    long size = ftell(f);
    rewind(f);
    if (size < 0 || size > (16 << 20)) {
        fclose(f);
        return ct_error_set("%s: not a config file (%s)", path, size < 0 ? "unreadable" : "larger than 16 MiB");
    }
    char *text = ct_alloc((size_t)size + 1);
    size_t got = fread(text, 1, (size_t)size, f);
    fclose(f);
    text[got] = '\0';
    if (got != (size_t)size || strlen(text) != got) {
        ct_free(text);
        return ct_error_set("%s: not a JSON config (contains NUL bytes or could not be read whole)", path);
    }
    int rc = ct_config_apply_text(schema, cfg, text, path);
    ct_free(text);
    return rc;
}

// ---- printing ----

static cJSON *value_json(const CtConfigKey *k, const void *cfg) {
    const char *field = (const char *)cfg + k->offset;
    char buf[64];
    switch (k->type) {
    case CT_CFG_INT:
        return cJSON_CreateNumber(k->size == sizeof(int64_t) ? (double)*(const int64_t *)field
                                                             : (double)*(const int *)field);
    case CT_CFG_FLOAT:
        if (k->size == sizeof(float)) {  // shortest text that reads back as the same float
            snprintf(buf, sizeof buf, "%.9g", (double)*(const float *)field);
            for (int p = 1; p <= 9; p++) {
                snprintf(buf, sizeof buf, "%.*g", p, (double)*(const float *)field);
                if ((float)strtod(buf, NULL) == *(const float *)field) break;
            }
            return cJSON_CreateNumber(strtod(buf, NULL));
        }
        return cJSON_CreateNumber(*(const double *)field);
    case CT_CFG_BOOL: return cJSON_CreateBool(*(const int *)field);
    case CT_CFG_STRING: return cJSON_CreateString(field);
    case CT_CFG_LIST: {
        cJSON *list = cJSON_CreateArray();
        for (const char *p = field; *p;) {
            const char *end = strchr(p, ',');
            size_t n = end ? (size_t)(end - p) : strlen(p);
            char item[256];
            snprintf(item, sizeof item, "%.*s", (int)n, p);
            cJSON_AddItemToArray(list, cJSON_CreateString(item));
            p += n + (end ? 1 : 0);
        }
        return list;
    }
    case CT_CFG_NUMBERS: {
        cJSON *list = cJSON_CreateArray();
        for (const char *p = field; *p;) {
            const char *end = strchr(p, ',');
            cJSON_AddItemToArray(list, cJSON_CreateNumber(strtod(p, NULL)));
            p = end ? end + 1 : p + strlen(p);
        }
        return list;
    }
    case CT_CFG_ENUM:
        choice_name(k->choices, *(const int *)field, buf, sizeof buf);
        return cJSON_CreateString(buf);
    }
    return cJSON_CreateNull();
}

char *ct_config_to_json(const CtConfigSchema *schema, const void *cfg) {
    cJSON *root = cJSON_CreateObject();
    for (int s = 0; s < schema->n_sections; s++) {
        cJSON *sec = cJSON_CreateObject();
        for (int i = 0; i < schema->n_keys; i++)
            if (key_in_section(&schema->keys[i], schema->sections[s].section))
                cJSON_AddItemToObject(sec, key_name(&schema->keys[i]), value_json(&schema->keys[i], cfg));
        cJSON_AddItemToObject(root, schema->sections[s].section, sec);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}

void ct_config_print_reference(const CtConfigSchema *schema, FILE *out, int markdown) {
    for (int s = 0; s < schema->n_sections; s++) {
        const CtConfigSection *sec = &schema->sections[s];
        if (markdown)
            fprintf(out, "## %s\n\n%s\n\n| key | type | default | allowed | meaning |\n| --- | --- | --- | --- | --- |\n",
                    sec->section, sec->doc);
        else
            fprintf(out, "[%s] %s\n", sec->section, sec->doc);
        for (int i = 0; i < schema->n_keys; i++) {
            const CtConfigKey *k = &schema->keys[i];
            if (!key_in_section(k, sec->section)) continue;
            char allowed[256];
            if (k->type == CT_CFG_ENUM)
                choices_list(k->choices, allowed, sizeof allowed);
            else if (k->type == CT_CFG_INT || k->type == CT_CFG_FLOAT)
                range_text(k, allowed, sizeof allowed);
            else if (k->type == CT_CFG_BOOL)
                snprintf(allowed, sizeof allowed, "true or false");
            else if (k->type == CT_CFG_LIST)
                snprintf(allowed, sizeof allowed, "strings (\"a,b\" on the command line)");
            else if (k->type == CT_CFG_NUMBERS)
                snprintf(allowed, sizeof allowed, "numbers (\"1,0.5\" on the command line)");
            else
                snprintf(allowed, sizeof allowed, "up to %zu bytes", k->size - 1);
            const char *type = k->type == CT_CFG_ENUM ? "choice" : type_name(k->type);
            if (markdown)
                fprintf(out, "| `%s` | %s | `%s` | %s | %s |\n", k->key, type, k->def, allowed, k->doc);
            else
                fprintf(out, "  %-24s %-8s default %-10s (%s) %s\n", k->key, type, k->def, allowed, k->doc);
        }
        fputc('\n', out);
    }
}
