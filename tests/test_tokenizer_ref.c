// The tokenizers of today's models against Hugging Face `tokenizers`: tests/ref/
// make_hf_tokenizer_kinds.py trains a small tokenizer of each kind with HF's own BpeTrainer,
// saves it in the shape of Llama 3's, Qwen2's, Llama 2's, Mistral's, Gemma's and Phi-3's
// tokenizer.json, and writes HF's ids and decoded text for vectors.jsonl, corpus blocks and
// texts with added tokens. ctrain must give the same ids (added tokens matched, and special
// ones left as text), the same decoded text, the BOS transformers adds, the same ids through
// the threaded encoder and after saving the tokenizer as tokenizer.json itself.
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/tokenizer/bpe.h"
#include "data/tokenizer/bpe_parallel.h"
#include "data/tokenizer/tokenizer_files.h"
#include "data/tokenizer/tokenizer_hf.h"
#include "data/tokenizer/tokenizer_identity.h"
#include "tests/test.h"

static const char *const kinds[] = {"llama3", "qwen2", "llama2", "mistral", "metaspace", "gemma", "phi3"};

// (cJSON arrays are linked lists: walked once, not indexed)
static int ids_equal(const CtIds *got, const cJSON *want) {
    if ((int)got->len != cJSON_GetArraySize(want)) return 0;
    size_t i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, want) if (got->data[i++] != (int32_t)v->valuedouble) return 0;
    return 1;
}

static void encode(const CtTokenizer *t, CtEncoder *e, const char *text, int allow_special, int threads, CtIds *out) {
    out->len = 0;
    if (threads > 1) {
        CtEncoder *encoders[2] = {e, ct_encoder_new(t)};
        ct_encode_parallel(t, encoders, 2, (const uint8_t *)text, strlen(text), allow_special, out);
        ct_encoder_free(encoders[1]);
    } else {
        ct_encode(e, (const uint8_t *)text, strlen(text), allow_special, out);
    }
}

// Every line of expected.jsonl; the number of lines that differ (the first few are reported).
static int compare_kind(const char *kind, const CtTokenizer *t, const char *expected, int threads) {
    CtEncoder *e = ct_encoder_new(t);
    CtIds ids = {0};
    uint8_t *text_out = NULL;
    size_t cap = 0;
    int bad = 0, line_no = 0;
    char *copy = ct_strdup(expected);
    for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n")) {
        line_no++;
        cJSON *obj = cJSON_Parse(line);
        const char *text = cJSON_GetObjectItem(obj, "text")->valuestring;
        const char *decoded = cJSON_GetObjectItem(obj, "decoded")->valuestring;
        encode(t, e, text, 1, threads, &ids);
        int ok = ids_equal(&ids, cJSON_GetObjectItem(obj, "ids"));
        encode(t, e, text, 0, threads, &ids);
        int ok_plain = ids_equal(&ids, cJSON_GetObjectItem(obj, "plain"));
        const cJSON *want = cJSON_GetObjectItem(obj, "ids");
        CtIds hf = {0};
        const cJSON *v;
        cJSON_ArrayForEach(v, want) ct_ids_push(&hf, (int32_t)v->valuedouble);
        size_t len = 0;
        int ok_decode = ct_decode_text(t, hf.data, hf.len, &text_out, &len, &cap) == 0 && len == strlen(decoded) &&
                        memcmp(text_out, decoded, len) == 0;
        if (!(ok && ok_plain && ok_decode) && ++bad <= 3)
            ct_test_fail(__FILE__, __LINE__, "%s (%d thread%s) line %d \"%.50s\": %s%s%s", kind, threads,
                         threads == 1 ? "" : "s", line_no, text, ok ? "" : "ids differ; ",
                         ok_plain ? "" : "ids with specials as text differ; ", ok_decode ? "" : "decoded text differs");
        ct_ids_free(&hf);
        cJSON_Delete(obj);
    }
    ct_free(copy);
    ct_free(text_out);
    ct_ids_free(&ids);
    ct_encoder_free(e);
    return bad;
}

static void check_framing(const char *kind, const CtTokenizer *t, const char *dir) {
    char path[1100];
    snprintf(path, sizeof path, "%s/%s/framing.json", dir, kind);
    FILE *f = fopen(path, "rb");
    if (!f) return;  // transformers absent: tokenizers alone wrote the files
    fclose(f);
    char *text = ct_test_read(path, NULL);
    cJSON *obj = cJSON_Parse(text);
    CtIds prefix = {0}, suffix = {0};
    for (int i = 0; i < t->post.n_prefix; i++) ct_ids_push(&prefix, t->post.prefix[i]);
    for (int i = 0; i < t->post.n_suffix; i++) ct_ids_push(&suffix, t->post.suffix[i]);
    CHECK_MSG(ids_equal(&prefix, cJSON_GetObjectItem(obj, "prefix")) && ids_equal(&suffix, cJSON_GetObjectItem(obj, "suffix")),
              "%s: ctrain adds %d/%d tokens around a text, transformers %s", kind, t->post.n_prefix, t->post.n_suffix, text);
    ct_ids_free(&prefix);
    ct_ids_free(&suffix);
    cJSON_Delete(obj);
    free(text);
}

TEST(tokenizer_ref, model_tokenizers_match_hf_tokenizers) {
    const char *root = getenv("CTRAIN_ROOT"), *shared = ct_test_shared_data(), *dir = ct_test_tmpdir();
    if (!root) SKIP("CTRAIN_ROOT is not set (run through make test)");
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd, "python3 %s/tests/ref/make_hf_tokenizer_kinds.py %s %s", root, shared, dir);
    int rc = ct_test_run(cmd, &out);
    if (rc == 77 || rc == 127) SKIP("%s", out && *out ? out : "python3 is absent");
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        char path[1100], saved[1100];
        snprintf(path, sizeof path, "%s/%s/expected.jsonl", dir, kinds[k]);
        char *expected = ct_test_read(path, NULL);
        snprintf(path, sizeof path, "%s/%s/tokenizer.json", dir, kinds[k]);
        CtTokenizer t;
        CHECK_MSG(ct_tokenizer_load(&t, path, NULL) == 0, "%s", ct_error_message());
        CHECK_MSG(compare_kind(kinds[k], &t, expected, 1) == 0, "%s differs from HF tokenizers", kinds[k]);
        CHECK_MSG(compare_kind(kinds[k], &t, expected, 2) == 0, "%s differs from HF tokenizers with threads", kinds[k]);
        check_framing(kinds[k], &t, dir);
        // saved by ctrain and read back: the same tokenizer
        snprintf(saved, sizeof saved, "%s/%s/saved.json", dir, kinds[k]);
        CHECK_MSG(ct_tokenizer_save_hf(&t, saved) == 0, "%s", ct_error_message());
        CtTokenizer again;
        CHECK_MSG(ct_tokenizer_load(&again, saved, NULL) == 0, "%s", ct_error_message());
        CHECK_MSG(ct_tokenizer_fingerprint(&again) == ct_tokenizer_fingerprint(&t), "%s: saved tokenizer differs", kinds[k]);
        CHECK_MSG(compare_kind(kinds[k], &again, expected, 1) == 0, "%s as saved by ctrain differs", kinds[k]);
        ct_tokenizer_free(&again);
        ct_tokenizer_free(&t);
        free(expected);
    }
}
