#include "data/tokenizer/tokenizer_hf.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "data/tokenizer/byte_level.h"
#include "data/input/json_int.h"
#include "data/input/read_file.h"

// ---- reading ----

static int json_bool(const cJSON *obj, const char *key, int def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

static const char *json_type(const cJSON *obj) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "type");
    return cJSON_IsString(v) ? v->valuestring : "";
}

// One pre-tokenizer step; sets *pattern when it fixes one. 0, or -1 + error.
static int read_pre_tokenizer_step(const cJSON *step, CtPattern *pattern, int *have) {
    const char *type = json_type(step);
    if (strcmp(type, "ByteLevel") == 0) {
        if (json_bool(step, "add_prefix_space", 0))
            return ct_error_set("pre_tokenizer ByteLevel.add_prefix_space=true is not supported");
        if (json_bool(step, "use_regex", 1)) {
            *pattern = CT_PATTERN_GPT2;
            *have = 1;
        }
        return 0;
    }
    if (strcmp(type, "Split") == 0) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(step, "pattern");
        const cJSON *regex = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
        if (!cJSON_IsString(regex)) return ct_error_set("pre_tokenizer Split without a \"Regex\" pattern is not supported");
        const cJSON *behavior = cJSON_GetObjectItemCaseSensitive(step, "behavior");
        if (cJSON_IsString(behavior) && strcmp(behavior->valuestring, "Isolated") != 0)
            return ct_error_set("pre_tokenizer Split behavior \"%s\" is not supported (only Isolated)", behavior->valuestring);
        if (json_bool(step, "invert", 0)) return ct_error_set("pre_tokenizer Split invert=true is not supported");
        if (ct_pattern_from_regex(regex->valuestring, pattern) != 0) return -1;
        *have = 1;
        return 0;
    }
    return ct_error_set("pre_tokenizer type \"%s\" is not supported", type);
}

static int read_pre_tokenizer(const cJSON *pre, CtPattern *pattern) {
    int have = 0;
    if (!pre || cJSON_IsNull(pre)) return ct_error_set("no pre_tokenizer (ctrain reads byte-level BPE only)");
    if (strcmp(json_type(pre), "Sequence") == 0) {
        const cJSON *steps = cJSON_GetObjectItemCaseSensitive(pre, "pretokenizers"), *step;
        cJSON_ArrayForEach(step, steps) if (read_pre_tokenizer_step(step, pattern, &have) != 0) return -1;
    } else if (read_pre_tokenizer_step(pre, pattern, &have) != 0) {
        return -1;
    }
    if (!have) return ct_error_set("the pre_tokenizer has no splitting regex");
    return 0;
}

static int token_bytes(const char *s, uint8_t **buf, size_t *cap, long *n) {
    size_t len = strlen(s);
    if (len + 1 > *cap) *buf = ct_realloc(*buf, *cap = len * 2 + 16);
    *n = ct_byte_level_decode(s, len, *buf);
    return *n > 0 ? 0 : -1;
}

static int read_model(CtTokenizer *t, const cJSON *model) {
    if (!cJSON_IsObject(model)) return ct_error_set("no \"model\" object");
    const char *type = json_type(model);
    if (*type && strcmp(type, "BPE") != 0) return ct_error_set("model type \"%s\" is not supported (only BPE)", type);
    const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(model, "continuing_subword_prefix");
    const cJSON *suffix = cJSON_GetObjectItemCaseSensitive(model, "end_of_word_suffix");
    if ((prefix && !cJSON_IsNull(prefix) && !(cJSON_IsString(prefix) && !*prefix->valuestring)) ||
        (suffix && !cJSON_IsNull(suffix) && !(cJSON_IsString(suffix) && !*suffix->valuestring)))
        return ct_error_set("model.continuing_subword_prefix / end_of_word_suffix are not supported");
    t->whole_piece_lookup = json_bool(model, "ignore_merges", 0);
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    if (!cJSON_IsObject(vocab)) return ct_error_set("model.vocab is not an object of token -> id");
    uint8_t *buf = NULL;
    size_t cap = 0;
    long n;
    const cJSON *item;
    int rc = 0;
    cJSON_ArrayForEach(item, vocab) {
        int32_t id;
        if (ct_json_token_id(item, &id) != 0) {
            rc = ct_error_set("model.vocab[\"%.60s\"] is not an integer id", item->string);
            break;
        }
        if (token_bytes(item->string, &buf, &cap, &n) != 0) {
            // Added tokens such as "<|endoftext|>" decode fine; anything else outside the
            // byte alphabet means this is not a byte-level vocabulary.
            rc = ct_error_set("model.vocab token \"%.60s\" is not in the byte-level alphabet (ctrain reads byte-level "
                              "BPE only)", item->string);
            break;
        }
        if (ct_tokenizer_add(t, id, buf, (size_t)n, CT_TOKEN_NORMAL) != 0) {
            rc = ct_error_prefix("model.vocab[\"%.60s\"]: ", item->string);
            break;
        }
    }
    ct_free(buf);
    return rc;
}

