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
#include "data/tokenizer/tokenizer_config.h"
#include "data/tokenizer/tokenizer_hf_pipeline.h"
#include "data/tokenizer/tokenizer_hf_wordpiece.h"

// ---- reading ----

static int json_bool(const cJSON *obj, const char *key, int def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

static const char *json_type(const cJSON *obj) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "type");
    return cJSON_IsString(v) ? v->valuestring : "";
}

// A vocab string as token bytes: byte-level strings decode to bytes; SentencePiece-style ones
// are kept as they are ("▁the").
static int token_bytes(const CtTokenizer *t, const char *s, uint8_t **buf, size_t *cap, long *n) {
    size_t len = strlen(s);
    if (len + 1 > *cap) *buf = ct_realloc(*buf, *cap = len * 2 + 16);
    if (t->units != CT_UNITS_BYTES) {
        memcpy(*buf, s, len);
        *n = (long)len;
    } else {
        *n = ct_byte_level_decode(s, len, *buf);
    }
    return *n > 0 ? 0 : -1;
}

static int read_model(CtTokenizer *t, const cJSON *model) {
    if (!cJSON_IsObject(model)) return ct_error_set("no \"model\" object");
    const char *type = json_type(model);
    if (t->units == CT_UNITS_WORDPIECE) {
        if (cJSON_GetObjectItemCaseSensitive(model, "merges")) return ct_error_set("model.merges: a WordPiece model has none");
    } else if (*type && strcmp(type, "BPE") != 0) {
        return ct_error_set("model type \"%s\" is not supported (BPE and WordPiece are)", type);
    }
    const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(model, "continuing_subword_prefix");
    const cJSON *suffix = cJSON_GetObjectItemCaseSensitive(model, "end_of_word_suffix");
    if (t->units != CT_UNITS_WORDPIECE &&
        ((prefix && !cJSON_IsNull(prefix) && !(cJSON_IsString(prefix) && !*prefix->valuestring)) ||
         (suffix && !cJSON_IsNull(suffix) && !(cJSON_IsString(suffix) && !*suffix->valuestring))))
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
        if (token_bytes(t, item->string, &buf, &cap, &n) != 0) {
            // Added tokens such as "<|endoftext|>" decode fine; anything else outside the
            // byte alphabet means this is not a byte-level vocabulary.
            rc = ct_error_set(t->units != CT_UNITS_BYTES ? "model.vocab token \"%.60s\" is empty"
                                                         : "model.vocab token \"%.60s\" is not in the byte-level alphabet (a "
                                                           "byte-level pre-tokenizer needs byte-level tokens)",
                              item->string);
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
        if (token_bytes(t, left, &buf, &cap, &na) == 0) a = ct_bytes_map_find(&map, buf, (size_t)na);
        if (token_bytes(t, right, &buf, &cap, &nb) == 0) b = ct_bytes_map_find(&map, buf, (size_t)nb);
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

// Added tokens: "special": true ones are matched in text only when specials are allowed,
// others always (as HF does); lstrip/rstrip and normalized are kept; single_word is refused.
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
        const char *text = content->valuestring;
        if (json_bool(tok, "single_word", 0))
            return ct_error_set("added_tokens[%d] \"%.40s\": single_word=true is not supported", index, text);
        // "normalized": true matters where the normalizer changes the token's text (Prepend: every
        // such token; Replace: one with a space); elsewhere it is matched as the text stands.
        const CtSpmRules *r = &t->spm;
        unsigned flags = (json_bool(tok, "lstrip", 0) ? CT_ADDED_LSTRIP : 0u) | (json_bool(tok, "rstrip", 0) ? CT_ADDED_RSTRIP : 0u);
        if (json_bool(tok, "normalized", 0) && t->units == CT_UNITS_WORDPIECE && t->wp.normalizer)
            return ct_error_set("added_tokens[%d] \"%.40s\": normalized=true is not supported with a BertNormalizer (it would "
                                "be matched in the normalized text)", index, text);
        if (json_bool(tok, "normalized", 0) && t->units == CT_UNITS_CHARS &&
            (r->normalizer_prepend || (r->replace_spaces && strchr(text, ' '))))
            flags |= CT_ADDED_NORMALIZED;
        CtTokenKind kind = json_bool(tok, "special", 1) ? CT_TOKEN_SPECIAL : CT_TOKEN_ADDED;
        if (ct_tokenizer_add_flagged(t, value, (const uint8_t *)text, strlen(text), kind, flags) != 0)
            return ct_error_prefix("added_tokens[%d]: ", index);
        index++;
    }
    return 0;
}

// The unk token's id from model.vocab (it may also be an added token).
static int resolve_unk(CtTokenizer *t, const cJSON *model, const char *unk) {
    if (!*unk) return 0;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(model, "vocab"), unk);
    int32_t value;
    if (ct_json_token_id(id, &value) != 0) return ct_error_set("model.unk_token \"%.40s\" is not in model.vocab", unk);
    t->spm.unk_id = value;
    return 0;
}

