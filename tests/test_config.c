// The config mechanism, on a schema of its own that has every type (so these tests do not
// change as ctrain's real keys grow), plus ctrain's own schema.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/error.h"
#include "tests/test.h"
#include "train/loop/run_config.h"

typedef struct {
    struct {
        int layers;
        int64_t tokens;
        float lr;
        double eps;
        int bias;
        char name[16];
        int arch;
    } model;
    struct {
        int steps;
    } train;
} TestConfig;

static const CtConfigSection sections[] = {{"model", "The model."}, {"train", "The loop."}};
static const CtConfigKey keys[] = {
    CT_CFG_KEY_INT(TestConfig, model.layers, "model.layers", "12", 1, 256, "layers"),
    CT_CFG_KEY_INT(TestConfig, model.tokens, "model.tokens", "10000000000", 0, 1e15, "tokens"),
    CT_CFG_KEY_FLOAT(TestConfig, model.lr, "model.lr", "3e-4", 0, 1, "learning rate"),
    CT_CFG_KEY_FLOAT(TestConfig, model.eps, "model.eps", "1e-5", 0, INFINITY, "epsilon"),
    CT_CFG_KEY_BOOL(TestConfig, model.bias, "model.bias", "true", "biases"),
    CT_CFG_KEY_STRING(TestConfig, model.name, "model.name", "gpt", "a name"),
    CT_CFG_KEY_ENUM(TestConfig, model.arch, "model.arch", "gpt2", "gpt2|llama", "family"),
    CT_CFG_KEY_INT(TestConfig, train.steps, "train.steps", "100", 1, 1000000, "steps"),
};
static const CtConfigSchema schema = {sections, 2, keys, (int)(sizeof keys / sizeof keys[0])};

static int load(TestConfig *cfg, const char *json) {
    ct_config_validate_schema(&schema);
    ct_config_set_defaults(&schema, cfg);
    return ct_config_apply_text(&schema, cfg, json, "run.json");
}

TEST(config, defaults_fill_every_key) {
    TestConfig cfg;
    CHECK_EQ_INT(load(&cfg, "{}"), 0);
    CHECK_EQ_INT(cfg.model.layers, 12);
    CHECK(cfg.model.tokens == 10000000000LL);
    CHECK(cfg.model.lr == 3e-4f);
    CHECK(cfg.model.eps == 1e-5);
    CHECK_EQ_INT(cfg.model.bias, 1);
    CHECK_STR_EQ(cfg.model.name, "gpt");
    CHECK_EQ_INT(cfg.model.arch, 0);
    CHECK_EQ_INT(cfg.train.steps, 100);
}

TEST(config, file_values_and_overrides_apply_in_order) {
    TestConfig cfg;
    CHECK_EQ_INT(load(&cfg, "{\"model\": {\"layers\": 4, \"arch\": \"llama\", \"bias\": false, \"lr\": 0.001},"
                            " \"train\": {\"steps\": 20}}"),
                 0);
    CHECK_EQ_INT(cfg.model.layers, 4);
    CHECK_EQ_INT(cfg.model.arch, 1);
    CHECK_EQ_INT(cfg.model.bias, 0);
    CHECK(cfg.model.lr == 0.001f);
    CHECK_EQ_INT(cfg.train.steps, 20);
    CHECK_EQ_INT(ct_config_apply_override(&schema, &cfg, "model.layers", "6"), 0);
    CHECK_EQ_INT(ct_config_apply_override(&schema, &cfg, "model.name", "tiny"), 0);
    CHECK_EQ_INT(ct_config_apply_override(&schema, &cfg, "model.bias", "true"), 0);
    CHECK_EQ_INT(ct_config_apply_override(&schema, &cfg, "model.eps", "1e-6"), 0);
    CHECK_EQ_INT(cfg.model.layers, 6);
    CHECK_STR_EQ(cfg.model.name, "tiny");
    CHECK_EQ_INT(cfg.model.bias, 1);
    CHECK(cfg.model.eps == 1e-6);
}