// Merges after the vocab (they refer to it) and after added tokens (which leave the vocab's
// byte map): "a b" or ["a", "b"].
static int read_merges(CtTokenizer *t, const cJSON *model) {
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!merges) return 0;
    if (!cJSON_IsArray(merges)) return ct_error_set("model.merges is not an array");
    CtBytesMap map;
    ct_bytes_map_init(&map, (size_t)t->n_ids, t->pool, t->offsets, t->lengths);
    for (int32_t i = 0; i < t->n_ids; i++)
        if (t->kind[i] == CT_TOKEN_NORMAL) ct_bytes_map_insert(&map, i);
    uint8_t *buf = NULL;
    size_t cap = 0;
    int rc = 0, index = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, merges) {
        char left[1024], right[1024];
        if (cJSON_IsString(m)) {
            const char *space = strchr(m->valuestring, ' ');
            size_t la = space ? (size_t)(space - m->valuestring) : 0;
            if (!space || la == 0 || la >= sizeof left || strlen(space + 1) >= sizeof right || strchr(space + 1, ' ')) {
                rc = ct_error_set("model.merges[%d] \"%.60s\" is not \"LEFT RIGHT\"", index, m->valuestring);
                break;
            }
            memcpy(left, m->valuestring, la);
            left[la] = '\0';
            strcpy(right, space + 1);
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(cJSON_GetArrayItem(m, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(m, 1)) &&
                   strlen(cJSON_GetArrayItem(m, 0)->valuestring) < sizeof left &&
                   strlen(cJSON_GetArrayItem(m, 1)->valuestring) < sizeof right) {
            strcpy(left, cJSON_GetArrayItem(m, 0)->valuestring);
            strcpy(right, cJSON_GetArrayItem(m, 1)->valuestring);
        } else {
            rc = ct_error_set("model.merges[%d] is neither \"LEFT RIGHT\" nor [\"LEFT\", \"RIGHT\"]", index);
            break;
        }
        long na, nb;
        int32_t a = -1, b = -1;
        if (token_bytes(left, &buf, &cap, &na) == 0) a = ct_bytes_map_find(&map, buf, (size_t)na);
        if (token_bytes(right, &buf, &cap, &nb) == 0) b = ct_bytes_map_find(&map, buf, (size_t)nb);
        if (a < 0 || b < 0) {
            rc = ct_error_set("model.merges[%d]: \"%.60s\" is not in the vocab", index, a < 0 ? left : right);
            break;
        }
        ct_tokenizer_add_merge(t, a, b);
        index++;
    }
    ct_free(buf);
    ct_bytes_map_free(&map);
    return rc;
}

static int read_added_tokens(CtTokenizer *t, const cJSON *added) {
    if (!added || cJSON_IsNull(added)) return 0;
    if (!cJSON_IsArray(added)) return ct_error_set("added_tokens is not an array");
    const cJSON *tok;
    int index = 0;
    cJSON_ArrayForEach(tok, added) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(tok, "id");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(tok, "content");
        int32_t value;
        if (ct_json_token_id(id, &value) != 0 || !cJSON_IsString(content))
            return ct_error_set("added_tokens[%d] needs an integer \"id\" and a string \"content\"", index);
        if (ct_tokenizer_add(t, value, (const uint8_t *)content->valuestring,
                             strlen(content->valuestring), CT_TOKEN_SPECIAL) != 0)
            return ct_error_prefix("added_tokens[%d]: ", index);
        index++;
    }
    return 0;
}

int ct_tokenizer_parse_hf(CtTokenizer *t, const char *json, size_t len, const char *source, const char *pattern_name) {
    ct_tokenizer_init(t, CT_PATTERN_GPT2, CT_MERGES_BY_LIST);
    cJSON *root = cJSON_ParseWithLength(json, len);
    int rc = 0;
    if (!root || !cJSON_IsObject(root)) {
        rc = ct_error_set("not a JSON object (truncated or not a tokenizer.json)");
    } else {
        const cJSON *normalizer = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
        const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
        if (normalizer && !cJSON_IsNull(normalizer))
            rc = ct_error_set("normalizer \"%s\" is not supported (ctrain reads byte-level BPE without normalization)",
                              json_type(normalizer));
        else if (pattern_name)
            rc = ct_pattern_from_name(pattern_name, &t->pattern);
        else
            rc = read_pre_tokenizer(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), &t->pattern);
        if (rc == 0) rc = read_model(t, model);
        if (rc == 0) rc = read_added_tokens(t, cJSON_GetObjectItemCaseSensitive(root, "added_tokens"));
        if (rc == 0) rc = read_merges(t, model);
        if (rc == 0) rc = ct_tokenizer_finish(t);
    }
    cJSON_Delete(root);
    if (rc != 0) {
        ct_error_prefix("%s: ", source);
        ct_tokenizer_free(t);
    }
    return rc;
}

int ct_tokenizer_load_hf(CtTokenizer *t, const char *path, const char *pattern_name) {
    memset(t, 0, sizeof *t);
    size_t len;
    char *json = ct_read_whole_file(path, &len);
    if (!json) return -1;
    int rc = ct_tokenizer_parse_hf(t, json, len, path, pattern_name);
    ct_free(json);
    return rc;
}

