// Tokenizer files: corrupt and truncated inputs give one-line errors naming the file and the
// problem; tokenizer.json saves and loads back with the same encoding.
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/tokenizer/bpe.h"
#include "data/tokenizer/tokenizer_files.h"
#include "data/tokenizer/tokenizer_hf.h"
#include "data/tokenizer/tokenizer_identity.h"
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
    CHECK(fails_with(ct_test_write("t2.json", "{\"model\": {\"type\": \"Unigram\"}, \"pre_tokenizer\": {\"type\": \"ByteLevel\"}}"),
                     "model type \"Unigram\""));
    CHECK(fails_with(ct_test_write("t3.json", "{\"pre_tokenizer\": {\"type\": \"Whitespace\"}, \"model\": {}}"),
                     "pre_tokenizer type \"Whitespace\""));
    CHECK(fails_with(ct_test_write("t4.json", "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"vocab\": {\"a\": 0}, "
                                              "\"merges\": [\"a b\"]}}"),
                     "model.merges[0]"));
    CHECK(fails_with(ct_test_write("t5.json", "{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"\\\\w+\"}}, "
                                              "\"model\": {\"vocab\": {}}}"),
                     "unsupported pre-tokenization regex"));
    CHECK(fails_with(ct_test_write("t6.json", "{\"normalizer\": {\"type\": \"Lowercase\"}, \"model\": {}}"), "normalizer \"Lowercase\""));
    CHECK(fails_with(ct_test_write("t7.json", "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"vocab\": {\"a\": 1.5}}}"),
                     "not an integer id"));
}

// Encodes text with both tokenizers and checks the ids are equal.
static int encode_alike(const CtTokenizer *a, const CtTokenizer *b, const char *text, size_t len) {
    CtEncoder *ea = ct_encoder_new(a), *eb = ct_encoder_new(b);
    CtIds ia = {0}, ib = {0};
    ct_encode(ea, (const uint8_t *)text, len, 0, &ia);
    ct_encode(eb, (const uint8_t *)text, len, 0, &ib);
    int same = ia.len == ib.len && ia.len > 0 && memcmp(ia.data, ib.data, ia.len * 4) == 0;
    ct_ids_free(&ia);
    ct_ids_free(&ib);
    ct_encoder_free(ea);
    ct_encoder_free(eb);
    return same;
}

// GPT-2's files and a .tiktoken rank file, saved as tokenizer.json, load back (HF merge-list
// rule), encode the corpus as the originals do, and keep their identity: the fingerprint
// hashes what defines the tokenizer, not the format it came in (shards made with GPT-2's
// folder are read with the tokenizer.json saved beside them).
TEST(tokenizer_files, hf_save_and_load_round_trip) {
    const char *shared = ct_test_shared_data();
    char src[1024], out[1024];
    snprintf(src, sizeof src, "%s/corpora/nlp-corpus-40k.txt", shared);
    size_t len;
    char *text = ct_test_read(src, &len);
    CHECK(text);
    if (len > 400000) len = 400000;
    const char *sources[3] = {"tokenizers/gpt2", "tokenizers/tiktoken/cl100k_base.tiktoken",
                              "tokenizers/tiktoken/o200k_base.tiktoken"};
    for (int k = 0; k < 3; k++) {
        snprintf(src, sizeof src, "%s/%s", shared, sources[k]);
        snprintf(out, sizeof out, "%s/tokenizer%d.json", ct_test_tmpdir(), k);
        CtTokenizer a, b;
        CHECK_MSG(ct_tokenizer_load(&a, src, NULL) == 0, "%s", ct_error_message());
        CHECK_MSG(ct_tokenizer_save_hf(&a, out) == 0, "%s: %s", src, ct_error_message());
        CHECK_MSG(ct_tokenizer_load(&b, out, NULL) == 0, "%s", ct_error_message());
        CHECK_EQ_INT(a.merge_rule, CT_MERGES_BY_RANK);
        CHECK_EQ_INT(b.merge_rule, CT_MERGES_BY_LIST);
        CHECK_EQ_INT(b.n_merges, a.n_merges);
        CHECK_EQ_INT(b.n_special, a.n_special);
        CHECK_MSG(encode_alike(&a, &b, text, len), "%s and its tokenizer.json encode differently", src);
        CHECK_MSG(ct_tokenizer_fingerprint(&a) == ct_tokenizer_fingerprint(&b),
                  "%s: fingerprint %016llx, its tokenizer.json %016llx", src,
                  (unsigned long long)ct_tokenizer_fingerprint(&a), (unsigned long long)ct_tokenizer_fingerprint(&b));
        CHECK(ct_tokenizer_is(&b, ct_tokenizer_fingerprint(&a)));
        ct_tokenizer_free(&a);
        ct_tokenizer_free(&b);
    }
    free(text);
}

