// The ctrain binary as a user meets it: help, version, usage errors (exit 2), runtime errors
// (exit 1, one line), and the config command.
#include "tests/test.h"

static int ctrain(const char *args, char **out) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' %s", ct_test_bin(), args);
    return ct_test_run(cmd, out);
}

// The number of lines in s (a last line without '\n' counts).
static int count_lines(const char *s) {
    int n = 0;
    for (const char *p = s; *p; p++) n += *p == '\n';
    return n + (*s && s[strlen(s) - 1] != '\n');
}

TEST(cli, help_and_version) {
    char *out;
    CHECK_EQ_INT(ctrain("--help", &out), 0);
    CHECK_CONTAINS(out, "usage: ctrain <command> [options]");
    CHECK_CONTAINS(out, "config");
    free(out);
    CHECK_EQ_INT(ctrain("--version", &out), 0);
    CHECK_CONTAINS(out, "ctrain 0.");
    CHECK_CONTAINS(out, "blas:");
    CHECK_CONTAINS(out, "cuda:");
    CHECK_CONTAINS(out, "mpi:");
    free(out);
    CHECK_EQ_INT(ctrain("config --help", &out), 0);
    CHECK_CONTAINS(out, "usage: ctrain config");
    CHECK_CONTAINS(out, "--keys");
    free(out);
    CHECK_EQ_INT(ctrain("help config", &out), 0);
    CHECK_CONTAINS(out, "usage: ctrain config");
    free(out);
}

TEST(cli, unknown_commands_and_options_exit_2_with_usage) {
    char *out;
    CHECK_EQ_INT(ctrain("", &out), 2);
    CHECK_CONTAINS(out, "usage: ctrain");
    free(out);
    CHECK_EQ_INT(ctrain("frobnicate", &out), 2);
    CHECK_CONTAINS(out, "ctrain: unknown command 'frobnicate'");
    CHECK_CONTAINS(out, "usage: ctrain <command>");
    free(out);
    CHECK_EQ_INT(ctrain("--frobnicate", &out), 2);
    CHECK_CONTAINS(out, "unknown option '--frobnicate'");
    free(out);
    CHECK_EQ_INT(ctrain("config --frobnicate", &out), 2);
    CHECK_CONTAINS(out, "ctrain config: unknown option '--frobnicate'");
    CHECK_CONTAINS(out, "usage: ctrain config");
    free(out);
    CHECK_EQ_INT(ctrain("config a.json b.json", &out), 2);
    CHECK_CONTAINS(out, "unexpected argument 'b.json'");
    free(out);
    CHECK_EQ_INT(ctrain("config --check", &out), 2);
    CHECK_CONTAINS(out, "--check needs a CONFIG file");
    free(out);
}

TEST(cli, config_print_fills_defaults_and_applies_overrides) {
    const char *path = ct_test_write("run.json", "{\"run\": {\"seed\": 99}}");
    char args[1200], *out;
    snprintf(args, sizeof args, "config --print '%s' --run.device=cpu --run.threads 3", path);
    CHECK_EQ_INT(ctrain(args, &out), 0);
    CHECK_CONTAINS(out, "\"seed\":\t99");
    CHECK_CONTAINS(out, "\"device\":\t\"cpu\"");
    CHECK_CONTAINS(out, "\"threads\":\t3");
    CHECK_CONTAINS(out, "\"out_dir\":\t\"out\"");
    free(out);
    snprintf(args, sizeof args, "config --check '%s'", path);
    CHECK_EQ_INT(ctrain(args, &out), 0);
    CHECK_CONTAINS(out, "run.json: ok");
    free(out);
}

TEST(cli, config_errors_are_one_line_and_exit_1) {
    const char *bad[][2] = {
        {"bad.json", "{\"run\": {\"seed\": 1,}}"},
        {"unknown.json", "{\"run\": {\"sed\": 1}}"},
        {"type.json", "{\"run\": {\"threads\": \"two\"}}"},
        {"range.json", "{\"run\": {\"threads\": -2}}"},
        {"choice.json", "{\"run\": {\"device\": \"tpu\"}}"},
    };
    const char *expect[] = {
        "bad.json:1:", "unknown key 'run.sed' (did you mean 'run.seed'?", "'run.threads' must be an integer, got a string",
        "'run.threads' = -2 is out of range (allowed: 0 to 4096)", "'run.device' = 'tpu' is not allowed (choose cpu, cuda or auto)",
    };
    for (int i = 0; i < 5; i++) {
        const char *path = ct_test_write(bad[i][0], bad[i][1]);
        char args[1200], *out;
        snprintf(args, sizeof args, "config --check '%s'", path);
        CHECK_EQ_INT(ctrain(args, &out), 1);
        CHECK_CONTAINS(out, "ctrain: ");
        CHECK_CONTAINS(out, bad[i][0]);
        CHECK_CONTAINS(out, expect[i]);
        CHECK_MSG(count_lines(out) == 1, "expected one line, got: %s", out);
        free(out);
    }
    char *out;
    CHECK_EQ_INT(ctrain("config --run.seed=-1", &out), 1);
    CHECK_CONTAINS(out, "command line: 'run.seed' = -1 is out of range");
    free(out);
}

TEST(cli, docs_config_md_matches_the_schema) {
    // docs/config.md is the output of `ctrain config --keys --markdown` under a short header;
    // regenerate it with `make docs` when keys change.
    const char *root = getenv("CTRAIN_ROOT");
    if (!root) SKIP("CTRAIN_ROOT is not set (run through make test)");
    char path[1024], *doc, *out;
    snprintf(path, sizeof path, "%s/docs/config.md", root);
    doc = ct_test_read(path, NULL);
    CHECK_MSG(doc != NULL, "cannot read %s", path);
    CHECK_EQ_INT(ctrain("config --keys --markdown 2>/dev/null", &out), 0);
    CHECK_MSG(strstr(doc, out) != NULL, "docs/config.md is out of date: run make docs");
    free(doc);
    free(out);
}
