// ctrain reward through the binary: a tiny model learns a synthetic preference to a stated
// accuracy, logs TRL's metric names, starts from a language model by adding the head, and
// resumes to the bit.
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "tests/test.h"
#include "tests/train_fixture.h"

static const char *REWARD_CONFIG =
    "{\"model\": {\"preset\": \"llama-tiny\", \"n_layer\": 2, \"d_model\": 64, \"n_head\": 4, \"n_kv_head\": 2, "
    "\"d_ff\": 128, \"max_seq_len\": 32}, \"data\": {\"path\": \"pairs\"}, \"train\": {\"batch_size\": 8, \"seq_len\": 32, "
    "\"max_steps\": 800, \"eval_every\": 400, \"eval_batches\": 8, \"eval_exact_match\": 0, \"save_every\": 0}, "
    "\"optim\": {\"lr\": 2e-3, \"warmup_steps\": 10, \"weight_decay\": 0}}";

// Pairs "List: a b c\nReversed:" → chosen " c b a", rejected " a b c" (ten fruit; palindromes are
// dropped by shard as chosen = rejected): the score must compare the completion with the prompt.
// A 1024-token tokenizer on the shared corpus; DIR/pairs (dpo), DIR/text, DIR/reward.json.
static int make_pairs(const char *dir, char **out) {
    ct_test_write("reward.json", REWARD_CONFIG);
    return train_fixture_reverse_pairs(dir, 600, out);
}

static double metric(const char *path, const char *kind, int step, const char *key) {
    return train_fixture_metric(path, kind, step, key);
}

// Measured (this data, lr 2e-3, 8 pairs a step; scores at the last token before the EOS): held-out
// accuracy 0.39 at step 0, 0.86 at 200, 0.97 at 400, 0.98 at 600, 0.97 at 800; the test asks 0.9 at 800.
TEST(reward_run, learns_which_completion_reverses_the_list) {
    const char *dir = ct_test_tmpdir();
    if (!ct_test_bin() || !ct_test_shared_data()) return;
    char cmd[4096], *out = NULL;
    int rc = make_pairs(dir, &out);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' reward reward.json --run.out_dir=r --run.threads=1", dir, ct_test_bin());
    rc = ct_test_run(cmd, &out);
    CHECK_MSG(rc == 0, "%s", out);
    CHECK_CONTAINS(out, "done: held-out accuracy");
    free(out);
    const char *metrics = ct_test_path("r/metrics.jsonl");
    double start = metric(metrics, "eval", 0, "accuracy"), end = metric(metrics, "eval", 800, "accuracy");
    CHECK_MSG(start < 0.75, "held-out accuracy %.3f before training: the task is too easy to show learning", start);
    CHECK_MSG(end >= 0.9, "held-out accuracy %.3f after 800 steps, want at least 0.9", end);
    CHECK_MSG(metric(metrics, "eval", 800, "margin") > 1, "held-out margin %.3f", metric(metrics, "eval", 800, "margin"));
    // TRL's names on every step's line, min ≤ mean ≤ max
    const char *names[5] = {"accuracy", "margin", "mean_reward", "min_reward", "max_reward"};
    for (int i = 0; i < 5; i++) CHECK_MSG(isfinite(metric(metrics, "train", 800, names[i])), "no %s at step 800", names[i]);
    CHECK(metric(metrics, "train", 800, "min_reward") <= metric(metrics, "train", 800, "mean_reward"));
    CHECK(metric(metrics, "train", 800, "mean_reward") <= metric(metrics, "train", 800, "max_reward"));
}

