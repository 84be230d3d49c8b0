// ctrain grpo through the binary: TRL's metrics and samples.jsonl, resume to the bit, a reward
// command that gives the built-in reward's run to the bit, broken reward commands that stop the
// run with the last checkpoint intact, RLOO, the KL and μ = 2; and (make test-long) learning:
// held-out accuracy on the arithmetic task up by 20 points.
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tests/test.h"
#include "tests/train_fixture.h"

// In the test's folder: sums of two 1-2 digit numbers (the arithmetic task) as SFT data
// (`sft_examples` lines, data/), 200 held-out sums (held.jsonl) and a prompts dataset of `prompts`
// sums (seed 7; prompts/, `val_fraction` of them held out), with a 300-token tokenizer.
// 0, or -1 after recording a failure.
static int make_sums(int sft_examples, int prompts, double val_fraction) {
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' synth instructions --task arithmetic --operands 2 --digits 1-2 --examples %d --out train.jsonl && "
             "'%s' synth instructions --task arithmetic --operands 2 --digits 1-2 --split heldout --seed 2 --examples 200 --out held.jsonl && "
             "'%s' synth instructions --task arithmetic --operands 2 --digits 1-2 --seed 7 --examples %d --out rl.jsonl && "
             "cp train.jsonl train.txt && '%s' tokenizer train --input train.txt --vocab-size 300 --pattern qwen2 "
             "--special '<|endoftext|>' --out tok.json && '%s' shard --tokenizer tok.json --input train.jsonl "
             "--format sft --val-fraction 0.02 --out data && '%s' shard --tokenizer tok.json --input rl.jsonl "
             "--format prompts --val-fraction %g --out prompts",
             dir, bin, sft_examples, bin, bin, prompts, bin, bin, bin, val_fraction);
    int rc = ct_test_run(cmd, &out);
    if (rc != 0) ct_test_fail(__FILE__, __LINE__, "%s", out ? out : "");
    free(out);
    return rc == 0 ? 0 : -1;
}

// A tiny llama SFT-trained for `sft_steps` on make_sums's data (sft.json; run sft/, its last
// checkpoint copied to sft/last.h5) and grpo.json: 4 steps of 4 prompts x 4 completions.
// 0, or -1 after recording a failure.
static int make_fixture(int sft_steps) {
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    char cmd[4096], *out = NULL;
    if (make_sums(4000, 400, 0.1) != 0) return -1;
    ct_test_write("sft.json",
                  "{\"model\": {\"preset\": \"llama-tiny\", \"n_layer\": 2, \"d_model\": 64, \"n_head\": 4, \"n_kv_head\": 2,"
                  " \"d_ff\": 128, \"max_seq_len\": 48}, \"data\": {\"path\": \"data\"},"
                  " \"train\": {\"batch_size\": 16, \"seq_len\": 48, \"eval_every\": 0, \"eval_batches\": 1,"
                  " \"eval_exact_match\": 0, \"save_every\": 0, \"n_samples\": 0},"
                  " \"optim\": {\"lr\": 3e-3, \"warmup_steps\": 10, \"weight_decay\": 0.0}}");
    ct_test_write("grpo.json",
                  "{\"data\": {\"path\": \"prompts\"}, \"train\": {\"init_from\": \"sft/last.h5\", \"batch_size\": 8,"
                  " \"grad_accum\": 2, \"seq_len\": 48, \"max_steps\": 4, \"eval_every\": 2, \"eval_exact_match\": 8,"
                  " \"save_every\": 2, \"n_samples\": 0}, \"optim\": {\"lr\": 1e-3, \"warmup_steps\": 0,"
                  " \"weight_decay\": 0.0}, \"grpo\": {\"num_generations\": 4, \"max_completion_length\": 8,"
                  " \"log_completions\": 2}}");
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' sft sft.json --run.out_dir=sft --run.threads=1 --train.max_steps=%d && "
             "cp sft/ckpt-step%08d.h5 sft/last.h5", dir, bin, sft_steps, sft_steps);
    int rc = ct_test_run(cmd, &out);
    if (rc != 0) ct_test_fail(__FILE__, __LINE__, "%s", out ? out : "");
    free(out);
    return rc == 0 ? 0 : -1;
}

