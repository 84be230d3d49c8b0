// WordPiece (BERT) tokenizers on small hand-written tokenizer.json files (no Python): the
// BertNormalizer's steps, the BertPreTokenizer, greedy longest-match-first, [UNK] for words
// with an unmatched part or too many characters, the post-processors with pairs and token
// type ids, decoding, save and load, the errors for malformed fields, and the sharder's
// framing of documents with [CLS] ... [SEP].
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/shard/dataset.h"
#include "data/tokenizer/bpe.h"
#include "data/tokenizer/tokenizer_config.h"
#include "data/tokenizer/tokenizer_files.h"
#include "data/tokenizer/tokenizer_hf.h"
#include "data/tokenizer/tokenizer_identity.h"
#include "tests/test.h"

static const char *const bert_post =
    "{\"type\": \"BertProcessing\", \"sep\": [\"[SEP]\", 3], \"cls\": [\"[CLS]\", 2]}";
static const char *const uncased = "{\"type\": \"BertNormalizer\", \"lowercase\": true, \"strip_accents\": null}";
static const char *const cased = "{\"type\": \"BertNormalizer\", \"lowercase\": false, \"strip_accents\": null}";
static const char *const wp_decoder = "{\"type\": \"WordPiece\", \"prefix\": \"##\", \"cleanup\": true}";

// The vocabulary below, with the given normalizer, model options (after "unk_token"), post-processor and decoder.
static char *wp_json(const char *normalizer, const char *model_extra, const char *post, const char *decoder) {
    size_t cap = 8192;
    char *s = ct_alloc(cap);
    snprintf(s, cap,
             "{\"added_tokens\": [{\"id\": 0, \"content\": \"[PAD]\", \"special\": true}, "
             "{\"id\": 1, \"content\": \"[UNK]\", \"special\": true}, {\"id\": 2, \"content\": \"[CLS]\", \"special\": true}, "
             "{\"id\": 3, \"content\": \"[SEP]\", \"special\": true}, {\"id\": 4, \"content\": \"[MASK]\", \"special\": true}], "
             "\"normalizer\": %s, \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"}, \"post_processor\": %s, \"decoder\": %s, "
             "\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\"%s, \"vocab\": {\"[PAD]\": 0, \"[UNK]\": 1, "
             "\"[CLS]\": 2, \"[SEP]\": 3, \"[MASK]\": 4, \"un\": 5, \"##aff\": 6, \"##able\": 7, \"##a\": 8, \"hello\": 9, "
             "\"world\": 10, \",\": 11, \"!\": 12, \"cafe\": 13, \"\xE4\xB8\xAD\": 14, \"\xE6\x96\x87\": 15, \"$\": 16, "
             "\"5\": 17, \"i\": 18, \"##\xCC\x87\": 19, \"##s\": 20, \".\": 21, \"a\": 22, \"##b\": 23, \"'\": 24, \"t\": 25, "
             "\"don\": 26, \"caf\xC3\xA9\": 27, \"Hello\": 28}}}",
             normalizer, post, decoder, model_extra);
    return s;
}

static int load(CtTokenizer *t, char *json) {
    int rc = ct_tokenizer_parse_hf(t, json, strlen(json), "bert.json", NULL);
    ct_free(json);
    return rc;
}

static const char *join(const CtIds *ids) {
    static char buf[1024];
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < ids->len && n < sizeof buf - 16; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%d", i ? " " : "", ids->data[i]);
    return buf;
}

static const char *ids_of(const CtTokenizer *t, const char *text) {
    CtEncoder *e = ct_encoder_new(t);
    CtIds ids = {0};
    ct_encode(e, (const uint8_t *)text, strlen(text), 1, &ids);
    const char *s = join(&ids);
    ct_ids_free(&ids);
    ct_encoder_free(e);
    return s;
}

static const char *decoded(const CtTokenizer *t, const int32_t *ids, size_t n) {
    static char buf[1024];
    uint8_t *out = NULL;
    size_t len = 0, cap = 0;
    if (ct_decode_text(t, ids, n, &out, &len, &cap) != 0) return "(error)";
    snprintf(buf, sizeof buf, "%.*s", (int)len, (const char *)out);
    ct_free(out);
    return buf;
}

