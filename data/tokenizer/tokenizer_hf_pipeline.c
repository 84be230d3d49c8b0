// Reading and writing the normalizer, pre-tokenizer and decoder of tokenizer.json
// (data/tokenizer/tokenizer_hf_pipeline.h).
#include "data/tokenizer/tokenizer_hf_pipeline.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "data/tokenizer/spm.h"

static const char *type_of(const cJSON *obj) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "type");
    return cJSON_IsString(v) ? v->valuestring : "";
}

static int json_bool(const cJSON *obj, const char *key, int def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

static const char *json_string(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

// A Replace's {"pattern": {"String": from}, "content": to}.
static int is_replace(const cJSON *step, const char *from, const char *to) {
    const cJSON *pattern = cJSON_GetObjectItemCaseSensitive(step, "pattern");
    const char *s = json_string(pattern, "String"), *content = json_string(step, "content");
    return s && content && strcmp(s, from) == 0 && strcmp(content, to) == 0;
}

// ---- normalizer ----

static int read_normalizer_step(const cJSON *step, CtHfPipeline *p) {
    const char *type = type_of(step);
    if (strcmp(type, "Prepend") == 0) {
        const char *s = json_string(step, "prepend");
        if (!s || strcmp(s, CT_SPM_MARKER) != 0)
            return ct_error_set("normalizer Prepend(\"%s\") is not supported (only \"\u2581\")", s ? s : "?");
        p->spm.normalizer_prepend = 1;
        return 0;
    }
    if (strcmp(type, "NFC") == 0) {  // commutes with the other two: they neither make nor touch marks
        p->nfc = 1;
        return 0;
    }
    if (strcmp(type, "Replace") == 0) {
        if (!is_replace(step, " ", CT_SPM_MARKER))
            return ct_error_set("normalizer Replace is supported only as Replace(\" \", \"\u2581\")");
        p->spm.replace_spaces = 1;
        return 0;
    }
    return ct_error_set("normalizer \"%s\" is not supported (ctrain reads NFC, Prepend(\"\u2581\") and Replace(\" \", \"\u2581\"))",
                        type);
}

static int read_normalizer(const cJSON *n, CtHfPipeline *p) {
    if (!n || cJSON_IsNull(n)) return 0;
    if (strcmp(type_of(n), "Sequence") != 0) return read_normalizer_step(n, p);
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(n, "normalizers"), *step;
    cJSON_ArrayForEach(step, steps) if (read_normalizer_step(step, p) != 0) return -1;
    return 0;
}

// ---- pre-tokenizer ----

static int read_metaspace(const cJSON *step, CtHfPipeline *p) {
    const char *replacement = json_string(step, "replacement");
    if (!replacement || strcmp(replacement, CT_SPM_MARKER) != 0)
        return ct_error_set("pre_tokenizer Metaspace with replacement \"%s\" is not supported (only \"\u2581\")",
                            replacement ? replacement : "?");
    const char *scheme = json_string(step, "prepend_scheme");
    if (!scheme) scheme = json_bool(step, "add_prefix_space", 1) ? "always" : "never";  // before tokenizers 0.15
    if (strcmp(scheme, "first") == 0) p->spm.metaspace = CT_PREPEND_FIRST;
    else if (strcmp(scheme, "always") == 0) p->spm.metaspace = CT_PREPEND_ALWAYS;
    else if (strcmp(scheme, "never") == 0) p->spm.metaspace = CT_PREPEND_NEVER;
    else return ct_error_set("pre_tokenizer Metaspace prepend_scheme \"%s\" is unknown", scheme);
    p->spm.has_metaspace = 1;
    p->spm.split = json_bool(step, "split", 1);
    return 0;
}

// Split: a known regex (Isolated), or " " once spaces are gone (a Gemma tokenizer.json).
static int read_split(const cJSON *step, CtHfPipeline *p, int *have_regex) {
    const cJSON *pat = cJSON_GetObjectItemCaseSensitive(step, "pattern");
    const char *regex = json_string(pat, "Regex"), *literal = json_string(pat, "String");
    if (json_bool(step, "invert", 0)) return ct_error_set("pre_tokenizer Split invert=true is not supported");
    if (literal && strcmp(literal, " ") == 0 && p->spm.replace_spaces) return 0;  // no space is left to split at
    if (!regex) return ct_error_set("pre_tokenizer Split on \"%s\" is not supported", literal ? literal : "?");
    const char *behavior = json_string(step, "behavior");
    if (behavior && strcmp(behavior, "Isolated") != 0)
        return ct_error_set("pre_tokenizer Split behavior \"%s\" is not supported (only Isolated)", behavior);
    if (ct_pattern_from_regex(regex, &p->pattern) != 0) return -1;
    *have_regex = 1;
    return 0;
}

static int read_pre_step(const cJSON *step, CtHfPipeline *p, int *have_regex, int *byte_level) {
    const char *type = type_of(step);
    if (strcmp(type, "ByteLevel") == 0) {
        if (json_bool(step, "add_prefix_space", 0))
            return ct_error_set("pre_tokenizer ByteLevel.add_prefix_space=true is not supported");
        if (json_bool(step, "use_regex", 1)) {
            if (*have_regex) return ct_error_set("pre_tokenizer has two splitting regexes (a Split and ByteLevel.use_regex)");
            p->pattern = CT_PATTERN_GPT2;
            *have_regex = 1;
        }
        *byte_level = 1;
        return 0;
    }
    if (strcmp(type, "Split") == 0) return read_split(step, p, have_regex);
    if (strcmp(type, "Metaspace") == 0) return read_metaspace(step, p);
    return ct_error_set("pre_tokenizer type \"%s\" is not supported", type);
}

static int read_pre_tokenizer(const cJSON *pre, CtHfPipeline *p) {
    int have_regex = 0, byte_level = 0;
    if (pre && !cJSON_IsNull(pre)) {
        if (strcmp(type_of(pre), "Sequence") == 0) {
            const cJSON *steps = cJSON_GetObjectItemCaseSensitive(pre, "pretokenizers"), *step;
            cJSON_ArrayForEach(step, steps) if (read_pre_step(step, p, &have_regex, &byte_level) != 0) return -1;
        } else if (read_pre_step(pre, p, &have_regex, &byte_level) != 0) {
            return -1;
        }
    }
    const int spm = p->spm.normalizer_prepend || p->spm.replace_spaces || p->spm.has_metaspace;
    if (byte_level) {
        if (spm) return ct_error_set("a ByteLevel pre-tokenizer with \u2581 normalization or Metaspace is not supported");
        if (!have_regex) return ct_error_set("the pre_tokenizer has no splitting regex");
        p->units = CT_UNITS_BYTES;
        return 0;
    }
    if (have_regex)
        return ct_error_set("a Split regex without ByteLevel (regex pieces of characters) is not supported");
    p->units = CT_UNITS_CHARS;
    return 0;
}

// ---- decoder (SentencePiece-style) ----

static int read_decoder_step(const cJSON *step, CtHfPipeline *p) {
    const char *type = type_of(step);
    if (strcmp(type, "Replace") == 0 && is_replace(step, CT_SPM_MARKER, " ")) p->spm.decode_marker = 1;
    else if (strcmp(type, "ByteFallback") == 0) p->spm.decode_bytes = 1;
    else if (strcmp(type, "Fuse") == 0) return 0;
    else if (strcmp(type, "Strip") == 0) {
        const cJSON *start = cJSON_GetObjectItemCaseSensitive(step, "start"), *stop = cJSON_GetObjectItemCaseSensitive(step, "stop");
        const char *content = json_string(step, "content");
        if (!content || strcmp(content, " ") != 0 || !cJSON_IsNumber(start) || start->valuedouble > 1 ||
            !cJSON_IsNumber(stop) || stop->valuedouble != 0)
            return ct_error_set("decoder Strip is supported only as Strip(\" \", start 0 or 1, stop 0)");
        p->spm.strip_leading_space = start->valuedouble == 1;
    } else if (strcmp(type, "Metaspace") == 0) {
        const char *scheme = json_string(step, "prepend_scheme");
        int prepend = scheme ? strcmp(scheme, "never") != 0 : json_bool(step, "add_prefix_space", 1);
        p->spm.decode_marker = 1;
        p->spm.strip_leading_space = prepend;
    } else {
        return ct_error_set("decoder \"%s\" is not supported for a SentencePiece-style tokenizer (Replace, ByteFallback, "
                            "Fuse, Strip and Metaspace are)", type);
    }
    return 0;
}

static int read_decoder(const cJSON *d, CtHfPipeline *p) {
    if (p->units == CT_UNITS_BYTES || !d || cJSON_IsNull(d)) return 0;  // byte-level: bytes are the text
    if (strcmp(type_of(d), "Sequence") != 0) return read_decoder_step(d, p);
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(d, "decoders"), *step;
    cJSON_ArrayForEach(step, steps) if (read_decoder_step(step, p) != 0) return -1;
    return 0;
}

static int read_model_options(const cJSON *model, CtHfPipeline *p) {
    p->spm.byte_fallback = json_bool(model, "byte_fallback", 0);
    p->spm.fuse_unk = json_bool(model, "fuse_unk", 0);
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (cJSON_IsNumber(dropout) && dropout->valuedouble > 0)
        return ct_error_set("model.dropout %g is not supported (encoding would be random)", dropout->valuedouble);
    const char *unk = json_string(model, "unk_token");
    if (unk && strlen(unk) >= sizeof p->unk_token) return ct_error_set("model.unk_token is longer than 63 bytes");
    snprintf(p->unk_token, sizeof p->unk_token, "%s", unk ? unk : "");
    return 0;
}

int ct_hf_read_pipeline(const cJSON *root, const char *pattern_name, CtHfPipeline *out) {
    memset(out, 0, sizeof *out);
    out->spm.unk_id = -1;
    if (read_normalizer(cJSON_GetObjectItemCaseSensitive(root, "normalizer"), out) != 0) return -1;
    if (read_pre_tokenizer(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), out) != 0) return -1;
    if (out->units == CT_UNITS_BYTES && (out->spm.normalizer_prepend || out->spm.replace_spaces))
        return ct_error_set("a normalizer with a ByteLevel pre-tokenizer is not supported");
    if (read_decoder(cJSON_GetObjectItemCaseSensitive(root, "decoder"), out) != 0) return -1;
    if (read_model_options(cJSON_GetObjectItemCaseSensitive(root, "model"), out) != 0) return -1;
    if (pattern_name) {
        if (out->units == CT_UNITS_CHARS)
            return ct_error_set("--pattern applies to byte-level tokenizers; this one is SentencePiece-style");
        if (ct_pattern_from_name(pattern_name, &out->pattern) != 0) return -1;
    }
    return 0;
}

// ---- writing ----

static cJSON *typed(const char *type) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", type);
    return o;
}