// `ctrain grpo grpo.json ARGS` in the test's folder (one thread); its status, *out its output.
static int grpo(const char *args, char **out) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' grpo grpo.json --run.threads=1 %s 2>&1", ct_test_tmpdir(), ct_test_bin(),
             args);
    return ct_test_run(cmd, out);
}

// Whether two checkpoints in the test's folder hold the same parameters and AdamW moments, bit for bit.
static int same_checkpoints(const char *a_dir, const char *b_dir, const char *file) {
    CtModel a, b;
    CtAdamW oa, ob;
    memset(&oa, 0, sizeof oa);
    memset(&ob, 0, sizeof ob);
    if (train_fixture_load_checkpoint(a_dir, file, &a, &oa) != 0) return 0;
    if (train_fixture_load_checkpoint(b_dir, file, &b, &ob) != 0) {
        ct_model_free(&a);
        ct_adamw_free(&oa);
        return 0;
    }
    const size_t n = a.n_params * sizeof(float);
    int same = a.n_params == b.n_params && memcmp(a.params, b.params, n) == 0 && oa.step == ob.step &&
               memcmp(oa.m, ob.m, oa.n * sizeof(float)) == 0 && memcmp(oa.v, ob.v, oa.n * sizeof(float)) == 0;
    ct_model_free(&a);
    ct_model_free(&b);
    ct_adamw_free(&oa);
    ct_adamw_free(&ob);
    return same;
}

// The value of `key` in DIR/metrics.jsonl's line of `kind` at `step` (NAN when none has it).
static double metric(const char *dir, const char *kind, int step, const char *key) {
    char name[256];
    snprintf(name, sizeof name, "%s/metrics.jsonl", dir);
    return train_fixture_metric(ct_test_path(name), kind, step, key);
}

TEST(grpo_run, logs_trl_metrics_and_samples_and_resumes_to_the_bit) {
    if (!ct_test_bin() || make_fixture(60) != 0) return;
    char *out = NULL;
    int rc = grpo("--run.out_dir=whole", &out);
    CHECK_MSG(rc == 0, "%s", out);
    CHECK_CONTAINS(out, "held-out reward");
    CHECK_CONTAINS(out, "| reward ");
    free(out);
    const char *names[] = {"reward", "reward_std", "rewards/exact_match/mean", "rewards/exact_match/std",
                           "frac_reward_zero_std", "completions/mean_length", "completions/min_length",
                           "completions/max_length", "completions/clipped_ratio", "entropy", "clip_ratio/low_mean",
                           "clip_ratio/high_mean", "clip_ratio/region_mean", "loss", "grad_norm"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        CHECK_MSG(isfinite(metric("whole", "train", 4, names[i])), "no %s in the step 4 line", names[i]);
    CHECK_MSG(isnan(metric("whole", "train", 4, "kl")), "a kl with beta 0 (no reference)");
    const double reward = metric("whole", "train", 4, "reward");
    CHECK_MSG(reward >= 0 && reward <= 1, "reward %g of an exact-match reward", reward);
    CHECK_MSG(metric("whole", "train", 4, "completions/min_length") >= 1 &&
                  metric("whole", "train", 4, "completions/max_length") <= 8, "completion lengths outside 1..8");
    CHECK(isfinite(metric("whole", "eval", 0, "rewards/exact_match/mean")));
    CHECK(isfinite(metric("whole", "eval", 4, "reward")));
    // samples.jsonl: at each evaluation 2 held-out and 2 training completions, with rewards
    char *samples = ct_test_read(ct_test_path("whole/samples.jsonl"), NULL);
    CHECK_MSG(samples != NULL, "no samples.jsonl");
    int lines = 0, evals = 0, trains = 0;
    for (char *line = samples ? strtok(samples, "\n") : NULL; line; line = strtok(NULL, "\n"), lines++) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *kind = cJSON_GetObjectItem(o, "kind");
        CHECK_MSG(o && cJSON_IsString(cJSON_GetObjectItem(o, "completion")) &&
                      cJSON_IsNumber(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "rewards"), "exact_match")) &&
                      cJSON_IsString(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "fields"), "answer")),
                  "samples.jsonl line %d: %s", lines + 1, line);
        evals += cJSON_IsString(kind) && !strcmp(kind->valuestring, "eval");
        trains += cJSON_IsString(kind) && !strcmp(kind->valuestring, "train");
        cJSON_Delete(o);
    }
    free(samples);
    CHECK_MSG(evals == 6 && trains == 4, "samples.jsonl: %d held-out and %d training lines, want 6 and 4", evals, trains);
    // stopped after 2 steps and resumed: the same step 4, to the bit
    rc = grpo("--run.out_dir=parts --stop-after 2", &out);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    rc = grpo("--run.out_dir=parts --resume parts", &out);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    CHECK_MSG(same_checkpoints("whole", "parts", "ckpt-step00000004.h5"),
              "a run resumed at step 2 ends elsewhere than the uninterrupted one");
    char *a = train_fixture_metric_lines("whole", 3), *b = train_fixture_metric_lines("parts", 3);
    CHECK_MSG(a && b && !strcmp(a, b), "steps 3-4 logged differently:\n%s\nvs\n%s", a, b);
    free(a);
    free(b);
}

