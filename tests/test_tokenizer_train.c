// Training: speed, determinism across thread counts, round trip, reload (ctrain and HF), and
// that a larger vocabulary packs more bytes per token.
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/timer.h"
#include "data/tokenizer/bpe.h"
#include "data/tokenizer/bpe_train.h"
#include "data/tokenizer/tokenizer_files.h"
#include "tests/test.h"

static int train(const char *out, int vocab, int threads, const char *extra, double *seconds) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s tokenizer train --quiet --input %s/corpora/nlp-corpus-40k.txt --vocab-size %d --threads %d %s --out %s",
             ct_test_bin(), ct_test_shared_data(), vocab, threads, extra, out);
    double start = ct_time_now();
    char *output = NULL;
    int rc = ct_test_run(cmd, &output);
    *seconds = ct_time_now() - start;
    if (rc != 0) ct_test_fail(__FILE__, __LINE__, "%s: %s", cmd, output);
    free(output);
    return rc;
}

// Bytes per token of `tok` over the corpus, checking the round trip on the way.
static double bytes_per_token(const CtTokenizer *tok, const uint8_t *text, size_t len, int *round_trips) {
    CtEncoder *e = ct_encoder_new(tok);
    CtIds ids = {0};
    ct_encode(e, text, len, 0, &ids);
    uint8_t *out = NULL;
    size_t out_len = 0, cap = 0;
    *round_trips = ct_decode(tok, ids.data, ids.len, &out, &out_len, &cap) == 0 && out_len == len && memcmp(out, text, len) == 0;
    double bpt = (double)len / (double)ids.len;
    ct_free(out);
    ct_ids_free(&ids);
    ct_encoder_free(e);
    return bpt;
}

TEST(tokenizer_train, vocab_16k_fast_round_trips_and_beats_4k) {
    const char *dir = ct_test_tmpdir(), *shared = ct_test_shared_data();
    char big[1024], small[1024], corpus[1024];
    snprintf(big, sizeof big, "%s/t16k.json", dir);
    snprintf(small, sizeof small, "%s/t4k.json", dir);
    snprintf(corpus, sizeof corpus, "%s/corpora/nlp-corpus-40k.txt", shared);
    double s16, s4;
    if (train(big, 16384, 2, "", &s16) != 0) return;
    CHECK_MSG(s16 < 10.0, "training 16,384 tokens took %.1f s", s16);
    if (train(small, 4096, 2, "", &s4) != 0) return;
    CtTokenizer t16, t4;
    CHECK_MSG(ct_tokenizer_load(&t16, big, NULL) == 0, "%s", ct_error_message());
    CHECK_MSG(ct_tokenizer_load(&t4, small, NULL) == 0, "%s", ct_error_message());
    CHECK_EQ_INT(t16.n_ids, 16384);
    CHECK_EQ_INT(t4.n_ids, 4096);
    CHECK_EQ_INT(t16.n_special, 1);
    CHECK_EQ_INT(t16.special_ids[0], 16383);
    size_t len;
    char *text = ct_test_read(corpus, &len);
    int ok16, ok4;
    double b16 = bytes_per_token(&t16, (const uint8_t *)text, len, &ok16);
    double b4 = bytes_per_token(&t4, (const uint8_t *)text, len, &ok4);
    CHECK(ok16 && ok4);
    printf("    16,384 tokens: %.3f bytes/token (trained in %.2f s); 4,096 tokens: %.3f bytes/token\n", b16, s16, b4);
    CHECK_MSG(b16 > b4 * 1.05, "16k vocabulary packs %.3f bytes/token, 4k packs %.3f", b16, b4);
    CHECK(b4 > 3.0);  // well above bytes (1.0): the merges are real
    free(text);
    ct_tokenizer_free(&t16);
    ct_tokenizer_free(&t4);
}

TEST(tokenizer_train, same_output_for_any_thread_count) {
    const char *dir = ct_test_tmpdir();
    char one[1024], two[1024];
    snprintf(one, sizeof one, "%s/one.json", dir);
    snprintf(two, sizeof two, "%s/two.json", dir);
    double s;
    if (train(one, 3000, 1, "--pattern o200k", &s) != 0) return;
    if (train(two, 3000, 3, "--pattern o200k", &s) != 0) return;
    size_t la, lb;
    char *a = ct_test_read(one, &la), *b = ct_test_read(two, &lb);
    CHECK(a && b && la == lb && memcmp(a, b, la) == 0);
    free(a);
    free(b);
}

