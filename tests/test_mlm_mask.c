// Masking for masked-language modelling (train/objectives/mlm_mask.h): the selection and
// replacement rates on a large sample, special tokens and padding never selected, whole words
// selected together (byte-level BPE and WordPiece vocabularies), masks that are a pure function
// of the seed, the step and the row's place, and the errors a user can cause.
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"
#include "tests/test.h"
#include "train/objectives/mlm.h"

enum { THE = 256, CAT, DOG, ING, RUN, EOT, MASK, BOS, V_BPE };

// A byte-level vocabulary: the 256 bytes, four space-prefixed words and one continuation, and
// three specials (the mask among them).
static void bpe_tokenizer(CtTokenizer *t, int with_mask) {
    ct_tokenizer_init(t, CT_PATTERN_GPT2, CT_MERGES_BY_LIST);
    for (int b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        ct_tokenizer_add(t, b, &byte, 1, CT_TOKEN_NORMAL);
    }
    const char *normal[] = {" the", " cat", " dog", "ing", " run"};
    for (int i = 0; i < 5; i++) ct_tokenizer_add(t, THE + i, (const uint8_t *)normal[i], strlen(normal[i]), CT_TOKEN_NORMAL);
    ct_tokenizer_add(t, EOT, (const uint8_t *)"<|endoftext|>", 13, CT_TOKEN_SPECIAL);
    ct_tokenizer_add(t, MASK, (const uint8_t *)(with_mask ? "<mask>" : "<pad>"), 6, CT_TOKEN_SPECIAL);
    ct_tokenizer_add(t, BOS, (const uint8_t *)"<s>", 3, CT_TOKEN_SPECIAL);
}

static int is_special(int32_t x) { return x == EOT || x == MASK || x == BOS; }

typedef struct {
    double candidates, selected, masked, random_other, unchanged;
    int special_selected, padding_selected, bad_target, random_special;
} Tally;

// Masks `rows` rows of T random tokens (every id, specials included; the last 8 positions of
// every row padding) and counts what happened.
static Tally mask_sample(const CtMlmMasking *mm, int rows, int T, uint64_t seed) {
    Tally c;
    memset(&c, 0, sizeof c);
    CtRng rng;
    ct_rng_seed(&rng, 7);
    int32_t *x = ct_alloc(sizeof(int32_t) * (size_t)T), *orig = ct_alloc(sizeof(int32_t) * (size_t)T);
    int32_t *doc = ct_alloc(sizeof(int32_t) * (size_t)T), *targets = ct_alloc(sizeof(int32_t) * (size_t)T);
    uint8_t *sel = ct_alloc((size_t)T);
    for (int r = 0; r < rows; r++) {
        for (int t = 0; t < T; t++) {
            orig[t] = x[t] = (int32_t)ct_rng_below(&rng, V_BPE);
            doc[t] = t < T - 8 ? 0 : -1;
        }
        int n = ct_mlm_mask_row(mm, ct_mlm_row_seed(seed, ct_mlm_train_stream(0), (uint64_t)r), x, doc, T, targets, sel);
        int counted = 0;
        for (int t = 0; t < T; t++) {
            const int pad = doc[t] < 0, candidate = !pad && !is_special(orig[t]);
            c.candidates += candidate;
            if (!sel[t]) {
                c.bad_target += targets[t] != -1 || x[t] != orig[t];
                continue;
            }
            counted++;
            c.selected++;
            c.special_selected += is_special(orig[t]);
            c.padding_selected += pad;
            c.bad_target += targets[t] != orig[t];  // the target is the token itself: no shift
            if (x[t] == MASK)
                c.masked++;
            else if (x[t] == orig[t])
                c.unchanged++;
            else {
                c.random_other++;
                c.random_special += is_special(x[t]);
            }
        }
        c.bad_target += counted != n;
    }
    ct_free(x), ct_free(orig), ct_free(doc), ct_free(targets), ct_free(sel);
    return c;
}

// |observed share − p| within 5 standard deviations of a binomial share over n trials.
static void check_share(const char *what, double count, double n, double p) {
    const double share = count / n, sd = sqrt(p * (1 - p) / n);
    CHECK_MSG(fabs(share - p) <= 5 * sd + 1e-12, "%s: %.5f of %.0f, expected %.5f (5 sd = %.5f)", what, share, n, p,
              5 * sd);
}