TEST(tokenizer_wordpiece, bert_normalizer_cleans_splits_cjk_strips_accents_and_lowercases) {
    CtTokenizer t;
    CHECK_MSG(load(&t, wp_json(uncased, "", bert_post, wp_decoder)) == 0, "%s", ct_error_message());
    CHECK_EQ_INT(t.units, CT_UNITS_WORDPIECE);
    CHECK_STR_EQ(ids_of(&t, "Hello, WORLD!"), "9 11 10 12");
    CHECK_STR_EQ(ids_of(&t, "\x01hello\tworld\x7f"), "9 10");               // controls removed, tab a space
    CHECK_STR_EQ(ids_of(&t, "a\xE4\xB8\xAD\xE6\x96\x87"), "22 14 15");       // a中文: each ideograph a word
    CHECK_STR_EQ(ids_of(&t, "Caf\xC3\xA9 CAFE\xCC\x81"), "13 13");            // é and e + U+0301 lose the accent
    CHECK_STR_EQ(ids_of(&t, "\xC4\xB0"), "18");  // İ: its dot is stripped, then I lowercased
    ct_tokenizer_free(&t);
    // lowercase without strip_accents: İ lowercases to i + U+0307, which stays
    CHECK_MSG(load(&t, wp_json("{\"type\": \"BertNormalizer\", \"lowercase\": true, \"strip_accents\": false}", "", bert_post,
                               wp_decoder)) == 0, "%s", ct_error_message());
    CHECK_STR_EQ(ids_of(&t, "\xC4\xB0"), "18 19");
    CHECK_STR_EQ(ids_of(&t, "CAF\xC3\x89"), "27");
    ct_tokenizer_free(&t);
    // cased: no lowercasing, so (strip_accents null) no accent stripping either
    CHECK_MSG(load(&t, wp_json(cased, "", bert_post, wp_decoder)) == 0, "%s", ct_error_message());
    CHECK_STR_EQ(ids_of(&t, "Hello caf\xC3\xA9 hello"), "28 27 9");
    CHECK_STR_EQ(ids_of(&t, "HELLO"), "1");
    ct_tokenizer_free(&t);
    // explicit strip_accents without lowercase
    CHECK_MSG(load(&t, wp_json("{\"type\": \"BertNormalizer\", \"lowercase\": false, \"strip_accents\": true}", "", bert_post,
                               wp_decoder)) == 0, "%s", ct_error_message());
    CHECK_STR_EQ(ids_of(&t, "caf\xC3\xA9"), "13");
    ct_tokenizer_free(&t);
}

// Hangul syllables are decomposed into their jamo by strip_accents (computed, not tabled).
TEST(tokenizer_wordpiece, strip_accents_decomposes_hangul_into_jamo) {
    CtWordPieceRules r;
    uint32_t *cps = NULL;
    size_t cap = 0;
    const char *text = "\xEA\xB0\x81\xEA\xB0\x80";  // 각가: with and without a trailing consonant
    ct_wordpiece_rules_bert(&r, 1);
    size_t n = ct_bert_normalize(&r, (const uint8_t *)text, strlen(text), &cps, &cap);
    CHECK_EQ_INT(n, 5);
    const uint32_t want[5] = {0x1100, 0x1161, 0x11A8, 0x1100, 0x1161};
    for (size_t i = 0; i < 5 && i < n; i++) CHECK_EQ_INT(cps[i], want[i]);
    ct_wordpiece_rules_bert(&r, 0);  // cased: kept whole
    n = ct_bert_normalize(&r, (const uint8_t *)text, strlen(text), &cps, &cap);
    CHECK(n == 2 && cps[0] == 0xAC01 && cps[1] == 0xAC00);
    ct_free(cps);
}

