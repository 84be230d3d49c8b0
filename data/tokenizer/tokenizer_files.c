// GPT-2 folders and tiktoken rank files (HF tokenizer.json is in data/tokenizer/tokenizer_hf.c).
#include "data/tokenizer/tokenizer_files.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/args.h"
#include "core/checksum.h"
#include "core/error.h"
#include "data/tokenizer/byte_level.h"
#include "data/input/json_int.h"
#include "data/input/read_file.h"
#include "data/tokenizer/tokenizer_hf.h"

// ---- meta.json: {"pat_str": "...", "special_tokens": {"<|endoftext|>": 50256}} ----

static int apply_meta(CtTokenizer *t, const char *meta_json, const char *source, int set_pattern) {
    cJSON *root = cJSON_Parse(meta_json);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return ct_error_set("%s: not a JSON object", source);
    }
    int rc = 0;
    const cJSON *pat = cJSON_GetObjectItemCaseSensitive(root, "pat_str");
    if (set_pattern && pat) {
        if (!cJSON_IsString(pat)) rc = ct_error_set("%s: \"pat_str\" is not a string", source);
        else if (ct_pattern_from_regex(pat->valuestring, &t->pattern) != 0) rc = ct_error_prefix("%s: ", source);
    }
    const cJSON *specials = cJSON_GetObjectItemCaseSensitive(root, "special_tokens");
    if (rc == 0 && specials) {
        if (!cJSON_IsObject(specials)) rc = ct_error_set("%s: \"special_tokens\" is not an object", source);
        const cJSON *item;
        cJSON_ArrayForEach(item, specials) {
            if (rc != 0) break;
            int32_t id;
            if (ct_json_token_id(item, &id) != 0) {
                rc = ct_error_set("%s: special token \"%s\" has no integer id", source, item->string);
            } else if (ct_tokenizer_add(t, id, (const uint8_t *)item->string,
                                        strlen(item->string), CT_TOKEN_SPECIAL) != 0) {
                rc = ct_error_prefix("%s: special token \"%s\": ", source, item->string);
            }
        }
    }
    cJSON_Delete(root);
    return rc;
}

// ---- tiktoken rank files ----

static int base64_value(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

// Decodes standard base64 (padding optional). Returns the byte count, or -1.
static long base64_decode(const char *s, size_t n, uint8_t *out) {
    while (n > 0 && s[n - 1] == '=') n--;
    if (n % 4 == 1) return -1;
    long len = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = base64_value((unsigned char)s[i]);
        if (v < 0) return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[len++] = (uint8_t)(acc >> bits);
        }
    }
    return len;
}

int ct_tokenizer_parse_tiktoken(CtTokenizer *t, const char *text, size_t len, const char *source,
                                const char *meta_json, CtPattern pattern) {
    ct_tokenizer_init(t, pattern, CT_MERGES_BY_RANK);
    uint8_t *buf = NULL;
    size_t cap = 0, line_no = 0, pos = 0;
    int rc = 0;
    while (pos < len && rc == 0) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t line_len = nl ? (size_t)(nl - line) : len - pos;
        pos += line_len + (nl ? 1 : 0);
        line_no++;
        if (line_len > 0 && line[line_len - 1] == '\r') line_len--;
        if (line_len == 0) continue;
        const char *space = memchr(line, ' ', line_len);
        if (!space || space == line) {
            rc = ct_error_set("%s:%zu: expected \"BASE64 RANK\"", source, line_no);
            break;
        }
        size_t b64_len = (size_t)(space - line);
        if (b64_len > cap) buf = ct_realloc(buf, cap = b64_len * 2);
        long n = base64_decode(line, b64_len, buf);
        if (n <= 0) {
            rc = ct_error_set("%s:%zu: invalid base64 token", source, line_no);
            break;
        }
        char num[24];
        size_t num_len = line_len - b64_len - 1;
        long rank;
        if (num_len == 0 || num_len >= sizeof num) {
            rc = ct_error_set("%s:%zu: missing or overlong rank", source, line_no);
            break;
        }
        memcpy(num, space + 1, num_len);
        num[num_len] = '\0';
        if (ct_parse_long(num, &rank) != 0 || rank < 0 || rank > INT32_MAX) {
            rc = ct_error_set("%s:%zu: rank \"%s\" is not a non-negative integer", source, line_no, num);
            break;
        }
        if (ct_tokenizer_add(t, (int32_t)rank, buf, (size_t)n, CT_TOKEN_NORMAL) != 0)
            rc = ct_error_prefix("%s:%zu: ", source, line_no);
    }
    ct_free(buf);
    if (rc == 0 && line_no == 0) rc = ct_error_set("%s: empty rank file", source);
    if (rc == 0 && meta_json) rc = apply_meta(t, meta_json, source, 0);
    if (rc == 0 && ct_tokenizer_finish(t) != 0) rc = ct_error_prefix("%s: ", source);
    if (rc != 0) ct_tokenizer_free(t);
    return rc;
}

