// The reward sources of GRPO (train/objectives/grpo_rewards.h): each rule on completions made
// here with the expected reward decided by how they were made, the weighted sum, every
// configuration error, the command protocol and its failures, and the reward model's score
// against the model's own forward of the same sequence.
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"
#include "data/examples/synthetic_arithmetic.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/interop/checkpoint_io.h"
#include "train/objectives/grpo_rewards.h"

enum { MAX_N = 64 };

typedef struct {
    char prompt[MAX_N][256], completion[MAX_N][256], fields[MAX_N][128];
    CtRewardInput in[MAX_N];
    double expected[MAX_N];
    int n;
} Cases;

static void add_case(Cases *c, const char *prompt, const char *completion, const char *fields, double expected) {
    const int j = c->n++;
    snprintf(c->prompt[j], sizeof c->prompt[j], "%s", prompt);
    snprintf(c->completion[j], sizeof c->completion[j], "%s", completion);
    snprintf(c->fields[j], sizeof c->fields[j], "%s", fields);
    c->in[j] = (CtRewardInput){.prompt = c->prompt[j], .completion = c->completion[j], .fields = c->fields[j]};
    c->expected[j] = expected;
}

static CtRewardsConfig config_of(const char *funcs) {
    CtRewardsConfig c = {.funcs = funcs};
    return c;
}

// Scores c with the configured sources; each source's rewards must equal c->expected (one source).
static int score_one_source(const CtRewardsConfig *cfg, const Cases *c) {
    CtRewards r;
    if (ct_rewards_init(&r, cfg) != 0) {
        ct_test_fail(__FILE__, __LINE__, "init: %s", ct_error_message());
        return -1;
    }
    double per[MAX_N], total[MAX_N];
    int rc = ct_rewards_score(&r, c->in, c->n, per, total);
    if (rc != 0) ct_test_fail(__FILE__, __LINE__, "score: %s", ct_error_message());
    for (int j = 0; j < c->n && rc == 0; j++)
        if (per[j] != c->expected[j] || total[j] != c->expected[j]) {
            ct_test_fail(__FILE__, __LINE__, "%s: completion %d '%s' (fields %s) scored %g, expected %g", cfg->funcs, j,
                         c->completion[j], c->fields[j], per[j], c->expected[j]);
            rc = -1;
        }
    ct_rewards_free(&r);
    return rc;
}

// ---- exact_match and numeric ----

TEST(grpo_rewards, exact_match_compares_the_extracted_answer_with_the_field) {
    Cases c = {0};
    CtRng rng;
    ct_rng_seed(&rng, 5);
    char completion[128], fields[64];
    for (int k = 0; k < 24; k++) {  // "... is X." against {"answer": "Y"}: 1 exactly when X = Y
        const int x = (int)ct_rng_below(&rng, 6), y = (int)ct_rng_below(&rng, 6);
        if (k % 2) snprintf(completion, sizeof completion, "2 + %d - 2 is %d.", x, x);  // the last number
        else snprintf(completion, sizeof completion, "I guess 99, no: <answer>%d</answer> (not 5)", x);  // the tag's
        snprintf(fields, sizeof fields, k % 3 ? "{\"answer\": \"%d\"}" : "{\"id\": 3, \"answer\": %d}", y);
        add_case(&c, "What?", completion, fields, x == y);
    }
    add_case(&c, "q", "It is 1,234.50", "{\"answer\": \"1234.5\"}", 1);        // the normal form on both sides
    add_case(&c, "q", "It is 1.5", "{\"answer\": 1.50}", 1);                  // a number field as spelt
    add_case(&c, "q", "<answer> Paris </answer>", "{\"answer\": \"Paris\"}", 1);  // a text answer
    add_case(&c, "q", "<answer>Lyon</answer>", "{\"answer\": \"Paris\"}", 0);
    add_case(&c, "q", "no number at all", "{\"answer\": \"0\"}", 0);
    CtRewardsConfig cfg = config_of("exact_match");
    score_one_source(&cfg, &c);
}

TEST(grpo_rewards, exact_match_reads_a_number_field_with_all_its_digits) {
    Cases c = {0};
    // 12345678901234567890 is not a double: as one it would read 12345678901234567168.
    add_case(&c, "q", "The sum is 12345678901234567890.", "{\"answer\": 12345678901234567890}", 1);
    add_case(&c, "q", "The sum is 12345678901234567168.", "{\"answer\": 12345678901234567890}", 0);
    add_case(&c, "q", "-0", "{\"x\": {\"answer\": 5}, \"answer\": -0.0}", 1);  // the top-level member, not the nested one
    CtRewardsConfig cfg = config_of("exact_match");
    score_one_source(&cfg, &c);
}