TEST(tokenizer_wordpiece, bert_pre_tokenizer_splits_whitespace_and_isolates_punctuation) {
    CtWordPieceRules r;
    ct_wordpiece_rules_bert(&r, 1);
    uint32_t *cps = NULL;
    size_t cap = 0;
    const char *text = "  don't\xC2\xA0$5,a\xE3\x80\x80!! ";  // NBSP and ideographic space are whitespace
    size_t n = ct_bert_normalize(&r, (const uint8_t *)text, strlen(text), &cps, &cap);
    const char *want[] = {"don", "'", "t", "$", "5", ",", "a", "!", "!"};
    size_t k = 0;
    for (size_t pos = 0; pos < n;) {
        size_t end = ct_bert_next_word(&r, cps, n, &pos);
        if (end == pos) break;
        char word[32];
        size_t len = 0;
        for (size_t i = pos; i < end && len < sizeof word - 1; i++) word[len++] = (char)cps[i];
        word[len] = '\0';
        CHECK_MSG(k < 9 && strcmp(word, want[k]) == 0, "word %zu is \"%s\"", k, word);
        k++;
        pos = end;
    }
    CHECK_EQ_INT(k, 9);
    ct_free(cps);
}

TEST(tokenizer_wordpiece, longest_match_first_and_unk_for_unmatched_or_long_words) {
    CtTokenizer t;
    CHECK_MSG(load(&t, wp_json(uncased, ", \"max_input_chars_per_word\": 10", bert_post, wp_decoder)) == 0, "%s",
              ct_error_message());
    CHECK_STR_EQ(ids_of(&t, "unaffable"), "5 6 7");     // un ##aff ##able, not un ##a ...
    CHECK_STR_EQ(ids_of(&t, "unaffablex hello"), "1 9");  // "x" matches nothing: the whole word is [UNK]
    CHECK_STR_EQ(ids_of(&t, "unaffables"), "5 6 7 20");  // 10 characters: still encoded
    CHECK_STR_EQ(ids_of(&t, "unaffabless"), "1");        // 11: [UNK] without trying
    CHECK_STR_EQ(ids_of(&t, "[CLS]hello[SEP]"), "2 9 3");  // specials matched in text when allowed
    ct_tokenizer_free(&t);
    // a word of a million characters under a large limit: each part is searched from at most the
    // longest token's length on, not from the word's end (which would be quadratic)
    CHECK_MSG(load(&t, wp_json(uncased, ", \"max_input_chars_per_word\": 2000000", bert_post, wp_decoder)) == 0, "%s",
              ct_error_message());
    size_t n = 1000000;
    char *long_word = ct_alloc(n + 1);
    memset(long_word, 'a', n);
    long_word[n] = '\0';
    CtEncoder *e = ct_encoder_new(&t);
    CtIds ids = {0};
    ct_encode(e, (const uint8_t *)long_word, n, 0, &ids);
    CHECK_EQ_INT(ids.len, n);  // a ##a ##a ...
    CHECK(ids.data[0] == 22 && ids.data[1] == 8 && ids.data[n - 1] == 8);
    ct_ids_free(&ids);
    ct_encoder_free(e);
    ct_free(long_word);
    ct_tokenizer_free(&t);
}