// Rank files saved as tokenizer.json (with the merge list their ranks imply and ignore_merges)
// load in Hugging Face `tokenizers`, which gives ctrain's ids (= tiktoken's) on 4,000 lines of
// the corpus (~300 KB).
TEST(tokenizer_files, hf_tokenizers_reads_rank_files_saved_as_tokenizer_json) {
    const char *root = getenv("CTRAIN_ROOT"), *shared = ct_test_shared_data();
    if (!root) SKIP("CTRAIN_ROOT is not set (run through make test)");
    const char *names[2] = {"cl100k_base", "o200k_base"};
    for (int k = 0; k < 2; k++) {
        char src[1024], out[1024], cmd[4096];
        snprintf(src, sizeof src, "%s/tokenizers/tiktoken/%s.tiktoken", shared, names[k]);
        snprintf(out, sizeof out, "%s/%s.json", ct_test_tmpdir(), names[k]);
        CtTokenizer t;
        CHECK_MSG(ct_tokenizer_load(&t, src, NULL) == 0, "%s", ct_error_message());
        CHECK_MSG(ct_tokenizer_save_hf(&t, out) == 0, "%s", ct_error_message());
        ct_tokenizer_free(&t);
        char *text = NULL;
        snprintf(cmd, sizeof cmd,
                 "head -n 4000 %s/corpora/nlp-corpus-40k.txt > %s/slice.txt && "
                 "python3 %s/tests/ref/check_hf_tokenizer.py %s %s %s/slice.txt",
                 shared, ct_test_tmpdir(), root, ct_test_bin(), out, ct_test_tmpdir());
        int rc = ct_test_run(cmd, &text);
        if (rc == 77 || rc == 127) SKIP("%s", text && *text ? text : "python3 is absent");
        CHECK_MSG(rc == 0, "%s", text);
        CHECK_CONTAINS(text, "0 differ from HF tokenizers");
        free(text);
    }
}

// Fingerprints written by earlier releases (which hashed the file format's merge rule) still
// identify the tokenizer, so shards made then stay readable; another tokenizer is refused.
TEST(tokenizer_files, older_fingerprints_still_identify_the_tokenizer) {
    const char *shared = ct_test_shared_data();
    char src[1024];
    CtTokenizer gpt2, cl100k;
    snprintf(src, sizeof src, "%s/tokenizers/gpt2", shared);
    CHECK_MSG(ct_tokenizer_load(&gpt2, src, NULL) == 0, "%s", ct_error_message());
    snprintf(src, sizeof src, "%s/tokenizers/tiktoken/cl100k_base.tiktoken", shared);
    CHECK_MSG(ct_tokenizer_load(&cl100k, src, NULL) == 0, "%s", ct_error_message());
    // What ctrain 0.1.0's `shard --tokenizer ../shared/data/tokenizers/gpt2` recorded (README's flow).
    CHECK(ct_tokenizer_is(&gpt2, 0x9139657b4d302048ull));
    CHECK(!ct_tokenizer_is(&cl100k, 0x9139657b4d302048ull));
    CHECK(!ct_tokenizer_is(&cl100k, ct_tokenizer_fingerprint(&gpt2)));
    CHECK(ct_tokenizer_fingerprint(&gpt2) != 0x9139657b4d302048ull);
    ct_tokenizer_free(&gpt2);
    ct_tokenizer_free(&cl100k);
}