TEST(grpo_rewards, answer_field_names_another_member) {
    Cases c = {0};
    add_case(&c, "q", "42", "{\"answer\": \"41\", \"solution\": \"42\"}", 1);
    add_case(&c, "q", "41", "{\"answer\": \"41\", \"solution\": \"42\"}", 0);
    CtRewardsConfig cfg = config_of("exact_match");
    cfg.answer_field = "solution";
    score_one_source(&cfg, &c);
}

TEST(grpo_rewards, a_prompt_without_the_answer_field_is_an_error_naming_field_and_completion) {
    Cases c = {0};
    add_case(&c, "q", "1", "{\"answer\": \"1\"}", 1);
    add_case(&c, "q", "1", "{\"solution\": \"1\"}", 1);
    const char *funcs[] = {"exact_match", "numeric"};
    for (int f = 0; f < 2; f++) {
        CtRewards r;
        CtRewardsConfig cfg = config_of(funcs[f]);
        CHECK(ct_rewards_init(&r, &cfg) == 0);
        double total[2];
        CHECK(ct_rewards_score(&r, c.in, c.n, NULL, total) == -1);
        CHECK_CONTAINS(ct_error_message(), "grpo.answer_field 'answer'");
        CHECK_CONTAINS(ct_error_message(), "completion 1");
        CHECK_CONTAINS(ct_error_message(), funcs[f]);
        ct_rewards_free(&r);
    }
    Cases bad = {0};
    add_case(&bad, "q", "1", "{\"answer\": [1]}", 1);
    add_case(&bad, "q", "1", "not json", 1);
    CtRewards r;
    CtRewardsConfig cfg = config_of("exact_match");
    CHECK(ct_rewards_init(&r, &cfg) == 0);
    double total[1];
    CHECK(ct_rewards_score(&r, &bad.in[0], 1, NULL, total) == -1);
    CHECK_CONTAINS(ct_error_message(), "neither a string nor a number");
    CHECK(ct_rewards_score(&r, &bad.in[1], 1, NULL, total) == -1);
    CHECK_CONTAINS(ct_error_message(), "not a JSON object");
    ct_rewards_free(&r);
}

TEST(grpo_rewards, numeric_accepts_answers_within_the_relative_tolerance) {
    Cases c = {0};
    const double tol = 0.01;
    const double truths[] = {250.0, -40.0, 0.5, 0.0};
    const double offsets[] = {0.004, -0.009, 0.011, -0.02, 0.0};  // relative to max(1, |y|)
    char completion[64], fields[64];
    for (int t = 0; t < 4; t++)
        for (int o = 0; o < 5; o++) {
            const double y = truths[t], x = y + offsets[o] * fmax(1.0, fabs(y));
            snprintf(completion, sizeof completion, "about <answer>%.6f</answer>", x);
            snprintf(fields, sizeof fields, o % 2 ? "{\"answer\": %g}" : "{\"answer\": \" %g \"}", y);
            add_case(&c, "q", completion, fields, fabs(offsets[o]) <= tol);
        }
    add_case(&c, "q", "<answer>seven</answer>", "{\"answer\": 7}", 0);  // not a number: 0, not an error
    CtRewardsConfig cfg = config_of("numeric");
    cfg.numeric_tolerance = tol;
    score_one_source(&cfg, &c);
}

TEST(grpo_rewards, numeric_with_a_field_that_is_not_a_number_is_an_error) {
    Cases c = {0};
    add_case(&c, "q", "7", "{\"answer\": \"seven\"}", 0);
    CtRewards r;
    CtRewardsConfig cfg = config_of("numeric");
    CHECK(ct_rewards_init(&r, &cfg) == 0);
    double total[1];
    CHECK(ct_rewards_score(&r, c.in, 1, NULL, total) == -1);
    CHECK_CONTAINS(ct_error_message(), "'seven'");
    CHECK_CONTAINS(ct_error_message(), "not a number");
    ct_rewards_free(&r);
}

// ---- regex and format ----