// The exact-match reward as a command (configs/grpo_exact_match_reward.py, Python) gives the run
// of the built-in exact_match source, to the bit.
TEST(grpo_run, a_reward_command_gives_the_built_in_rewards_run_to_the_bit) {
    if (!ct_test_bin()) return;
    if (ct_test_run("python3 -c 'import json'", NULL) != 0) SKIP("python3 is not installed");
    const char *root = getenv("CTRAIN_ROOT");
    if (!root) SKIP("CTRAIN_ROOT is not set (make test sets it)");
    if (make_fixture(60) != 0) return;
    char *out = NULL, args[4096];
    int rc = grpo("--run.out_dir=builtin", &out);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    snprintf(args, sizeof args, "--run.out_dir=command --grpo.reward_funcs=command "
             "--grpo.reward_command='python3 %s/configs/grpo_exact_match_reward.py'", root);
    rc = grpo(args, &out);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    CHECK_MSG(same_checkpoints("builtin", "command", "ckpt-step00000004.h5"),
              "the command's run differs from the built-in reward's");
    CHECK_MSG(metric("command", "train", 4, "rewards/command/mean") == metric("builtin", "train", 4, "rewards/exact_match/mean"),
              "step 4's mean reward: command %g, built-in %g", metric("command", "train", 4, "rewards/command/mean"),
              metric("builtin", "train", 4, "rewards/exact_match/mean"));
    double sum = 0;
    for (int step = 1; step <= 4; step++) sum += metric("builtin", "train", step, "reward");
    CHECK_MSG(sum > 0, "no completion was rewarded in 4 steps: the comparison shows nothing");
}