TEST(tokenizer_wordpiece, pairs_get_bert_and_roberta_framing_and_type_ids) {
    CtTokenizer t;
    CHECK_MSG(load(&t, wp_json(uncased, "", bert_post, wp_decoder)) == 0, "%s", ct_error_message());
    CtEncoder *e = ct_encoder_new(&t);
    CtIds ids = {0}, types = {0};
    ct_encode_pair(e, (const uint8_t *)"hello", 5, (const uint8_t *)"world !", 7, 1, 1, &ids, &types);
    CHECK_STR_EQ(join(&ids), "2 9 3 10 12 3");
    CHECK_STR_EQ(join(&types), "0 0 0 1 1 1");
    ids.len = types.len = 0;
    ct_encode_pair(e, (const uint8_t *)"hello", 5, (const uint8_t *)"world", 5, 0, 1, &ids, &types);
    CHECK_STR_EQ(join(&ids), "9 10");
    CHECK_STR_EQ(join(&types), "0 1");
    ids.len = types.len = 0;
    ct_encode_pair(e, (const uint8_t *)"hello", 5, NULL, 0, 1, 1, &ids, &types);
    CHECK_STR_EQ(join(&ids), "2 9 3");
    CHECK_STR_EQ(join(&types), "0 0 0");
    CHECK_EQ_INT(t.post.n_prefix, 1);  // framing for the sharder and eval: [CLS] text [SEP]
    CHECK_EQ_INT(t.post.suffix[0], 3);
    CHECK_STR_EQ(ct_tokenizer_default_eot(&t), "[SEP]");
    ct_encoder_free(e);
    ct_tokenizer_free(&t);
    // RoBERTa: <s> A </s></s> B </s>, all type 0 (with or without the special tokens)
    CtPostProcessor p;
    CHECK_EQ_INT(ct_post_processor_parse("{\"post_processor\": {\"type\": \"RobertaProcessing\", \"sep\": [\"</s>\", 2], "
                                         "\"cls\": [\"<s>\", 0]}}", "r.json", &p), 0);
    CtIds a = {0}, b = {0};
    ct_ids_push(&a, 10);
    ct_ids_push(&b, 11);
    ids.len = types.len = 0;
    ct_post_apply(&p, &a, &b, 1, &ids, &types);
    CHECK_STR_EQ(join(&ids), "0 10 2 2 11 2");
    CHECK_STR_EQ(join(&types), "0 0 0 0 0 0");
    ids.len = types.len = 0;
    ct_post_apply(&p, &a, &b, 0, &ids, &types);
    CHECK_STR_EQ(join(&types), "0 0");
    // a TemplateProcessing pair with its own type ids
    CHECK_EQ_INT(ct_post_processor_parse(
                     "{\"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"[CLS]\"}}, "
                     "{\"Sequence\": {\"id\": \"A\"}}], \"pair\": [{\"Sequence\": {\"id\": \"A\"}}, {\"SpecialToken\": {\"id\": "
                     "\"[CLS]\", \"type_id\": 2}}, {\"Sequence\": {\"id\": \"B\", \"type_id\": 3}}], \"special_tokens\": "
                     "{\"[CLS]\": {\"id\": \"[CLS]\", \"ids\": [7], \"tokens\": [\"[CLS]\"]}}}}", "t.json", &p), 0);
    ids.len = types.len = 0;
    ct_post_apply(&p, &a, &b, 1, &ids, &types);
    CHECK_STR_EQ(join(&ids), "10 7 11");
    CHECK_STR_EQ(join(&types), "0 2 3");
    ct_ids_free(&a);
    ct_ids_free(&b);
    ct_ids_free(&ids);
    ct_ids_free(&types);
}

TEST(tokenizer_wordpiece, decoding_joins_continuations_and_cleans_up) {
    CtTokenizer t;
    CHECK_MSG(load(&t, wp_json(uncased, "", bert_post, wp_decoder)) == 0, "%s", ct_error_message());
    const int32_t a[] = {2, 9, 11, 5, 6, 7, 12, 3}, b[] = {20, 9, 24, 25};
    CHECK_STR_EQ(decoded(&t, a, 8), "[CLS] hello, unaffable! [SEP]");
    CHECK_STR_EQ(decoded(&t, b, 4), "##s hello ' t");  // a leading "##" part stays as it is
    ct_tokenizer_free(&t);
    CHECK_MSG(load(&t, wp_json(uncased, "", bert_post, "{\"type\": \"WordPiece\", \"prefix\": \"##\", \"cleanup\": false}")) == 0,
              "%s", ct_error_message());
    CHECK_STR_EQ(decoded(&t, a, 8), "[CLS] hello , unaffable ! [SEP]");
    ct_tokenizer_free(&t);
    CHECK_MSG(load(&t, wp_json(uncased, "", bert_post, "null")) == 0, "%s", ct_error_message());
    CHECK_STR_EQ(decoded(&t, a + 3, 3), "un ##aff ##able");  // no decoder: tokens joined with spaces
    ct_tokenizer_free(&t);
}