static cJSON *replace_step(const char *from, const char *to) {
    cJSON *o = typed("Replace");
    cJSON *pattern = cJSON_AddObjectToObject(o, "pattern");
    cJSON_AddStringToObject(pattern, "String", from);
    cJSON_AddStringToObject(o, "content", to);
    return o;
}

static cJSON *byte_level_step(int use_regex) {
    cJSON *s = typed("ByteLevel");
    cJSON_AddBoolToObject(s, "add_prefix_space", 0);
    cJSON_AddBoolToObject(s, "trim_offsets", 1);
    cJSON_AddBoolToObject(s, "use_regex", use_regex);
    return s;
}

static void write_byte_level(cJSON *root, const CtTokenizer *t) {
    if (t->nfc) cJSON_AddItemToObject(root, "normalizer", typed("NFC"));
    else cJSON_AddNullToObject(root, "normalizer");
    if (t->pattern == CT_PATTERN_GPT2) {
        cJSON_AddItemToObject(root, "pre_tokenizer", byte_level_step(1));
    } else {
        cJSON *seq = typed("Sequence");
        cJSON *steps = cJSON_AddArrayToObject(seq, "pretokenizers");
        cJSON *split = typed("Split");
        cJSON *pat = cJSON_AddObjectToObject(split, "pattern");
        cJSON_AddStringToObject(pat, "Regex", ct_pattern_regex(t->pattern));
        cJSON_AddStringToObject(split, "behavior", "Isolated");
        cJSON_AddBoolToObject(split, "invert", 0);
        cJSON_AddItemToArray(steps, split);
        cJSON_AddItemToArray(steps, byte_level_step(0));
        cJSON_AddItemToObject(root, "pre_tokenizer", seq);
    }
}