TEST(grpo_rewards, regex_matches_anywhere_unless_anchored) {
    Cases c = {0};
    add_case(&c, "q", "I have 12 apples", "{}", 1);
    add_case(&c, "q", "I have twelve apples", "{}", 0);
    CtRewardsConfig cfg = config_of("regex");
    cfg.regex = "[0-9]+ apples";
    score_one_source(&cfg, &c);
    Cases a = {0};
    add_case(&a, "q", "yes, 3", "{}", 1);
    add_case(&a, "q", "well, yes", "{}", 0);
    add_case(&a, "q", "yes\nand more", "{}", 1);
    cfg.regex = "^yes";
    score_one_source(&cfg, &a);
}

TEST(grpo_rewards, format_wants_think_then_answer_and_nothing_else) {
    Cases c = {0};
    add_case(&c, "q", "<think>3 + 4 = 7</think><answer>7</answer>", "{}", 1);
    add_case(&c, "q", "\n<think>\nso\n</think>\n\n<answer>\n7\n</answer>\n", "{}", 1);
    add_case(&c, "q", "<think></think> <answer></answer>", "{}", 1);
    add_case(&c, "q", "<answer>7</answer>", "{}", 0);                                   // no thinking
    add_case(&c, "q", "<think>x</think>", "{}", 0);                                     // no answer
    add_case(&c, "q", "<think>x</think>so <answer>7</answer>", "{}", 0);                // text between
    add_case(&c, "q", "<think>x</think><answer>7</answer> done", "{}", 0);              // text after
    add_case(&c, "q", "Sure. <think>x</think><answer>7</answer>", "{}", 0);             // text before
    add_case(&c, "q", "<answer>7</answer><think>x</think>", "{}", 0);                   // the wrong order
    add_case(&c, "q", "<think>a<think>b</think><answer>7</answer>", "{}", 0);           // a second think
    add_case(&c, "q", "<think>x</think><answer>7<answer>8</answer>", "{}", 0);          // a second answer
    add_case(&c, "q", "<think>x</think><answer>7</answer><answer>8</answer>", "{}", 0);
    add_case(&c, "q", "<think>x<answer>7</answer>", "{}", 0);                           // think not closed
    CtRewardsConfig cfg = config_of("format");
    score_one_source(&cfg, &c);
}

TEST(grpo_rewards, format_completes_a_think_block_the_prompt_opened) {
    Cases c = {0};
    const char *opened = "<|User|>What is 3 + 4?<|Assistant|><think>\n";  // DeepSeek-R1's generation prompt
    add_case(&c, opened, "3 + 4 = 7\n</think>\n<answer>7</answer>", "{}", 1);
    add_case(&c, opened, "<think>3 + 4 = 7</think><answer>7</answer>", "{}", 1);  // opened again: as it is
    add_case(&c, opened, "<answer>7</answer>", "{}", 0);                          // thinking never closed
    add_case(&c, opened, "a</think>b</think><answer>7</answer>", "{}", 0);
    add_case(&c, "Use <think> tags. Answer:", "3 + 4 = 7</think><answer>7</answer>", "{}", 0);  // not at its end
    add_case(&c, "<think>x</think>", "<answer>7</answer>", "{}", 0);  // a closed block in the prompt is the prompt's
    CtRewardsConfig cfg = config_of("format");
    score_one_source(&cfg, &c);
}

// The think responses of `ctrain synth instructions --task arithmetic --format think` (the library
// call the command makes) score 1 on format and on exact_match against their answer; the plain
// ones 0 on format and 1 on exact_match. Without and with a chat template's opened think block.
TEST(grpo_rewards, synthetic_arithmetic_think_responses_score_one) {
    for (int format = 0; format < 2; format++) {
        CtArithOptions o = CT_ARITH_OPTIONS_DEFAULT;
        o.format = format ? CT_ARITH_THINK : CT_ARITH_PLAIN;
        o.max_operands = 4;
        const char *path = ct_test_path(format ? "think.jsonl" : "plain.jsonl");
        FILE *f = fopen(path, "w");
        CHECK(f && ct_write_arithmetic_examples(f, &o, 40, 11) == 0);
        fclose(f);
        char *text = ct_test_read(path, NULL);
        CHECK(text);
        static Cases c;
        memset(&c, 0, sizeof c);
        for (char *line = strtok(text, "\n"); line && c.n + 1 < MAX_N; line = strtok(NULL, "\n")) {
            cJSON *e = cJSON_Parse(line);
            const char *prompt = cJSON_GetObjectItem(e, "prompt")->valuestring;
            const char *response = cJSON_GetObjectItem(e, "response")->valuestring;
            char fields[128], opened[256];
            snprintf(fields, sizeof fields, "{\"answer\": \"%s\"}", cJSON_GetObjectItem(e, "answer")->valuestring);
            add_case(&c, prompt, response, fields, format);
            if (format) {  // the same reasoning after a template that opened the block
                snprintf(opened, sizeof opened, "<|User|>%s<|Assistant|><think>\n", prompt);
                add_case(&c, opened, response + strlen("<think>"), fields, 1);
            }
            cJSON_Delete(e);
        }
        free(text);
        CHECK(c.n >= 40);
        CtRewardsConfig cfg = config_of("format");
        if (score_one_source(&cfg, &c) != 0) return;
        for (int j = 0; j < c.n; j++) c.expected[j] = 1;
        cfg = config_of("exact_match");
        if (score_one_source(&cfg, &c) != 0) return;
        cfg = config_of("numeric");
        if (score_one_source(&cfg, &c) != 0) return;
    }
}

