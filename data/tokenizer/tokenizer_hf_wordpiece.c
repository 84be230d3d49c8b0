// Reading and writing a WordPiece tokenizer.json's pipeline (data/tokenizer/tokenizer_hf_wordpiece.h).
#include "data/tokenizer/tokenizer_hf_wordpiece.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"

static const char *type_of(const cJSON *obj) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "type");
    return cJSON_IsString(v) ? v->valuestring : "";
}

// A boolean option: absent -> def; null -> null_value (strip_accents), else an error.
static int read_bool(const cJSON *obj, const char *where, const char *key, int def, int null_value, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) *out = def;
    else if (cJSON_IsBool(v)) *out = cJSON_IsTrue(v);
    else if (cJSON_IsNull(v) && null_value >= 0) *out = null_value;
    else return ct_error_set("%s.%s is not true or false%s", where, key, null_value >= 0 ? " (or null)" : "");
    return 0;
}

static int read_string(const cJSON *obj, const char *where, const char *key, const char *def, char *out, size_t cap) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    const char *s = !v || cJSON_IsNull(v) ? def : cJSON_IsString(v) ? v->valuestring : NULL;
    if (!s) return ct_error_set("%s.%s is not a string", where, key);
    if (strlen(s) >= cap) return ct_error_set("%s.%s \"%.40s\" is longer than %zu bytes", where, key, s, cap - 1);
    snprintf(out, cap, "%s", s);
    return 0;
}

// A Sequence of one step, or the step itself.
static const cJSON *only_step(const cJSON *obj, const char *where, const char *list_key) {
    if (strcmp(type_of(obj), "Sequence") != 0) return obj;
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(obj, list_key);
    if (!cJSON_IsArray(steps) || cJSON_GetArraySize(steps) != 1) {
        ct_error_set("%s: a Sequence is supported only with one step for a WordPiece tokenizer", where);
        return NULL;
    }
    return cJSON_GetArrayItem(steps, 0);
}

static int read_normalizer(const cJSON *n, CtWordPieceRules *r) {
    if (!n || cJSON_IsNull(n)) return 0;
    if (!(n = only_step(n, "normalizer", "normalizers"))) return -1;
    if (strcmp(type_of(n), "BertNormalizer") != 0)
        return ct_error_set("normalizer \"%s\" is not supported for a WordPiece tokenizer (BertNormalizer is)", type_of(n));
    r->normalizer = 1;
    int strip = 2;
    if (read_bool(n, "normalizer", "clean_text", 1, -1, &r->clean_text) != 0 ||
        read_bool(n, "normalizer", "handle_chinese_chars", 1, -1, &r->handle_chinese_chars) != 0 ||
        read_bool(n, "normalizer", "lowercase", 1, -1, &r->lowercase) != 0 ||
        read_bool(n, "normalizer", "strip_accents", 2, 2, &strip) != 0)
        return -1;
    r->strip_accents = strip == 2 ? r->lowercase : strip;  // null: follows lowercase
    return 0;
}

static int read_pre_tokenizer(const cJSON *p, CtWordPieceRules *r) {
    if (!p || cJSON_IsNull(p)) return 0;
    if (!(p = only_step(p, "pre_tokenizer", "pretokenizers"))) return -1;
    if (strcmp(type_of(p), "BertPreTokenizer") != 0)
        return ct_error_set("pre_tokenizer \"%s\" is not supported for a WordPiece tokenizer (BertPreTokenizer is)", type_of(p));
    r->bert_pre_tokenizer = 1;
    return 0;
}

static int read_decoder(const cJSON *d, CtWordPieceRules *r) {
    if (!d || cJSON_IsNull(d)) return 0;
    if (!(d = only_step(d, "decoder", "decoders"))) return -1;
    if (strcmp(type_of(d), "WordPiece") != 0)
        return ct_error_set("decoder \"%s\" is not supported for a WordPiece tokenizer (WordPiece is)", type_of(d));
    r->decoder = CT_WP_DECODER_WORDPIECE;
    if (read_string(d, "decoder", "prefix", "##", r->decode_prefix, sizeof r->decode_prefix) != 0 ||
        read_bool(d, "decoder", "cleanup", 1, -1, &r->cleanup) != 0)
        return -1;
    r->decode_prefix_len = (int)strlen(r->decode_prefix);
    return 0;
}

static int read_model(const cJSON *m, CtWordPieceRules *r, char *unk, size_t cap) {
    if (read_string(m, "model", "unk_token", "[UNK]", unk, cap) != 0 ||
        read_string(m, "model", "continuing_subword_prefix", "##", r->prefix, sizeof r->prefix) != 0)
        return -1;
    if (!*unk) return ct_error_set("model.unk_token is empty");
    r->prefix_len = (int)strlen(r->prefix);
    const cJSON *max = cJSON_GetObjectItemCaseSensitive(m, "max_input_chars_per_word");
    r->max_chars = 100;
    if (max && !(cJSON_IsNumber(max) && max->valuedouble >= 1 && max->valuedouble <= 1e9 &&
                 max->valuedouble == (double)(int32_t)max->valuedouble))
        return ct_error_set("model.max_input_chars_per_word is not a positive integer");
    if (max) r->max_chars = (int32_t)max->valuedouble;
    return 0;
}

int ct_hf_read_wordpiece(const cJSON *root, CtWordPieceRules *out, char *unk, size_t cap) {
    memset(out, 0, sizeof *out);
    out->unk_id = -1;
    if (read_normalizer(cJSON_GetObjectItemCaseSensitive(root, "normalizer"), out) != 0) return -1;
    if (read_pre_tokenizer(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), out) != 0) return -1;
    if (read_decoder(cJSON_GetObjectItemCaseSensitive(root, "decoder"), out) != 0) return -1;
    return read_model(cJSON_GetObjectItemCaseSensitive(root, "model"), out, unk, cap);
}

static cJSON *typed(const char *type) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", type);
    return o;
}

void ct_hf_write_wordpiece_pipeline(cJSON *root, const CtWordPieceRules *r) {
    if (r->normalizer) {
        cJSON *n = typed("BertNormalizer");
        cJSON_AddBoolToObject(n, "clean_text", r->clean_text);
        cJSON_AddBoolToObject(n, "handle_chinese_chars", r->handle_chinese_chars);
        cJSON_AddBoolToObject(n, "strip_accents", r->strip_accents);
        cJSON_AddBoolToObject(n, "lowercase", r->lowercase);
        cJSON_AddItemToObject(root, "normalizer", n);
    } else {
        cJSON_AddNullToObject(root, "normalizer");
    }
    if (r->bert_pre_tokenizer) cJSON_AddItemToObject(root, "pre_tokenizer", typed("BertPreTokenizer"));
    else cJSON_AddNullToObject(root, "pre_tokenizer");
    if (r->decoder == CT_WP_DECODER_WORDPIECE) {
        cJSON *d = typed("WordPiece");
        cJSON_AddStringToObject(d, "prefix", r->decode_prefix);
        cJSON_AddBoolToObject(d, "cleanup", r->cleanup);
        cJSON_AddItemToObject(root, "decoder", d);
    } else {
        cJSON_AddNullToObject(root, "decoder");
    }
}

void ct_hf_write_wordpiece_model(cJSON *model, const CtWordPieceRules *r, const char *unk) {
    cJSON_AddStringToObject(model, "type", "WordPiece");
    cJSON_AddStringToObject(model, "unk_token", unk);
    cJSON_AddStringToObject(model, "continuing_subword_prefix", r->prefix);
    cJSON_AddNumberToObject(model, "max_input_chars_per_word", r->max_chars);
}
