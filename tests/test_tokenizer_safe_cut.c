// Cutting one large text for threads (ct_pretokenize_safe_cut, ct_encode_parallel): every cut
// is a split point of every pattern's pre-tokenization of the whole text, and text encoded in
// chunks gives exactly the ids of the whole, on the shared corpus and on adversarial text
// (long runs of spaces, newlines and digits, CJK, contractions in every case, combining marks,
// '/' after newlines, invalid UTF-8). The batched piece ends (ct_pretokenize_many) are checked
// on the same text against ct_pretokenize_next.
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/tokenizer/bpe.h"
#include "data/tokenizer/bpe_parallel.h"
#include "data/tokenizer/pretokenize.h"
#include "data/tokenizer/tokenizer_files.h"
#include "tests/test.h"

// Fragments whose joins stress every alternative of the patterns (each may be repeated).
static const char *const fragments[] = {
    " ",  "  ", "\n", "\n\n", "\r\n", "\t", "\xc2\xa0", "\xe3\x80\x80", "\xe2\x80\xa8", "\x0b",  // whitespace
    "the", " word", "Hello", "WORLD", "camelCase", "\xc7\x85ungla", "\xc5\xbf", "e\xcc\x81", "\xcc\x81",  // letters, marks
    "'s", "'S", "'re", "'RE", "'ve", "'ll", "'LL", "'d", "'m", "'t", "don't", "'",                      // contractions
    "0", "12", "12345", "\xd9\xa3\xd9\xa4", "\xc2\xbd", "\xe2\x85\xab",                                  // numbers
    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "\xe4\xb8\xad\xe6\x96\x87", "\xe3\x80\x82", "\xe3\x80\x81",  // CJK
    "\xed\x95\x9c\xea\xb5\xad",                                                                       //
    "/", "///", "!", "?!", ".", "...", "$", "\xf0\x9f\x91\x8d", "\xe2\x80\x8d",                          // symbols
    "\xff", "\xc3", "\xe2\x82", "\x80", "\x00",                                                       // invalid, NUL
};

// Deterministic text of about `len` bytes: fragments, sometimes as long runs (hundreds of
// spaces, newlines, digits or CJK letters in a row).
static uint8_t *adversarial_text(uint64_t seed, size_t want, size_t *len) {
    const size_t n_frag = sizeof fragments / sizeof fragments[0];
    uint8_t *text = ct_alloc(want + 4096);
    size_t n = 0;
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    while (n < want) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        const char *f = fragments[(s >> 33) % n_frag];
        size_t f_len = f[0] ? strlen(f) : 1;  // "\x00" is one NUL byte
        size_t repeat = ((s >> 20) & 15) == 0 ? 1 + (s >> 40) % 300 : 1;
        for (size_t r = 0; r < repeat && n + f_len < want + 4096; r++) {
            memcpy(text + n, f, f_len);
            n += f_len;
        }
    }
    *len = n;
    return text;
}

// Every position the cut can return is where a piece of the whole text starts.
static void check_cuts(const uint8_t *text, size_t len, const char *what) {
    uint8_t *starts = ct_calloc(len + 1, 1);
    size_t cuts = 0;
    for (int p = 0; p < CT_PATTERN_COUNT; p++) {
        memset(starts, 0, len + 1);
        for (size_t pos = 0; pos < len;) {
            starts[pos] = 1;
            pos = ct_pretokenize_next((CtPattern)p, text, len, pos);
        }
        cuts = 0;
        for (size_t c = ct_pretokenize_safe_cut(text, len, 1); c < len; c = ct_pretokenize_safe_cut(text, len, c + 1)) {
            cuts++;
            if (!starts[c]) {
                ct_test_fail(__FILE__, __LINE__, "%s: the cut at byte %zu is inside a %s piece (\"%.12s\")", what, c,
                             ct_pattern_name((CtPattern)p), (const char *)text + (c > 6 ? c - 6 : 0));
                ct_free(starts);
                return;
            }
        }
    }
    CHECK_MSG(cuts > len / 1000, "%s: only %zu cuts in %zu bytes", what, cuts, len);
    ct_free(starts);
}

