// DPO runs through the binary: each step's row of rewards comes from the forward whose loss the
// step's row holds (TRL's logging), over every rank's pairs, no perplexity for a loss that is no cross-entropy, and the
// start-up line names the model the run trains (a checkpoint's, not the config's preset).
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/rng.h"
#include "tests/test.h"
#include "tests/train_fixture.h"

static const char *DPO_CONFIG =
    "{\"model\": {\"preset\": \"llama-tiny\", \"n_layer\": 2, \"d_model\": 64, \"n_head\": 4, \"n_kv_head\": 2, "
    "\"d_ff\": 128, \"max_seq_len\": 48}, \"data\": {\"path\": \"pairs\"}, \"train\": {\"batch_size\": 1, \"seq_len\": 48, "
    "\"max_steps\": 6, \"eval_every\": 3, \"eval_batches\": 4, \"eval_exact_match\": 0, \"save_every\": 3, "
    "\"init_from\": \"init/ckpt-step00000001.h5\"}, \"optim\": {\"lr\": 1e-2, \"warmup_steps\": 0, \"weight_decay\": 0}}";

// A 1024-token tokenizer trained on the shared corpus and plain-string pairs (reverse a list of
// fruit: chosen reversed, rejected as given), sharded into DIR/pairs, and the model DPO starts
// from (it refuses random weights): DPO_CONFIG's, one pretraining step on the corpus, in
// DIR/init/ckpt-step00000001.h5. 0, or the failing status with the output.
static int make_pairs(const char *dir, char **out) {
    ct_test_write("dpo.json", DPO_CONFIG);
    int rc = train_fixture_reverse_pairs(dir, 300, out);
    if (rc != 0) return rc;
    free(*out);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' pretrain dpo.json --data.path=text --run.out_dir=init --run.threads=1 --train.init_from= "
             "--train.max_steps=1 --train.eval_every=0 --train.eval_batches=1",
             dir, ct_test_bin());
    return ct_test_run(cmd, out);
}


// The value of `key` in the metrics line of `kind` at `step` that has that key (NAN if none).
static double metric(cJSON *const *lines, int n, const char *kind, int step, const char *key) {
    for (int i = 0; i < n; i++) {
        const cJSON *k = cJSON_GetObjectItem(lines[i], "kind"), *s = cJSON_GetObjectItem(lines[i], "step");
        const cJSON *v = cJSON_GetObjectItem(lines[i], key);
        if (cJSON_IsString(k) && strcmp(k->valuestring, kind) == 0 && cJSON_IsNumber(s) && s->valueint == step &&
            cJSON_IsNumber(v))
            return v->valuedouble;
    }
    return NAN;
}

static int read_metrics(const char *path, cJSON **lines, int max) {
    char *text = ct_test_read(path, NULL);
    int n = 0;
    for (char *line = text ? strtok(text, "\n") : NULL; line && n < max; line = strtok(NULL, "\n"))
        lines[n++] = cJSON_Parse(line);
    free(text);
    return n;
}

TEST(dpo, metrics_rows_come_from_the_forward_of_their_step) {
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    char *out = NULL;
    int rc = make_pairs(dir, &out);
    if (!ct_test_shared_data()) return;
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' dpo dpo.json --run.out_dir=d --run.threads=1", dir, bin);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_MSG(!strstr(out, "perplexity"), "%s", out);  // DPO's loss is no cross-entropy
    CHECK_CONTAINS(out, "dpo: llama (from init/ckpt-step00000001.h5)");
    free(out);
    cJSON *lines[64];
    int n = read_metrics(ct_test_path("d/metrics.jsonl"), lines, 64);
    // One pair per step: the step's loss is −logσ(margin) of the same forward, so the two rows
    // agree only when both come from it. Step 1's forward is the reference's: margin 0, loss ln 2.
    CHECK(isnan(metric(lines, n, "train", 0, "rewards/margins")));
    CHECK_NEAR(metric(lines, n, "train", 1, "rewards/margins"), 0, 0);
    CHECK_NEAR(metric(lines, n, "train", 1, "loss"), log(2.0), 1e-7);
    int moved = 0;
    for (int k = 1; k <= 6; k++) {
        double margin = metric(lines, n, "train", k, "rewards/margins"), loss = metric(lines, n, "train", k, "loss");
        CHECK_MSG(isfinite(margin) && isfinite(loss), "step %d: no train row with rewards/margins and loss", k);
        CHECK_MSG(fabs(loss - log1p(exp(-margin))) < 1e-6, "step %d: loss %.9g but -log sigmoid(margin %.9g) = %.9g", k,
                  loss, margin, log1p(exp(-margin)));
        moved += fabs(margin) > 1e-3;
    }
    CHECK_MSG(moved >= 3, "the policy hardly moved (%d steps with a margin)", moved);
    // Evaluations: the loss, and no perplexity.
    CHECK_NEAR(metric(lines, n, "eval", 0, "val_loss"), log(2.0), 1e-7);
    CHECK(isfinite(metric(lines, n, "eval", 6, "val_loss")));
    for (int i = 0; i < n; i++) CHECK_MSG(!cJSON_GetObjectItem(lines[i], "val_ppl"), "line %d has val_ppl", i + 1);
    for (int i = 0; i < n; i++) cJSON_Delete(lines[i]);

    // From a checkpoint, with a config that names no model (its preset is the default gpt2-124m):
    // the start-up line names the checkpoint's model.
    ct_test_write("from.json", "{\"data\": {\"path\": \"pairs\"}, \"train\": {\"batch_size\": 1, \"seq_len\": 48, "
                               "\"max_steps\": 1, \"eval_every\": 0, \"eval_batches\": 1, \"eval_exact_match\": 0, "
                               "\"save_every\": 0, \"init_from\": \"d/ckpt-step00000006.h5\"}}");
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' dpo from.json --run.out_dir=f --run.threads=1", dir, bin);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, "dpo: llama (from d/ckpt-step00000006.h5), 0.");
    CHECK_MSG(!strstr(out, "gpt2-124m"), "%s", out);
    free(out);
}