// From a pretrained LM (no head): the head is added; then a run stopped after 2 steps and resumed
// ends where an uninterrupted 4-step run does, to the bit.
TEST(reward_run, starts_from_a_language_model_and_resumes_to_the_bit) {
    const char *dir = ct_test_tmpdir();
    if (!ct_test_bin() || !ct_test_shared_data()) return;
    const char *bin = ct_test_bin();
    char cmd[8192], *out = NULL;
    int rc = make_pairs(dir, &out);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' pretrain reward.json --data.path=text --run.out_dir=lm --run.threads=1 "
             "--train.max_steps=1 --train.eval_every=0 --train.eval_batches=1 && '%s' reward reward.json "
             "--run.out_dir=a --run.threads=1 --train.init_from=lm/ckpt-step00000001.h5 --train.max_steps=4 "
             "--train.eval_every=0 --train.save_every=2",
             dir, bin, bin);
    rc = ct_test_run(cmd, &out);
    CHECK_MSG(rc == 0, "%s", out);
    CHECK_CONTAINS(out, "added the scalar head score.weight [1, 64]");
    free(out);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' reward reward.json --run.out_dir=b --run.threads=1 --train.init_from=lm/ckpt-step00000001.h5 "
             "--train.max_steps=4 --train.eval_every=0 --train.save_every=2 --stop-after 2 && '%s' reward reward.json "
             "--run.out_dir=b --run.threads=1 --train.init_from=lm/ckpt-step00000001.h5 --train.max_steps=4 "
             "--train.eval_every=0 --train.save_every=2 --resume b",
             dir, bin, bin);
    rc = ct_test_run(cmd, &out);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    for (int step = 3; step <= 4; step++) {
        double a = metric(ct_test_path("a/metrics.jsonl"), "train", step, "loss"),
               b = metric(ct_test_path("b/metrics.jsonl"), "train", step, "loss");
        CHECK_MSG(isfinite(a) && a == b, "step %d: loss %.9g uninterrupted, %.9g resumed", step, a, b);
        a = metric(ct_test_path("a/metrics.jsonl"), "train", step, "margin");
        b = metric(ct_test_path("b/metrics.jsonl"), "train", step, "margin");
        CHECK_MSG(isfinite(a) && a == b, "step %d: margin %.9g uninterrupted, %.9g resumed", step, a, b);
    }
}

// ctrain eval of a reward checkpoint on the dpo dataset scores every held-out pair as the run's own
// evaluation does (4 pairs a batch there, and the 68 held-out pairs fill 17 batches: every pair):
// the same accuracy, margin and loss.
TEST(reward_run, eval_of_a_reward_checkpoint_equals_the_runs_evaluation) {
    const char *dir = ct_test_tmpdir();
    if (!ct_test_bin() || !ct_test_shared_data()) return;
    const char *bin = ct_test_bin();
    char cmd[8192], *out = NULL;
    int rc = make_pairs(dir, &out);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' reward reward.json --run.out_dir=r --run.threads=1 --train.batch_size=4 "
             "--train.max_steps=200 --train.eval_every=200 --train.eval_batches=100000 --train.save_every=200 && "
             "'%s' eval --checkpoint r/ckpt-step00000200.h5 --data pairs --threads 1",
             dir, bin, bin);
    rc = ct_test_run(cmd, &out);
    CHECK_MSG(rc == 0, "%s", out);
    double accuracy = NAN, margin = NAN, mean = NAN, loss = NAN;
    long long pairs = 0;
    const char *last = strstr(out, "accuracy=");
    CHECK_MSG(last && sscanf(last, "accuracy=%lf margin=%lf mean_reward=%lf loss=%lf pairs=%lld", &accuracy, &margin,
                             &mean, &loss, &pairs) == 5, "%s", out);
    free(out);
    const char *metrics = ct_test_path("r/metrics.jsonl");
    CHECK_MSG(pairs == 68, "%lld held-out pairs: the run's evaluation in batches of 4 would not see them all", pairs);
    CHECK_NEAR(accuracy, metric(metrics, "eval", 200, "accuracy"), 1e-6);
    CHECK_NEAR(margin, metric(metrics, "eval", 200, "margin"), 1e-5);
    CHECK_NEAR(mean, metric(metrics, "eval", 200, "mean_reward"), 1e-5);
    CHECK_NEAR(loss, metric(metrics, "eval", 200, "val_loss"), 1e-5);
    CHECK_MSG(fabs(margin) > 1e-3, "margin %.6g: 200 steps should have moved the scores apart", margin);
}

