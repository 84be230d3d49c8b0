// The arithmetic task (data/examples/synthetic_arithmetic.h) and the answer rule
// (data/examples/answer_extract.h): every sum is recomputed here from the prompt's text, the
// split is checked on the prompts themselves, and the extraction rule on written-out cases.
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "data/examples/answer_extract.h"
#include "data/examples/synthetic_arithmetic.h"
#include "tests/test.h"

// The examples written for (options, n, seed), as one text (free with free()).
static char *write_examples(const char *name, const CtArithOptions *o, uint64_t n, uint64_t seed) {
    const char *path = ct_test_path(name);
    FILE *f = fopen(path, "w");
    if (!f) return NULL;
    int rc = ct_write_arithmetic_examples(f, o, n, seed);
    fclose(f);
    return rc == 0 ? ct_test_read(path, NULL) : NULL;
}

typedef struct {
    uint64_t x[CT_ARITH_MAX_OPERANDS];
    int n;
    char prompt[256], response[256], answer[64];
} Example;

// One line into its fields and operands (parsed from "What is a + b + c?"). 0 when well formed.
static int parse_line(const char *line, Example *e) {
    cJSON *root = cJSON_Parse(line);
    const cJSON *p = cJSON_GetObjectItem(root, "prompt"), *r = cJSON_GetObjectItem(root, "response"),
                *a = cJSON_GetObjectItem(root, "answer");
    int ok = cJSON_IsString(p) && cJSON_IsString(r) && cJSON_IsString(a) && cJSON_GetArraySize(root) == 3;
    if (ok) {
        snprintf(e->prompt, sizeof e->prompt, "%s", p->valuestring);
        snprintf(e->response, sizeof e->response, "%s", r->valuestring);
        snprintf(e->answer, sizeof e->answer, "%s", a->valuestring);
        ok = strncmp(e->prompt, "What is ", 8) == 0;
        const char *s = e->prompt + 8;
        e->n = 0;
        while (ok && e->n < CT_ARITH_MAX_OPERANDS) {
            char *end;
            e->x[e->n++] = strtoull(s, &end, 10);
            ok = end > s;
            if (strncmp(end, " + ", 3) == 0) {
                s = end + 3;
            } else {
                ok = ok && strcmp(end, "?") == 0;
                break;
            }
        }
    }
    cJSON_Delete(root);
    return ok ? 0 : -1;
}

static int digits_of(uint64_t v) {
    int d = 1;
    while (v >= 10) v /= 10, d++;
    return d;
}

TEST(arithmetic_task, answers_are_the_sums_of_the_prompts_within_the_ranges) {
    CtArithOptions o = CT_ARITH_OPTIONS_DEFAULT;
    o.min_operands = 2, o.max_operands = 4, o.min_digits = 2, o.max_digits = 5;
    char *text = write_examples("a.jsonl", &o, 2000, 7);
    CHECK(text);
    int seen_operands[CT_ARITH_MAX_OPERANDS + 1] = {0}, seen_digits[CT_ARITH_MAX_DIGITS + 1] = {0}, lines = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"), lines++) {
        Example e;
        CHECK_MSG(parse_line(line, &e) == 0, "malformed line %s", line);
        uint64_t sum = 0;
        for (int i = 0; i < e.n; i++) {
            sum += e.x[i];
            seen_digits[digits_of(e.x[i])]++;
        }
        seen_operands[e.n]++;
        char want[32];
        snprintf(want, sizeof want, "%llu", (unsigned long long)sum);
        CHECK_STR_EQ(e.answer, want);
        CHECK_STR_EQ(e.response, want);
        CHECK(!ct_arith_is_heldout(e.x, e.n));
    }
    CHECK_EQ_INT(lines, 2000);
    for (int n = 0; n <= CT_ARITH_MAX_OPERANDS; n++)  // every count in the range, none outside
        CHECK_MSG((seen_operands[n] > 0) == (n >= 2 && n <= 4), "%d operands seen %d times", n, seen_operands[n]);
    for (int d = 0; d <= CT_ARITH_MAX_DIGITS; d++)
        CHECK_MSG((seen_digits[d] > 0) == (d >= 2 && d <= 5), "%d digits seen %d times", d, seen_digits[d]);
    free(text);
}