// ---- writing ----

static char *byte_level_string(const CtTokenizer *t, int32_t id, char **buf, size_t *cap) {
    size_t n = t->lengths[id];
    if (2 * n + 1 > *cap) *buf = ct_realloc(*buf, *cap = 2 * n + 64);
    ct_byte_level_encode(t->pool + t->offsets[id], n, *buf);
    return *buf;
}

static cJSON *byte_level_step(int use_regex) {
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "type", "ByteLevel");
    cJSON_AddBoolToObject(s, "add_prefix_space", 0);
    cJSON_AddBoolToObject(s, "trim_offsets", 1);
    cJSON_AddBoolToObject(s, "use_regex", use_regex);
    return s;
}

char *ct_tokenizer_hf_json(const CtTokenizer *t) {
    int32_t n_normal = 0;
    for (int32_t i = 0; i < t->n_ids; i++) n_normal += t->kind[i] == CT_TOKEN_NORMAL;
    if (t->n_merges == 0 && n_normal > 256) {
        ct_error_set("this tokenizer has ranks but no merge list (a .tiktoken file); it cannot be saved as tokenizer.json");
        return NULL;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON_AddNullToObject(root, "truncation");
    cJSON_AddNullToObject(root, "padding");
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    for (int32_t k = 0; k < t->n_special; k++) {
        int32_t id = t->special_ids[k];
        char *content = ct_alloc(t->lengths[id] + 1);
        memcpy(content, t->pool + t->offsets[id], t->lengths[id]);
        content[t->lengths[id]] = '\0';
        cJSON *a = cJSON_CreateObject();
        cJSON_AddNumberToObject(a, "id", id);
        cJSON_AddStringToObject(a, "content", content);
        cJSON_AddBoolToObject(a, "single_word", 0);
        cJSON_AddBoolToObject(a, "lstrip", 0);
        cJSON_AddBoolToObject(a, "rstrip", 0);
        cJSON_AddBoolToObject(a, "normalized", 0);
        cJSON_AddBoolToObject(a, "special", 1);
        cJSON_AddItemToArray(added, a);
        ct_free(content);
    }
    cJSON_AddNullToObject(root, "normalizer");
    if (t->pattern == CT_PATTERN_GPT2) {
        cJSON_AddItemToObject(root, "pre_tokenizer", byte_level_step(1));
    } else {
        cJSON *seq = cJSON_CreateObject();
        cJSON_AddStringToObject(seq, "type", "Sequence");
        cJSON *steps = cJSON_AddArrayToObject(seq, "pretokenizers");
        cJSON *split = cJSON_CreateObject();
        cJSON_AddStringToObject(split, "type", "Split");
        cJSON *pat = cJSON_AddObjectToObject(split, "pattern");
        cJSON_AddStringToObject(pat, "Regex", ct_pattern_regex(t->pattern));
        cJSON_AddStringToObject(split, "behavior", "Isolated");
        cJSON_AddBoolToObject(split, "invert", 0);
        cJSON_AddItemToArray(steps, split);
        cJSON_AddItemToArray(steps, byte_level_step(0));
        cJSON_AddItemToObject(root, "pre_tokenizer", seq);
    }
    cJSON_AddNullToObject(root, "post_processor");
    cJSON_AddItemToObject(root, "decoder", byte_level_step(1));
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    cJSON_AddNullToObject(model, "unk_token");
    cJSON_AddNullToObject(model, "continuing_subword_prefix");
    cJSON_AddNullToObject(model, "end_of_word_suffix");
    cJSON_AddBoolToObject(model, "fuse_unk", 0);
    cJSON_AddBoolToObject(model, "byte_fallback", 0);
    cJSON_AddBoolToObject(model, "ignore_merges", t->whole_piece_lookup);
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    char *buf = NULL, *buf2 = NULL;
    size_t cap = 0, cap2 = 0;
    for (int32_t i = 0; i < t->n_ids; i++)
        if (t->kind[i] == CT_TOKEN_NORMAL) cJSON_AddNumberToObject(vocab, byte_level_string(t, i, &buf, &cap), i);
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    for (int32_t r = 0; r < t->n_merges; r++) {
        byte_level_string(t, t->merges[r].left, &buf, &cap);
        byte_level_string(t, t->merges[r].right, &buf2, &cap2);
        size_t need = strlen(buf) + strlen(buf2) + 2;
        char *pair = ct_alloc(need);
        snprintf(pair, need, "%s %s", buf, buf2);
        cJSON_AddItemToArray(merges, cJSON_CreateString(pair));
        ct_free(pair);
    }
    ct_free(buf);
    ct_free(buf2);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}

int ct_tokenizer_save_hf(const CtTokenizer *t, const char *path) {
    char *text = ct_tokenizer_hf_json(t);
    if (!text) return ct_error_prefix("%s: ", path);
    int rc = ct_write_file_atomic(path, text, strlen(text));
    free(text);
    return rc;
}