// A reward command that exits non-zero, prints too few lines or a line that is not a number stops
// the run with a message naming the command and the line; the checkpoint of step 2 stays whole.
TEST(grpo_run, a_broken_reward_command_stops_the_run_and_keeps_the_last_checkpoint) {
    if (!ct_test_bin() || make_fixture(30) != 0) return;
    // Steps 1 and 2 are scored (one number per line); from the third call on the command breaks.
    const char *counter = "n=$(cat calls 2>/dev/null || echo 0); echo $((n+1)) > calls; if [ $n -lt 2 ]; then "
                          "awk '{print 1}'; else ";
    const struct {
        const char *broken, *says;
    } cases[] = {
        {"cat >/dev/null; exit 3; fi", "exited with status 3"},
        {"head -n 1 | awk '{print 1}'; fi", "1 line for 16 completions"},
        {"awk '{print \"yes\"}'; fi", "line 1"},
    };
    for (int i = 0; i < 3; i++) {
        char script[1024], args[2048], dir[32], *out = NULL;
        snprintf(script, sizeof script, "%s%s", counter, cases[i].broken);
        snprintf(dir, sizeof dir, "broken%d", i);
        ct_test_write("reward.sh", script);
        char cmd[256];
        snprintf(cmd, sizeof cmd, "rm -f '%s/calls'", ct_test_tmpdir());
        ct_test_run(cmd, NULL);
        snprintf(args, sizeof args, "--run.out_dir=%s --train.eval_exact_match=0 --grpo.reward_funcs=command "
                 "--grpo.reward_command='sh reward.sh'", dir);
        int rc = grpo(args, &out);
        CHECK_MSG(rc != 0, "case %d: the run went on: %s", i, out);
        CHECK_CONTAINS(out, "sh reward.sh");
        CHECK_CONTAINS(out, cases[i].says);
        CHECK_CONTAINS(out, "stopped before step 3");
        CHECK_CONTAINS(out, "ckpt-step00000002.h5 is intact");
        free(out);
        CtModel m;
        CtAdamW opt;
        memset(&opt, 0, sizeof opt);
        CHECK_MSG(train_fixture_load_checkpoint(dir, "ckpt-step00000002.h5", &m, &opt) == 0, "case %d: %s", i,
                  ct_error_message());
        ct_model_free(&m);
        ct_adamw_free(&opt);
        snprintf(cmd, sizeof cmd, "test ! -e '%s/%s/ckpt-step00000003.h5'", ct_test_tmpdir(), dir);
        CHECK_MSG(ct_test_run(cmd, NULL) == 0, "case %d: a checkpoint of step 3", i);
        if (ct_test_failed()) return;
    }
}

// RLOO (its KL in the reward, beta 0.05 by default) and GRPO with the k3 KL (beta 0.04) and
// num_iterations 2 (the second step on the same completions: the ratio moves off 1) run, log the
// KL, and resume to the bit at a step where a new batch of completions is due.
TEST(grpo_run, rloo_and_the_kl_and_two_iterations) {
    if (!ct_test_bin() || make_fixture(60) != 0) return;
    char *out = NULL;
    // a reward most groups disagree on (a completion holding a 1), so that the policy moves
    const char *reward = "--grpo.reward_funcs=regex --grpo.reward_regex=1";
    char args[512];
    snprintf(args, sizeof args, "--run.out_dir=rloo --algo rloo %s", reward);
    int rc = grpo(args, &out);
    CHECK_MSG(rc == 0, "%s", out);
    CHECK_CONTAINS(out, "RLOO");
    free(out);
    CHECK_MSG(isfinite(metric("rloo", "train", 4, "kl")), "no kl in RLOO's step 4 line");
    CHECK_MSG(fabs(metric("rloo", "train", 1, "kl")) < 1e-6, "RLOO's kl at step 1 is %g, not 0 (the policy is the reference)",
              metric("rloo", "train", 1, "kl"));
    snprintf(args, sizeof args, "--run.out_dir=kl --grpo.beta=0.04 --grpo.num_iterations=2 %s", reward);
    rc = grpo(args, &out);
    CHECK_MSG(rc == 0, "%s", out);
    CHECK_CONTAINS(out, "KL to the starting model");
    free(out);
    CHECK_MSG(metric("kl", "train", 1, "kl") == 0, "kl %g at step 1, where the policy is the reference",
              metric("kl", "train", 1, "kl"));
    CHECK_MSG(metric("kl", "train", 4, "kl") > 0, "kl %g at step 4", metric("kl", "train", 4, "kl"));
    CHECK_MSG(metric("kl", "train", 2, "clip_ratio/region_mean") >= 0, "no clip ratio at step 2");
    CHECK_MSG(metric("rloo", "train", 4, "kl") != 0, "RLOO's kl is still 0 at step 4");
    CHECK_MSG(metric("kl", "train", 2, "reward") == metric("kl", "train", 1, "reward"),
              "step 2 should train on step 1's completions (num_iterations 2)");
    CHECK_MSG(metric("kl", "train", 3, "reward") != metric("kl", "train", 2, "reward") ||
                  metric("kl", "train", 3, "completions/mean_length") != metric("kl", "train", 2, "completions/mean_length"),
              "step 3 should sample new completions");
    snprintf(args, sizeof args, "--run.out_dir=kl2 --grpo.beta=0.04 --grpo.num_iterations=2 %s --stop-after 2", reward);
    rc = grpo(args, &out);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    snprintf(args, sizeof args, "--run.out_dir=kl2 --grpo.beta=0.04 --grpo.num_iterations=2 %s --resume kl2", reward);
    rc = grpo(args, &out);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    CHECK_MSG(same_checkpoints("kl", "kl2", "ckpt-step00000004.h5"), "with beta and num_iterations 2, a run resumed "
              "at step 2 ends elsewhere than the uninterrupted one");
}

