#include <string.h>

#include "core/args.h"
#include "core/error.h"
#include "tests/test.h"

static const CtOption options[] = {
    {"tokenizer", "PATH", "tokenizer file", 0},
    {"input", "FILE", "input files", 1},
    {"threads", "N", "threads", 0},
    {"scale", "X", "a number", 0},
    {"allow-special", NULL, "a flag", 0},
};
static const int n_options = (int)(sizeof options / sizeof options[0]);

static int parse(CtArgs *args, int allow_overrides, const char *line) {
    static char storage[1024];
    static char *argv[64];
    snprintf(storage, sizeof storage, "%s", line);
    int argc = 0;
    for (char *tok = strtok(storage, " "); tok && argc < 64; tok = strtok(NULL, " ")) argv[argc++] = tok;
    return ct_args_parse(args, options, n_options, argc, argv, allow_overrides);
}

TEST(core, args_values_flags_multi_and_positionals) {
    CtArgs a;
    CHECK_EQ_INT(parse(&a, 0, "pos1 --tokenizer=t.json --input a.txt b.txt c.txt --allow-special --threads 4 pos2"), 0);
    CHECK_STR_EQ(ct_args_get(&a, "tokenizer"), "t.json");
    const char *inputs[8];
    CHECK_EQ_INT(ct_args_get_all(&a, "input", inputs, 8), 3);
    CHECK_STR_EQ(inputs[2], "c.txt");
    CHECK(ct_args_has(&a, "allow-special"));
    CHECK(!ct_args_has(&a, "scale"));
    long threads;
    CHECK_EQ_INT(ct_args_get_long(&a, "threads", 1, &threads), 0);
    CHECK_EQ_INT(threads, 4);
    double scale;
    CHECK_EQ_INT(ct_args_get_double(&a, "scale", 0.5, &scale), 0);
    CHECK(scale == 0.5);
    CHECK_EQ_INT(a.n_positionals, 2);
    CHECK_STR_EQ(a.positionals[0], "pos1");
    CHECK_STR_EQ(a.positionals[1], "pos2");
}

TEST(core, args_double_dash_ends_options_and_negative_values_work) {
    CtArgs a;
    CHECK_EQ_INT(parse(&a, 0, "--scale -0.5 -- --not-an-option"), 0);
    double scale;
    CHECK_EQ_INT(ct_args_get_double(&a, "scale", 0, &scale), 0);
    CHECK(scale == -0.5);
    CHECK_EQ_INT(a.n_positionals, 1);
    CHECK_STR_EQ(a.positionals[0], "--not-an-option");
}

TEST(core, args_errors_say_what_is_wrong) {
    CtArgs a;
    CHECK_EQ_INT(parse(&a, 0, "--tokenzier x"), -1);
    CHECK_STR_EQ(ct_error_message(), "unknown option '--tokenzier'");
    CHECK_EQ_INT(parse(&a, 0, "--tokenizer"), -1);
    CHECK_STR_EQ(ct_error_message(), "option '--tokenizer' needs a value (PATH)");
    CHECK_EQ_INT(parse(&a, 0, "--tokenizer --threads 2"), -1);
    CHECK_CONTAINS(ct_error_message(), "needs a value");
    CHECK_EQ_INT(parse(&a, 0, "--allow-special=yes"), -1);
    CHECK_STR_EQ(ct_error_message(), "option '--allow-special' takes no value");
    CHECK_EQ_INT(parse(&a, 0, "-x"), -1);
    CHECK_CONTAINS(ct_error_message(), "unknown option '-x'");
    CHECK_EQ_INT(parse(&a, 0, "--optim.lr=1"), -1);
    CHECK_CONTAINS(ct_error_message(), "takes no config overrides");
    long v;
    CHECK_EQ_INT(parse(&a, 0, "--threads 4x"), 0);
    CHECK_EQ_INT(ct_args_get_long(&a, "threads", 1, &v), -1);
    CHECK_STR_EQ(ct_error_message(), "option '--threads' expects an integer, got '4x'");
}

TEST(core, args_collect_config_overrides) {
    CtArgs a;
    CHECK_EQ_INT(parse(&a, 1, "cfg.json --optim.lr=3e-4 --run.seed 7 --threads 2"), 0);
    CHECK_EQ_INT(a.n_overrides, 2);
    CHECK_STR_EQ(a.override_keys[0], "optim.lr");
    CHECK_STR_EQ(a.override_values[0], "3e-4");
    CHECK_STR_EQ(a.override_keys[1], "run.seed");
    CHECK_STR_EQ(a.override_values[1], "7");
    CHECK_EQ_INT(a.n_positionals, 1);
}

TEST(core, strict_number_parsing) {
    long l;
    double d;
    CHECK_EQ_INT(ct_parse_long("-12", &l), 0);
    CHECK_EQ_INT(l, -12);
    CHECK_EQ_INT(ct_parse_long("12.5", &l), -1);
    CHECK_EQ_INT(ct_parse_long("", &l), -1);
    CHECK_EQ_INT(ct_parse_long("99999999999999999999999", &l), -1);
    CHECK_EQ_INT(ct_parse_double("3e-4", &d), 0);
    CHECK(d == 3e-4);
    CHECK_EQ_INT(ct_parse_double("nan", &d), -1);
    CHECK_EQ_INT(ct_parse_double("inf", &d), -1);
    CHECK_EQ_INT(ct_parse_double("1.0.0", &d), -1);
}
