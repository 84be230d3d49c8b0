// ctrain bench loader: how fast the data loader serves batches (tokens/s) from a dataset.
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/timer.h"
#include "data/loader/loader.h"
#include "train/cli/commands.h"

static const CtOption options[] = {
    {"data", "DIR", "a dataset folder made by ctrain shard", 0},
    {"split", "NAME", "train (default) or val", 0},
    {"batch", "B", "rows per batch (default 8)", 0},
    {"seq", "T", "sequence length (default 1024)", 0},
    {"steps", "N", "batches to draw (default: one epoch, at most 100000)", 0},
    {"no-prefetch", NULL, "read each group when it is needed instead of ahead on a thread", 0},
    {"doc-masking", NULL, "compute document ids and positions for packed documents", 0},
    {"shuffle-tokens", "N", "tokens per shuffle group (default 67108864); smaller means more group loads", 0},
    {"step-ms", "MS", "simulated training time per step, to see whether reading ever makes a step wait", 0},
};

// Keeps the core busy for `ms`, as a training step would (sleeping would free the core).
static void busy_wait(double ms) {
    double until = ct_time_now() + ms * 1e-3;
    while (ct_time_now() < until) {
    }
}

static int run_bench_loader(const CtArgs *args) {
    const char *dir = ct_args_get(args, "data");
    if (!dir) return ct_cli_usage_error(&ct_cmd_bench_loader, "--data DIR is required");
    long batch, seq, steps, shuffle_tokens;
    double step_ms;
    if (ct_args_get_long(args, "batch", 8, &batch) != 0 || ct_args_get_long(args, "seq", 1024, &seq) != 0 ||
        ct_args_get_long(args, "steps", 0, &steps) != 0 ||
        ct_args_get_long(args, "shuffle-tokens", 1 << 26, &shuffle_tokens) != 0 ||
        ct_args_get_double(args, "step-ms", 0, &step_ms) != 0)
        return ct_cli_usage_error(&ct_cmd_bench_loader, "%s", ct_error_message());
    const char *split_name = ct_args_get(args, "split");
    CtSplit split = split_name && strcmp(split_name, "val") == 0 ? CT_SPLIT_VAL : CT_SPLIT_TRAIN;
    if (batch < 1 || seq < 1 || steps < 0 || shuffle_tokens < 1 || step_ms < 0) return ct_cli_usage_error(&ct_cmd_bench_loader, "--batch, --seq and --steps must be positive");
    CtDataset d;
    if (ct_dataset_open(&d, dir) != 0) return ct_cli_fail();
    CtLoaderOptions o;
    ct_loader_default_options(&o);
    o.batch = (int)batch;
    o.seq_len = (int)seq;
    o.prefetch = !ct_args_has(args, "no-prefetch");
    o.doc_masking = ct_args_has(args, "doc-masking");
    o.shuffle_tokens = (uint64_t)shuffle_tokens;
    CtLoader l;
    double t0 = ct_time_now();
    if (ct_loader_open(&l, &d, split, &o) != 0) {
        ct_dataset_close(&d);
        return ct_cli_fail();
    }
    double t_open = ct_time_now() - t0;
    if (steps == 0) steps = l.steps_per_epoch < 100000 ? (long)l.steps_per_epoch : 100000;
    double worst = 0, first = 0, waited = 0, start = ct_time_now();
    uint64_t tokens = 0;
    for (long s = 0; s < steps; s++) {
        if (step_ms > 0) busy_wait(step_ms);
        double b0 = ct_time_now();
        const CtLoaderBatch *b;
        if (ct_loader_next(&l, &b) != 0) {
            ct_loader_close(&l);
            ct_dataset_close(&d);
            return ct_cli_fail();
        }
        double dt = ct_time_now() - b0;
        if (s == 0)
            first = dt;
        else if (dt > worst)
            worst = dt;
        waited += dt;
        tokens += (uint64_t)b->rows * (uint64_t)b->T;
    }
    double seconds = ct_time_now() - start;
    printf("loader %s (%s): %ld batches of %ld x %ld in %.3f s (open %.3f s, %llu groups per epoch)\n", dir,
           ct_split_name(split), steps, batch, seq, seconds, t_open, (unsigned long long)l.n_groups);
    printf("  first batch %.2f ms, slowest later batch %.3f ms, time in the loader %.1f%% of the run\n", first * 1e3,
           worst * 1e3, 100 * waited / seconds);
    printf("tokens_per_s=%.0f batches_per_s=%.0f\n", (double)tokens / waited, (double)steps / waited);
    ct_loader_close(&l);
    ct_dataset_close(&d);
    return 0;
}

const CtCommand ct_cmd_bench_loader = {
    .name = "bench loader",
    .summary = "measure the data loader's throughput on a dataset",
    .usage = "ctrain bench loader --data DIR [--batch B] [--seq T] [--steps N] [--split train|val] [--step-ms MS]",
    .description = "tokens_per_s counts the time spent inside the loader only; with --step-ms the steps in between\n"
                   "keep a core busy as training would, and 'slowest later batch' shows whether a group load\n"
                   "ever made a step wait (it should not with prefetch on).",
    .options = options,
    .n_options = (int)(sizeof options / sizeof options[0]),
    .max_positionals = 0,
    .run = run_bench_loader,
};