// Data parallel: 2 ranks with 2 prompts each sample, score and train what one rank with the 4
// prompts does (each group on one rank, every completion drawn from its own stream). The reward
// (a completion holding a 1) gives every step a gradient.
TEST(grpo_run, two_ranks_equal_one_rank_with_the_whole_batch) {
#ifndef CTRAIN_MPI
    SKIP("this build has no MPI (install OpenMPI and rebuild to test data parallelism)");
#endif
    if (ct_test_run("command -v mpirun", NULL) != 0) SKIP("mpirun is not on PATH: data-parallel tests skipped");
    if (!ct_test_bin() || make_fixture(60) != 0) return;
    char cmd[8192], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "cd '%s' && OMP_NUM_THREADS=1 ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 timeout 300 mpirun --oversubscribe "
             "--allow-run-as-root -x ASAN_OPTIONS -x OMP_NUM_THREADS=1 -np 2 '%s' grpo grpo.json --run.threads=1 "
             "--run.out_dir=two --train.batch_size=4 --grpo.reward_funcs=regex --grpo.reward_regex=1 2>&1", ct_test_tmpdir(), ct_test_bin());
    int rc = ct_test_run(cmd, &out);
    CHECK_MSG(rc == 0, "%s", out);
    CHECK_CONTAINS(out, "data parallel: parameters identical on all 2 ranks");
    free(out);
    rc = grpo("--run.out_dir=one --train.batch_size=8 --grpo.reward_funcs=regex --grpo.reward_regex=1", &out);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    for (int step = 1; step <= 4; step++) {
        const char *keys[3] = {"reward", "completions/mean_length", "entropy"};
        // the same completions (rewards, lengths); the entropies from weights that differ in the
        // last bits after a step (the ranks' gradients are summed in another order)
        for (int k = 0; k < 3; k++) {
            double a = metric("two", "train", step, keys[k]), b = metric("one", "train", step, keys[k]);
            CHECK_MSG(fabs(a - b) <= (k == 2 ? 1e-5 : 1e-12) * fmax(1, fabs(b)), "step %d %s: 2 ranks %.12g, 1 rank %.12g",
                      step, keys[k], a, b);
        }
        CHECK_MSG(fabs(metric("two", "train", step, "loss") - metric("one", "train", step, "loss")) < 1e-6,
                  "step %d loss: 2 ranks %.9g, 1 rank %.9g", step, metric("two", "train", step, "loss"),
                  metric("one", "train", step, "loss"));
    }
    CHECK(metric("two", "eval", 4, "reward") == metric("one", "eval", 4, "reward"));
    CHECK_MSG(metric("one", "train", 4, "grad_norm") > 0, "no gradient at step 4: the comparison shows nothing");
}

// `ctrain eval --task arithmetic` of a checkpoint on held.jsonl: the accuracy, -1 when it fails.
static double heldout_accuracy(const char *checkpoint) {
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' eval --threads 1 --task arithmetic --checkpoint %s --prompts held.jsonl 2>&1",
             ct_test_tmpdir(), ct_test_bin(), checkpoint);
    double acc = -1;
    const char *at = ct_test_run(cmd, &out) == 0 && out ? strstr(out, "accuracy=") : NULL;
    if (!at || sscanf(at, "accuracy=%lf", &acc) != 1) ct_test_fail(__FILE__, __LINE__, "%s", out ? out : cmd);
    free(out);
    return acc;
}