// Prompt learning under DPO: the reference is the base without the adapter (PEFT's
// disable_adapter, what TRL uses for a PEFT policy without a ref_model), so the random prefix or
// virtual tokens already separate policy and reference at step 1 (a reference that kept them would
// give margin 0 and loss ln 2 there); each row's loss is −logσ of its margin, and the run
// checkpoints.
static void dpo_reference_is_the_bare_base(const char *flags, const char *banner) {
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    char *out = NULL;
    int rc = make_pairs(dir, &out);
    if (!ct_test_shared_data()) return;
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' dpo dpo.json --run.out_dir=p --run.threads=1 --train.seq_len=40 %s", dir,
             bin, flags);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, banner);
    CHECK_CONTAINS(out, "done: 6 steps");
    free(out);
    cJSON *lines[64];
    int n = read_metrics(ct_test_path("p/metrics.jsonl"), lines, 64);
    CHECK_MSG(fabs(metric(lines, n, "train", 1, "rewards/margins")) > 1e-4, "step 1: margin %g: the reference kept "
              "the adapter", metric(lines, n, "train", 1, "rewards/margins"));
    for (int k = 1; k <= 6; k++) {
        double margin = metric(lines, n, "train", k, "rewards/margins"), loss = metric(lines, n, "train", k, "loss");
        CHECK_MSG(isfinite(margin) && isfinite(loss), "step %d: no train row with rewards/margins and loss", k);
        CHECK_MSG(fabs(loss - log1p(exp(-margin))) < 1e-6, "step %d: loss %.9g but -log sigmoid(margin %.9g) = %.9g", k,
                  loss, margin, log1p(exp(-margin)));
    }
    for (int i = 0; i < n; i++) cJSON_Delete(lines[i]);
    char *ckpt = ct_test_read(ct_test_path("p/ckpt-step00000006.h5"), NULL);
    CHECK_MSG(ckpt != NULL, "no checkpoint at step 6");
    free(ckpt);
}

TEST(dpo, prefix_tuning_has_the_base_without_its_prefix_as_reference) {
    dpo_reference_is_the_bare_base("--peft.type=prefix_tuning --peft.num_virtual_tokens=4",
                                   "peft: prefix_tuning, 4 virtual tokens");
}

TEST(dpo, prompt_tuning_has_the_base_without_its_virtual_tokens_as_reference) {
    dpo_reference_is_the_bare_base("--peft.type=prompt_tuning --peft.num_virtual_tokens=4",
                                   "peft: prompt_tuning, 4 virtual tokens");
}

// Data parallel: a step's row holds the rewards of every rank's pairs (TRL gathers them), so 2
// ranks with one pair each log what 1 rank with both pairs logs.
TEST(dpo, metrics_rows_under_mpirun_cover_every_rank) {
#ifndef CTRAIN_MPI
    SKIP("this build has no MPI (install OpenMPI and rebuild to test data parallelism)");
#endif
    if (ct_test_run("command -v mpirun", NULL) != 0) SKIP("mpirun is not on PATH: data-parallel tests skipped");
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    char *out = NULL;
    int rc = make_pairs(dir, &out);
    if (!ct_test_shared_data()) return;
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && OMP_NUM_THREADS=1 ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 timeout 300 mpirun --oversubscribe "
             "--allow-run-as-root -x ASAN_OPTIONS -x OMP_NUM_THREADS=1 -np 2 '%s' dpo dpo.json --run.out_dir=two "
             "--train.max_steps=3 2>&1 && OMP_NUM_THREADS=1 '%s' dpo dpo.json --run.out_dir=one --train.max_steps=3 "
             "--train.batch_size=2", dir, bin, bin);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    free(out);
    cJSON *two[64], *one[64];
    int n2 = read_metrics(ct_test_path("two/metrics.jsonl"), two, 64);
    int n1 = read_metrics(ct_test_path("one/metrics.jsonl"), one, 64);
    const char *keys[4] = {"rewards/chosen", "rewards/rejected", "logps/chosen", "rewards/accuracies"};
    for (int k = 2; k <= 3; k++)
        for (int i = 0; i < 4; i++) {
            double a = metric(two, n2, "train", k, keys[i]), b = metric(one, n1, "train", k, keys[i]);
            CHECK_MSG(fabs(a - b) <= 1e-5 * fmax(1, fabs(b)), "step %d %s: 2 ranks %.9g, 1 rank %.9g", k, keys[i], a, b);
        }
    for (int i = 0; i < n2; i++) cJSON_Delete(two[i]);
    for (int i = 0; i < n1; i++) cJSON_Delete(one[i]);
}