TEST(tokenizer_wordpiece, saved_tokenizer_is_the_same_tokenizer) {
    CtTokenizer t, again;
    CHECK_MSG(load(&t, wp_json(cased, ", \"max_input_chars_per_word\": 7", bert_post, wp_decoder)) == 0, "%s", ct_error_message());
    const char *path = ct_test_write("saved.json", "");
    CHECK_MSG(ct_tokenizer_save_hf(&t, path) == 0, "%s", ct_error_message());
    CHECK_MSG(ct_tokenizer_load(&again, path, NULL) == 0, "%s", ct_error_message());
    CHECK(ct_tokenizer_fingerprint(&again) == ct_tokenizer_fingerprint(&t));
    CHECK_EQ_INT(again.wp.max_chars, 7);
    CHECK_EQ_INT(again.wp.lowercase, 0);
    CHECK_STR_EQ(ids_of(&again, "Hello unaffable"), "28 1");  // 9 characters > 7
    CtPostPiece single[CT_POST_MAX_PIECES], pair[2 * CT_POST_MAX_PIECES];
    int ns, np;
    ct_post_templates(&again.post, single, &ns, pair, &np);
    CHECK_EQ_INT(np, 5);
    CHECK_EQ_INT(pair[4].type_id, 1);
    // a different rule is a different tokenizer
    CtTokenizer other;
    CHECK_MSG(load(&other, wp_json(uncased, ", \"max_input_chars_per_word\": 7", bert_post, wp_decoder)) == 0, "%s",
              ct_error_message());
    CHECK(ct_tokenizer_fingerprint(&other) != ct_tokenizer_fingerprint(&t));
    ct_tokenizer_free(&other);
    ct_tokenizer_free(&again);
    ct_tokenizer_free(&t);
}

// json with the first `from` replaced by `to` (json freed).
static char *replaced(char *json, const char *from, const char *to) {
    char *at = strstr(json, from), *out = ct_alloc(strlen(json) + strlen(to) + 1);
    if (!at) abort();
    size_t head = (size_t)(at - json);
    memcpy(out, json, head);
    strcpy(out + head, to);
    strcat(out, at + strlen(from));
    ct_free(json);
    return out;
}

// One line naming the file and the key.
static void fails_with(char *json, const char *what) {
    CtTokenizer t;
    if (load(&t, json) == 0) {
        ct_tokenizer_free(&t);
        ct_test_fail(__FILE__, __LINE__, "loaded, expected an error about %s", what);
        return;
    }
    const char *msg = ct_error_message();
    if (strncmp(msg, "bert.json: ", 11) != 0 || !strstr(msg, what) || strchr(msg, '\n'))
        ct_test_fail(__FILE__, __LINE__, "error \"%s\" (expected one line naming bert.json and \"%s\")", msg, what);
}

TEST(tokenizer_wordpiece, malformed_fields_are_one_line_errors_naming_the_key) {
    fails_with(wp_json(uncased, ", \"max_input_chars_per_word\": \"many\"", bert_post, wp_decoder), "model.max_input_chars_per_word");
    fails_with(wp_json(uncased, ", \"max_input_chars_per_word\": 0", bert_post, wp_decoder), "model.max_input_chars_per_word");
    fails_with(wp_json(uncased, ", \"continuing_subword_prefix\": 5", bert_post, wp_decoder), "model.continuing_subword_prefix");
    fails_with(wp_json("{\"type\": \"BertNormalizer\", \"lowercase\": \"yes\"}", "", bert_post, wp_decoder), "normalizer.lowercase");
    fails_with(wp_json("{\"type\": \"BertNormalizer\", \"strip_accents\": 1}", "", bert_post, wp_decoder), "normalizer.strip_accents");
    fails_with(wp_json("{\"type\": \"NFKC\"}", "", bert_post, wp_decoder), "normalizer \"NFKC\"");
    fails_with(wp_json(uncased, "", "{\"type\": \"BertProcessing\", \"sep\": \"[SEP]\", \"cls\": [\"[CLS]\", 2]}", wp_decoder),
               "BertProcessing.sep");
    fails_with(wp_json(uncased, "", "{\"type\": \"BertProcessing\", \"sep\": [\"[SEP]\", 99], \"cls\": [\"[CLS]\", 2]}", wp_decoder),
               "post_processor adds token id 99");
    fails_with(wp_json(uncased, "", bert_post, "{\"type\": \"ByteLevel\"}"), "decoder \"ByteLevel\"");
    fails_with(wp_json(uncased, "", bert_post, "{\"type\": \"WordPiece\", \"cleanup\": \"no\"}"), "decoder.cleanup");
    fails_with(replaced(wp_json(uncased, "", bert_post, wp_decoder), "\"unk_token\": \"[UNK]\"", "\"unk_token\": \"[UNX]\""),
               "model.unk_token \"[UNX]\" is not in model.vocab");
    // a user-added token (normalized: true) would be matched in the normalized text
    fails_with(replaced(wp_json(uncased, "", bert_post, wp_decoder), "\"[MASK]\", \"special\": true}",
                        "\"[MASK]\", \"special\": true, \"normalized\": true}"),
               "normalized=true");
    CtTokenizer t;  // the unchanged file loads (so each error above comes from its one change)
    CHECK_MSG(load(&t, wp_json(uncased, "", bert_post, wp_decoder)) == 0, "%s", ct_error_message());
    ct_tokenizer_free(&t);
}