// The post-processor's ids are tokens of this tokenizer.
static int check_post_ids(const CtTokenizer *t) {
    CtPostPiece single[CT_POST_MAX_PIECES], pair[2 * CT_POST_MAX_PIECES];
    int n_single, n_pair;
    ct_post_templates(&t->post, single, &n_single, pair, &n_pair);
    for (int i = 0; i < n_single + n_pair; i++) {
        int32_t id = i < n_single ? single[i].id : pair[i - n_single].id;
        if (id >= 0 && (id >= t->n_ids || t->kind[id] == CT_TOKEN_ABSENT))
            return ct_error_set("post_processor adds token id %d, which is not in the vocabulary", (int)id);
    }
    return 0;
}

// A WordPiece model's rules, and its unk token, which must be in model.vocab.
static int read_wordpiece(CtTokenizer *t, const cJSON *root, char *unk, size_t cap) {
    CtWordPieceRules r;
    if (ct_hf_read_wordpiece(root, &r, unk, cap) != 0) return -1;
    ct_tokenizer_set_wordpiece(t, &r);
    return 0;
}

static int resolve_wordpiece_unk(CtTokenizer *t, const cJSON *model, const char *unk) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(model, "vocab"), unk);
    int32_t value;
    if (ct_json_token_id(id, &value) != 0) return ct_error_set("model.unk_token \"%.40s\" is not in model.vocab", unk);
    t->wp.unk_id = value;
    return 0;
}

