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
static int read_template(const cJSON *p, const char *source, CtPostProcessor *out) {
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(p, "single");
    const cJSON *specials = cJSON_GetObjectItemCaseSensitive(p, "special_tokens");
    if (!cJSON_IsArray(single))
        return ct_error_set("%s: post_processor TemplateProcessing has no \"single\" list", source);
    int seen_text = 0;
    const cJSON *piece;
    cJSON_ArrayForEach(piece, single) {
        if (cJSON_GetObjectItemCaseSensitive(piece, "Sequence")) {
            if (seen_text) return ct_error_set("%s: post_processor \"single\" holds the text twice", source);
            seen_text = 1;
            continue;
        }
        const cJSON *special = cJSON_GetObjectItemCaseSensitive(piece, "SpecialToken");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(special, "id");
        if (!cJSON_IsString(name))
            return ct_error_set("%s: post_processor \"single\" entry is neither a Sequence nor a SpecialToken", source);
        const cJSON *entry = cJSON_GetObjectItemCaseSensitive(specials, name->valuestring);
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(entry, "ids"), *id;
        if (!cJSON_IsArray(ids))
            return ct_error_set("%s: post_processor special token \"%s\" has no ids in special_tokens", source,
                                name->valuestring);
        cJSON_ArrayForEach(id, ids) {
            int32_t *list = seen_text ? out->suffix : out->prefix;
            int *n = seen_text ? &out->n_suffix : &out->n_prefix;
            if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble > 2147483647.0)
                return ct_error_set("%s: post_processor special token \"%s\" has an id that is not a token id", source,
                                    name->valuestring);
            if (*n == (int)(sizeof out->prefix / sizeof out->prefix[0]))
                return ct_error_set("%s: post_processor adds more than 8 tokens on one side", source);
            list[(*n)++] = (int32_t)id->valuedouble;
        }
    }
    if (!seen_text) return ct_error_set("%s: post_processor \"single\" does not hold the text (no Sequence)", source);
    return 0;
}

static int read_processor(const cJSON *p, const char *source, CtPostProcessor *out) {
    const char *type = type_of(p);
    if (strcmp(type, "ByteLevel") == 0) return 0;  // adjusts offsets only
    if (strcmp(type, "TemplateProcessing") == 0) return read_template(p, source, out);
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "processors"), *step;
        cJSON_ArrayForEach(step, list) if (read_processor(step, source, out) != 0) return -1;
        return 0;
    }
    return ct_error_set("%s: post_processor type \"%s\" is not supported (TemplateProcessing, ByteLevel and "
                        "Sequence are)", source, type);
}

int ct_post_processor_parse(const char *json, const char *source, CtPostProcessor *out) {
    memset(out, 0, sizeof *out);
    cJSON *root = cJSON_Parse(json);
    if (!root) return ct_error_set("%s: the tokenizer is not JSON", source);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "post_processor");
    int rc = !p || cJSON_IsNull(p) ? 0 : read_processor(p, source, out);
    cJSON_Delete(root);
    return rc;
}