// softplus(x) = log(1 + e^x) = −log σ(−x)
static double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

// The pairs' "margin" goes from the JSON lines through ctrain shard into the run's loss: the same
// pairs with margin 2 on every line. At step 0 the evaluation's scores lie in [min_reward,
// max_reward], so each pair's gap r_c − r_r lies within ±w (w their spread), and the held-out loss
// must lie in [softplus(2 − w), softplus(2 + w)] with the margins and in [softplus(−w), softplus(w)]
// without (w is small at the start: the intervals are far apart).
TEST(reward_run, margins_from_the_jsonl_enter_the_runs_loss) {
    const char *dir = ct_test_tmpdir();
    if (!ct_test_bin() || !ct_test_shared_data()) return;
    const char *bin = ct_test_bin();
    char cmd[8192], *out = NULL;
    int rc = make_pairs(dir, &out);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    char *pairs = ct_test_read(ct_test_path("pairs.jsonl"), NULL);
    CHECK(pairs);
    size_t n = strlen(pairs), at = 0;
    char *with = malloc(2 * n + 1);
    for (size_t i = 0; i < n; i++) {  // each line's closing brace gets the margin before it
        if (pairs[i] == '}' && (i + 1 == n || pairs[i + 1] == '\n')) at += (size_t)sprintf(with + at, ", \"margin\": 2");
        with[at++] = pairs[i];
    }
    with[at] = 0;
    ct_test_write("pairs_m.jsonl", with);
    free(with);
    free(pairs);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' shard --tokenizer tok.json --input pairs_m.jsonl --format dpo --val-fraction 0.1 --out "
             "pairs_m && '%s' shard --info pairs_m && '%s' reward reward.json --data.path=pairs_m --run.out_dir=m "
             "--run.threads=1 --train.max_steps=1 --train.save_every=0 && '%s' reward reward.json --run.out_dir=p "
             "--run.threads=1 --train.max_steps=1 --train.save_every=0",
             dir, bin, bin, bin, bin);
    rc = ct_test_run(cmd, &out);
    CHECK_MSG(rc == 0, "%s", out);
    CHECK_CONTAINS(out, "margins: one per pair, for the reward loss (min 2, mean 2, max 2; 0 of ");
    CHECK_CONTAINS(out, "reward: the pairs carry margins");
    free(out);
    for (int k = 0; k < 2; k++) {
        char metrics[64];
        snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", k == 0 ? "m" : "p");
        const char *path = ct_test_path(metrics);
        const double loss = metric(path, "eval", 0, "val_loss"), m = k == 0 ? 2 : 0;
        const double w = metric(path, "eval", 0, "max_reward") - metric(path, "eval", 0, "min_reward");
        CHECK_MSG(isfinite(loss) && w >= 0 && w < 1, "%s: loss %g, score spread %g", metrics, loss, w);
        CHECK_MSG(loss >= softplus(m - w) - 1e-6 && loss <= softplus(m + w) + 1e-6,
                  "%s: held-out loss %.6f at step 0, outside [%.6f, %.6f] for margin %g and score spread %.4f", metrics,
                  loss, softplus(m - w), softplus(m + w), m, w);
        printf("    margin %g: held-out loss %.6f at step 0, in [%.6f, %.6f] (scores within %.4f)\n", m, loss,
               softplus(m - w), softplus(m + w), w);
    }
}