// Learning, with the shipped config (configs/grpo-arithmetic.json: 16 prompts x 8 completions a
// step, lr 1e-4, exact-match reward, 800 steps): a 0.66M-parameter llama SFT-trained on sums of two
// 1-2 digit numbers to between 20% and 60% held-out accuracy gains at least 20 points on sums whose
// operands it never saw. Measured (seed 1337, this VM, SFT stopped at 450): 37.0% -> 66.0%; from
// 29.5% at 550 (below) it passed too (2026-12-08). The same run with the
// reward from a command (configs/grpo_exact_match_reward.py) is the same to the bit (its first
// 100 steps, the rest would take as long again).
TEST_LONG(grpo_run, grpo_raises_heldout_accuracy_on_sums_by_20_points) {
    if (!ct_test_bin()) return;
    const char *root = getenv("CTRAIN_ROOT");
    if (!root) SKIP("CTRAIN_ROOT is not set (make test-long sets it)");
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    char cmd[8192], *out = NULL;
    if (make_sums(20000, 4000, 0.05) != 0) return;
    int rc;
    // SFT: the 1000-step schedule of tests/test_eval_task.c, stopped at step 550 (450 until
    // 2026-12-08: 37% then; after the fused cross-entropy moved the rounding, 13.5% at 450, 24% at
    // 500, 29.5% at 550, 50% at 600: the held-out accuracy climbs fast here, and 550 keeps it inside
    // the 20-60% this test asks with room on both sides)
    ct_test_write("sft.json",
                  "{\"model\": {\"preset\": \"llama-tiny\", \"n_layer\": 3, \"d_model\": 128, \"n_head\": 4, \"n_kv_head\": 2,"
                  " \"d_ff\": 384, \"max_seq_len\": 64}, \"data\": {\"path\": \"data\"},"
                  " \"train\": {\"batch_size\": 16, \"seq_len\": 64, \"max_steps\": 1000, \"eval_every\": 0,"
                  " \"eval_batches\": 2, \"eval_exact_match\": 0, \"save_every\": 0, \"n_samples\": 0},"
                  " \"optim\": {\"lr\": 2e-3, \"min_lr\": 2e-4, \"warmup_steps\": 30, \"weight_decay\": 0.0}}");
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' sft sft.json --run.out_dir=sft --run.threads=1 --stop-after 550 2>&1", dir, bin);
    rc = ct_test_run(cmd, &out);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    const double before = heldout_accuracy("sft/ckpt-step00000550.h5");
    CHECK_MSG(before >= 0.2 && before <= 0.6, "the SFT model answers %.1f%% of held-out sums, not 20-60%%", 100 * before);
    if (ct_test_failed()) return;
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' grpo '%s/configs/grpo-arithmetic.json' --data.path=prompts "
             "--train.init_from=sft/ckpt-step00000550.h5 --run.out_dir=rl --run.threads=1 --train.keep_last=10 2>&1",
             dir, bin, root);
    rc = ct_test_run(cmd, &out);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    const double after = heldout_accuracy("rl/ckpt-step00000800.h5");
    CHECK_MSG(after >= before + 0.2, "held-out accuracy %.1f%% -> %.1f%% after 800 GRPO steps, want +20 points",
              100 * before, 100 * after);
    // The reward from a command: the same first 100 steps, to the bit.
    if (ct_test_run("python3 -c 'import json'", NULL) != 0) SKIP("python3 is not installed: the command's run is not compared");
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' grpo '%s/configs/grpo-arithmetic.json' --data.path=prompts "
             "--train.init_from=sft/ckpt-step00000550.h5 --run.out_dir=rl-command --run.threads=1 --stop-after 100 "
             "--grpo.reward_funcs=command --grpo.reward_command='python3 %s/configs/grpo_exact_match_reward.py' 2>&1",
             dir, bin, root, root);
    rc = ct_test_run(cmd, &out);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    CHECK_MSG(same_checkpoints("rl", "rl-command", "ckpt-step00000100.h5"),
              "step 100 with the command's reward differs from the built-in reward's");
}
