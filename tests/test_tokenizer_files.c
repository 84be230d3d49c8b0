// Tokenizer files: corrupt and truncated inputs give one-line errors naming the file and the
// problem; tokenizer.json saves and loads back with the same encoding.
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/bpe.h"
#include "data/tokenizer_files.h"
#include "data/tokenizer_hf.h"
#include "tests/test.h"

// Loads `path`, expecting failure with a one-line message that contains `path` and `what`.
static int fails_with(const char *path, const char *what) {
    CtTokenizer t;
    if (ct_tokenizer_load(&t, path, NULL) == 0) {
        ct_tokenizer_free(&t);
        ct_test_fail(__FILE__, __LINE__, "%s loaded, expected an error about %s", path, what);
        return 0;
    }
    const char *msg = ct_error_message();
    if (!strstr(msg, path) || !strstr(msg, what) || strchr(msg, '\n')) {
        ct_test_fail(__FILE__, __LINE__, "error for %s: \"%s\" (expected one line naming the file and \"%s\")", path, msg, what);
        return 0;
    }
    return 1;
}

static char *write_bytes(const char *name, const char *data, size_t len) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", ct_test_tmpdir(), name);
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, len, f);
    fclose(f);
    return path;
}

TEST(tokenizer_files, corrupt_tiktoken) {
    CHECK(fails_with(ct_test_write("a_cl100k_base.tiktoken", "IQ== 0\nab*c 1\n"), ":2: invalid base64"));
    CHECK(fails_with(ct_test_write("b_cl100k_base.tiktoken", "IQ== 0\nIg==\n"), ":2: expected \"BASE64 RANK\""));
    CHECK(fails_with(ct_test_write("c_cl100k_base.tiktoken", "IQ== zero\n"), ":1: rank \"zero\""));
    CHECK(fails_with(ct_test_write("d_cl100k_base.tiktoken", "IQ== 0\nIQ== 1\n"), "same bytes"));
    CHECK(fails_with(ct_test_write("e_cl100k_base.tiktoken", "IQ== 0\n"), "byte 0x00 has no token"));
    CHECK(fails_with(ct_test_write("f_cl100k_base.tiktoken", ""), "empty rank file"));
    CHECK(fails_with(ct_test_write("g_cl100k_base.tiktoken", "IQ== 99999999999\n"), "rank"));
    CHECK(fails_with(ct_test_write("h_cl100k_base.tiktoken", "IQ== 0\nIQ== 0\n"), "appears twice"));
}

TEST(tokenizer_files, unknown_pattern_for_a_rank_file) {
    const char *path = ct_test_write("mine.tiktoken", "IQ== 0\n");
    CHECK(fails_with(path, "cannot tell the pre-tokenization pattern"));
}

TEST(tokenizer_files, truncated_real_files) {
    const char *shared = ct_test_shared_data();
    char src[1024];
    size_t len;
    // o200k cut in the middle of a line, and cut at a line boundary (tokens missing: fine as
    // long as every byte has a token, which the first 256 lines give).
    snprintf(src, sizeof src, "%s/tokenizers/tiktoken/o200k_base.tiktoken", shared);
    char *data = ct_test_read(src, &len);
    CHECK(data);
    // Cut inside a number, a line can look whole with a wrong rank ("Lw== 1" of "Lw== 14"):
    // the error is then a duplicate id or a missing byte, still one line naming the file.
    CHECK(fails_with(write_bytes("o200k_base.tiktoken", data, len / 2 + 3), ".tiktoken:"));
    CHECK(fails_with(write_bytes("o200k_base.tiktoken", data, 100), ".tiktoken:"));
    free(data);
    // encoder.json cut short.
    snprintf(src, sizeof src, "%s/tokenizers/gpt2/encoder.json", shared);
    data = ct_test_read(src, &len);
    char dir[1024], path[1100];
    snprintf(dir, sizeof dir, "%s/gpt2", ct_test_tmpdir());
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "gpt2/encoder.json");
    write_bytes(path, data, len / 3);
    free(data);
    snprintf(src, sizeof src, "%s/tokenizers/gpt2/vocab.bpe", shared);
    data = ct_test_read(src, &len);
    write_bytes("gpt2/vocab.bpe", data, len);
    CHECK(fails_with(dir, "encoder.json: not a JSON object"));
    // A vocab.bpe whose merge names a token the encoder lacks.
    write_bytes("gpt2/encoder.json", "{\"a\": 0}", 8);
    write_bytes("gpt2/vocab.bpe", "#version: 0.2\nq z\n", 18);
    CHECK(fails_with(dir, "vocab.bpe:2"));
    free(data);
}

