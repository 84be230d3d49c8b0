// SentencePiece-style BPE, Qwen2's pre-tokenizer, NFC and added tokens on small hand-written
// tokenizer.json files (no Python): prefixes, byte fallback, unk fusing, Metaspace's schemes and
// split, decoding, lstrip/rstrip, and the errors for what ctrain does not reproduce.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/tokenizer/bpe.h"
#include "data/tokenizer/nfc.h"
#include "data/tokenizer/pretokenize.h"
#include "data/tokenizer/tokenizer_hf.h"
#include "tests/test.h"

#define M "\xE2\x96\x81"  // ▁

// <unk> <s> </s>, <0x00>..<0xFF> (ids 3..258), then ▁ a b ▁a ab ▁ab (259..264), merges
// (▁,a) (a,b) (▁a,b); with the pipeline parts and options given.
static char *spm_json(const char *normalizer, const char *pre, const char *decoder, int byte_fallback, const char *added) {
    size_t cap = 64 * 1024;
    char *s = ct_alloc(cap);
    int n = snprintf(s, cap, "{\"added_tokens\": [%s], \"normalizer\": %s, \"pre_tokenizer\": %s, \"decoder\": %s, "
                             "\"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"fuse_unk\": true, "
                             "\"byte_fallback\": %s, \"vocab\": {\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2",
                     added, normalizer, pre, decoder, byte_fallback ? "true" : "false");
    for (int b = 0; b < 256; b++) n += snprintf(s + n, cap - (size_t)n, ", \"<0x%02X>\": %d", b, 3 + b);
    snprintf(s + n, cap - (size_t)n, ", \"" M "\": 259, \"a\": 260, \"b\": 261, \"" M "a\": 262, \"ab\": 263, \"" M "ab\": 264, "
                                     "\"<t>\": 265}, \"merges\": [[\"" M "\", \"a\"], [\"a\", \"b\"], [\"" M "a\", \"b\"]]}}");
    return s;
}

static const char *const prepend_replace =
    "{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": \"" M "\"}, "
    "{\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"" M "\"}]}";
static const char *const llama_decoder =
    "{\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Replace\", \"pattern\": {\"String\": \"" M "\"}, \"content\": \" \"}, "
    "{\"type\": \"ByteFallback\"}, {\"type\": \"Fuse\"}, {\"type\": \"Strip\", \"content\": \" \", \"start\": 1, \"stop\": 0}]}";
static const char *const specials =
    "{\"id\": 1, \"content\": \"<s>\", \"special\": true}, {\"id\": 2, \"content\": \"</s>\", \"special\": true}, "
    "{\"id\": 265, \"content\": \"<t>\", \"special\": false, \"rstrip\": true}";

static int load(CtTokenizer *t, char *json) {
    int rc = ct_tokenizer_parse_hf(t, json, strlen(json), "test.json", NULL);
    ct_free(json);
    return rc;
}

// The ids of text as "1 2 3".
static const char *ids_of(const CtTokenizer *t, const char *text, int allow_special) {
    static char buf[1024];
    CtEncoder *e = ct_encoder_new(t);
    CtIds ids = {0};
    ct_encode(e, (const uint8_t *)text, strlen(text), allow_special, &ids);
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < ids.len && n < sizeof buf - 16; i++) n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%d", i ? " " : "", ids.data[i]);
    ct_ids_free(&ids);
    ct_encoder_free(e);
    return buf;
}

static const char *text_of(const CtTokenizer *t, const char *text) {
    static char buf[1024];
    CtEncoder *e = ct_encoder_new(t);
    CtIds ids = {0};
    ct_encode(e, (const uint8_t *)text, strlen(text), 1, &ids);
    uint8_t *out = NULL;
    size_t len = 0, cap = 0;
    ct_decode_text(t, ids.data, ids.len, &out, &len, &cap);
    snprintf(buf, sizeof buf, "%.*s", (int)len, (const char *)out);
    ct_free(out);
    ct_ids_free(&ids);
    ct_encoder_free(e);
    return buf;
}