// ---- the weighted sum ----

TEST(grpo_rewards, total_is_the_weighted_sum_over_sources_in_order) {
    Cases c = {0};
    add_case(&c, "q", "<think>1+1</think><answer>2</answer>", "{\"answer\": \"2\"}", 0);
    add_case(&c, "q", "<think>1+1</think><answer>3</answer>", "{\"answer\": \"2\"}", 0);
    add_case(&c, "q", "2, I think", "{\"answer\": \"2\"}", 0);
    add_case(&c, "q", "no idea", "{\"answer\": \"2\"}", 0);
    // per source, by construction: exact_match, format, regex ("think")
    const double expect[3][4] = {{1, 0, 1, 0}, {1, 1, 0, 0}, {1, 1, 1, 0}};
    const double w[3] = {0.5, 2, -0.25};
    CtRewardsConfig cfg = config_of(" exact_match , format,regex");
    cfg.weights = "0.5, 2,-0.25";
    cfg.regex = "think";
    CtRewards r;
    CHECK(ct_rewards_init(&r, &cfg) == 0);
    CHECK_EQ_INT(ct_rewards_count(&r), 3);
    CHECK(ct_rewards_model_bytes(&r) == 0);
    CHECK_STR_EQ(ct_rewards_name(&r, 0), "exact_match");
    CHECK_STR_EQ(ct_rewards_name(&r, 1), "format");
    CHECK_STR_EQ(ct_rewards_name(&r, 2), "regex");
    CHECK(ct_rewards_kind(&r, 1) == CT_REWARD_FORMAT);
    double per[3 * 4], total[4];
    CHECK(ct_rewards_score(&r, c.in, 4, per, total) == 0);
    for (int j = 0; j < 4; j++) {
        double sum = 0;
        for (int i = 0; i < 3; i++) {
            CHECK(ct_rewards_weight(&r, i) == w[i]);
            CHECK_MSG(per[i * 4 + j] == expect[i][j], "source %d completion %d: %g", i, j, per[i * 4 + j]);
            sum += w[i] * expect[i][j];
        }
        CHECK_MSG(total[j] == sum, "completion %d: %.17g, expected %.17g", j, total[j], sum);
    }
    ct_rewards_free(&r);
    cfg.weights = "";  // TRL's default: every weight 1
    CHECK(ct_rewards_init(&r, &cfg) == 0);
    CHECK(ct_rewards_score(&r, c.in, 4, NULL, total) == 0);
    for (int j = 0; j < 4; j++) CHECK(total[j] == expect[0][j] + expect[1][j] + expect[2][j]);
    ct_rewards_free(&r);
}

// ---- configuration errors ----

static void check_init_error(CtRewardsConfig cfg, const char *key, const char *what) {
    CtRewards r;
    ct_error_clear();
    if (ct_rewards_init(&r, &cfg) == 0) {
        ct_rewards_free(&r);
        ct_test_fail(__FILE__, __LINE__, "funcs '%s': init succeeded, expected an error with '%s'", cfg.funcs, what);
        return;
    }
    const char *m = ct_error_message();
    if (!strstr(m, key) || !strstr(m, what))
        ct_test_fail(__FILE__, __LINE__, "expected '%s' and '%s' in: %s", key, what, m);
    if (strchr(m, '\n')) ct_test_fail(__FILE__, __LINE__, "not one line: %s", m);
}