// ctrain shard with a BERT tokenizer: every document is [CLS] text [SEP], the [SEP] ending it.
TEST(tokenizer_wordpiece, sharder_frames_each_document_with_cls_and_sep) {
    const char *bin = ct_test_bin();
    char *json = wp_json(uncased, "", bert_post, wp_decoder);
    const char *tok = ct_test_write("tokenizer.json", json);
    ct_free(json);
    const char *input = ct_test_write("docs.jsonl", "{\"text\": \"Hello, world!\"}\n{\"text\": \"unaffable\"}\n");
    char cmd[4096], *out = NULL, dir[1100];
    snprintf(dir, sizeof dir, "%s/shards", ct_test_tmpdir());
    snprintf(cmd, sizeof cmd, "%s shard --tokenizer %s --input %s --out %s --val-fraction 0 --val-min 0 2>&1", bin, tok, input, dir);
    CHECK_MSG(ct_test_run(cmd, &out) == 0, "%s", out);
    free(out);
    CtDataset d;
    CHECK_MSG(ct_dataset_open(&d, dir) == 0, "%s", ct_error_message());
    uint64_t n = d.split[CT_SPLIT_TRAIN].n_tokens;
    int32_t got[32] = {0};
    CHECK_EQ_INT(n, 11);
    void *dctx = ct_shard_dctx_new();
    CHECK(ct_dataset_read_range(&d, CT_SPLIT_TRAIN, 0, n, dctx, got, NULL) == 0);
    ct_shard_dctx_free(dctx);
    CtIds ids = {0};
    for (uint64_t i = 0; i < n; i++) ct_ids_push(&ids, got[i]);
    CHECK_STR_EQ(join(&ids), "2 9 11 10 12 3 2 5 6 7 3");
    ct_ids_free(&ids);
    ct_dataset_close(&d);
}

// ctrain tokenize reads a WordPiece tokenizer.json; ctrain detokenize decodes as HF does.
TEST(tokenizer_wordpiece, tokenize_and_detokenize_commands) {
    const char *bin = ct_test_bin();
    char *json = wp_json(uncased, "", bert_post, wp_decoder);
    const char *tok = ct_test_write("tokenizer.json", json);
    ct_free(json);
    const char *input = ct_test_write("in.txt", "Hello, WORLD! unaffable");
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s tokenize --tokenizer %s --input %s", bin, tok, input);
    CHECK_MSG(ct_test_run(cmd, &out) == 0, "%s", out);
    CHECK_MSG(strncmp(out, "9 11 10 12 5 6 7", 16) == 0, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "echo 9 11 10 12 5 6 7 | %s detokenize --tokenizer %s", bin, tok);
    CHECK_MSG(ct_test_run(cmd, &out) == 0, "%s", out);
    CHECK_MSG(strncmp(out, "hello, world! unaffable", 23) == 0, "%s", out);
    free(out);
}