// A tiny hand-made tokenizer.json: merges as pairs, ignore_merges, an added token, and the
// difference between HF's merge-list rule and whole-piece lookup.
static const char tiny_hf_head[] =
    "{\"added_tokens\": [{\"id\": 300, \"content\": \"<|eot|>\", \"special\": true}],"
    " \"normalizer\": null, \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true},"
    " \"model\": {\"type\": \"BPE\", \"continuing_subword_prefix\": \"\", \"end_of_word_suffix\": \"\", ";

static void write_tiny_hf(const char *name, int ignore_merges) {
    // Vocab: the 256 bytes in GPT-2's alphabet at ids 0..255, then "ab" 256, "abc" 257,
    // "bc" 258. Merges: (b, c) first, then (a, b), then (ab, c): "abc" merges b+c first, so by
    // the merge list it ends as "a" + "bc" — unless ignore_merges looks the whole piece up.
    char *json = malloc(1 << 16);
    size_t n = (size_t)snprintf(json, 1 << 16, "%s\"ignore_merges\": %s, \"vocab\": {", tiny_hf_head, ignore_merges ? "true" : "false");
    for (int b = 0; b < 256; b++) {
        // GPT-2's byte alphabet, as UTF-8.
        int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
        int cp = b, k = 0;
        if (!printable) {
            for (int x = 0; x < b; x++)
                if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174))) k++;
            cp = 256 + k;
        }
        char s[8];
        if (cp < 0x80) {
            if (cp == '"' || cp == '\\') snprintf(s, sizeof s, "\\%c", cp);
            else snprintf(s, sizeof s, "%c", cp);
        } else {
            snprintf(s, sizeof s, "%c%c", 0xC0 | (cp >> 6), 0x80 | (cp & 0x3F));
        }
        n += (size_t)snprintf(json + n, (1 << 16) - n, "\"%s\": %d, ", s, b);
    }
    n += (size_t)snprintf(json + n, (1 << 16) - n,
                          "\"ab\": 256, \"abc\": 257, \"bc\": 258, \"<|eot|>\": 300}, "
                          "\"merges\": [[\"b\", \"c\"], [\"a\", \"b\"], \"ab c\"]}}");
    ct_test_write(name, json);
    free(json);
}

TEST(tokenizer_files, hf_pairs_ignore_merges_and_added_tokens) {
    write_tiny_hf("list.json", 0);
    write_tiny_hf("lookup.json", 1);
    char path[1024];
    CtTokenizer list, lookup;
    snprintf(path, sizeof path, "%s/list.json", ct_test_tmpdir());
    CHECK_MSG(ct_tokenizer_load(&list, path, NULL) == 0, "%s", ct_error_message());
    snprintf(path, sizeof path, "%s/lookup.json", ct_test_tmpdir());
    CHECK_MSG(ct_tokenizer_load(&lookup, path, NULL) == 0, "%s", ct_error_message());
    CHECK_EQ_INT(list.n_merges, 3);
    CHECK_EQ_INT(list.n_special, 1);
    CtEncoder *e1 = ct_encoder_new(&list), *e2 = ct_encoder_new(&lookup);
    CtIds a = {0}, b = {0}, c = {0};
    ct_encode(e1, (const uint8_t *)"abc", 3, 0, &a);
    ct_encode(e2, (const uint8_t *)"abc", 3, 0, &b);
    CHECK_EQ_INT(a.len, 2);  // "a" + "bc": (b, c) ranks before (a, b)
    CHECK_EQ_INT(a.data[0], 'a');
    CHECK_EQ_INT(a.data[1], 258);
    CHECK_EQ_INT(b.len, 1);  // ignore_merges: the whole piece is a token
    CHECK_EQ_INT(b.data[0], 257);
    ct_encode(e1, (const uint8_t *)"x<|eot|>", 8, 1, &c);
    CHECK_EQ_INT(c.len, 2);
    CHECK_EQ_INT(c.data[1], 300);
    ct_ids_free(&a);
    ct_ids_free(&b);
    ct_ids_free(&c);
    ct_encoder_free(e1);
    ct_encoder_free(e2);
    // Saved and loaded again: the same merges, the same rule, the same encoding.
    snprintf(path, sizeof path, "%s/saved.json", ct_test_tmpdir());
    CHECK(ct_tokenizer_save_hf(&lookup, path) == 0);
    CtTokenizer again;
    CHECK_MSG(ct_tokenizer_load(&again, path, NULL) == 0, "%s", ct_error_message());
    CHECK_EQ_INT(again.whole_piece_lookup, 1);
    CHECK_EQ_INT(again.n_merges, 3);
    CHECK_EQ_INT(again.special_ids[0], 300);
    ct_tokenizer_free(&again);
    ct_tokenizer_free(&list);
    ct_tokenizer_free(&lookup);
}