static void write_spm(cJSON *root, const CtSpmRules *r, int nfc) {
    cJSON *normalizers = cJSON_CreateArray();
    if (nfc) cJSON_AddItemToArray(normalizers, typed("NFC"));
    if (r->normalizer_prepend) {
        cJSON *prepend = typed("Prepend");
        cJSON_AddStringToObject(prepend, "prepend", CT_SPM_MARKER);
        cJSON_AddItemToArray(normalizers, prepend);
    }
    if (r->replace_spaces) cJSON_AddItemToArray(normalizers, replace_step(" ", CT_SPM_MARKER));
    if (cJSON_GetArraySize(normalizers) == 0) {
        cJSON_Delete(normalizers);
        cJSON_AddNullToObject(root, "normalizer");
    } else {
        cJSON *seq = typed("Sequence");
        cJSON_AddItemToObject(seq, "normalizers", normalizers);
        cJSON_AddItemToObject(root, "normalizer", seq);
    }
    if (r->has_metaspace) {
        static const char *const schemes[] = {"never", "first", "always"};
        cJSON *m = typed("Metaspace");
        cJSON_AddStringToObject(m, "replacement", CT_SPM_MARKER);
        cJSON_AddStringToObject(m, "prepend_scheme", schemes[r->metaspace]);
        cJSON_AddBoolToObject(m, "split", r->split);
        cJSON_AddItemToObject(root, "pre_tokenizer", m);
    } else {
        cJSON_AddNullToObject(root, "pre_tokenizer");
    }
}