TEST(config, bad_json_names_file_line_and_column) {
    TestConfig cfg;
    CHECK_EQ_INT(load(&cfg, "{\n  \"model\": {\n    \"layers\": 4,\n  }\n}"), -1);
    CHECK_CONTAINS(ct_error_message(), "run.json:4:");
    CHECK_CONTAINS(ct_error_message(), "invalid JSON near '}'");
    CHECK_EQ_INT(load(&cfg, "{\"model\": {\"layers\": 4}"), -1);
    CHECK_CONTAINS(ct_error_message(), "run.json:1:");
    CHECK_CONTAINS(ct_error_message(), "invalid JSON");
    CHECK_EQ_INT(load(&cfg, "{} trailing"), -1);
    CHECK_CONTAINS(ct_error_message(), "invalid JSON near 'trailing'");
    CHECK_EQ_INT(load(&cfg, "[1, 2]"), -1);
    CHECK_CONTAINS(ct_error_message(), "run.json: the top level must be a JSON object of sections");
}

TEST(config, unknown_keys_and_sections_are_errors_with_suggestions) {
    TestConfig cfg;
    CHECK_EQ_INT(load(&cfg, "{\"model\": {\"layer\": 4}}"), -1);
    CHECK_STR_EQ(ct_error_message(),
                 "run.json: unknown key 'model.layer' (did you mean 'model.layers'? keys in 'model': layers, "
                 "tokens, lr, eps, bias, name, arch)");
    CHECK_EQ_INT(load(&cfg, "{\"modle\": {}}"), -1);
    CHECK_STR_EQ(ct_error_message(), "run.json: unknown section 'modle' (did you mean 'model'? sections: model, train)");
    CHECK_EQ_INT(load(&cfg, "{\"optimizer\": {}}"), -1);
    CHECK_STR_EQ(ct_error_message(), "run.json: unknown section 'optimizer' (sections: model, train)");
    ct_config_set_defaults(&schema, &cfg);
    CHECK_EQ_INT(ct_config_apply_override(&schema, &cfg, "train.step", "5"), -1);
    CHECK_CONTAINS(ct_error_message(), "command line: unknown key 'train.step' (did you mean 'train.steps'?");
    CHECK_EQ_INT(ct_config_apply_override(&schema, &cfg, "nothing.x", "5"), -1);
    CHECK_CONTAINS(ct_error_message(), "command line: unknown section 'nothing'");
}

TEST(config, wrong_types_are_errors_naming_the_key) {
    TestConfig cfg;
    CHECK_EQ_INT(load(&cfg, "{\"model\": {\"layers\": \"4\"}}"), -1);
    CHECK_STR_EQ(ct_error_message(), "run.json: 'model.layers' must be an integer, got a string");
    CHECK_EQ_INT(load(&cfg, "{\"model\": {\"layers\": 4.5}}"), -1);
    CHECK_STR_EQ(ct_error_message(), "run.json: 'model.layers' must be an integer, got 4.5");
    CHECK_EQ_INT(load(&cfg, "{\"model\": {\"lr\": true}}"), -1);
    CHECK_STR_EQ(ct_error_message(), "run.json: 'model.lr' must be a number, got a boolean");
    CHECK_EQ_INT(load(&cfg, "{\"model\": {\"bias\": 1}}"), -1);
    CHECK_STR_EQ(ct_error_message(), "run.json: 'model.bias' must be true or false, got a number");
    CHECK_EQ_INT(load(&cfg, "{\"model\": {\"name\": [\"a\"]}}"), -1);
    CHECK_STR_EQ(ct_error_message(), "run.json: 'model.name' must be a string, got an array");
    CHECK_EQ_INT(load(&cfg, "{\"model\": 3}"), -1);
    CHECK_STR_EQ(ct_error_message(), "run.json: section 'model' must be an object of keys, got a number");
    CHECK_EQ_INT(load(&cfg, "{\"model\": {\"eps\": null}}"), -1);
    CHECK_STR_EQ(ct_error_message(), "run.json: 'model.eps' must be a number, got null");
    ct_config_set_defaults(&schema, &cfg);
    CHECK_EQ_INT(ct_config_apply_override(&schema, &cfg, "model.lr", "fast"), -1);
    CHECK_STR_EQ(ct_error_message(), "command line: 'model.lr' must be a number, got 'fast'");
    CHECK_EQ_INT(ct_config_apply_override(&schema, &cfg, "model.bias", "yes"), -1);
    CHECK_STR_EQ(ct_error_message(), "command line: 'model.bias' must be true or false, got 'yes'");
}

