#include "data/tokenizer/tokenizer_post.h"

#include <cjson/cJSON.h>
#include <string.h>

#include "core/error.h"
#include "data/tokenizer/token_ids.h"

static const char *type_of(const cJSON *o) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "type");
    return cJSON_IsString(t) ? t->valuestring : "";
}

static int push_piece(CtPostPiece *list, int *n, int32_t id, int32_t type_id) {
    if (*n == CT_POST_MAX_PIECES) return ct_error_set("post_processor template has more than %d pieces", CT_POST_MAX_PIECES);
    list[(*n)++] = (CtPostPiece){id, type_id};
    return 0;
}

static int piece_type_id(const cJSON *obj, const char *key, int32_t *type_id) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "type_id");
    *type_id = 0;
    if (!v) return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 255 || v->valuedouble != (int)v->valuedouble)
        return ct_error_set("post_processor TemplateProcessing.%s: type_id is not a small integer", key);
    *type_id = (int32_t)v->valuedouble;
    return 0;
}

// One template ("single" or "pair"): a list of {"SpecialToken": {"id": NAME, "type_id": T}}
// and {"Sequence": {"id": "A"|"B", "type_id": T}}; "special_tokens" maps NAME to {"ids": [...]}.
static int read_template_list(const cJSON *list, const cJSON *specials, const char *key, int pair, CtPostPiece *out,
                              int *n) {
    *n = 0;
    int seen_a = 0, seen_b = 0;
    const cJSON *piece;
    cJSON_ArrayForEach(piece, list) {
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(piece, "Sequence");
        int32_t type_id;
        if (seq) {
            const cJSON *which = cJSON_GetObjectItemCaseSensitive(seq, "id");
            int b = cJSON_IsString(which) && strcmp(which->valuestring, "B") == 0;
            if (!cJSON_IsString(which) || (!b && strcmp(which->valuestring, "A") != 0) || (b && !pair))
                return ct_error_set("post_processor TemplateProcessing.%s: a Sequence id is not %s", key, pair ? "A or B" : "A");
            if (b ? seen_b++ : seen_a++) return ct_error_set("post_processor TemplateProcessing.%s holds a text twice", key);
            if (piece_type_id(seq, key, &type_id) != 0 || push_piece(out, n, b ? CT_POST_B : CT_POST_A, type_id) != 0)
                return -1;
            continue;
        }
        const cJSON *special = cJSON_GetObjectItemCaseSensitive(piece, "SpecialToken");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(special, "id");
        if (!cJSON_IsString(name))
            return ct_error_set("post_processor TemplateProcessing.%s: an entry is neither a Sequence nor a SpecialToken", key);
        if (piece_type_id(special, key, &type_id) != 0) return -1;
        const cJSON *entry = cJSON_GetObjectItemCaseSensitive(specials, name->valuestring);
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(entry, "ids"), *id;
        if (!cJSON_IsArray(ids))
            return ct_error_set("post_processor special token \"%s\" has no ids in special_tokens", name->valuestring);
        cJSON_ArrayForEach(id, ids) {
            if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble > 2147483647.0)
                return ct_error_set("post_processor special token \"%s\" has an id that is not a token id", name->valuestring);
            if (push_piece(out, n, (int32_t)id->valuedouble, type_id) != 0) return -1;
        }
    }
    if (!seen_a) return ct_error_set("post_processor TemplateProcessing.%s does not hold the text (no Sequence A)", key);
    if (pair && !seen_b) return ct_error_set("post_processor TemplateProcessing.pair does not hold the second text (no Sequence B)");
    return 0;
}

static int read_template(const cJSON *p, CtPostProcessor *out) {
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(p, "single");
    const cJSON *pair = cJSON_GetObjectItemCaseSensitive(p, "pair");
    const cJSON *specials = cJSON_GetObjectItemCaseSensitive(p, "special_tokens");
    if (!cJSON_IsArray(single)) return ct_error_set("post_processor TemplateProcessing has no \"single\" list");
    if (read_template_list(single, specials, "single", 0, out->single, &out->n_single) != 0) return -1;
    if (cJSON_IsArray(pair) && cJSON_GetArraySize(pair) > 0)
        return read_template_list(pair, specials, "pair", 1, out->pair, &out->n_pair);
    out->n_pair = 0;  // none (or []): HF cannot encode pairs; ctrain uses the single one twice
    return 0;
}

// BertProcessing / RobertaProcessing: "sep" and "cls" as [TEXT, ID].
static int read_token_pair(const cJSON *p, const char *type, const char *key, int32_t *id) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, key);
    const cJSON *num = cJSON_GetArrayItem(v, 1);
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2 || !cJSON_IsString(cJSON_GetArrayItem(v, 0)) ||
        !cJSON_IsNumber(num) || num->valuedouble < 0 || num->valuedouble > 2147483647.0 ||
        num->valuedouble != (double)(int32_t)num->valuedouble)
        return ct_error_set("post_processor %s.%s is not [\"TOKEN\", ID]", type, key);
    *id = (int32_t)num->valuedouble;
    return 0;
}