TEST(grpo_rewards, each_configuration_error_names_its_key_and_problem) {
    check_init_error(config_of(""), "grpo.reward_funcs", "empty");
    check_init_error(config_of(NULL), "grpo.reward_funcs", "empty");
    check_init_error(config_of("exact_match,bleu"), "grpo.reward_funcs", "unknown reward function 'bleu'");
    check_init_error(config_of("format, exact_match,format"), "grpo.reward_funcs", "'format' is listed twice");
    check_init_error(config_of("format,,exact_match"), "grpo.reward_funcs", "empty name");
    CtRewardsConfig c = config_of("format,exact_match");
    c.weights = "1";
    check_init_error(c, "grpo.reward_weights", "1 weight for 2 reward functions");
    c.weights = "1,2,3";
    check_init_error(c, "grpo.reward_weights", "3 weights for 2 reward functions");
    c.weights = "1,two";
    check_init_error(c, "grpo.reward_weights", "'two' is not a number");
    c.weights = "1,nan";
    check_init_error(c, "grpo.reward_weights", "'nan' is not a number");
    c = config_of("regex");
    check_init_error(c, "grpo.reward_regex", "needs a pattern");
    c.regex = "(unclosed";
    check_init_error(c, "grpo.reward_regex '(unclosed'", "not a POSIX extended regular expression: ");
    c = config_of("command");
    check_init_error(c, "grpo.reward_command", "needs a command line");
    c = config_of("model");
    check_init_error(c, "grpo.reward_model", "needs a reward-model checkpoint");
    c.model = ct_test_path("missing.h5");
    check_init_error(c, "grpo.reward_model", "missing.h5");
    c = config_of("numeric");
    c.numeric_tolerance = -0.1;
    check_init_error(c, "grpo.numeric_tolerance", "≥ 0");
    // a source's settings are needed only when it is listed
    CtRewards r;
    c = config_of("format");
    c.regex = "(unclosed";
    CHECK(ct_rewards_init(&r, &c) == 0);
    ct_rewards_free(&r);
}

// ---- command ----

// Prints 1 for a completion that contains a 7, else 0 (awk, reading the JSON line as text).
static const char *SEVEN_AWK = "{ split($0, a, \"\\\"completion\\\": \"); split(a[2], b, \", \\\"fields\\\": \");\n"
                               "  print (index(b[1], \"7\") ? 1 : 0) }\n";

// Completions that give one digit d, as "<answer>d</answer>" or "so it is d.": each holds a 7 exactly
// when its answer is 7 (the prompt and the fields hold a 7 too, which the command must not read).
static void seven_cases(Cases *c) {
    CtRng rng;
    ct_rng_seed(&rng, 9);
    char completion[64];
    for (int k = 0; k < 20; k++) {
        const int d = (int)ct_rng_below(&rng, 10);
        snprintf(completion, sizeof completion, k % 2 ? "so it is %d." : "<answer>%d</answer>", d);
        add_case(c, "What is it? (hint: 7)", completion, "{\"answer\": \"7\", \"n\": 7}", d == 7);
    }
}

TEST(grpo_rewards, command_scores_with_the_numbers_a_program_prints) {
    Cases c = {0};
    seven_cases(&c);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "awk -f '%s'", ct_test_write("seven.awk", SEVEN_AWK));
    CtRewardsConfig cfg = config_of("command");
    cfg.command = cmd;
    score_one_source(&cfg, &c);
    Cases one = {0};  // numbers as printed: white space around, exponents, negatives
    for (int j = 0; j < 4; j++) add_case(&one, "q", "c", "{}", (const double[]){0.25, -3, 1500, 0}[j]);
    cfg.command = "cat >/dev/null; printf ' 0.25\\n-3 \\n1.5e3\\r\\n0'";
    score_one_source(&cfg, &one);
}