TEST(arithmetic_task, think_format_shows_the_running_sums_and_the_answer) {
    CtArithOptions o = CT_ARITH_OPTIONS_DEFAULT;
    o.format = CT_ARITH_THINK;
    o.min_operands = o.max_operands = 3;
    char *text = write_examples("t.jsonl", &o, 300, 3);
    CHECK(text);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        Example e;
        CHECK_MSG(parse_line(line, &e) == 0, "malformed line %s", line);
        CHECK_EQ_INT(e.n, 3);
        const unsigned long long a = e.x[0], b = e.x[1], c = e.x[2];
        char want[256];
        snprintf(want, sizeof want, "<think>%llu + %llu = %llu, %llu + %llu = %llu</think><answer>%llu</answer>", a, b,
                 a + b, a + b, c, a + b + c, a + b + c);
        CHECK_STR_EQ(e.response, want);
        char *got = ct_extract_answer(e.response, strlen(e.response));  // the eval's rule reads it back
        CHECK_STR_EQ(got, e.answer);
        ct_free(got);
    }
    free(text);
}

TEST(arithmetic_task, same_seed_same_file_other_seed_other_file) {
    CtArithOptions o = CT_ARITH_OPTIONS_DEFAULT;
    char *a = write_examples("a.jsonl", &o, 500, 11), *b = write_examples("b.jsonl", &o, 500, 11),
         *c = write_examples("c.jsonl", &o, 500, 12);
    CHECK(a && b && c);
    CHECK_STR_EQ(a, b);
    CHECK(strcmp(a, c) != 0);
    free(a), free(b), free(c);
}

// Every prompt of the held-out file is absent from the train files (of another seed and of other
// ranges too), with its reorderings: the split is a property of the operands.
TEST(arithmetic_task, heldout_prompts_never_appear_in_train_files) {
    CtArithOptions train = CT_ARITH_OPTIONS_DEFAULT, held = CT_ARITH_OPTIONS_DEFAULT;
    train.min_digits = held.min_digits = 1, train.max_digits = held.max_digits = 2;  // a small space: many collisions
    held.split = CT_ARITH_HELDOUT;
    char *h = write_examples("h.jsonl", &held, 400, 1);
    char *t = write_examples("t.jsonl", &train, 20000, 1);
    CHECK(h && t);
    // the sorted operand lists of the train file, as text
    size_t n_train = 0;
    char(*keys)[96] = ct_alloc(sizeof *keys * 20000);
    for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n")) {
        Example e;
        CHECK(parse_line(line, &e) == 0);
        for (int i = 0; i < e.n; i++)  // insertion sort
            for (int j = i; j > 0 && e.x[j] < e.x[j - 1]; j--) {
                uint64_t s = e.x[j];
                e.x[j] = e.x[j - 1], e.x[j - 1] = s;
            }
        int k = 0;
        for (int i = 0; i < e.n; i++) k += snprintf(keys[n_train] + k, sizeof keys[0] - (size_t)k, "%llu,", (unsigned long long)e.x[i]);
        n_train++;
    }
    int held_lines = 0;
    for (char *line = strtok(h, "\n"); line; line = strtok(NULL, "\n"), held_lines++) {
        Example e;
        CHECK(parse_line(line, &e) == 0);
        CHECK(ct_arith_is_heldout(e.x, e.n));
        for (int i = 0; i < e.n; i++)
            for (int j = i; j > 0 && e.x[j] < e.x[j - 1]; j--) {
                uint64_t s = e.x[j];
                e.x[j] = e.x[j - 1], e.x[j - 1] = s;
            }
        char key[96];
        int k = 0;
        for (int i = 0; i < e.n; i++) k += snprintf(key + k, sizeof key - (size_t)k, "%llu,", (unsigned long long)e.x[i]);
        for (size_t i = 0; i < n_train; i++) CHECK_MSG(strcmp(keys[i], key) != 0, "held-out %s is in train", e.prompt);
    }
    CHECK_EQ_INT(held_lines, 400);
    // and the split is not empty on either side: about 1 in 10 of the sums is held out
    int heldout = 0;
    uint64_t x[2];
    for (x[0] = 0; x[0] < 100; x[0]++)
        for (x[1] = 0; x[1] < 100; x[1]++) heldout += ct_arith_is_heldout(x, 2);
    CHECK_MSG(heldout > 700 && heldout < 1300, "%d of 10000 two-number sums held out", heldout);
    ct_free(keys);
    free(h), free(t);
}

