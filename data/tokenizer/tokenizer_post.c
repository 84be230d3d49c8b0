#include "data/tokenizer/tokenizer_post.h"

#include <cjson/cJSON.h>
#include <string.h>

#include "core/error.h"

static const char *type_of(const cJSON *o) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "type");
    return cJSON_IsString(t) ? t->valuestring : "";
}

// TemplateProcessing: "single" is a list of {"SpecialToken": {"id": NAME}} and one
// {"Sequence": {"id": "A"}}; "special_tokens" maps NAME to {"ids": [...]}.
static int read_template(const cJSON *p, CtPostProcessor *out) {
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(p, "single");
    const cJSON *specials = cJSON_GetObjectItemCaseSensitive(p, "special_tokens");
    if (!cJSON_IsArray(single))
        return ct_error_set("post_processor TemplateProcessing has no \"single\" list");
    int seen_text = 0;
    const cJSON *piece;
    cJSON_ArrayForEach(piece, single) {
        if (cJSON_GetObjectItemCaseSensitive(piece, "Sequence")) {
            if (seen_text) return ct_error_set("post_processor \"single\" holds the text twice");
            seen_text = 1;
            continue;
        }
        const cJSON *special = cJSON_GetObjectItemCaseSensitive(piece, "SpecialToken");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(special, "id");
        if (!cJSON_IsString(name))
            return ct_error_set("post_processor \"single\" entry is neither a Sequence nor a SpecialToken");
        const cJSON *entry = cJSON_GetObjectItemCaseSensitive(specials, name->valuestring);
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(entry, "ids"), *id;
        if (!cJSON_IsArray(ids))
            return ct_error_set("post_processor special token \"%s\" has no ids in special_tokens",
                                name->valuestring);
        cJSON_ArrayForEach(id, ids) {
            int32_t *list = seen_text ? out->suffix : out->prefix;
            int *n = seen_text ? &out->n_suffix : &out->n_prefix;
            if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble > 2147483647.0)
                return ct_error_set("post_processor special token \"%s\" has an id that is not a token id",
                                    name->valuestring);
            if (*n == (int)(sizeof out->prefix / sizeof out->prefix[0]))
                return ct_error_set("post_processor adds more than 8 tokens on one side");
            list[(*n)++] = (int32_t)id->valuedouble;
        }
    }
    if (!seen_text) return ct_error_set("post_processor \"single\" does not hold the text (no Sequence)");
    return 0;
}

static int read_processor(const cJSON *p, CtPostProcessor *out) {
    const char *type = type_of(p);
    if (strcmp(type, "ByteLevel") == 0) return 0;  // adjusts offsets only
    if (strcmp(type, "TemplateProcessing") == 0) return read_template(p, out);
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "processors"), *step;
        cJSON_ArrayForEach(step, list) if (read_processor(step, out) != 0) return -1;
        return 0;
    }
    return ct_error_set("post_processor type \"%s\" is not supported (TemplateProcessing, ByteLevel and "
                        "Sequence are)", type);
}

int ct_post_processor_read(const cJSON *root, CtPostProcessor *out) {
    memset(out, 0, sizeof *out);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "post_processor");
    return !p || cJSON_IsNull(p) ? 0 : read_processor(p, out);
}

static void add_special(cJSON *single, cJSON *specials, const char *name, int32_t id) {
    cJSON *piece = cJSON_CreateObject();
    cJSON *special = cJSON_AddObjectToObject(piece, "SpecialToken");
    cJSON_AddStringToObject(special, "id", name);
    cJSON_AddNumberToObject(special, "type_id", 0);
    cJSON_AddItemToArray(single, piece);
    if (cJSON_GetObjectItemCaseSensitive(specials, name)) return;
    cJSON *entry = cJSON_AddObjectToObject(specials, name);
    cJSON_AddStringToObject(entry, "id", name);
    cJSON *ids = cJSON_AddArrayToObject(entry, "ids");
    cJSON_AddItemToArray(ids, cJSON_CreateNumber(id));
    cJSON *tokens = cJSON_AddArrayToObject(entry, "tokens");
    cJSON_AddItemToArray(tokens, cJSON_CreateString(name));
}

// The "pair" template is the "single" one twice, the second with $B and type_id 1, as
// transformers' update_post_processor writes it.
static void add_pair(cJSON *pair, const cJSON *single) {
    const cJSON *item;
    cJSON_ArrayForEach(item, single) cJSON_AddItemToArray(pair, cJSON_Duplicate(item, 1));
    cJSON_ArrayForEach(item, single) {
        cJSON *copy = cJSON_Duplicate(item, 1);
        cJSON *seq = cJSON_GetObjectItemCaseSensitive(copy, "Sequence");
        if (seq) cJSON_ReplaceItemInObjectCaseSensitive(seq, "id", cJSON_CreateString("B"));
        cJSON *k = seq ? seq : cJSON_GetObjectItemCaseSensitive(copy, "SpecialToken");
        cJSON_ReplaceItemInObjectCaseSensitive(k, "type_id", cJSON_CreateNumber(1));
        cJSON_AddItemToArray(pair, copy);
    }
}

cJSON *ct_post_processor_json(const CtPostProcessor *post, const char *const *prefix_names,
                              const char *const *suffix_names) {
    if (post->n_prefix == 0 && post->n_suffix == 0) return cJSON_CreateNull();
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "type", "TemplateProcessing");
    cJSON *single = cJSON_AddArrayToObject(p, "single");
    cJSON *pair = cJSON_AddArrayToObject(p, "pair");
    cJSON *specials = cJSON_CreateObject();
    for (int i = 0; i < post->n_prefix; i++) add_special(single, specials, prefix_names[i], post->prefix[i]);
    cJSON *text = cJSON_CreateObject();
    cJSON *seq = cJSON_AddObjectToObject(text, "Sequence");
    cJSON_AddStringToObject(seq, "id", "A");
    cJSON_AddNumberToObject(seq, "type_id", 0);
    cJSON_AddItemToArray(single, text);
    for (int i = 0; i < post->n_suffix; i++) add_special(single, specials, suffix_names[i], post->suffix[i]);
    add_pair(pair, single);
    cJSON_AddItemToObject(p, "special_tokens", specials);
    return p;
}

int ct_post_processor_parse(const char *json, const char *source, CtPostProcessor *out) {
    memset(out, 0, sizeof *out);
    cJSON *root = cJSON_Parse(json);
    if (!root) return ct_error_set("%s: the tokenizer is not JSON", source);
    int rc = ct_post_processor_read(root, out);
    cJSON_Delete(root);
    return rc == 0 ? 0 : ct_error_prefix("%s: ", source);
}