TEST(tokenizer_train, small_examples_by_hand) {
    // "aaab" x3 and "ab" x1 as pieces: the pair (a, a) occurs 6 times, (a, b) 4 times, so the
    // first merge is "aa"; then in "aa a b" the pairs (aa, a) x3 and (a, b) x4: "ab" wins.
    CtBpeTrainOptions opt = {.pattern = CT_PATTERN_GPT2, .vocab_size = 258, .threads = 2};
    CtBpeTrainer *tr = ct_bpe_trainer_new(&opt);
    const char *doc = "aaab aaab aaab ab";
    ct_bpe_trainer_add_document(tr, (const uint8_t *)doc, 4);
    ct_bpe_trainer_add_document(tr, (const uint8_t *)doc, 4);
    ct_bpe_trainer_add_document(tr, (const uint8_t *)doc, 4);
    ct_bpe_trainer_add_document(tr, (const uint8_t *)doc + 15, 2);
    CtTokenizer t;
    CHECK_MSG(ct_bpe_trainer_train(tr, &t) == 0, "%s", ct_error_message());
    CHECK_EQ_INT(t.n_merges, 2);
    CHECK_EQ_INT(t.merges[0].left, 'a');
    CHECK_EQ_INT(t.merges[0].right, 'a');
    CHECK_EQ_INT(t.merges[1].left, 'a');
    CHECK_EQ_INT(t.merges[1].right, 'b');
    CHECK(t.lengths[257] == 2 && memcmp(t.pool + t.offsets[257], "ab", 2) == 0);
    // Overlapping occurrences: "aaaa" is (aa)(aa), not a(aa)a.
    CtEncoder *e = ct_encoder_new(&t);
    CtIds ids = {0};
    ct_encode(e, (const uint8_t *)"aaaa", 4, 0, &ids);
    CHECK_EQ_INT(ids.len, 2);
    CHECK_EQ_INT(ids.data[0], 256);
    CHECK_EQ_INT(ids.data[1], 256);
    ct_ids_free(&ids);
    ct_encoder_free(e);
    ct_tokenizer_free(&t);
    ct_bpe_trainer_free(tr);
}

TEST(tokenizer_train, inputs_jsonl_and_zst) {
    const char *dir = ct_test_tmpdir();
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "cd %s && printf '{\"text\": \"hello hello world\"}\\n\\n{\"meta\": 1, \"text\": \"hello there\"}\\n' > a.jsonl && "
             "cp a.jsonl b.jsonl && zstd -q b.jsonl && printf 'plain hello text\\n' > c.txt && "
             "%s tokenizer train --quiet --input a.jsonl b.jsonl.zst c.txt --vocab-size 270 --special '<|endoftext|>' '<|pad|>' --out t.json && "
             "printf 'hello there' | %s tokenize --tokenizer t.json | %s detokenize --tokenizer t.json",
             dir, ct_test_bin(), ct_test_bin(), ct_test_bin());
    int rc = ct_test_run(cmd, &out);
    if (rc == 127 || (out && strstr(out, "zstd: not found"))) SKIP("the zstd command is absent");
    CHECK_EQ_INT(rc, 0);
    CHECK_CONTAINS(out, "hello there");
    free(out);
    // Errors name the file and line.
    snprintf(cmd, sizeof cmd, "cd %s && printf '{\"text\": \"a\"}\\n{\"txt\": 1}\\n' > bad.jsonl && "
             "%s tokenizer train --quiet --input bad.jsonl --vocab-size 300 --out u.json; test ! -e u.json",
             dir, ct_test_bin());
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, "bad.jsonl:2: no string field \"text\"");
    free(out);
    snprintf(cmd, sizeof cmd, "cd %s && head -c 20 b.jsonl.zst > cut.jsonl.zst && "
             "%s tokenizer train --quiet --input cut.jsonl.zst --vocab-size 300 --out u.json", dir, ct_test_bin());
    CHECK_EQ_INT(ct_test_run(cmd, &out), 1);
    CHECK_CONTAINS(out, "cut.jsonl.zst");
    free(out);
}

TEST(tokenizer_train, hf_tokenizers_agree) {
    const char *dir = ct_test_tmpdir(), *root = getenv("CTRAIN_ROOT");
    if (!root) SKIP("CTRAIN_ROOT is not set (run through make test)");
    char tok[1024], cmd[4096], *out = NULL;
    double s;
    for (int p = 0; p < 2; p++) {
        snprintf(tok, sizeof tok, "%s/hf%d.json", dir, p);
        if (train(tok, 5000, 2, p ? "--pattern o200k" : "", &s) != 0) return;
        snprintf(cmd, sizeof cmd, "python3 %s/tests/ref/check_hf_tokenizer.py %s %s %s/corpora/nlp-corpus-40k.txt", root,
                 ct_test_bin(), tok, ct_test_shared_data());
        int rc = ct_test_run(cmd, &out);
        if (rc == 77 || rc == 127) SKIP("%s", out ? out : "python3 or tokenizers is absent");
        CHECK_MSG(rc == 0, "%s", out);
        free(out);
    }
}
