// Exactness against tiktoken: every line of ../shared/data/tokenizers/vectors.jsonl, for
// GPT-2, cl100k_base and o200k_base, through the library and through `ctrain tokenize --jsonl`.
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/tokenizer/bpe.h"
#include "data/tokenizer/tokenizer_files.h"
#include "tests/test.h"

static const char *const encodings[3] = {"gpt2", "cl100k_base", "o200k_base"};

static void tokenizer_path(int which, char *out, size_t size) {
    const char *shared = ct_test_shared_data();
    if (which == 0) snprintf(out, size, "%s/tokenizers/gpt2", shared);
    else snprintf(out, size, "%s/tokenizers/tiktoken/%s.tiktoken", shared, encodings[which]);
}

// Compares one JSON list of ids with a CtIds; 0 when equal.
static int ids_differ(const cJSON *expected, const int32_t *ids, size_t n) {
    if ((size_t)cJSON_GetArraySize(expected) != n) return 1;
    size_t i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, expected) if ((int32_t)v->valuedouble != ids[i++]) return 1;
    return 0;
}

static void check_library(int which) {
    char path[1024], vectors[1024];
    tokenizer_path(which, path, sizeof path);
    snprintf(vectors, sizeof vectors, "%s/tokenizers/vectors.jsonl", ct_test_shared_data());
    CtTokenizer t;
    CHECK_MSG(ct_tokenizer_load(&t, path, NULL) == 0, "%s", ct_error_message());
    CtEncoder *e = ct_encoder_new(&t);
    char *text = ct_test_read(vectors, NULL);
    CHECK(text);
    int lines = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *obj = cJSON_Parse(line);
        CHECK(obj);
        const char *s = cJSON_GetObjectItem(obj, "text")->valuestring;
        CtIds ids = {0};
        ct_encode(e, (const uint8_t *)s, strlen(s), 0, &ids);
        CHECK_MSG(!ids_differ(cJSON_GetObjectItem(obj, encodings[which]),
                              ids.data, ids.len),
                  "%s: line %d (\"%.40s\") encodes differently", encodings[which], lines + 1, s);
        // And back: decode gives the text.
        uint8_t *out = NULL;
        size_t len = 0, cap = 0;
        CHECK(ct_decode(&t, ids.data, ids.len, &out, &len, &cap) == 0);
        CHECK(len == strlen(s) && (len == 0 || memcmp(out, s, len) == 0));
        ct_free(out);
        ct_ids_free(&ids);
        cJSON_Delete(obj);
        lines++;
    }
    CHECK_EQ_INT(lines, 90);
    free(text);
    ct_encoder_free(e);
    ct_tokenizer_free(&t);
}

TEST(tokenizer_vectors, gpt2_library) { check_library(0); }
TEST(tokenizer_vectors, cl100k_library) { check_library(1); }
TEST(tokenizer_vectors, o200k_library) { check_library(2); }

static void check_cli(int which) {
    char path[1024], cmd[4096];
    tokenizer_path(which, path, sizeof path);
    const char *shared = ct_test_shared_data();
    snprintf(cmd, sizeof cmd, "%s tokenize --jsonl --tokenizer '%s' --threads 2 < '%s/tokenizers/vectors.jsonl'",
             ct_test_bin(), path, shared);
    char *out = NULL;
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    snprintf(cmd, sizeof cmd, "%s/tokenizers/vectors.jsonl", shared);
    char *expected = ct_test_read(cmd, NULL);
    char *save_out = NULL, *save_exp = NULL;
    char *got_line = strtok_r(out, "\n", &save_out);
    int lines = 0;
    for (char *exp_line = strtok_r(expected, "\n", &save_exp); exp_line; exp_line = strtok_r(NULL, "\n", &save_exp)) {
        CHECK_MSG(got_line, "output ended after %d lines", lines);
        cJSON *got = cJSON_Parse(got_line), *exp = cJSON_Parse(exp_line);
        CHECK_MSG(got, "not JSON: %s", got_line);
        char *a = cJSON_PrintUnformatted(cJSON_GetObjectItem(got, "ids"));
        char *b = cJSON_PrintUnformatted(cJSON_GetObjectItem(exp, encodings[which]));
        CHECK_MSG(strcmp(a, b) == 0, "%s line %d: got %.200s, expected %.200s", encodings[which], lines + 1, a, b);
        free(a);
        free(b);
        cJSON_Delete(got);
        cJSON_Delete(exp);
        got_line = strtok_r(NULL, "\n", &save_out);
        lines++;
    }
    CHECK_EQ_INT(lines, 90);
    CHECK(got_line == NULL);
    free(out);
    free(expected);
}

TEST(tokenizer_vectors, gpt2_cli_jsonl) { check_cli(0); }
TEST(tokenizer_vectors, cl100k_cli_jsonl) { check_cli(1); }
TEST(tokenizer_vectors, o200k_cli_jsonl) { check_cli(2); }