TEST(tokenizer_spm, prepend_replace_normalizer_with_byte_fallback) {
    CtTokenizer t;
    CHECK_MSG(load(&t, spm_json(prepend_replace, "null", llama_decoder, 1, specials)) == 0, "%s", ct_error_message());
    CHECK_EQ_INT(t.units, CT_UNITS_CHARS);
    CHECK_STR_EQ(ids_of(&t, "ab ab", 0), "264 264");
    CHECK_STR_EQ(ids_of(&t, " ab", 0), "259 264");  // Prepend always adds its ▁
    CHECK_STR_EQ(ids_of(&t, "a\xC3\xA9", 0), "262 198 172");  // é: <0xC3> <0xA9>
    CHECK_STR_EQ(ids_of(&t, "", 0), "");
    CHECK_STR_EQ(text_of(&t, "a\xC3\xA9 b"), "a\xC3\xA9 b");  // the decoder strips the prepended space
    // special tokens only when allowed, and every segment gets its own ▁
    CHECK_STR_EQ(ids_of(&t, "ab<s>ab", 1), "264 1 264");
    CHECK_STR_EQ(ids_of(&t, "ab<s>", 0), "264 63 118 65");  // "<s>" as text: < s > by byte fallback
    // a non-special added token is matched either way; rstrip takes the spaces after it
    CHECK_STR_EQ(ids_of(&t, "a<t>  b", 0), "262 265 259 261");
    ct_tokenizer_free(&t);
}

TEST(tokenizer_spm, metaspace_schemes_and_split) {
    const char *first = "{\"type\": \"Metaspace\", \"replacement\": \"" M "\", \"prepend_scheme\": \"first\", \"split\": false}";
    const char *always = "{\"type\": \"Metaspace\", \"replacement\": \"" M "\", \"prepend_scheme\": \"always\", \"split\": true}";
    const char *never = "{\"type\": \"Metaspace\", \"replacement\": \"" M "\", \"prepend_scheme\": \"never\", \"split\": false}";
    CtTokenizer t;
    CHECK_MSG(load(&t, spm_json("null", first, llama_decoder, 1, specials)) == 0, "%s", ct_error_message());
    CHECK_STR_EQ(ids_of(&t, " ab", 0), "264");          // already starts with ▁: none added
    CHECK_STR_EQ(ids_of(&t, "ab<s>ab", 1), "264 1 263");  // "first": only the text's first segment
    ct_tokenizer_free(&t);
    CHECK_MSG(load(&t, spm_json("null", always, llama_decoder, 1, specials)) == 0, "%s", ct_error_message());
    CHECK_STR_EQ(ids_of(&t, "ab<s>ab", 1), "264 1 264");
    CHECK_STR_EQ(ids_of(&t, "a" M M "b", 0), "262 259 259 261");  // split: a piece starts at each ▁
    ct_tokenizer_free(&t);
    CHECK_MSG(load(&t, spm_json("null", never, llama_decoder, 1, specials)) == 0, "%s", ct_error_message());
    CHECK_STR_EQ(ids_of(&t, "ab ab", 0), "263 264");
    ct_tokenizer_free(&t);
}

TEST(tokenizer_spm, unknown_characters_without_byte_fallback) {
    CtTokenizer t;
    CHECK_MSG(load(&t, spm_json(prepend_replace, "null", llama_decoder, 0, specials)) == 0, "%s", ct_error_message());
    CHECK_STR_EQ(ids_of(&t, "a\xC3\xA9\xC3\xA9 b", 0), "262 0 259 261");  // éé: one fused <unk>
    CHECK_STR_EQ(ids_of(&t, "a\xff", 0), "262 0");  // an invalid byte is a character of its own
    ct_tokenizer_free(&t);
}

TEST(tokenizer_spm, saved_and_read_back) {
    CtTokenizer t, again;
    CHECK_MSG(load(&t, spm_json(prepend_replace, "null", llama_decoder, 1, specials)) == 0, "%s", ct_error_message());
    char *json = ct_tokenizer_hf_json(&t);
    CHECK(json != NULL);
    CHECK_MSG(ct_tokenizer_parse_hf(&again, json, strlen(json), "saved", NULL) == 0, "%s", ct_error_message());
    free(json);
    CHECK_STR_EQ(ids_of(&again, "ab a\xC3\xA9<s><t> b", 1), "264 262 198 172 1 265 259 261");
    CHECK_STR_EQ(text_of(&again, "ab a\xC3\xA9"), "ab a\xC3\xA9");
    ct_tokenizer_free(&again);
    ct_tokenizer_free(&t);
}