static void check_rates(const CtMlmRates *rates) {
    CtTokenizer tok;
    bpe_tokenizer(&tok, 1);
    CtMlmMasking mm;
    CHECK_EQ_INT(ct_mlm_masking_init(&mm, &tok, V_BPE, rates), 0);
    CHECK_EQ_INT(mm.mask_id, MASK);
    CHECK_EQ_INT(mm.n_random, V_BPE - 3);
    Tally c = mask_sample(&mm, 3000, 128, 1234);
    CHECK(c.candidates > 300000);
    check_share("selected", c.selected, c.candidates, rates->mlm_probability);
    // A random replacement equal to the original (1 in n_random) looks unchanged.
    const double q = 1.0 / mm.n_random;
    check_share("mask token", c.masked, c.selected, rates->mask_replace_prob);
    check_share("random token", c.random_other, c.selected, rates->random_replace_prob * (1 - q));
    check_share("unchanged", c.unchanged, c.selected,
                1 - rates->mask_replace_prob - rates->random_replace_prob + rates->random_replace_prob * q);
    CHECK_EQ_INT(c.special_selected, 0);
    CHECK_EQ_INT(c.padding_selected, 0);
    CHECK_EQ_INT(c.random_special, 0);
    CHECK_EQ_INT(c.bad_target, 0);
    ct_mlm_masking_free(&mm);
    ct_tokenizer_free(&tok);
}

TEST(mlm_mask, rates_match_bert_defaults_on_a_large_sample) {
    const CtMlmRates bert = {0.15, 0.8, 0.1, 0};
    check_rates(&bert);
}

TEST(mlm_mask, configured_rates_are_the_ones_applied) {
    const CtMlmRates other = {0.4, 0.5, 0.3, 0};
    check_rates(&other);
}

TEST(mlm_mask, special_tokens_and_padding_are_never_selected_even_at_probability_one) {
    CtTokenizer tok;
    bpe_tokenizer(&tok, 1);
    CtMlmMasking mm;
    const CtMlmRates all = {1.0, 0.8, 0.1, 0};
    CHECK_EQ_INT(ct_mlm_masking_init(&mm, &tok, V_BPE, &all), 0);
    Tally c = mask_sample(&mm, 200, 64, 5);
    CHECK(c.selected == c.candidates);  // every ordinary token of the data ...
    CHECK_EQ_INT(c.special_selected, 0);  // ... and nothing else
    CHECK_EQ_INT(c.padding_selected, 0);
    CHECK_EQ_INT(c.bad_target, 0);
    for (int i = 0; i < mm.n_random; i++) CHECK(!is_special(mm.random_ids[i]));  // random draws are ordinary tokens
    ct_mlm_masking_free(&mm);
    ct_tokenizer_free(&tok);
}

// Rows of words: a space-prefixed token followed by 0-2 continuations ("ing", "s"), sometimes a
// special between words, and a newline after which a continuation-looking token starts a word.
// word[t] numbers each position's word (-1: a special).
static int word_rows(CtRng *rng, int32_t *x, int32_t *word, int T) {
    int t = 0, w = 0;
    while (t < T) {
        const uint32_t kind = ct_rng_below(rng, 10);
        if (kind == 0) {
            x[t] = EOT, word[t++] = -1;
            continue;
        }
        if (kind == 1 && t + 2 <= T) {  // "\n" ends a word; "ing" after it begins one
            x[t] = '\n', word[t++] = w++;
            x[t] = ING, word[t++] = w;
        } else {
            const int32_t starts[4] = {THE, CAT, DOG, RUN};
            x[t] = starts[ct_rng_below(rng, 4)], word[t++] = w;
        }
        for (uint32_t k = ct_rng_below(rng, 3); k > 0 && t < T; k--) x[t] = k == 1 ? 's' : ING, word[t++] = w;
        w++;
    }
    return w;
}