static void write_decoder(cJSON *root, const CtTokenizer *t) {
    if (t->units == CT_UNITS_BYTES) {
        cJSON_AddItemToObject(root, "decoder", byte_level_step(1));
        return;
    }
    const CtSpmRules *r = &t->spm;
    cJSON *seq = typed("Sequence");
    cJSON *steps = cJSON_AddArrayToObject(seq, "decoders");
    if (r->decode_marker) cJSON_AddItemToArray(steps, replace_step(CT_SPM_MARKER, " "));
    if (r->decode_bytes) cJSON_AddItemToArray(steps, typed("ByteFallback"));
    cJSON_AddItemToArray(steps, typed("Fuse"));
    if (r->strip_leading_space) {
        cJSON *strip = typed("Strip");
        cJSON_AddStringToObject(strip, "content", " ");
        cJSON_AddNumberToObject(strip, "start", 1);
        cJSON_AddNumberToObject(strip, "stop", 0);
        cJSON_AddItemToArray(steps, strip);
    }
    cJSON_AddItemToObject(root, "decoder", seq);
}

void ct_hf_write_pipeline(cJSON *root, const CtTokenizer *t) {
    if (t->units == CT_UNITS_BYTES) write_byte_level(root, t);
    else write_spm(root, &t->spm, t->nfc);
    write_decoder(root, t);
}