TEST(arithmetic_task, reordered_operands_fall_on_the_same_side) {
    uint64_t a[3] = {12, 345, 7}, b[3] = {7, 12, 345}, c[3] = {345, 7, 12};
    for (uint64_t v = 0; v < 2000; v++) {
        a[0] = b[1] = c[2] = v;
        CHECK_EQ_INT(ct_arith_is_heldout(a, 3), ct_arith_is_heldout(b, 3));
        CHECK_EQ_INT(ct_arith_is_heldout(a, 3), ct_arith_is_heldout(c, 3));
    }
}

TEST(arithmetic_task, ranges_parse_and_bad_ones_are_refused) {
    int lo, hi;
    CHECK(ct_arith_parse_range("2-3", "--operands", 2, 8, &lo, &hi) == 0 && lo == 2 && hi == 3);
    CHECK(ct_arith_parse_range("5", "--digits", 1, 15, &lo, &hi) == 0 && lo == 5 && hi == 5);
    CHECK(ct_arith_parse_range("1-3", "--operands", 2, 8, &lo, &hi) != 0);
    CHECK(ct_arith_parse_range("3-2", "--digits", 1, 15, &lo, &hi) != 0);
    CHECK(ct_arith_parse_range("1-16", "--digits", 1, 15, &lo, &hi) != 0);
    CHECK(ct_arith_parse_range("a-b", "--digits", 1, 15, &lo, &hi) != 0);
    CHECK(ct_arith_parse_range("", "--digits", 1, 15, &lo, &hi) != 0);
}

// ---- the answer rule ----

static void check_extract(const char *completion, const char *want, int line) {
    char *got = ct_extract_answer(completion, strlen(completion));
    if (strcmp(got, want) != 0) ct_test_fail(__FILE__, line, "extract(\"%s\") = \"%s\", want \"%s\"", completion, got, want);
    ct_free(got);
}
#define EXTRACT(completion, want) check_extract(completion, want, __LINE__)

TEST(answer_rule, takes_the_number_in_the_answer_tags_else_the_last_number) {
    EXTRACT("364", "364");
    EXTRACT("The sum is 364.", "364");                           // a sentence's full stop is not a fraction
    EXTRACT("12 + 345 = 357, 357 + 7 = 364", "364");             // the last number
    EXTRACT("<think>12 + 345 = 357</think><answer>364</answer> and 9", "364");  // the tags win over the last number
    EXTRACT("<answer> 1,234 </answer>", "1234");                 // thousands separators
    EXTRACT("<answer>it is 40 or 41</answer>", "41");            // the last number in the tags
    EXTRACT("<answer>seven</answer>", "seven");                  // no number: the trimmed text
    EXTRACT("<answer>1</answer><answer>2</answer>", "1");        // the first pair
    EXTRACT("<answer>36", "36");                                 // unclosed: not a tag, the last number
    EXTRACT("no digits here", "");
    EXTRACT("", "");
    EXTRACT("5-3", "3");                                         // a minus after a digit is not a sign
    EXTRACT("it is -12", "-12");
    EXTRACT("x-4", "4");                                         // nor after a letter
    EXTRACT("007", "7");                                         // leading zeros
    EXTRACT("12.50", "12.5");
    EXTRACT("12.0", "12");
    EXTRACT("-0", "0");
    EXTRACT("1,2", "2");                                         // not a thousands group: two numbers
    EXTRACT("1,2345", "2345");
}

TEST(answer_rule, matches_compare_normal_forms_and_never_an_empty_answer) {
    char *a = ct_extract_answer("so 1,300.", 9);
    CHECK(ct_answer_matches(a, "1300"));
    CHECK(ct_answer_matches(a, " 1300\n"));
    CHECK(ct_answer_matches(a, "01300"));
    CHECK(!ct_answer_matches(a, "130"));
    ct_free(a);
    a = ct_extract_answer("nothing", 7);
    CHECK(!ct_answer_matches(a, ""));
    ct_free(a);
    a = ct_extract_answer("<answer> Paris </answer>", 24);
    CHECK(ct_answer_matches(a, "Paris"));
    CHECK(!ct_answer_matches(a, "paris"));
    ct_free(a);
}