TEST(mlm_mask, whole_words_are_selected_together_in_byte_level_bpe) {
    CtTokenizer tok;
    bpe_tokenizer(&tok, 1);
    CtMlmMasking mm;
    const CtMlmRates rates = {0.15, 0.8, 0.1, 1};
    CHECK_EQ_INT(ct_mlm_masking_init(&mm, &tok, V_BPE, &rates), 0);
    CHECK_CONTAINS(mm.word_rule, "byte-level");
    enum { T = 96 };
    int32_t x[T], word[T], targets[T];
    uint8_t sel[T];
    CtRng rng;
    ct_rng_seed(&rng, 11);
    double words = 0, words_selected = 0;
    int split = 0, specials = 0, multi = 0;
    for (int r = 0; r < 3000; r++) {
        int n_words = word_rows(&rng, x, word, T);
        ct_mlm_mask_row(&mm, ct_mlm_row_seed(9, ct_mlm_train_stream(3), (uint64_t)r), x, NULL, T, targets, sel);
        for (int w = 0; w < n_words; w++) {
            int in = 0, out = 0;
            for (int t = 0; t < T; t++)
                if (word[t] == w) sel[t] ? in++ : out++;
            if (in + out == 0) continue;
            split += in && out;
            multi += in > 1;
            words++;
            words_selected += in > 0;
        }
        for (int t = 0; t < T; t++) specials += word[t] < 0 && sel[t];
    }
    CHECK_EQ_INT(split, 0);
    CHECK_EQ_INT(specials, 0);
    CHECK(multi > 100);  // words of several tokens were selected, whole
    check_share("words selected", words_selected, words, 0.15);
    ct_mlm_masking_free(&mm);
    ct_tokenizer_free(&tok);
}

// A WordPiece vocabulary (BERT's shape: no token holds a space, words continue with ## tokens).
enum { PAD, UNK, CLS, SEP, WP_MASK, WP_THE, WP_PLAY, WP_ING, WP_ED, WP_S, WP_DOT, V_WP };

