// ctrain synth stories: a deterministic corpus for demos and tests (data/examples/synthetic_stories.h);
// ctrain synth instructions: synthetic tasks as JSON lines (synthetic_tasks.h, synthetic_arithmetic.h).
#include <stdio.h>
#include <string.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/examples/synthetic_arithmetic.h"
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
    {"task", "NAME", "reverse (spaced letters backwards), add (two 3-digit numbers) or arithmetic (sums with an "
                     "\"answer\" field)", 0},
    {"out", "FILE", "where to write the JSON lines (default: stdout)", 0},
    {"examples", "N", "how many examples (default 5000)", 0},
    {"seed", "S", "seed (default 1)", 0},
    {"operands", "MIN-MAX", "arithmetic: how many numbers each sum adds, 2 to 8 (default 2-3)", 0},
    {"digits", "MIN-MAX", "arithmetic: digits of each number, 1 to 15 (default 1-3)", 0},
    {"format", "plain|think", "arithmetic: the response is the sum (plain, default) or "
                              "<think>running sums</think><answer>sum</answer> (think)", 0},
    {"split", "train|heldout", "arithmetic: train (default) or heldout, the 1 in 10 sums no train file holds", 0},
};

// The arithmetic task's options (only with --task arithmetic). 0, or -1 + error.
static int read_arith_options(const CtArgs *args, const char *task, CtArithOptions *o) {
    static const char *const own[] = {"operands", "digits", "format", "split"};
    const int arithmetic = strcmp(task, "arithmetic") == 0;
    for (int i = 0; i < 4; i++)
        if (!arithmetic && ct_args_has(args, own[i])) return ct_error_set("--%s goes with --task arithmetic", own[i]);
    *o = (CtArithOptions)CT_ARITH_OPTIONS_DEFAULT;
    const char *operands = ct_args_get(args, "operands"), *digits = ct_args_get(args, "digits");
    const char *format = ct_args_get(args, "format"), *split = ct_args_get(args, "split");
    if (operands && ct_arith_parse_range(operands, "--operands", 2, CT_ARITH_MAX_OPERANDS, &o->min_operands,
                                         &o->max_operands) != 0)
        return -1;
    if (digits && ct_arith_parse_range(digits, "--digits", 1, CT_ARITH_MAX_DIGITS, &o->min_digits, &o->max_digits) != 0)
        return -1;
    if (format && strcmp(format, "plain") != 0 && strcmp(format, "think") != 0)
        return ct_error_set("--format must be plain or think (got '%s')", format);
    if (split && strcmp(split, "train") != 0 && strcmp(split, "heldout") != 0)
        return ct_error_set("--split must be train or heldout (got '%s')", split);
    o->format = format && strcmp(format, "think") == 0 ? CT_ARITH_THINK : CT_ARITH_PLAIN;
    o->split = split && strcmp(split, "heldout") == 0 ? CT_ARITH_HELDOUT : CT_ARITH_TRAIN;
    return 0;
}

static int write_task(FILE *out, const char *task, const CtArithOptions *o, long examples, long seed) {
    if (strcmp(task, "arithmetic") == 0) return ct_write_arithmetic_examples(out, o, (uint64_t)examples, (uint64_t)seed);
    return ct_write_task_examples(out, task, (uint64_t)examples, (uint64_t)seed);
}

static int run_synth_instructions(const CtArgs *args) {
    const CtCommand *cmd = &ct_cmd_synth_instructions;
    long examples, seed;
    const char *task = ct_args_get(args, "task");
    if (!task) return ct_cli_usage_error(cmd, "--task is required (reverse, add or arithmetic)");
    if (!ct_task_known(task) && strcmp(task, "arithmetic") != 0)
        return ct_cli_usage_error(cmd, "unknown task '%s' (reverse, add or arithmetic)", task);
    if (ct_args_get_long(args, "examples", 5000, &examples) || ct_args_get_long(args, "seed", 1, &seed) || examples < 1 ||
        seed < 0)
        return ct_cli_usage_error(cmd, "--examples and --seed must be positive integers");
    CtArithOptions arith;
    if (read_arith_options(args, task, &arith) != 0) return ct_cli_usage_error(cmd, "%s", ct_error_message());
    const char *path = ct_args_get(args, "out");
    if (!path) return write_task(stdout, task, &arith, examples, seed) == 0 ? 0 : ct_cli_fail();
    CtAtomicFile f;
    if (ct_atomic_open(&f, path) != 0) return ct_cli_fail();
    if (write_task(f.fp, task, &arith, examples, seed) != 0) {
        ct_error_prefix("%s: ", path);
        ct_atomic_abort(&f);
        return ct_cli_fail();
    }
    return ct_atomic_commit(&f) == 0 ? 0 : ct_cli_fail();
}

const CtCommand ct_cmd_synth_instructions = {
    .name = "synth instructions",
    .summary = "write a synthetic instruction task as JSON lines (for SFT demos and tests)",
    .usage = "ctrain synth instructions --task reverse|add|arithmetic [--out FILE] [--examples N] [--seed S] "
             "[--operands MIN-MAX] [--digits MIN-MAX] [--format plain|think] [--split train|heldout]",
    .description =
        "arithmetic writes {\"prompt\": \"What is 12 + 345 + 7?\", \"response\": \"364\", \"answer\": \"364\"}, the\n"
        "response with --format think \"<think>12 + 345 = 357, 357 + 7 = 364</think><answer>364</answer>\". Whether a\n"
        "sum is held out depends on its operands only (1 in 10 sums, reorderings alike), so a --split heldout file\n"
        "never shares a prompt with a train file, whatever their seeds. ctrain shard --format sft reads every task;\n"
        "ctrain eval --task arithmetic --prompts HELDOUT.jsonl scores a model's greedy answers.",
    .options = task_options,
    .n_options = (int)(sizeof task_options / sizeof task_options[0]),
    .max_positionals = 0,
    .run = run_synth_instructions,
};