// BERT: [CLS] A [SEP] / [CLS] A [SEP] B [SEP] with B's part type 1. RoBERTa: <s> A </s> /
// <s> A </s> </s> B </s>, every token type 0 (tokenizers' processors/bert.rs and roberta.rs).
static int read_bert_roberta(const cJSON *p, int roberta, CtPostProcessor *out) {
    const char *type = roberta ? "RobertaProcessing" : "BertProcessing";
    int32_t sep, cls;
    if (read_token_pair(p, type, "sep", &sep) != 0 || read_token_pair(p, type, "cls", &cls) != 0) return -1;
    const CtPostPiece single[] = {{cls, 0}, {CT_POST_A, 0}, {sep, 0}};
    const CtPostPiece bert_pair[] = {{cls, 0}, {CT_POST_A, 0}, {sep, 0}, {CT_POST_B, 1}, {sep, 1}};
    const CtPostPiece roberta_pair[] = {{cls, 0}, {CT_POST_A, 0}, {sep, 0}, {sep, 0}, {CT_POST_B, 0}, {sep, 0}};
    memcpy(out->single, single, sizeof single);
    out->n_single = 3;
    if (roberta) memcpy(out->pair, roberta_pair, sizeof roberta_pair);
    else memcpy(out->pair, bert_pair, sizeof bert_pair);
    out->n_pair = roberta ? 6 : 5;
    out->roberta = roberta;
    return 0;
}

static int read_processor(const cJSON *p, CtPostProcessor *out, int *adders) {
    const char *type = type_of(p);
    if (strcmp(type, "ByteLevel") == 0) return 0;  // adjusts offsets only
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "processors"), *step;
        if (!cJSON_IsArray(list)) return ct_error_set("post_processor Sequence has no \"processors\" list");
        cJSON_ArrayForEach(step, list) if (read_processor(step, out, adders) != 0) return -1;
        return 0;
    }
    int rc;
    if (strcmp(type, "TemplateProcessing") == 0) rc = read_template(p, out);
    else if (strcmp(type, "BertProcessing") == 0) rc = read_bert_roberta(p, 0, out);
    else if (strcmp(type, "RobertaProcessing") == 0) rc = read_bert_roberta(p, 1, out);
    else
        return ct_error_set("post_processor type \"%s\" is not supported (TemplateProcessing, BertProcessing, "
                            "RobertaProcessing, ByteLevel and Sequence are)", type);
    if (rc == 0 && ++*adders > 1) return ct_error_set("post_processor Sequence holds two processors that add tokens");
    return rc;
}

// prefix / suffix from the single template.
static int derive_sides(CtPostProcessor *p) {
    int after = 0;
    for (int i = 0; i < p->n_single; i++) {
        int32_t id = p->single[i].id;
        if (id == CT_POST_A) {
            after = 1;
            continue;
        }
        int32_t *list = after ? p->suffix : p->prefix;
        int *n = after ? &p->n_suffix : &p->n_prefix;
        if (*n == CT_POST_MAX_SIDE) return ct_error_set("post_processor adds more than %d tokens on one side", CT_POST_MAX_SIDE);
        list[(*n)++] = id;
    }
    return 0;
}

int ct_post_processor_read(const cJSON *root, CtPostProcessor *out) {
    memset(out, 0, sizeof *out);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "post_processor");
    int adders = 0;
    if (!p || cJSON_IsNull(p)) return 0;
    if (read_processor(p, out, &adders) != 0 || derive_sides(out) != 0) return -1;
    return 0;
}

void ct_post_templates(const CtPostProcessor *post, CtPostPiece *single, int *n_single, CtPostPiece *pair, int *n_pair) {
    if (post->n_single) {
        memcpy(single, post->single, sizeof *single * (size_t)post->n_single);
        *n_single = post->n_single;
    } else {
        int n = 0;
        for (int i = 0; i < post->n_prefix; i++) single[n++] = (CtPostPiece){post->prefix[i], 0};
        single[n++] = (CtPostPiece){CT_POST_A, 0};
        for (int i = 0; i < post->n_suffix; i++) single[n++] = (CtPostPiece){post->suffix[i], 0};
        *n_single = n;
    }
    if (post->n_pair) {
        memcpy(pair, post->pair, sizeof *pair * (size_t)post->n_pair);
        *n_pair = post->n_pair;
        return;
    }
    int n = 0;
    for (int i = 0; i < *n_single; i++) pair[n++] = single[i];
    for (int i = 0; i < *n_single; i++) pair[n++] = (CtPostPiece){single[i].id == CT_POST_A ? CT_POST_B : single[i].id, 1};
    *n_pair = n;
}