TEST(config, out_of_range_values_name_the_allowed_range) {
    TestConfig cfg;
    CHECK_EQ_INT(load(&cfg, "{\"model\": {\"layers\": 0}}"), -1);
    CHECK_STR_EQ(ct_error_message(), "run.json: 'model.layers' = 0 is out of range (allowed: 1 to 256)");
    CHECK_EQ_INT(load(&cfg, "{\"model\": {\"lr\": 2}}"), -1);
    CHECK_STR_EQ(ct_error_message(), "run.json: 'model.lr' = 2 is out of range (allowed: 0 to 1)");
    CHECK_EQ_INT(load(&cfg, "{\"model\": {\"eps\": -1e-5}}"), -1);
    CHECK_STR_EQ(ct_error_message(), "run.json: 'model.eps' = -1.0000000000000001e-05 is out of range (allowed: at least 0)");
    CHECK_EQ_INT(load(&cfg, "{\"model\": {\"arch\": \"gpt3\"}}"), -1);
    CHECK_STR_EQ(ct_error_message(), "run.json: 'model.arch' = 'gpt3' is not allowed (choose gpt2 or llama)");
    CHECK_EQ_INT(load(&cfg, "{\"model\": {\"name\": \"a name far too long\"}}"), -1);
    CHECK_STR_EQ(ct_error_message(), "run.json: 'model.name' is too long (19 bytes; at most 15)");
    ct_config_set_defaults(&schema, &cfg);
    CHECK_EQ_INT(ct_config_apply_override(&schema, &cfg, "train.steps", "0"), -1);
    CHECK_STR_EQ(ct_error_message(), "command line: 'train.steps' = 0 is out of range (allowed: 1 to 1000000)");
    CHECK_EQ_INT(cfg.train.steps, 100);  // a rejected value leaves the old one
}

TEST(config, duplicate_keys_are_errors) {
    TestConfig cfg;
    CHECK_EQ_INT(load(&cfg, "{\"model\": {\"layers\": 4, \"layers\": 5}}"), -1);
    CHECK_STR_EQ(ct_error_message(), "run.json: key 'model.layers' appears twice");
    CHECK_EQ_INT(load(&cfg, "{\"train\": {}, \"train\": {}}"), -1);
    CHECK_STR_EQ(ct_error_message(), "run.json: section 'train' appears twice");
}

TEST(config, printed_config_reads_back_to_the_same_values) {
    TestConfig a, b;
    CHECK_EQ_INT(load(&a, "{\"model\": {\"lr\": 0.1, \"eps\": 1e-7, \"arch\": \"llama\", \"name\": \"q\\\"x\"}}"), 0);
    char *json = ct_config_to_json(&schema, &a);
    CHECK_CONTAINS(json, "\"lr\":\t0.1,");  // the float shows as the user wrote it, not 0.100000001
    CHECK_EQ_INT(load(&b, json), 0);
    free(json);
    CHECK(memcmp(&a.model.layers, &b.model.layers, sizeof(int)) == 0);
    CHECK(a.model.lr == b.model.lr && a.model.eps == b.model.eps && a.model.arch == b.model.arch);
    CHECK_STR_EQ(a.model.name, b.model.name);
}

