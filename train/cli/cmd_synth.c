// ctrain synth stories: a deterministic corpus for demos and tests (data/examples/synthetic_stories.h).
#include <stdio.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/examples/synthetic_stories.h"
#include "data/examples/synthetic_tasks.h"
#include "train/cli/commands.h"

static const CtOption options[] = {
    {"out", "FILE", "where to write the stories (default: stdout)", 0},
    {"documents", "N", "how many stories (default 20000, about 4 MB)", 0},
    {"seed", "S", "seed of the grammar's choices (default 1)", 0},
};

static int run_synth_stories(const CtArgs *args) {
    long documents, seed;
    if (ct_args_get_long(args, "documents", 20000, &documents) || ct_args_get_long(args, "seed", 1, &seed))
        return ct_cli_usage_error(&ct_cmd_synth_stories, "%s", ct_error_message());
    if (documents < 1 || seed < 0) return ct_cli_usage_error(&ct_cmd_synth_stories, "--documents must be at least 1");
    const char *path = ct_args_get(args, "out");
    if (!path) return ct_write_stories(stdout, (uint64_t)documents, (uint64_t)seed) == 0 ? 0 : ct_cli_fail();
    CtAtomicFile f;
    if (ct_atomic_open(&f, path) != 0) return ct_cli_fail();
    if (ct_write_stories(f.fp, (uint64_t)documents, (uint64_t)seed) != 0) {
        ct_error_prefix("%s: ", path);
        ct_atomic_abort(&f);
        return ct_cli_fail();
    }
    return ct_atomic_commit(&f) == 0 ? 0 : ct_cli_fail();
}

const CtCommand ct_cmd_synth_stories = {
    .name = "synth stories",
    .summary = "write a deterministic corpus of short stories (for demos and tests)",
    .usage = "ctrain synth stories [--out FILE] [--documents N] [--seed S]",
    .options = options,
    .n_options = (int)(sizeof options / sizeof options[0]),
    .max_positionals = 0,
    .run = run_synth_stories,
};

static const CtOption task_options[] = {
    {"task", "NAME", "reverse (spaced letters backwards) or add (two 3-digit numbers)", 0},
    {"out", "FILE", "where to write the JSON lines (default: stdout)", 0},
    {"examples", "N", "how many examples (default 5000)", 0},
    {"seed", "S", "seed (default 1)", 0},
};

static int run_synth_instructions(const CtArgs *args) {
    long examples, seed;
    const char *task = ct_args_get(args, "task");
    if (!task) return ct_cli_usage_error(&ct_cmd_synth_instructions, "--task is required (reverse or add)");
    if (!ct_task_known(task)) return ct_cli_usage_error(&ct_cmd_synth_instructions, "unknown task '%s' (reverse or add)", task);
    if (ct_args_get_long(args, "examples", 5000, &examples) || ct_args_get_long(args, "seed", 1, &seed) || examples < 1 ||
        seed < 0)
        return ct_cli_usage_error(&ct_cmd_synth_instructions, "--examples and --seed must be positive integers");
    const char *path = ct_args_get(args, "out");
    if (!path) return ct_write_task_examples(stdout, task, (uint64_t)examples, (uint64_t)seed) == 0 ? 0 : ct_cli_fail();
    CtAtomicFile f;
    if (ct_atomic_open(&f, path) != 0) return ct_cli_fail();
    if (ct_write_task_examples(f.fp, task, (uint64_t)examples, (uint64_t)seed) != 0) {
        ct_error_prefix("%s: ", path);
        ct_atomic_abort(&f);
        return ct_cli_fail();
    }
    return ct_atomic_commit(&f) == 0 ? 0 : ct_cli_fail();
}

const CtCommand ct_cmd_synth_instructions = {
    .name = "synth instructions",
    .summary = "write a synthetic instruction task as JSON lines (for SFT demos and tests)",
    .usage = "ctrain synth instructions --task reverse|add [--out FILE] [--examples N] [--seed S]",
    .options = task_options,
    .n_options = (int)(sizeof task_options / sizeof task_options[0]),
    .max_positionals = 0,
    .run = run_synth_instructions,
};