static int fails(char *json, const char *what) {
    CtTokenizer t;
    if (load(&t, json) == 0) {
        ct_tokenizer_free(&t);
        ct_test_fail(__FILE__, __LINE__, "loaded; expected an error about %s", what);
        return 0;
    }
    if (!strstr(ct_error_message(), what) || !strstr(ct_error_message(), "test.json")) {
        ct_test_fail(__FILE__, __LINE__, "error \"%s\" does not name test.json and %s", ct_error_message(), what);
        return 0;
    }
    return 1;
}

TEST(tokenizer_spm, what_is_not_reproduced_is_refused) {
    CHECK(fails(spm_json("{\"type\": \"Lowercase\"}", "null", llama_decoder, 1, specials), "normalizer \"Lowercase\""));
    CHECK(fails(spm_json("null", "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"\\\\s+\"}}", llama_decoder, 1, specials),
                "unsupported pre-tokenization regex"));
    CHECK(fails(spm_json("null", "{\"type\": \"Metaspace\", \"replacement\": \"_\"}", llama_decoder, 1, specials),
                "Metaspace with replacement"));
    CHECK(fails(spm_json(prepend_replace, "null", "{\"type\": \"WordPiece\"}", 1, specials), "decoder \"WordPiece\""));
    CHECK(fails(spm_json(prepend_replace, "null", llama_decoder, 1, "{\"id\": 265, \"content\": \"<t>\", \"single_word\": true}"),
                "single_word"));
    CHECK(fails(spm_json(prepend_replace, "null", llama_decoder, 1, "{\"id\": 265, \"content\": \"<t>\", \"normalized\": true}"),
                "normalized=true"));
}

// Qwen2: cl100k's pattern with one digit per piece.
TEST(tokenizer_spm, qwen2_pattern_splits_digits_one_by_one) {
    const char *text = "12345 abc's \xd9\xa3\xd9\xa4x";
    const char *cl100k[] = {"123", "45", " abc", "'s", " ", "\xd9\xa3\xd9\xa4", "x"};
    const char *qwen2[] = {"1", "2", "3", "4", "5", " abc", "'s", " ", "\xd9\xa3", "\xd9\xa4", "x"};
    for (int p = 0; p < 2; p++) {
        const char *const *want = p ? qwen2 : cl100k;
        int n_want = p ? 11 : 7, k = 0;
        CtPattern pattern = p ? CT_PATTERN_QWEN2 : CT_PATTERN_CL100K;
        for (size_t pos = 0; pos < strlen(text); k++) {
            size_t end = ct_pretokenize_next(pattern, (const uint8_t *)text, strlen(text), pos);
            CHECK(k < n_want && end - pos == strlen(want[k]) && memcmp(text + pos, want[k], end - pos) == 0);
            pos = end;
        }
        CHECK_EQ_INT(k, n_want);
    }
    CtPattern got;
    CHECK(ct_pattern_from_regex(ct_pattern_regex(CT_PATTERN_QWEN2), &got) == 0 && got == CT_PATTERN_QWEN2);
    CHECK(ct_pattern_from_name("llama3", &got) == 0 && got == CT_PATTERN_CL100K);
}

static const char *nfc_of(const char *s) {
    static uint8_t *out;
    static size_t cap;
    size_t n = ct_nfc((const uint8_t *)s, strlen(s), &out, &cap);
    static char buf[256];
    snprintf(buf, sizeof buf, "%.*s", (int)n, (const char *)out);
    return buf;
}

TEST(tokenizer_spm, nfc) {
    CHECK_STR_EQ(nfc_of("e\xcc\x81"), "\xc3\xa9");                      // e + U+0301 -> é
    CHECK_STR_EQ(nfc_of("a\xcc\xa3\xcc\x82"), "\xe1\xba\xad");          // a + dot below + circumflex -> ậ
    CHECK_STR_EQ(nfc_of("a\xcc\x82\xcc\xa3"), "\xe1\xba\xad");          // marks in either order
    CHECK_STR_EQ(nfc_of("\xe1\x84\x80\xe1\x85\xa1\xe1\x86\xa8"), "\xea\xb0\x81");  // jamo -> 각
    CHECK_STR_EQ(nfc_of("\xe2\x84\xab"), "\xc3\x85");                   // Angstrom sign -> Å (singleton)
    CHECK_STR_EQ(nfc_of("\xcc\x81x\xff"), "\xcc\x81x\xff");             // a leading mark, an invalid byte
    CHECK(ct_nfc_is_trivial((const uint8_t *)"plain \xc3\xa9", 8));
    CHECK(!ct_nfc_is_trivial((const uint8_t *)"e\xcc\x81", 3));
}