// Special tokens of the public encodings, for rank files that come without a meta.json.
static const char *builtin_meta(const char *base) {
    if (strstr(base, "cl100k_base"))
        return "{\"special_tokens\": {\"<|endoftext|>\": 100257, \"<|fim_prefix|>\": 100258, \"<|fim_middle|>\": 100259,"
               " \"<|fim_suffix|>\": 100260, \"<|endofprompt|>\": 100276}}";
    if (strstr(base, "o200k_base"))
        return "{\"special_tokens\": {\"<|endoftext|>\": 199999, \"<|endofprompt|>\": 200018}}";
    if (strstr(base, "r50k_base") || strstr(base, "p50k_base")) return "{\"special_tokens\": {\"<|endoftext|>\": 50256}}";
    return NULL;
}

// OpenAI's published rank files, known by name as tiktoken knows them (its expected_hash): one
// under such a name that differs is damaged or edited, and would load as another tokenizer.
static int check_known_rank_file(const char *path, const char *base, const char *text, size_t len) {
    static const struct {
        const char *name;
        size_t size;
        uint32_t crc32;
    } known[] = {
        {"cl100k_base.tiktoken", 1681126, 0xb99e2e8du},
        {"o200k_base.tiktoken", 3613922, 0x2b33bbc2u},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strcmp(base, known[i].name) != 0) continue;
        uint32_t crc = ct_crc32(text, len);
        if (len != known[i].size || crc != known[i].crc32)
            return ct_error_set("%s: not OpenAI's %s (%zu bytes, CRC-32 %08x; expected %zu bytes, %08x): the file is "
                                "damaged or edited (a rank file of your own needs another name)",
                                path, known[i].name, len, crc, known[i].size, known[i].crc32);
    }
    return 0;
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

// The pattern named in a meta.json's pat_str, or -1 (with no error) when it has none.
static int meta_pattern(const char *meta_json, const char *source, CtPattern *out) {
    cJSON *root = cJSON_Parse(meta_json);
    const cJSON *pat = root ? cJSON_GetObjectItemCaseSensitive(root, "pat_str") : NULL;
    int rc = 1;
    if (!root) rc = ct_error_set("%s: not valid JSON", source);
    else if (cJSON_IsString(pat)) rc = ct_pattern_from_regex(pat->valuestring, out) == 0 ? 0 : ct_error_prefix("%s: ", source);
    cJSON_Delete(root);
    return rc;
}

int ct_tokenizer_load_tiktoken(CtTokenizer *t, const char *path, const char *pattern_name) {
    memset(t, 0, sizeof *t);
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char meta_path[4096];
    size_t stem = strlen(path);
    if (stem > 9 && strcmp(path + stem - 9, ".tiktoken") == 0) stem -= 9;
    snprintf(meta_path, sizeof meta_path, "%.*s.meta.json", (int)stem, path);
    char *meta = NULL;
    size_t meta_len;
    if (file_exists(meta_path) && !(meta = ct_read_whole_file(meta_path, &meta_len))) return -1;
    CtPattern pattern = CT_PATTERN_GPT2;
    int have_pattern = 0;
    if (pattern_name) {
        if (ct_pattern_from_name(pattern_name, &pattern) != 0) goto fail;
        have_pattern = 1;
    } else if (meta) {
        int r = meta_pattern(meta, meta_path, &pattern);
        if (r < 0) goto fail;
        have_pattern = r == 0;
    }
    if (!have_pattern) {
        if (strstr(base, "cl100k_base")) pattern = CT_PATTERN_CL100K, have_pattern = 1;
        else if (strstr(base, "o200k_base")) pattern = CT_PATTERN_O200K, have_pattern = 1;
        else if (strstr(base, "r50k_base") || strstr(base, "p50k_base")) pattern = CT_PATTERN_GPT2, have_pattern = 1;
    }
    if (!have_pattern) {
        ct_error_set("%s: cannot tell the pre-tokenization pattern: put %s beside it or pass --pattern gpt2|cl100k|o200k|qwen2",
                     path, meta_path);
        goto fail;
    }
    size_t len;
    char *text = ct_read_whole_file(path, &len);
    if (!text) goto fail;
    if (check_known_rank_file(path, base, text, len) != 0) {
        ct_free(text);
        goto fail;
    }
    int rc = ct_tokenizer_parse_tiktoken(t, text, len, path, meta ? meta : builtin_meta(base), pattern);
    ct_free(text);
    ct_free(meta);
    return rc;
fail:
    ct_free(meta);
    return -1;
}