TEST(grpo_rewards, command_reads_one_json_line_per_completion) {
    Cases c = {0};
    add_case(&c, "Say \"hi\"\n\tplease", "hi \\ there\x01", "{\"answer\": 12345678901234567890, \"meta\": {\"k\": [1, 2]}}", 0);
    add_case(&c, "caf\xc3\xa9", "cut \xe2\x82 short", "{}", 0);  // a UTF-8 sequence cut short: U+FFFD
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cat > '%s'; echo 0; echo 0", ct_test_path("seen.jsonl"));
    CtRewardsConfig cfg = config_of("command");
    cfg.command = cmd;
    if (score_one_source(&cfg, &c) != 0) return;
    char *seen = ct_test_read(ct_test_path("seen.jsonl"), NULL);
    CHECK(seen);
    char *second = strchr(seen, '\n');
    CHECK(second && strchr(second + 1, '\n') && strchr(second + 1, '\n')[1] == '\0');  // two lines, each ended
    *second++ = '\0';
    CHECK_CONTAINS(seen, "\"fields\": {\"answer\": 12345678901234567890, \"meta\": {\"k\": [1, 2]}}");  // the object as given
    cJSON *a = cJSON_Parse(seen), *b = cJSON_Parse(second);
    CHECK(a && b);
    CHECK_STR_EQ(cJSON_GetObjectItem(a, "prompt")->valuestring, c.prompt[0]);
    CHECK_STR_EQ(cJSON_GetObjectItem(a, "completion")->valuestring, c.completion[0]);
    CHECK(cJSON_IsObject(cJSON_GetObjectItem(a, "fields")));
    CHECK_STR_EQ(cJSON_GetObjectItem(b, "prompt")->valuestring, "caf\xc3\xa9");
    CHECK_STR_EQ(cJSON_GetObjectItem(b, "completion")->valuestring, "cut \xef\xbf\xbd\xef\xbf\xbd short");
    CHECK(cJSON_IsObject(cJSON_GetObjectItem(b, "fields")) && !cJSON_GetObjectItem(b, "fields")->child);
    cJSON_Delete(a);
    cJSON_Delete(b);
    free(seen);
}

// The command's failures: each an error naming the command and what went wrong, never a score.
static void check_command_error(const char *command, int n, const char *what) {
    Cases c = {0};
    for (int j = 0; j < n; j++) add_case(&c, "q", "c", "{}", 0);
    CtRewards r;
    CtRewardsConfig cfg = config_of("command");
    cfg.command = command;
    if (ct_rewards_init(&r, &cfg) != 0) {
        ct_test_fail(__FILE__, __LINE__, "init: %s", ct_error_message());
        return;
    }
    double total[MAX_N];
    ct_error_clear();
    const int rc = ct_rewards_score(&r, c.in, n, NULL, total);
    ct_rewards_free(&r);
    const char *m = ct_error_message();
    char named[300];
    snprintf(named, sizeof named, "grpo.reward_command '%.60s", command);
    if (rc != -1 || !strstr(m, named) || !strstr(m, what) || strchr(m, '\n'))
        ct_test_fail(__FILE__, __LINE__, "'%s': rc %d, expected one line with '%s' and '%s': %s", command, rc, named, what, m);
}

TEST(grpo_rewards, command_failures_are_errors_that_name_the_command) {
    check_command_error("cat >/dev/null; echo 1; echo 1; exit 3", 2, "exited with status 3");
    check_command_error("kill -9 $$", 2, "killed by signal 9");
    check_command_error("no-such-program-ctrain-test 2>/dev/null", 2, "status 127");
    check_command_error("head -n 1 >/dev/null; echo 1", 3, "printed 1 line for 3 completions");
    check_command_error("cat >/dev/null; printf '1\\n1\\n1\\n1\\n'", 3, "printed 4 lines for 3 completions");
    check_command_error("cat >/dev/null; printf '1\\nabc\\n1\\n'", 3, "line 2 of its output is not a finite number: 'abc'");
    check_command_error("cat >/dev/null; printf '1\\n\\n1\\n'", 3, "line 2 of its output is not a finite number: ''");
    check_command_error("cat >/dev/null; printf '1\\n2 3\\n1\\n'", 3, "line 2 of its output is not a finite number: '2 3'");
    check_command_error("cat >/dev/null; printf 'nan\\n'", 1, "line 1 of its output is not a finite number: 'nan'");
    check_command_error("cat >/dev/null; printf '1\\n-inf\\n'", 2, "line 2 of its output is not a finite number: '-inf'");
    check_command_error("printf '%0100d\\n' 0 | tr 0 x", 1, "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...'");  // quoted, cut
    check_command_error("true; cat >/dev/null; echo 1 # a long command line that the error message cuts at sixty bytes", 2,
                        "...': it printed 1 line for 2 completions");
    setenv("TMPDIR", ct_test_path("no-such-folder"), 1);  // where its input file cannot be made
    check_command_error("cat >/dev/null; echo 1", 1, "cannot create its input file in ");
    CHECK_CONTAINS(ct_error_message(), "no-such-folder");
}