// Data parallel: 2 ranks with 4 pairs each log and learn what 1 rank with 8 pairs does (the loss after
// two steps shows the gradients were summed alike); min_reward and max_reward are left out there.
TEST(reward_run, two_ranks_match_one_rank_with_their_pairs) {
#ifndef CTRAIN_MPI
    SKIP("this build has no MPI (install OpenMPI and rebuild to test data parallelism)");
#endif
    if (ct_test_run("command -v mpirun", NULL) != 0) SKIP("mpirun is not on PATH: data-parallel tests skipped");
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    if (!bin || !ct_test_shared_data()) return;
    char *out = NULL;
    int rc = make_pairs(dir, &out);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && OMP_NUM_THREADS=1 ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 timeout 300 mpirun --oversubscribe "
             "--allow-run-as-root -x ASAN_OPTIONS -x OMP_NUM_THREADS=1 -np 2 '%s' reward reward.json --run.out_dir=two "
             "--train.max_steps=3 --train.batch_size=4 --train.eval_every=0 2>&1 && OMP_NUM_THREADS=1 '%s' reward "
             "reward.json --run.out_dir=one --train.max_steps=3 --train.batch_size=8 --train.eval_every=0",
             dir, bin, bin);
    rc = ct_test_run(cmd, &out);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    const char *keys[4] = {"loss", "accuracy", "margin", "mean_reward"};
    for (int k = 1; k <= 3; k++)
        for (int i = 0; i < 4; i++) {
            double a = metric(ct_test_path("two/metrics.jsonl"), "train", k, keys[i]),
                   b = metric(ct_test_path("one/metrics.jsonl"), "train", k, keys[i]);
            CHECK_MSG(fabs(a - b) <= 1e-5 * fmax(1, fabs(b)), "step %d %s: 2 ranks %.9g, 1 rank %.9g", k, keys[i], a, b);
        }
    CHECK(isnan(metric(ct_test_path("two/metrics.jsonl"), "train", 3, "min_reward")));
    CHECK(isfinite(metric(ct_test_path("one/metrics.jsonl"), "train", 3, "min_reward")));
}

// LoRA reward models as PEFT's SEQ_CLS task: adapters over the frozen LM, `score` trained in full
// beside them (modules_to_save); the run resumes to the bit and exports PEFT's folder with the head.
TEST(reward_run, lora_trains_the_head_in_full_and_resumes_to_the_bit) {
    const char *dir = ct_test_tmpdir();
    if (!ct_test_bin() || !ct_test_shared_data()) return;
    const char *bin = ct_test_bin();
    char cmd[8192], *out = NULL;
    int rc = make_pairs(dir, &out);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    const char *run = "reward reward.json --run.threads=1 --train.init_from=lm/ckpt-step00000001.h5 --lora.r=4 "
                      "--train.max_steps=4 --train.eval_every=0 --train.save_every=2";
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' pretrain reward.json --data.path=text --run.out_dir=lm --run.threads=1 "
             "--train.max_steps=1 --train.eval_every=0 --train.eval_batches=1 && '%s' %s --run.out_dir=a",
             dir, bin, bin, run);
    rc = ct_test_run(cmd, &out);
    CHECK_MSG(rc == 0, "%s", out);
    CHECK_CONTAINS(out, "targets q_proj,v_proj: 4 adapters + the classification head in full (classifier,score: 1 tensors)");
    free(out);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s --run.out_dir=b --stop-after 2 && '%s' %s --run.out_dir=b --resume b && "
             "'%s' lora export b/ckpt-step00000004.h5 --out adapter && cat adapter/adapter_config.json",
             dir, bin, run, bin, run, bin);
    rc = ct_test_run(cmd, &out);
    CHECK_MSG(rc == 0, "%s", out);
    CHECK_CONTAINS(out, "\"task_type\":\t\"SEQ_CLS\"");
    free(out);
    for (int step = 3; step <= 4; step++) {
        double a = metric(ct_test_path("a/metrics.jsonl"), "train", step, "loss"),
               b = metric(ct_test_path("b/metrics.jsonl"), "train", step, "loss");
        CHECK_MSG(isfinite(a) && a == b, "step %d: loss %.9g uninterrupted, %.9g resumed", step, a, b);
    }
}
