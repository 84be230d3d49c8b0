// tokenizer_config.json's add_bos_token / add_eos_token (data/tokenizer/tokenizer_config.h).
#include "data/tokenizer/tokenizer_config.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
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

static int same_ids(const int32_t *a, int na, const int32_t *b, int nb) {
    return na == nb && (na == 0 || memcmp(a, b, sizeof *a * (size_t)na) == 0);
}

int ct_tokenizer_read_config(CtTokenizer *t, const char *config_json, const char *source) {
    cJSON *root = cJSON_Parse(config_json);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return ct_error_set("%s: not a JSON object", source);
    }
    int rc = 0;
    const char *eos_name = token_name(root, "eos_token");
    if (eos_name && strlen(eos_name) < sizeof t->eos_text) snprintf(t->eos_text, sizeof t->eos_text, "%s", eos_name);
    const cJSON *bos = cJSON_GetObjectItemCaseSensitive(root, "add_bos_token");
    const cJSON *eos = cJSON_GetObjectItemCaseSensitive(root, "add_eos_token");
    if ((bos && !cJSON_IsBool(bos)) || (eos && !cJSON_IsBool(eos)))
        rc = ct_error_set("%s: add_bos_token / add_eos_token is not true or false", source);
    else if (bos || eos) {
        CtPostProcessor flags;
        memset(&flags, 0, sizeof flags);
        rc = side(t, root, "add_bos_token", "bos_token", flags.prefix, &flags.n_prefix, source);
        if (rc == 0) rc = side(t, root, "add_eos_token", "eos_token", flags.suffix, &flags.n_suffix, source);
        if (rc == 0 && !(same_ids(flags.prefix, flags.n_prefix, t->post.prefix, t->post.n_prefix) &&
                         same_ids(flags.suffix, flags.n_suffix, t->post.suffix, t->post.n_suffix)))
            ct_warn("%s: add_bos_token=%s, add_eos_token=%s, but tokenizer.json's post_processor adds %d token%s before "
                    "a text and %d after it; ctrain follows tokenizer.json, as transformers 5 does (transformers 4's "
                    "Llama and Gemma tokenizers followed the flags)", source, cJSON_IsTrue(bos) ? "true" : "false",
                    cJSON_IsTrue(eos) ? "true" : "false", t->post.n_prefix, t->post.n_prefix == 1 ? "" : "s",
                    t->post.n_suffix);
    }
    cJSON_Delete(root);
    return rc;
}

int ct_tokenizer_read_config_beside(CtTokenizer *t, const char *tokenizer_json_path) {
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
    int rc = ct_tokenizer_read_config(t, text, path);
    ct_free(text);
    return rc;
}

const char *ct_tokenizer_default_eot(const CtTokenizer *t) {
    static const char endoftext[] = "<|endoftext|>";
    static _Thread_local char frame_end[256];
    if (ct_tokenizer_special_id(t, endoftext) >= 0) return endoftext;
    if (t->eos_text[0] && ct_tokenizer_special_id(t, t->eos_text) >= 0) return t->eos_text;
    // BERT's [SEP], RoBERTa's </s>: a post-processor that closes every text already ends a document
    const CtPostProcessor *p = &t->post;
    if (p->n_suffix) {
        int32_t id = p->suffix[p->n_suffix - 1];
        if (t->kind[id] == CT_TOKEN_SPECIAL && t->lengths[id] < sizeof frame_end) {
            memcpy(frame_end, t->pool + t->offsets[id], t->lengths[id]);
            frame_end[t->lengths[id]] = '\0';
            return frame_end;
        }
    }
    return endoftext;
}