// The Python example of docs/grpo.md ("Reward sources"), read from the page and run as a command.
TEST(grpo_rewards, command_runs_the_python_example_of_the_docs) {
    const char *root = getenv("CTRAIN_ROOT");
    if (!root) SKIP("CTRAIN_ROOT is not set (make test sets it)");
    if (ct_test_run("command -v python3", NULL) != 0) SKIP("no python3 on PATH");
    char path[1024];
    snprintf(path, sizeof path, "%s/docs/grpo.md", root);
    char *doc = ct_test_read(path, NULL);
    CHECK(doc);
    char *section = strstr(doc, "## Reward sources"), *code = section ? strstr(section, "```python\n") : NULL;
    char *end = code ? strstr(code + 10, "```") : NULL;
    CHECK_MSG(end, "%s: no ```python block under \"## Reward sources\"", path);
    *end = '\0';
    char cmd[512];
    snprintf(cmd, sizeof cmd, "python3 '%s'", ct_test_write("contains_answer.py", code + 10));
    free(doc);
    Cases c = {0};
    seven_cases(&c);  // the answer 7 as a string; as a number below
    add_case(&c, "q", "it is 12", "{\"answer\": 12}", 1);
    add_case(&c, "q", "it is 13", "{\"answer\": 12}", 0);
    CtRewardsConfig cfg = config_of("command");
    cfg.command = cmd;
    score_one_source(&cfg, &c);
}

// Bit for bit: a command that prints the same 0/1 as exact_match gives the same totals.
TEST(grpo_rewards, command_and_exact_match_agree_to_the_bit_on_the_same_verdicts) {
    Cases c = {0};
    seven_cases(&c);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "awk -f '%s'", ct_test_write("seven.awk", SEVEN_AWK));
    CtRewardsConfig a = config_of("exact_match"), b = config_of("command"), both = config_of("exact_match,command");
    a.weights = b.weights = "0.3";
    b.command = both.command = cmd;
    both.weights = "0.1,0.2";
    CtRewards ra, rb, rboth;
    CHECK(ct_rewards_init(&ra, &a) == 0);
    CHECK(ct_rewards_init(&rb, &b) == 0);
    CHECK(ct_rewards_init(&rboth, &both) == 0);
    double ta[MAX_N], tb[MAX_N], per[2 * MAX_N], tboth[MAX_N];
    CHECK(ct_rewards_score(&ra, c.in, c.n, NULL, ta) == 0);
    CHECK(ct_rewards_score(&rb, c.in, c.n, NULL, tb) == 0);
    CHECK(ct_rewards_score(&rboth, c.in, c.n, per, tboth) == 0);
    int ones = 0;
    for (int j = 0; j < c.n; j++) ones += per[j] == 1;
    CHECK_MSG(ones > 0 && ones < c.n, "%d of %d completions hold the answer: the cases do not tell the sources apart", ones,
              c.n);
    CHECK(memcmp(ta, tb, sizeof(double) * (size_t)c.n) == 0);
    CHECK(memcmp(per, per + c.n, sizeof(double) * (size_t)c.n) == 0);
    for (int j = 0; j < c.n; j++) CHECK(tboth[j] == 0.1 * per[j] + 0.2 * per[c.n + j]);
    ct_rewards_free(&ra);
    ct_rewards_free(&rb);
    ct_rewards_free(&rboth);
}

// ---- model ----

enum { PAD = 3 };

// A tiny llama reward model (context 16, vocabulary 37, reward_pad_id PAD) with random
// parameters, saved to `name`; *m keeps it (created for one row of 16 tokens).
static const char *save_reward_model(const char *name, CtModel *m, int reward_head) {
    CtModelConfig cfg = tiny_config(CT_ARCH_LLAMA);
    cfg.reward_head = reward_head;
    cfg.reward_pad_id = reward_head ? PAD : 0;
    if (ct_model_create(m, &cfg, ct_ops_cpu(), 1, cfg.max_seq_len, 0) != 0) return NULL;
    tiny_randomize_params(m, 17);
    const char *path = ct_test_path(name);
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    if (ct_checkpoint_save(path, m, NULL, &meta) != 0) return NULL;
    return path;
}

