// WordPiece (BERT) and RoBERTa tokenizers against Hugging Face `tokenizers`:
// tests/ref/make_hf_wordpiece_kinds.py trains WordPiece vocabularies with HF's own trainer and
// saves them with bert-base-uncased's pipeline, bert-base-cased's, one with the other options
// (and, with transformers, as its BertTokenizer saves one), and a RoBERTa-shaped byte-level
// BPE; it writes HF's ids for vectors.jsonl (the Chinese, Japanese and accented texts
// included), corpus blocks and texts with special tokens, with and without the post-processor,
// and for pairs of texts with their token type ids. ctrain must give the same ids, types and
// decoded text, on one and two threads, and after saving the tokenizer, which HF must read as
// the same tokenizer. A WordPiece tokenizer trained by `ctrain tokenizer train --model
// wordpiece` must encode alike in both.
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

static int ids_equal(const CtIds *got, const cJSON *want) {
    if (!cJSON_IsArray(want) || (int)got->len != cJSON_GetArraySize(want)) return 0;
    size_t i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, want) if (got->data[i++] != (int32_t)v->valuedouble) return 0;
    return 1;
}

static const char *str(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
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

// A text line: ids, plain, decoded, framed (+ types). A pair line: with and without specials.
static int line_ok(const CtTokenizer *t, CtEncoder *e, const cJSON *obj, int threads, char *why, size_t cap) {
    const char *text = str(obj, "text"), *b = str(obj, "text_b");
    CtIds ids = {0}, types = {0};
    int ok = 1;
    if (b) {
        for (int add = 1; add >= 0 && ok; add--) {
            ids.len = types.len = 0;
            ct_encode_pair(e, (const uint8_t *)text, strlen(text), (const uint8_t *)b, strlen(b), add, 1, &ids, &types);
            ok = ids_equal(&ids, cJSON_GetObjectItem(obj, add ? "pair_ids" : "pair_plain")) &&
                 ids_equal(&types, cJSON_GetObjectItem(obj, add ? "pair_types" : "pair_plain_types"));
            if (!ok) snprintf(why, cap, "pair %s special tokens: ids or type ids differ", add ? "with" : "without");
        }
    } else {
        encode(t, e, text, 1, threads, &ids);
        if (!ids_equal(&ids, cJSON_GetObjectItem(obj, "ids"))) ok = 0, snprintf(why, cap, "ids differ");
        encode(t, e, text, 0, threads, &ids);
        if (ok && !ids_equal(&ids, cJSON_GetObjectItem(obj, "plain")))
            ok = 0, snprintf(why, cap, "ids with special tokens as text differ");
        ids.len = 0;
        ct_encode_pair(e, (const uint8_t *)text, strlen(text), NULL, 0, 1, 1, &ids, &types);
        if (ok && !(ids_equal(&ids, cJSON_GetObjectItem(obj, "framed")) &&
                    ids_equal(&types, cJSON_GetObjectItem(obj, "framed_types"))))
            ok = 0, snprintf(why, cap, "ids or type ids with the post-processor differ");
        // HF's ids decode to HF's text
        CtIds hf = {0};
        const cJSON *v;
        cJSON_ArrayForEach(v, cJSON_GetObjectItem(obj, "ids")) ct_ids_push(&hf, (int32_t)v->valuedouble);
        uint8_t *out = NULL;
        size_t len = 0, out_cap = 0;
        const char *decoded = str(obj, "decoded");
        if (ok && !(ct_decode_text(t, hf.data, hf.len, &out, &len, &out_cap) == 0 && len == strlen(decoded) &&
                    (len == 0 || memcmp(out, decoded, len) == 0)))
            ok = 0, snprintf(why, cap, "decoded text differs: \"%.*s\" against \"%.60s\"", (int)(len < 60 ? len : 60),
                             out ? (char *)out : "", decoded);
        ct_free(out);
        ct_ids_free(&hf);
    }
    ct_ids_free(&ids);
    ct_ids_free(&types);
    return ok;
}

static int compare(const char *kind, const CtTokenizer *t, const char *expected, int threads) {
    CtEncoder *e = ct_encoder_new(t);
    int bad = 0, line_no = 0;
    char *copy = ct_strdup(expected), why[200];
    for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n")) {
        line_no++;
        cJSON *obj = cJSON_Parse(line);
        if (!line_ok(t, e, obj, threads, why, sizeof why) && ++bad <= 3)
            ct_test_fail(__FILE__, __LINE__, "%s (%d thread%s) line %d \"%.50s\": %s", kind, threads, threads == 1 ? "" : "s",
                         line_no, str(obj, "text"), why);
        cJSON_Delete(obj);
    }
    ct_free(copy);
    ct_encoder_free(e);
    return bad;
}

static const char *script(void) {
    static char path[1024];
    const char *root = getenv("CTRAIN_ROOT");
    if (!root) SKIP("CTRAIN_ROOT is not set (run through make test)");
    snprintf(path, sizeof path, "%s/tests/ref/make_hf_wordpiece_kinds.py", root);
    return path;
}