// ---- GPT-2: encoder.json {"token": id} + vocab.bpe ("#version" line, then "left right") ----

int ct_tokenizer_parse_gpt2(CtTokenizer *t, const char *encoder_json, size_t encoder_len, const char *vocab_bpe,
                            size_t vocab_len, const char *meta_json, const char *source, CtPattern pattern) {
    ct_tokenizer_init(t, pattern, CT_MERGES_BY_RANK);  // tiktoken's rule: ids equal tiktoken's
    cJSON *root = cJSON_ParseWithLength(encoder_json, encoder_len);
    int rc = 0;
    uint8_t *buf = NULL;
    size_t cap = 0;
    CtBytesMap by_bytes = {0};  // token bytes -> id, to resolve the merges' halves
    if (!root || !cJSON_IsObject(root)) {
        rc = ct_error_set("%s/encoder.json: not a JSON object of token -> id", source);
        goto done;
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        size_t n = strlen(item->string);
        if (n + 1 > cap) buf = ct_realloc(buf, cap = n * 2 + 16);
        long bytes = ct_byte_level_decode(item->string, n, buf);
        int32_t id;
        if (ct_json_token_id(item, &id) != 0) {
            rc = ct_error_set("%s/encoder.json: token \"%.60s\" has no integer id", source, item->string);
            goto done;
        }
        // encoder.json also lists <|endoftext|>, which is not in the byte-level alphabet's
        // sense a token; the meta (or GPT-2's default) makes it special.
        if (bytes <= 0) {
            if (ct_tokenizer_add(t, id, (const uint8_t *)item->string, n, CT_TOKEN_SPECIAL) != 0) {
                rc = ct_error_prefix("%s/encoder.json: ", source);
                goto done;
            }
            continue;
        }
        if (ct_tokenizer_add(t, id, buf, (size_t)bytes, CT_TOKEN_NORMAL) != 0) {
            rc = ct_error_prefix("%s/encoder.json: token \"%.60s\": ", source, item->string);
            goto done;
        }
    }
    // Merges: kept so the tokenizer can be saved as tokenizer.json; encoding uses the ranks.
    ct_bytes_map_init(&by_bytes, (size_t)t->n_ids, t->pool, t->offsets, t->lengths);
    for (int32_t i = 0; i < t->n_ids; i++)
        if (t->kind[i] == CT_TOKEN_NORMAL) ct_bytes_map_insert(&by_bytes, i);
    size_t pos = 0, line_no = 0;
    long n_merges = 0;
    while (pos < vocab_len) {
        const char *line = vocab_bpe + pos;
        const char *nl = memchr(line, '\n', vocab_len - pos);
        size_t line_len = nl ? (size_t)(nl - line) : vocab_len - pos;
        pos += line_len + (nl ? 1 : 0);
        line_no++;
        if (line_len && line[line_len - 1] == '\r') line_len--;
        if (line_len == 0 || (line_no == 1 && line[0] == '#')) continue;
        const char *space = memchr(line, ' ', line_len);
        if (!space || space == line || space == line + line_len - 1) {
            rc = ct_error_set("%s/vocab.bpe:%zu: expected \"LEFT RIGHT\"", source, line_no);
            goto done;
        }
        size_t la = (size_t)(space - line), lb = line_len - la - 1;
        if (la + lb + 2 > cap) buf = ct_realloc(buf, cap = (la + lb) * 2 + 16);
        long na = ct_byte_level_decode(line, la, buf);
        long nb = na < 0 ? -1 : ct_byte_level_decode(space + 1, lb, buf + na);
        if (na <= 0 || nb <= 0) {
            rc = ct_error_set("%s/vocab.bpe:%zu: a character outside GPT-2's byte alphabet", source, line_no);
            goto done;
        }
        int32_t a = ct_bytes_map_find(&by_bytes, buf, (size_t)na);
        int32_t b = ct_bytes_map_find(&by_bytes, buf + na, (size_t)nb);
        if (a < 0 || b < 0) {
            rc = ct_error_set("%s/vocab.bpe:%zu: \"%.*s\" is not in encoder.json", source, line_no,
                              (int)(a < 0 ? la : lb), a < 0 ? line : space + 1);
            goto done;
        }
        // A merge makes a token of encoder.json; a line cut short ("Ġcom mu") makes none.
        if (ct_bytes_map_find(&by_bytes, buf, (size_t)(na + nb)) < 0) {
            rc = ct_error_set("%s/vocab.bpe:%zu: \"%.*s\" merges into a token that is not in encoder.json "
                              "(the file is damaged)", source, line_no, (int)line_len, line);
            goto done;
        }
        ct_tokenizer_add_merge(t, a, b);
        n_merges++;
    }
    ct_bytes_map_free(&by_bytes);  // before specials are added: they may move the pool
    if (meta_json && apply_meta(t, meta_json, "meta.json", 0) != 0) {
        rc = ct_error_prefix("%s/", source);
        goto done;
    }
    if (!meta_json) {
        // Without a meta.json, GPT-2's one special token is the encoder's <|endoftext|>.
        static const char eot[] = "<|endoftext|>";
        int32_t id = 50256;
        if (id < t->n_ids && t->kind[id] == CT_TOKEN_NORMAL && t->lengths[id] == sizeof eot - 1 &&
            memcmp(t->pool + t->offsets[id], eot, sizeof eot - 1) == 0)
            ct_tokenizer_add(t, id, (const uint8_t *)eot, sizeof eot - 1, CT_TOKEN_SPECIAL);
    }
    // Each token longer than one byte but the specials is made by exactly one merge (GPT-2: 50,000
    // merges for 50,000 such tokens): fewer merges mean a vocab.bpe cut short, which would otherwise load and
    // be written out as a tokenizer.json that encodes differently.
    long multi_byte = 0;
    for (int32_t i = 0; i < t->n_ids; i++)
        if (t->kind[i] == CT_TOKEN_NORMAL && t->lengths[i] > 1) multi_byte++;
    if (n_merges < multi_byte) {
        rc = ct_error_set("%s/vocab.bpe: %ld merges for the %ld multi-byte tokens of encoder.json (the file is cut short "
                          "or damaged)", source, n_merges, multi_byte);
        goto done;
    }
    if (ct_tokenizer_finish(t) != 0) rc = ct_error_prefix("%s: ", source);
done:
    ct_bytes_map_free(&by_bytes);
    ct_free(buf);
    cJSON_Delete(root);
    if (rc != 0) ct_tokenizer_free(t);
    return rc;
}

