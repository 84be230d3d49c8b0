// ctrain pretrain: train a model from scratch (or from init_from) on a text dataset.
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/error.h"
#include "train/commands.h"
#include "train/pretrain.h"
#include "train/run_config.h"

static const CtOption options[] = {
    {"resume", "DIR", "continue from the newest complete checkpoint in DIR (the run's out_dir)", 0},
    {"stop-after", "N", "save a checkpoint and stop after N steps of this invocation (for time-limited jobs)", 0},
};

static int run_pretrain(const CtArgs *args) {
    CtRunConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    if (ct_run_config_load(&cfg, args->positionals[0], args) != 0) return ct_cli_fail();
    long stop_after;
    if (ct_args_get_long(args, "stop-after", 0, &stop_after) != 0 || stop_after < 0)
        return ct_cli_usage_error(&ct_cmd_pretrain, "--stop-after expects a number of steps");
    char *json = ct_config_to_json(&ct_run_config_schema, &cfg);
    CtPretrainJob job = {&cfg, json, ct_args_get(args, "resume"), stop_after};
    int status = ct_pretrain(&job);
    free(json);
    return status;
}

const CtCommand ct_cmd_pretrain = {
    .name = "pretrain",
    .summary = "train a GPT from scratch on a text dataset (next-token cross-entropy)",
    .usage = "ctrain pretrain CONFIG [--resume DIR] [--stop-after N] [--section.key=value...]",
    .description = "Trains the model of CONFIG (see ctrain config --keys and docs/training.md) on data.path, a folder\n"
                   "made by ctrain shard. Prints a progress line (loss, learning rate, gradient norm, tokens/s, MFU,\n"
                   "memory, ETA), validation loss every train.eval_every steps and samples; writes\n"
                   "OUT/metrics.jsonl, OUT/loss.svg and checkpoints (OUT/ckpt-step*.h5, OUT/best.h5).\n"
                   "Ctrl-C (or SIGTERM) saves a checkpoint and stops; --resume OUT continues to the bit.",
    .options = options,
    .n_options = (int)(sizeof options / sizeof options[0]),
    .allow_overrides = 1,
    .min_positionals = 1,
    .max_positionals = 1,
    .run = run_pretrain,
};
