// ctrain config: show, check and document run configs.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/cli/commands.h"
#include "core/error.h"
#include "train/loop/run_config.h"
#include "train/loop/run_model.h"

static const CtOption options[] = {
    {"print", NULL, "print the effective config as JSON, defaults filled in (the default action)", 0},
    {"check", NULL, "only validate: print 'CONFIG: ok' or the error", 0},
    {"keys", NULL, "list every key with its type, default, allowed values and meaning", 0},
    {"markdown", NULL, "with --keys: as Markdown tables (this is docs/config.md)", 0},
};

static int run_config(const CtArgs *args) {
    if (ct_args_has(args, "keys")) {
        ct_config_print_reference(&ct_run_config_schema, stdout, ct_args_has(args, "markdown"));
        return 0;
    }
    const char *path = args->n_positionals ? args->positionals[0] : NULL;
    if (ct_args_has(args, "check") && !path) return ct_cli_usage_error(&ct_cmd_config, "--check needs a CONFIG file");
    CtRunConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    if (ct_run_config_load(&cfg, path, args) != 0) return ct_cli_fail();
    if (ct_args_has(args, "check")) {
        // The model the keys describe, too (its sizes, and the Mixture-of-Experts fields together);
        // a run checks it again with the dataset's vocabulary.
        CtModelConfig model;
        if (ct_model_config_from_run(&cfg, &model) != 0) {
            ct_error_prefix("%s: ", path);
            return ct_cli_fail();
        }
        printf("%s: ok\n", path);
        return 0;
    }
    char *json = ct_config_to_json(&ct_run_config_schema, &cfg);
    printf("%s\n", json);
    free(json);
    return 0;
}

const CtCommand ct_cmd_config = {
    .name = "config",
    .summary = "print, check or document a run config",
    .usage = "ctrain config [--print | --check] [CONFIG] [--section.key=value...]\n"
             "       ctrain config --keys [--markdown]",
    .description = "A config is a JSON object of sections, each an object of keys, e.g.\n"
                   "  {\"run\": {\"seed\": 7, \"device\": \"cpu\"}}\n"
                   "Every key has a default; unknown keys, wrong types and out-of-range values are errors.\n"
                   "Any key can be overridden on the command line: --run.seed=7.",
    .options = options,
    .n_options = (int)(sizeof options / sizeof options[0]),
    .allow_overrides = 1,
    .min_positionals = 0,
    .max_positionals = 1,
    .run = run_config,
};
