// tokenizer_config.json's add_bos_token / add_eos_token (data/tokenizer/tokenizer_config.h).
#include "data/tokenizer/tokenizer_config.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/input/read_file.h"
#include "data/tokenizer/tokenizer_identity.h"

int32_t ct_tokenizer_token_id(const CtTokenizer *t, const char *text) {
    int32_t id = ct_tokenizer_special_id(t, text);
    return id >= 0 ? id : ct_tokenizer_find(t, (const uint8_t *)text, strlen(text));
}

// bos_token / eos_token: "<s>", {"content": "<s>", ...}, or null.
static const char *token_name(const cJSON *root, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

// One side: the token named by name_key when the flag is true.
static int side(const CtTokenizer *t, const cJSON *root, const char *flag_key, const char *name_key, int32_t *ids,
                int *n, const char *source) {
    *n = 0;
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, flag_key))) return 0;
    const char *name = token_name(root, name_key);
    if (!name) return 0;  // transformers: no such token, nothing added
    int32_t id = ct_tokenizer_token_id(t, name);
    if (id < 0) return ct_error_set("%s: %s \"%.40s\" is not a token of the tokenizer", source, name_key, name);
    ids[(*n)++] = id;
    return 0;
}

int ct_tokenizer_apply_config(CtTokenizer *t, const char *config_json, const char *source) {
    cJSON *root = cJSON_Parse(config_json);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return ct_error_set("%s: not a JSON object", source);
    }
    int rc = 0;
    const cJSON *bos = cJSON_GetObjectItemCaseSensitive(root, "add_bos_token");
    const cJSON *eos = cJSON_GetObjectItemCaseSensitive(root, "add_eos_token");
    if ((bos && !cJSON_IsBool(bos)) || (eos && !cJSON_IsBool(eos)))
        rc = ct_error_set("%s: add_bos_token / add_eos_token is not true or false", source);
    else if (bos || eos) {
        CtPostProcessor post;
        memset(&post, 0, sizeof post);
        rc = side(t, root, "add_bos_token", "bos_token", post.prefix, &post.n_prefix, source);
        if (rc == 0) rc = side(t, root, "add_eos_token", "eos_token", post.suffix, &post.n_suffix, source);
        if (rc == 0) t->post = post;
    }
    cJSON_Delete(root);
    return rc;
}

int ct_tokenizer_apply_config_beside(CtTokenizer *t, const char *tokenizer_json_path) {
    char path[4096];
    const char *slash = strrchr(tokenizer_json_path, '/');
    int dir_len = slash ? (int)(slash - tokenizer_json_path) : 1;
    snprintf(path, sizeof path, "%.*s/tokenizer_config.json", dir_len, slash ? tokenizer_json_path : ".");
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fclose(f);
    size_t len;
    char *text = ct_read_whole_file(path, &len);
    if (!text) return -1;
    int rc = ct_tokenizer_apply_config(t, text, path);
    ct_free(text);
    return rc;
}

char *ct_tokenizer_json_with_post(const CtTokenizer *t, const char *json) {
    cJSON *root = cJSON_Parse(json);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        ct_error_set("the tokenizer is not a JSON object");
        return NULL;
    }
    char *names[16];
    const CtPostProcessor *p = &t->post;
    for (int i = 0; i < p->n_prefix + p->n_suffix; i++) {
        int32_t id = i < p->n_prefix ? p->prefix[i] : p->suffix[i - p->n_prefix];
        names[i] = ct_alloc(t->lengths[id] + 1);
        memcpy(names[i], t->pool + t->offsets[id], t->lengths[id]);
        names[i][t->lengths[id]] = '\0';
    }
    cJSON *post = ct_post_processor_json(p, (const char *const *)names, (const char *const *)names + p->n_prefix);
    for (int i = 0; i < p->n_prefix + p->n_suffix; i++) ct_free(names[i]);
    if (cJSON_GetObjectItemCaseSensitive(root, "post_processor"))
        cJSON_ReplaceItemInObjectCaseSensitive(root, "post_processor", post);
    else
        cJSON_AddItemToObject(root, "post_processor", post);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}