static void run_python(const char *cmd) {
    char *out = NULL;
    int rc = ct_test_run(cmd, &out);
    if (rc == 77 || rc == 127) SKIP("%s", out && *out ? out : "python3 is absent");
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
}

TEST(wordpiece_ref, bert_and_roberta_tokenizers_match_hf_tokenizers) {
    const char *shared = ct_test_shared_data(), *dir = ct_test_tmpdir(), *py = script();
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "python3 %s %s %s", py, shared, dir);
    run_python(cmd);
    char list_path[1100];
    snprintf(list_path, sizeof list_path, "%s/kinds.txt", dir);
    char *list = ct_test_read(list_path, NULL), *kinds[16];
    size_t n_kinds = 0;
    for (char *name = strtok(list, "\n"); name && n_kinds < 16; name = strtok(NULL, "\n")) kinds[n_kinds++] = name;
    CHECK(n_kinds >= 4);
    for (size_t k = 0; k < n_kinds; k++) {
        char path[1100], saved[1100];
        snprintf(path, sizeof path, "%s/%s/expected.jsonl", dir, kinds[k]);
        char *expected = ct_test_read(path, NULL);
        snprintf(path, sizeof path, "%s/%s/tokenizer.json", dir, kinds[k]);
        CtTokenizer t;
        CHECK_MSG(ct_tokenizer_load(&t, path, NULL) == 0, "%s", ct_error_message());
        CHECK_EQ_INT(t.units, strcmp(kinds[k], "roberta") == 0 ? CT_UNITS_BYTES : CT_UNITS_WORDPIECE);
        CHECK_MSG(compare(kinds[k], &t, expected, 1) == 0, "%s differs from HF tokenizers", kinds[k]);
        CHECK_MSG(compare(kinds[k], &t, expected, 2) == 0, "%s differs from HF tokenizers with threads", kinds[k]);
        // saved by ctrain and read back: the same tokenizer, for ctrain and for HF
        snprintf(saved, sizeof saved, "%s/%s/saved.json", dir, kinds[k]);
        CHECK_MSG(ct_tokenizer_save_hf(&t, saved) == 0, "%s", ct_error_message());
        CtTokenizer again;
        CHECK_MSG(ct_tokenizer_load(&again, saved, NULL) == 0, "%s", ct_error_message());
        CHECK_MSG(ct_tokenizer_fingerprint(&again) == ct_tokenizer_fingerprint(&t), "%s: saved tokenizer differs", kinds[k]);
        CHECK_MSG(compare(kinds[k], &again, expected, 1) == 0, "%s as saved by ctrain differs", kinds[k]);
        snprintf(cmd, sizeof cmd, "python3 %s --same %s %s %s", py, shared, path, saved);
        run_python(cmd);
        ct_tokenizer_free(&again);
        ct_tokenizer_free(&t);
        free(expected);
    }
    free(list);
}

// `ctrain tokenizer train --model wordpiece` writes a tokenizer.json that HF loads and encodes
// as ctrain does: texts, special tokens, pairs with type ids, decoding; cased and uncased.
TEST(wordpiece_ref, trained_wordpiece_encodes_alike_in_hf_tokenizers) {
    const char *shared = ct_test_shared_data(), *dir = ct_test_tmpdir(), *py = script(), *bin = ct_test_bin();
    const char *variants[2] = {"--lowercase", ""};
    for (int v = 0; v < 2; v++) {
        char cmd[4096], tok_path[1100], exp_path[1100], *out = NULL;
        snprintf(tok_path, sizeof tok_path, "%s/trained%d.json", dir, v);
        snprintf(exp_path, sizeof exp_path, "%s/trained%d.jsonl", dir, v);
        snprintf(cmd, sizeof cmd, "%s tokenizer train --model wordpiece %s --input %s/corpora/nlp-corpus-40k.txt --vocab-size 6000 "
                 "--quiet --out %s", bin, variants[v], shared, tok_path);
        int rc = ct_test_run(cmd, &out);
        CHECK_MSG(rc == 0, "%s", out);
        free(out);
        snprintf(cmd, sizeof cmd, "python3 %s --expected %s %s %s", py, shared, tok_path, exp_path);
        run_python(cmd);
        CtTokenizer t;
        CHECK_MSG(ct_tokenizer_load(&t, tok_path, NULL) == 0, "%s", ct_error_message());
        CHECK_EQ_INT(t.units, CT_UNITS_WORDPIECE);
        CHECK_EQ_INT(t.n_ids, 6000);
        CHECK_EQ_INT(t.wp.lowercase, v == 0);
        char *expected = ct_test_read(exp_path, NULL);
        CHECK_MSG(compare(v == 0 ? "trained uncased" : "trained cased", &t, expected, 1) == 0,
                  "ctrain's trained WordPiece encodes differently in HF tokenizers");
        free(expected);
        ct_tokenizer_free(&t);
    }
}