TEST(tokenizer_files, corrupt_tokenizer_json) {
    CHECK(fails_with(ct_test_write("t1.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0"), "not a JSON object"));
    CHECK(fails_with(ct_test_write("t2.json", "{\"model\": {\"type\": \"WordPiece\"}, \"pre_tokenizer\": {\"type\": \"ByteLevel\"}}"),
                     "model type \"WordPiece\""));
    CHECK(fails_with(ct_test_write("t3.json", "{\"pre_tokenizer\": {\"type\": \"Whitespace\"}, \"model\": {}}"),
                     "pre_tokenizer type \"Whitespace\""));
    CHECK(fails_with(ct_test_write("t4.json", "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"vocab\": {\"a\": 0}, "
                                              "\"merges\": [\"a b\"]}}"),
                     "model.merges[0]"));
    CHECK(fails_with(ct_test_write("t5.json", "{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"\\\\w+\"}}, "
                                              "\"model\": {\"vocab\": {}}}"),
                     "unsupported pre-tokenization regex"));
    CHECK(fails_with(ct_test_write("t6.json", "{\"normalizer\": {\"type\": \"NFC\"}, \"model\": {}}"), "normalizer \"NFC\""));
    CHECK(fails_with(ct_test_write("t7.json", "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"vocab\": {\"a\": 1.5}}}"),
                     "not an integer id"));
}

// GPT-2 saved as tokenizer.json loads back (HF merge-list rule) and encodes the corpus and
// the vectors the same as the original files.
TEST(tokenizer_files, hf_save_and_load_round_trip) {
    const char *shared = ct_test_shared_data();
    char src[1024], out[1024];
    snprintf(src, sizeof src, "%s/tokenizers/gpt2", shared);
    snprintf(out, sizeof out, "%s/tokenizer.json", ct_test_tmpdir());
    CtTokenizer a, b;
    CHECK_MSG(ct_tokenizer_load(&a, src, NULL) == 0, "%s", ct_error_message());
    CHECK_MSG(ct_tokenizer_save_hf(&a, out) == 0, "%s", ct_error_message());
    CHECK_MSG(ct_tokenizer_load(&b, out, NULL) == 0, "%s", ct_error_message());
    CHECK_EQ_INT(b.merge_rule, CT_MERGES_BY_LIST);
    CHECK_EQ_INT(b.n_merges, a.n_merges);
    CHECK_EQ_INT(b.n_special, 1);
    snprintf(src, sizeof src, "%s/corpora/nlp-corpus-40k.txt", shared);
    size_t len;
    char *text = ct_test_read(src, &len);
    if (len > 400000) len = 400000;
    CtEncoder *ea = ct_encoder_new(&a), *eb = ct_encoder_new(&b);
    CtIds ia = {0}, ib = {0};
    ct_encode(ea, (const uint8_t *)text, len, 0, &ia);
    ct_encode(eb, (const uint8_t *)text, len, 0, &ib);
    CHECK_EQ_INT(ia.len, ib.len);
    CHECK(memcmp(ia.data, ib.data, ia.len * 4) == 0);
    ct_ids_free(&ia);
    ct_ids_free(&ib);
    ct_encoder_free(ea);
    ct_encoder_free(eb);
    free(text);
    // A rank file has no merge list: saving it is an error, not a wrong file.
    CtTokenizer c;
    snprintf(src, sizeof src, "%s/tokenizers/tiktoken/cl100k_base.tiktoken", shared);
    CHECK(ct_tokenizer_load(&c, src, NULL) == 0);
    CHECK(ct_tokenizer_save_hf(&c, out) != 0);
    CHECK_CONTAINS(ct_error_message(), "no merge list");
    ct_tokenizer_free(&a);
    ct_tokenizer_free(&b);
    ct_tokenizer_free(&c);
}