int ct_tokenizer_load_gpt2_folder(CtTokenizer *t, const char *dir, const char *pattern_name) {
    memset(t, 0, sizeof *t);
    char path[4096];
    size_t enc_len = 0, bpe_len = 0, meta_len = 0;
    snprintf(path, sizeof path, "%s/encoder.json", dir);
    char *enc = ct_read_whole_file(path, &enc_len);
    snprintf(path, sizeof path, "%s/vocab.bpe", dir);
    char *bpe = enc ? ct_read_whole_file(path, &bpe_len) : NULL;
    snprintf(path, sizeof path, "%s/meta.json", dir);
    char *meta = file_exists(path) ? ct_read_whole_file(path, &meta_len) : NULL;
    int rc = -1;
    CtPattern pattern = CT_PATTERN_GPT2;
    if (enc && bpe) {
        rc = 0;
        if (pattern_name) rc = ct_pattern_from_name(pattern_name, &pattern);
        else if (meta && meta_pattern(meta, path, &pattern) < 0) rc = -1;
        if (rc == 0) rc = ct_tokenizer_parse_gpt2(t, enc, enc_len, bpe, bpe_len, meta, dir, pattern);
    }
    ct_free(enc);
    ct_free(bpe);
    ct_free(meta);
    return rc;
}

// ---- detection ----

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int ct_tokenizer_load(CtTokenizer *t, const char *path, const char *pattern_name) {
    memset(t, 0, sizeof *t);
    char sub[4096];
    if (is_dir(path)) {
        snprintf(sub, sizeof sub, "%s/encoder.json", path);
        if (file_exists(sub)) return ct_tokenizer_load_gpt2_folder(t, path, pattern_name);
        snprintf(sub, sizeof sub, "%s/tokenizer.json", path);
        if (file_exists(sub)) return ct_tokenizer_load_hf(t, sub, pattern_name);
        return ct_error_set("%s: a folder with neither encoder.json + vocab.bpe (GPT-2) nor tokenizer.json (Hugging Face)",
                            path);
    }
    if (ends_with(path, ".tiktoken")) return ct_tokenizer_load_tiktoken(t, path, pattern_name);
    if (ends_with(path, ".json")) return ct_tokenizer_load_hf(t, path, pattern_name);
    FILE *f = fopen(path, "rb");
    if (!f) return ct_error_errno("%s", path);
    int c;
    while ((c = fgetc(f)) == ' ' || c == '\n' || c == '\r' || c == '\t') {
    }
    fclose(f);
    if (c == '{') return ct_tokenizer_load_hf(t, path, pattern_name);
    return ct_tokenizer_load_tiktoken(t, path, pattern_name);
}