static cJSON *template_json(const CtPostPiece *pieces, int n, cJSON *specials, CtPostTokenName name, const void *ctx) {
    cJSON *list = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        cJSON *piece = cJSON_CreateObject();
        if (pieces[i].id < 0) {
            cJSON *seq = cJSON_AddObjectToObject(piece, "Sequence");
            cJSON_AddStringToObject(seq, "id", pieces[i].id == CT_POST_A ? "A" : "B");
            cJSON_AddNumberToObject(seq, "type_id", pieces[i].type_id);
        } else {
            char text[256];
            name(ctx, pieces[i].id, text, sizeof text);
            cJSON *special = cJSON_AddObjectToObject(piece, "SpecialToken");
            cJSON_AddStringToObject(special, "id", text);
            cJSON_AddNumberToObject(special, "type_id", pieces[i].type_id);
            if (!cJSON_GetObjectItemCaseSensitive(specials, text)) {
                cJSON *entry = cJSON_AddObjectToObject(specials, text);
                cJSON_AddStringToObject(entry, "id", text);
                cJSON_AddItemToArray(cJSON_AddArrayToObject(entry, "ids"), cJSON_CreateNumber(pieces[i].id));
                cJSON_AddItemToArray(cJSON_AddArrayToObject(entry, "tokens"), cJSON_CreateString(text));
            }
        }
        cJSON_AddItemToArray(list, piece);
    }
    return list;
}

cJSON *ct_post_processor_json(const CtPostProcessor *post, CtPostTokenName name, const void *ctx) {
    if (post->n_prefix == 0 && post->n_suffix == 0 && post->n_pair == 0) return cJSON_CreateNull();
    CtPostPiece single[CT_POST_MAX_PIECES], pair[2 * CT_POST_MAX_PIECES];
    int n_single, n_pair;
    ct_post_templates(post, single, &n_single, pair, &n_pair);
    cJSON *p = cJSON_CreateObject();
    if (post->roberta) {  // its types cannot be said by a template
        char text[256];
        const char *keys[2] = {"sep", "cls"};
        int32_t ids[2] = {post->single[2].id, post->single[0].id};
        cJSON_AddStringToObject(p, "type", "RobertaProcessing");
        for (int k = 0; k < 2; k++) {
            name(ctx, ids[k], text, sizeof text);
            cJSON *entry = cJSON_AddArrayToObject(p, keys[k]);
            cJSON_AddItemToArray(entry, cJSON_CreateString(text));
            cJSON_AddItemToArray(entry, cJSON_CreateNumber(ids[k]));
        }
        cJSON_AddBoolToObject(p, "trim_offsets", 1);
        cJSON_AddBoolToObject(p, "add_prefix_space", 0);
        return p;
    }
    cJSON_AddStringToObject(p, "type", "TemplateProcessing");
    cJSON *specials = cJSON_CreateObject();
    cJSON_AddItemToObject(p, "single", template_json(single, n_single, specials, name, ctx));
    cJSON_AddItemToObject(p, "pair", template_json(pair, n_pair, specials, name, ctx));
    cJSON_AddItemToObject(p, "special_tokens", specials);
    return p;
}

void ct_post_apply(const CtPostProcessor *post, const CtIds *a, const CtIds *b, int add_special, CtIds *ids,
                   CtIds *type_ids) {
    const CtIds *texts[2] = {a, b};
    if (!add_special) {
        for (int k = 0; k < 2 && texts[k]; k++)
            for (size_t i = 0; i < texts[k]->len; i++) {
                ct_ids_push(ids, texts[k]->data[i]);
                if (type_ids) ct_ids_push(type_ids, post->roberta ? 0 : k);
            }
        return;
    }
    CtPostPiece single[CT_POST_MAX_PIECES], pair[2 * CT_POST_MAX_PIECES];
    int n_single, n_pair;
    ct_post_templates(post, single, &n_single, pair, &n_pair);
    const CtPostPiece *tpl = b ? pair : single;
    int n = b ? n_pair : n_single;
    for (int i = 0; i < n; i++) {
        if (tpl[i].id >= 0) {
            ct_ids_push(ids, tpl[i].id);
            if (type_ids) ct_ids_push(type_ids, tpl[i].type_id);
            continue;
        }
        const CtIds *text = texts[tpl[i].id == CT_POST_B];
        for (size_t j = 0; j < text->len; j++) {
            ct_ids_push(ids, text->data[j]);
            if (type_ids) ct_ids_push(type_ids, tpl[i].type_id);
        }
    }
}

int ct_post_processor_parse(const char *json, const char *source, CtPostProcessor *out) {
    memset(out, 0, sizeof *out);
    cJSON *root = cJSON_Parse(json);
    if (!root) return ct_error_set("%s: the tokenizer is not JSON", source);
    int rc = ct_post_processor_read(root, out);
    cJSON_Delete(root);
    return rc == 0 ? 0 : ct_error_prefix("%s: ", source);
}