static void wordpiece_tokenizer(CtTokenizer *t) {
    ct_tokenizer_init(t, CT_PATTERN_GPT2, CT_MERGES_BY_LIST);
    const char *specials[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    for (int i = 0; i < 5; i++) ct_tokenizer_add(t, i, (const uint8_t *)specials[i], strlen(specials[i]), CT_TOKEN_SPECIAL);
    const char *normal[] = {"the", "play", "##ing", "##ed", "##s", "."};
    for (int i = 0; i < 6; i++) ct_tokenizer_add(t, WP_THE + i, (const uint8_t *)normal[i], strlen(normal[i]), CT_TOKEN_NORMAL);
}

TEST(mlm_mask, whole_words_follow_wordpiece_continuations) {
    CtTokenizer tok;
    wordpiece_tokenizer(&tok);
    CtMlmMasking mm;
    const CtMlmRates rates = {0.3, 0.8, 0.1, 1};
    CHECK_EQ_INT(ct_mlm_masking_init(&mm, &tok, V_WP, &rates), 0);
    CHECK_EQ_INT(mm.mask_id, WP_MASK);
    CHECK_CONTAINS(mm.word_rule, "WordPiece");
    // [CLS] the play ##ing ##s . play ##ed [SEP] [PAD] [PAD]: words {1}, {2,3,4}, {5}, {6,7}
    const int32_t row[] = {CLS, WP_THE, WP_PLAY, WP_ING, WP_S, WP_DOT, WP_PLAY, WP_ED, SEP, PAD, PAD};
    const int word[] = {-1, 0, 1, 1, 1, 2, 3, 3, -1, -1, -1};
    enum { T = (int)(sizeof row / sizeof row[0]) };
    int split = 0, specials = 0, selected[4] = {0, 0, 0, 0};
    for (int r = 0; r < 4000; r++) {
        int32_t x[T], targets[T];
        uint8_t sel[T];
        memcpy(x, row, sizeof x);
        ct_mlm_mask_row(&mm, ct_mlm_row_seed(1, ct_mlm_eval_stream(0), (uint64_t)r), x, NULL, T, targets, sel);
        for (int w = 0; w < 4; w++) {
            int in = 0, out = 0;
            for (int t = 0; t < T; t++)
                if (word[t] == w) sel[t] ? in++ : out++;
            split += in && out;
            selected[w] += in > 0;
        }
        for (int t = 0; t < T; t++) specials += word[t] < 0 && sel[t];
    }
    CHECK_EQ_INT(split, 0);
    CHECK_EQ_INT(specials, 0);
    for (int w = 0; w < 4; w++) check_share("word selected", selected[w], 4000, 0.3);
    ct_mlm_masking_free(&mm);
    ct_tokenizer_free(&tok);
}

// Masks `rows` rows (row i: tokens 256 + (i + t) % 5 ...) with first_row, into out.
static void mask_rows(const CtMlmMasking *mm, uint64_t stream, int64_t first_row, int rows, int T, int32_t *out) {
    CtStepBatches s;
    ct_step_batches_init(&s, 1, rows, T);
    for (int i = 0; i < rows; i++)
        for (int t = 0; t < T; t++) {
            s.tokens[(size_t)i * T + t] = (int32_t)((first_row + i) * 7 + t) % 256;
            s.doc_ids[(size_t)i * T + t] = 0;
        }
    ct_mlm_mask_micro_batch(mm, &s, 0, 42, stream, first_row);
    memcpy(out, s.tokens, sizeof(int32_t) * (size_t)rows * T);
    ct_step_batches_free(&s);
}

TEST(mlm_mask, masks_depend_on_seed_step_and_row_alone) {
    CtTokenizer tok;
    bpe_tokenizer(&tok, 1);
    CtMlmMasking mm;
    const CtMlmRates rates = {0.15, 0.8, 0.1, 0};
    CHECK_EQ_INT(ct_mlm_masking_init(&mm, &tok, V_BPE, &rates), 0);
    enum { ROWS = 8, T = 64 };
    int32_t whole[ROWS * T], halves[ROWS * T], again[ROWS * T], next_step[ROWS * T];
    // One micro-batch of 8 rows = two of 4 (rows 0-3 and 4-7 of the step: another micro-batch, or
    // another rank): the masks follow the row's place in the step, not how the step was cut.
    mask_rows(&mm, ct_mlm_train_stream(5), 0, ROWS, T, whole);
    mask_rows(&mm, ct_mlm_train_stream(5), 0, ROWS / 2, T, halves);
    mask_rows(&mm, ct_mlm_train_stream(5), ROWS / 2, ROWS / 2, T, halves + ROWS / 2 * T);
    CHECK(memcmp(whole, halves, sizeof whole) == 0);
    mask_rows(&mm, ct_mlm_train_stream(5), 0, ROWS, T, again);  // a resumed run draws the same
    CHECK(memcmp(whole, again, sizeof whole) == 0);
    mask_rows(&mm, ct_mlm_train_stream(6), 0, ROWS, T, next_step);  // the next step another mask
    CHECK(memcmp(whole, next_step, sizeof whole) != 0);
    // Rows of one step differ from each other (not one mask repeated): row 0 against row 1's
    // masking of the same tokens.
    int32_t a[T], b[T], ta[T], tb[T];
    uint8_t sa[T], sb[T];
    for (int t = 0; t < T; t++) a[t] = b[t] = THE + t % 5;
    ct_mlm_mask_row(&mm, ct_mlm_row_seed(42, ct_mlm_train_stream(5), 0), a, NULL, T, ta, sa);
    ct_mlm_mask_row(&mm, ct_mlm_row_seed(42, ct_mlm_train_stream(5), 1), b, NULL, T, tb, sb);
    CHECK(memcmp(sa, sb, sizeof sa) != 0);
    // The validation stream ignores the step: the same fixed mask at every evaluation.
    CHECK(ct_mlm_row_seed(42, ct_mlm_eval_stream(0), 3) == ct_mlm_row_seed(42, ct_mlm_eval_stream(0), 3));
    CHECK(ct_mlm_row_seed(42, ct_mlm_eval_stream(0), 3) != ct_mlm_row_seed(42, ct_mlm_train_stream(0), 3));
    CHECK(ct_mlm_row_seed(42, ct_mlm_train_stream(0), 3) != ct_mlm_row_seed(43, ct_mlm_train_stream(0), 3));
    ct_mlm_masking_free(&mm);
    ct_tokenizer_free(&tok);
}

TEST(mlm_mask, a_tokenizer_without_a_mask_token_is_refused_with_the_fix) {
    CtTokenizer tok;
    bpe_tokenizer(&tok, 0);
    CtMlmMasking mm;
    const CtMlmRates rates = {0.15, 0.8, 0.1, 0};
    CHECK_EQ_INT(ct_mlm_masking_init(&mm, &tok, V_BPE, &rates), -1);
    CHECK_CONTAINS(ct_error_message(), "no mask token");
    CHECK_CONTAINS(ct_error_message(), "<mask>");
    const CtMlmRates too_many = {0.15, 0.8, 0.3, 0};
    ct_tokenizer_free(&tok);
    bpe_tokenizer(&tok, 1);
    CHECK_EQ_INT(ct_mlm_masking_init(&mm, &tok, V_BPE, &too_many), -1);
    CHECK_CONTAINS(ct_error_message(), "exceed 1");
    // The mask token must have a row in the model.
    CHECK_EQ_INT(ct_mlm_masking_init(&mm, &tok, MASK, &rates), -1);
    CHECK_CONTAINS(ct_error_message(), "outside the model's vocabulary");
    ct_tokenizer_free(&tok);
}