int ct_tokenizer_parse_hf(CtTokenizer *t, const char *json, size_t len, const char *source, const char *pattern_name) {
    ct_tokenizer_init(t, CT_PATTERN_GPT2, CT_MERGES_BY_LIST);
    cJSON *root = cJSON_ParseWithLength(json, len);
    int rc = 0;
    if (!root || !cJSON_IsObject(root)) {
        rc = ct_error_set("not a JSON object (truncated or not a tokenizer.json)");
    } else {
        const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
        CtHfPipeline p;
        const int wordpiece = strcmp(json_type(model), "WordPiece") == 0;
        if (wordpiece && pattern_name) rc = ct_error_set("--pattern applies to byte-level tokenizers; this one is WordPiece");
        else if (wordpiece) rc = read_wordpiece(t, root, p.unk_token, sizeof p.unk_token);
        else rc = ct_hf_read_pipeline(root, pattern_name, &p);
        if (rc == 0 && !wordpiece) {
            t->pattern = p.pattern;
            t->nfc = p.nfc;
            if (p.units == CT_UNITS_CHARS) ct_tokenizer_set_spm(t, &p.spm);
        }
        if (rc == 0) rc = read_model(t, model);
        if (rc == 0) rc = read_added_tokens(t, cJSON_GetObjectItemCaseSensitive(root, "added_tokens"));
        if (rc == 0 && wordpiece) rc = resolve_wordpiece_unk(t, model, p.unk_token);
        if (rc == 0 && !wordpiece && p.units == CT_UNITS_CHARS) rc = resolve_unk(t, model, p.unk_token);
        if (rc == 0 && !wordpiece) rc = read_merges(t, model);
        if (rc == 0) rc = ct_post_processor_read(root, &t->post);
        if (rc == 0) rc = check_post_ids(t);
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
    if (rc == 0 && ct_tokenizer_read_config_beside(t, path) != 0) {
        ct_tokenizer_free(t);
        return -1;
    }
    return rc;
}

// ---- writing ----

// A token's vocab string: byte-level tokens in GPT-2's alphabet, SentencePiece-style ones as
// they are.
static char *token_string(const CtTokenizer *t, int32_t id, char **buf, size_t *cap) {
    size_t n = t->lengths[id];
    if (2 * n + 1 > *cap) *buf = ct_realloc(*buf, *cap = 2 * n + 64);
    if (t->units != CT_UNITS_BYTES) {
        memcpy(*buf, t->pool + t->offsets[id], n);
        (*buf)[n] = '\0';
    } else {
        ct_byte_level_encode(t->pool + t->offsets[id], n, *buf);
    }
    return *buf;
}

static char *token_text(const CtTokenizer *t, int32_t id) {
    char *s = ct_alloc(t->lengths[id] + 1);
    memcpy(s, t->pool + t->offsets[id], t->lengths[id]);
    s[t->lengths[id]] = '\0';
    return s;
}

static void write_added_tokens(cJSON *root, const CtTokenizer *t) {
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    for (int32_t k = 0; k < t->n_special; k++) {
        int32_t id = t->special_ids[k];
        char *content = token_text(t, id);
        cJSON *a = cJSON_CreateObject();
        cJSON_AddNumberToObject(a, "id", id);
        cJSON_AddStringToObject(a, "content", content);
        cJSON_AddBoolToObject(a, "single_word", 0);
        cJSON_AddBoolToObject(a, "lstrip", (t->added_flags[k] & CT_ADDED_LSTRIP) != 0);
        cJSON_AddBoolToObject(a, "rstrip", (t->added_flags[k] & CT_ADDED_RSTRIP) != 0);
        cJSON_AddBoolToObject(a, "normalized", (t->added_flags[k] & CT_ADDED_NORMALIZED) != 0);
        cJSON_AddBoolToObject(a, "special", t->kind[id] == CT_TOKEN_SPECIAL);
        cJSON_AddItemToArray(added, a);
        ct_free(content);
    }
}

static void token_name(const void *ctx, int32_t id, char *buf, size_t cap) {
    const CtTokenizer *t = ctx;
    snprintf(buf, cap, "%.*s", (int)t->lengths[id], (const char *)t->pool + t->offsets[id]);
}

static void write_post_processor(cJSON *root, const CtTokenizer *t) {
    cJSON_AddItemToObject(root, "post_processor", ct_post_processor_json(&t->post, token_name, t));
}

// WordPiece: the vocab holds every token, the specials included (BERT's [CLS] is in vocab.txt).
static void write_wordpiece_model(cJSON *root, const CtTokenizer *t) {
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    char *unk = token_text(t, t->wp.unk_id);
    ct_hf_write_wordpiece_model(model, &t->wp, unk);
    ct_free(unk);
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    for (int32_t i = 0; i < t->n_ids; i++)
        if (t->kind[i] != CT_TOKEN_ABSENT) {
            char *s = token_text(t, i);
            cJSON_AddNumberToObject(vocab, s, i);
            ct_free(s);
        }
}

static void write_model(cJSON *root, const CtTokenizer *t) {
    if (t->units == CT_UNITS_WORDPIECE) {
        write_wordpiece_model(root, t);
        return;
    }
    const int spm = t->units == CT_UNITS_CHARS;
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    if (spm && t->spm.unk_id >= 0) {
        char *unk = token_text(t, t->spm.unk_id);
        cJSON_AddStringToObject(model, "unk_token", unk);
        ct_free(unk);
    } else {
        cJSON_AddNullToObject(model, "unk_token");
    }
    cJSON_AddNullToObject(model, "continuing_subword_prefix");
    cJSON_AddNullToObject(model, "end_of_word_suffix");
    cJSON_AddBoolToObject(model, "fuse_unk", spm && t->spm.fuse_unk);
    cJSON_AddBoolToObject(model, "byte_fallback", spm && t->spm.byte_fallback);
    cJSON_AddBoolToObject(model, "ignore_merges", t->whole_piece_lookup);
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    char *buf = NULL, *buf2 = NULL;
    size_t cap = 0, cap2 = 0;
    // SentencePiece-style vocabularies hold their control tokens (<unk>, <s>) too, and so must a
    // byte-level one whose added tokens lie among its ordinary ones (RoBERTa's <s> = 0): HF
    // gives an added token that is not in the model's vocab the next free id, not its own.
    int32_t last_normal = -1;
    for (int32_t i = 0; i < t->n_ids; i++)
        if (t->kind[i] == CT_TOKEN_NORMAL) last_normal = i;
    for (int32_t i = 0; i < t->n_ids; i++)
        if (t->kind[i] == CT_TOKEN_NORMAL || ((spm || i < last_normal) && t->kind[i] != CT_TOKEN_ABSENT))
            cJSON_AddNumberToObject(vocab, token_string(t, i, &buf, &cap), i);
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    for (int32_t r = 0; r < t->n_merges; r++) {
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, cJSON_CreateString(token_string(t, t->merges[r].left, &buf, &cap)));
        cJSON_AddItemToArray(pair, cJSON_CreateString(token_string(t, t->merges[r].right, &buf2, &cap2)));
        if (spm) {
            cJSON_AddItemToArray(merges, pair);  // SentencePiece strings may hold spaces: pairs
            continue;
        }
        size_t need = strlen(buf) + strlen(buf2) + 2;
        char *text = ct_alloc(need);
        snprintf(text, need, "%s %s", buf, buf2);
        cJSON_AddItemToArray(merges, cJSON_CreateString(text));
        ct_free(text);
        cJSON_Delete(pair);
    }
    ct_free(buf);
    ct_free(buf2);
}

char *ct_tokenizer_hf_json(const CtTokenizer *t) {
    int32_t n_normal = 0;
    for (int32_t i = 0; i < t->n_ids; i++) n_normal += t->kind[i] == CT_TOKEN_NORMAL;
    if (t->n_merges == 0 && n_normal > 256 && t->units == CT_UNITS_BYTES) {
        ct_error_set("this tokenizer has ranks but no merge list (a .tiktoken file); it cannot be saved as tokenizer.json");
        return NULL;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON_AddNullToObject(root, "truncation");
    cJSON_AddNullToObject(root, "padding");
    write_added_tokens(root, t);
    if (t->units == CT_UNITS_WORDPIECE) ct_hf_write_wordpiece_pipeline(root, &t->wp);
    else ct_hf_write_pipeline(root, t);  // normalizer, pre_tokenizer, decoder
    write_post_processor(root, t);
    write_model(root, t);
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