TEST(config, missing_and_unreadable_files) {
    TestConfig cfg;
    ct_config_set_defaults(&schema, &cfg);
    CHECK_EQ_INT(ct_config_apply_file(&schema, &cfg, "/nonexistent/run.json"), -1);
    CHECK_STR_EQ(ct_error_message(), "/nonexistent/run.json: cannot open config: No such file or directory");
    const char *path = ct_test_write("empty.json", "");
    CHECK_EQ_INT(ct_config_apply_file(&schema, &cfg, path), -1);
    CHECK_CONTAINS(ct_error_message(), "empty.json:1:1: invalid JSON");
    path = ct_test_write("ok.json", "{\"train\": {\"steps\": 9}}");
    CHECK_EQ_INT(ct_config_apply_file(&schema, &cfg, path), 0);
    CHECK_EQ_INT(cfg.train.steps, 9);
    CHECK_EQ_INT(ct_config_apply_file(&schema, &cfg, ct_test_tmpdir()), -1);
    CHECK_CONTAINS(ct_error_message(), "not a");
}

TEST(config, ctrain_schema_is_valid_and_documented) {
    ct_config_validate_schema(&ct_run_config_schema);
    for (int i = 0; i < ct_run_config_schema.n_keys; i++) {
        const CtConfigKey *k = &ct_run_config_schema.keys[i];
        CHECK_MSG(k->doc && strlen(k->doc) > 10, "key %s has no documentation", k->key);
    }
    CtRunConfig cfg;
    CHECK_EQ_INT(ct_run_config_load(&cfg, NULL, NULL), 0);
    CHECK_EQ_INT(cfg.run.device, CT_DEVICE_AUTO);
}

// A list of numbers (grpo.reward_weights: [1, 0.25]) keeps each number as text that reads back
// exactly, prints back as numbers, and refuses anything else; a list of strings refuses numbers.
TEST(config, lists_of_numbers_read_back_exactly) {
    static CtRunConfig cfg;
    ct_config_set_defaults(&ct_run_config_schema, &cfg);
    CHECK_EQ_INT(ct_config_apply_text(&ct_run_config_schema, &cfg, "{\"grpo\": {\"reward_weights\": [1, 0.25, 0.1]}}",
                                      "run.json"), 0);
    CHECK_STR_EQ(cfg.grpo.reward_weights, "1,0.25,0.10000000000000001");
    CHECK(strtod(strrchr(cfg.grpo.reward_weights, ',') + 1, NULL) == 0.1);
    char *json = ct_config_to_json(&ct_run_config_schema, &cfg);
    CHECK_CONTAINS(json, "\"reward_weights\":\t[1, 0.25, 0.1]");
    free(json);
    CHECK_EQ_INT(ct_config_apply_override(&ct_run_config_schema, &cfg, "grpo.reward_weights", "2,0.5"), 0);
    CHECK_STR_EQ(cfg.grpo.reward_weights, "2,0.5");
    CHECK_EQ_INT(ct_config_apply_override(&ct_run_config_schema, &cfg, "grpo.reward_weights", "2,x"), -1);
    CHECK_CONTAINS(ct_error_message(), "'grpo.reward_weights' must be a list of numbers, got 'x'");
    const char *bad[] = {"[\"1\"]", "[true]", "0.5"};
    for (int i = 0; i < 3; i++) {
        char text[128];
        snprintf(text, sizeof text, "{\"grpo\": {\"reward_weights\": %s}}", bad[i]);
        CHECK_MSG(ct_config_apply_text(&ct_run_config_schema, &cfg, text, "run.json") == -1, "%s was taken", bad[i]);
        CHECK_CONTAINS(ct_error_message(), "must be a list of numbers");
    }
    CHECK_EQ_INT(ct_config_apply_text(&ct_run_config_schema, &cfg, "{\"lora\": {\"targets\": [\"q_proj\", 3]}}",
                                      "run.json"), -1);
}