TEST(tokenizer_safe_cut, cuts_are_split_points_of_every_pattern) {
    for (uint64_t seed = 1; seed <= 20; seed++) {
        size_t len;
        uint8_t *text = adversarial_text(seed, 100000, &len);
        char what[64];
        snprintf(what, sizeof what, "adversarial text %llu", (unsigned long long)seed);
        check_cuts(text, len, what);
        ct_free(text);
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/corpora/nlp-corpus-40k.txt", ct_test_shared_data());
    size_t len;
    char *corpus = ct_test_read(path, &len);
    CHECK(corpus);
    check_cuts((const uint8_t *)corpus, len, "the shared corpus");
    free(corpus);
}

// ct_pretokenize_many, in batches of `max` up to `to`, gives the pieces of ct_pretokenize_next.
static int batches_match(CtPattern p, const uint8_t *text, size_t len, size_t to, size_t max) {
    size_t ends[7], pos = 0, want = 0;
    while (pos < to) {
        size_t n = ct_pretokenize_many(p, text, len, pos, to, ends, max);
        if (n == 0 || n > max) return 0;
        for (size_t i = 0; i < n; i++, pos = ends[i - 1]) {
            want = ct_pretokenize_next(p, text, len, pos);
            if (ends[i] != want) {
                ct_test_fail(__FILE__, __LINE__, "%s: piece at byte %zu ends at %zu in a batch, %zu alone",
                             ct_pattern_name(p), pos, ends[i], want);
                return 0;
            }
        }
    }
    return pos == to;
}

TEST(tokenizer_safe_cut, batched_piece_ends_are_the_pieces_one_at_a_time) {
    for (uint64_t seed = 1; seed <= 8; seed++) {
        size_t len;
        uint8_t *text = adversarial_text(seed, 50000, &len);
        size_t cut = ct_pretokenize_safe_cut(text, len, len / 2);  // a range that ends before the text
        for (int p = 0; p < CT_PATTERN_COUNT; p++) {
            CHECK(batches_match((CtPattern)p, text, len, len, 7));
            CHECK(batches_match((CtPattern)p, text, len, len, 1));
            if (cut < len) CHECK(batches_match((CtPattern)p, text, len, cut, 7));
        }
        ct_free(text);
    }
}

TEST(tokenizer_safe_cut, runs_without_a_split_point_are_not_cut) {
    static const char *const whole[] = {"    x", "1234567890", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "a\n b", "a\n/b",
                                        "a\n\nb"};
    for (size_t i = 0; i < sizeof whole / sizeof whole[0]; i++) {
        const uint8_t *t = (const uint8_t *)whole[i];
        size_t len = strlen(whole[i]);
        size_t c = ct_pretokenize_safe_cut(t, len, 1);
        // "a\n\nb": only before the b; the others have no place at all
        CHECK_MSG(c == (i == 5 ? 3 : len), "\"%s\": cut at %zu", whole[i], c);
    }
    CHECK_EQ_INT((int)ct_pretokenize_safe_cut((const uint8_t *)"ab cd", 5, 1), 2);
    CHECK_EQ_INT((int)ct_pretokenize_safe_cut((const uint8_t *)"\xc3\xa9 x", 4, 1), 2);  // after é
    CHECK_EQ_INT((int)ct_pretokenize_safe_cut((const uint8_t *)"\xa9 x", 3, 1), 3);      // a stray byte is no letter
}

static void load_encoding(int which, CtTokenizer *t) {
    static const char *const names[3] = {"gpt2", "cl100k_base", "o200k_base"};
    char path[1024];
    if (which == 0) snprintf(path, sizeof path, "%s/tokenizers/gpt2", ct_test_shared_data());
    else snprintf(path, sizeof path, "%s/tokenizers/tiktoken/%s.tiktoken", ct_test_shared_data(), names[which]);
    if (ct_tokenizer_load(t, path, NULL) != 0) {
        ct_test_fail(__FILE__, __LINE__, "%s", ct_error_message());
        exit(1);
    }
}

// The ids of the whole text, of the text cut at (about) every `step` bytes, and through
// ct_encode_parallel with 2 threads, are the same.
static int chunked_equals_whole(const CtTokenizer *t, const uint8_t *text, size_t len, size_t step) {
    CtEncoder *encoders[2] = {ct_encoder_new(t), ct_encoder_new(t)};
    CtIds whole = {0}, cut = {0}, parallel = {0};
    ct_encode(encoders[0], text, len, 0, &whole);
    for (size_t pos = 0; pos < len;) {
        size_t end = ct_pretokenize_safe_cut(text, len, pos + step);
        ct_encode_ordinary_range(encoders[1], text, len, pos, end, &cut);
        pos = end;
    }
    ct_encode_parallel(t, encoders, 2, text, len, 0, &parallel);
    int same = whole.len == cut.len && memcmp(whole.data, cut.data, whole.len * sizeof *whole.data) == 0 &&
               whole.len == parallel.len && memcmp(whole.data, parallel.data, whole.len * sizeof *whole.data) == 0;
    ct_ids_free(&whole);
    ct_ids_free(&cut);
    ct_ids_free(&parallel);
    ct_encoder_free(encoders[0]);
    ct_encoder_free(encoders[1]);
    return same;
}

TEST(tokenizer_safe_cut, chunks_encode_to_the_ids_of_the_whole) {
    char path[1024];
    snprintf(path, sizeof path, "%s/corpora/nlp-corpus-40k.txt", ct_test_shared_data());
    size_t corpus_len;
    char *corpus = ct_test_read(path, &corpus_len);
    CHECK(corpus);
    for (int which = 0; which < 3; which++) {
        CtTokenizer t;
        load_encoding(which, &t);
        CHECK_MSG(chunked_equals_whole(&t, (const uint8_t *)corpus, corpus_len, 50000), "encoding %d: the corpus",
                  which);
        for (uint64_t seed = 1; seed <= 3; seed++) {
            size_t len;
            uint8_t *text = adversarial_text(seed, 400000, &len);
            CHECK_MSG(chunked_equals_whole(&t, text, len, 97), "encoding %d: adversarial text %llu", which,
                      (unsigned long long)seed);
            ct_free(text);
        }
        ct_tokenizer_free(&t);
    }
    free(corpus);
}