// The score of seq[0..n) done by hand: its last max_seq_len tokens, read at the last token that
// is not PAD, one row through ct_model_reward_forward.
static double score_by_hand(CtModel *m, const int32_t *seq, int n) {
    const int T = m->config.max_seq_len;
    if (n > T) {
        seq += n - T;
        n = T;
    }
    int last = n - 1;
    while (last > 0 && seq[last] == PAD) last--;
    float s;
    CtBatch b = {.tokens = seq, .B = 1, .T = n};
    ct_model_reward_forward(m, &b, &last, &s);
    return s;
}

TEST(grpo_rewards, model_scores_equal_the_reward_forward_of_each_sequence) {
    CtModel m;
    const char *path = save_reward_model("rm.h5", &m, 1);
    CHECK_MSG(path, "%s", ct_error_message());
    enum { N = 8 };
    static const int n_prompt[N] = {4, 6, 3, 10, 2, 5, 16, 3};
    static const int n_completion[N] = {5, 2, 8, 12, 1, 4, 3, 18};  // rows 3, 6, 7 exceed 16 tokens (7: its completion alone)
    int32_t ids[N][32];
    CtRewardInput in[N];
    CtRng rng;
    ct_rng_seed(&rng, 23);
    for (int j = 0; j < N; j++) {
        for (int k = 0; k < n_prompt[j] + n_completion[j]; k++) ids[j][k] = 4 + (int32_t)ct_rng_below(&rng, 33);
        in[j] = (CtRewardInput){.prompt = "p", .completion = "c", .fields = "{}", .prompt_ids = ids[j],
                                .completion_ids = ids[j] + n_prompt[j], .n_prompt = n_prompt[j],
                                .n_completion = n_completion[j]};
    }
    ids[1][7] = PAD;  // a completion that stopped at the padding id (the EOS): scored before it
    ids[5][8] = ids[5][7] = PAD;
    CtRewardsConfig cfg = config_of("model");
    cfg.model = path;
    cfg.vocab_size = 37;
    cfg.model_batch = 3;  // three forwards: 3 + 3 + 2 rows
    CtRewards r;
    CHECK_MSG(ct_rewards_init(&r, &cfg) == 0, "%s", ct_error_message());
    double per[N], total[N];
    CHECK_MSG(ct_rewards_score(&r, in, N, per, total) == 0, "%s", ct_error_message());
    CHECK(ct_rewards_model_bytes(&r) > m.n_params * sizeof(float));
    ct_rewards_free(&r);
    double spread = 0;
    for (int j = 0; j < N; j++) {
        const double want = score_by_hand(&m, ids[j], n_prompt[j] + n_completion[j]);
        CHECK_MSG(fabs(per[j] - want) <= 1e-5 * fmax(1.0, fabs(want)), "row %d: %.9g, by hand %.9g", j, per[j], want);
        CHECK(total[j] == per[j]);
        spread = fmax(spread, fabs(per[j] - per[0]));
    }
    CHECK_MSG(spread > 1e-3, "every sequence scored %g: the check cannot tell rows apart", per[0]);
    // the pad rule and the cut matter: scored at the very last token, or from the start, row 1 and 3 differ
    float s_pad;
    int last_pad = 7;
    CtBatch b = {.tokens = ids[1], .B = 1, .T = 8};
    ct_model_reward_forward(&m, &b, &last_pad, &s_pad);
    CHECK(fabs(s_pad - per[1]) > 1e-4);
    CHECK(fabs(score_by_hand(&m, ids[3], 16) - per[3]) > 1e-4);
    ct_model_free(&m);
}

TEST(grpo_rewards, model_must_be_a_reward_model_of_the_policys_vocabulary) {
    CtModel m;
    const char *lm = save_reward_model("lm.h5", &m, 0);
    CHECK(lm);
    ct_model_free(&m);
    CtRewardsConfig c = config_of("model");
    c.model = lm;
    check_init_error(c, "grpo.reward_model", "is not a reward model");
    const char *rm = save_reward_model("rm.h5", &m, 1);
    CHECK(rm);
    ct_model_free(&m);
    c.model = rm;
    c.vocab_size = 50;
    check_init_error(c, "grpo.reward_model", "vocabulary of 37 tokens, the policy 50");
    c.vocab_size = 37;
    c.tokenizer_hash = 0x1234;  // the checkpoint has no fingerprint: not checked
    CtRewards r;
    CHECK_MSG(ct_rewards_init(&r, &c) == 0, "%s", ct_error_message());
    ct_rewards_free(&r);
}