TEST(tokenizer_files, rank_file_pattern_by_option) {
    const char *shared = ct_test_shared_data();
    char cmd[4096], *out = NULL;
    // A rank file under a name that says nothing: the pattern must be given.
    snprintf(cmd, sizeof cmd,
             "cp %s/tokenizers/tiktoken/o200k_base.tiktoken %s/mine.tiktoken && "
             "printf 'Hello WORLD' | %s tokenize --tokenizer %s/mine.tiktoken --pattern o200k",
             shared, ct_test_tmpdir(), ct_test_bin(), ct_test_tmpdir());
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_STR_EQ(out, "13225 79618\n");  // tiktoken o200k_base: "Hello", " WORLD"
    free(out);
}

// GPT-2 as HF `tokenizers` writes it (tests/ref/make_hf_gpt2.py): ctrain reads it and agrees
// with HF on the corpus, and with tiktoken on vectors.jsonl.
TEST(tokenizer_files, reads_hf_written_gpt2) {
    const char *root = getenv("CTRAIN_ROOT"), *shared = ct_test_shared_data(), *dir = ct_test_tmpdir();
    if (!root) SKIP("CTRAIN_ROOT is not set (run through make test)");
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd, "python3 %s/tests/ref/make_hf_gpt2.py %s %s/hf.json", root, shared, dir);
    int rc = ct_test_run(cmd, &out);
    if (rc == 77 || rc == 127) SKIP("%s", out && *out ? out : "python3 is absent");
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "python3 %s/tests/ref/check_hf_tokenizer.py %s %s/hf.json %s/corpora/nlp-corpus-40k.txt", root,
             ct_test_bin(), dir, shared);
    rc = ct_test_run(cmd, &out);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    // vectors.jsonl through the HF file: the gpt2 ids (HF's merge-list rule agrees with
    // tiktoken's rank rule on GPT-2).
    char path[1100];
    snprintf(path, sizeof path, "%s/hf.json", dir);
    CtTokenizer t;
    CHECK_MSG(ct_tokenizer_load(&t, path, NULL) == 0, "%s", ct_error_message());
    CHECK_EQ_INT(t.merge_rule, CT_MERGES_BY_LIST);
    CtEncoder *e = ct_encoder_new(&t);
    snprintf(path, sizeof path, "%s/tokenizers/vectors.jsonl", shared);
    char *text = ct_test_read(path, NULL);
    int lines = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *obj = cJSON_Parse(line);
        const char *s = cJSON_GetObjectItem(obj, "text")->valuestring;
        const cJSON *expected = cJSON_GetObjectItem(obj, "gpt2");
        CtIds ids = {0};
        ct_encode(e, (const uint8_t *)s, strlen(s), 0, &ids);
        CHECK_EQ_INT(ids.len, cJSON_GetArraySize(expected));
        for (size_t i = 0; i < ids.len; i++) CHECK_EQ_INT(ids.data[i], cJSON_GetArrayItem(expected, (int)i)->valueint);
        ct_ids_free(&ids);
        cJSON_Delete(obj);
        lines++;
    }
    CHECK_EQ_INT(lines, 90);
    free(text);
    ct_encoder_free(e);
    ct_tokenizer_free(&t);
}
