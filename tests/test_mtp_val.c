// Multi-token prediction in validation and plots: `ctrain pretrain --model.mtp_depth=2` writes
// val_mtp_loss/1, /2 on its eval lines and in the eval log line; each equals the module loss of a
// direct forward of the same checkpoint on the same validation batch; the validation pass
// (ct_lm_evaluate) weighs batches by the tokens each depth counted and leaves the main val loss
// as the model without modules gives it; loss.svg draws the depths' curves (and a resumed run's
// plot, reloaded from metrics.jsonl, is the uninterrupted run's), and so does bench/plot_runs.py --depths.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "data/loader/loader.h"
#include "data/shard/dataset.h"
#include "kernels/ops.h"
#include "tests/test.h"
#include "tests/train_fixture.h"
#include "train/interop/checkpoint_io.h"
#include "train/loop/metrics.h"
#include "train/objectives/lm.h"

enum { B = 4, T = 32 };

static const char *CONFIG =
    "{\"model\": {\"preset\": \"llama-tiny\", \"n_layer\": 1, \"d_model\": 32, \"n_head\": 2, \"n_kv_head\": 1,"
    " \"d_ff\": 64, \"max_seq_len\": 32, \"mtp_depth\": 2},"
    " \"train\": {\"batch_size\": 4, \"seq_len\": 32, \"max_steps\": 20, \"eval_every\": 10, \"eval_batches\": 1,"
    " \"save_every\": 10, \"n_samples\": 0},"
    " \"optim\": {\"lr\": 3e-3, \"warmup_steps\": 4}}";

// The validation loader as the run opens it (train/loop/train_setup.c: no shuffling, run.seed 1337).
static int open_val(CtDataset *d, CtLoader *l) {
    char path[2048];
    snprintf(path, sizeof path, "%s/data", ct_test_tmpdir());
    CtLoaderOptions o;
    ct_loader_default_options(&o);
    o.batch = B;
    o.seq_len = T;
    o.seed = 1337;
    o.shuffle = 0;
    o.rank = 0;
    o.world = 1;
    if (ct_dataset_open(d, path) != 0) return -1;
    if (ct_loader_open(l, d, CT_SPLIT_VAL, &o) != 0) {
        ct_dataset_close(d);
        return -1;
    }
    return 0;
}

// The loss of a forward over the loader's next batch; the depths' losses and counts in m.
static double forward_next(CtModel *m, CtLoader *l) {
    const CtLoaderBatch *b;
    if (ct_loader_next(l, &b) != 0) return NAN;
    CtBatch mb = {.tokens = b->tokens, .targets = b->targets, .loss_mask = b->loss_mask, .B = b->rows, .T = b->T};
    return ct_model_forward(m, &mb);
}

TEST(mtp_val, eval_lines_carry_each_depths_loss_of_the_validation_batches) {
    ct_log_set_level(CT_LOG_QUIET);
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    if (train_fixture_stories(400) != 0) return;
    ct_test_write("run.json", CONFIG);
    char prefix[2048], cmd[4096], *out;
    // on the CPU: the direct forward below runs there, and a GPU's losses differ in the 5th digit
    snprintf(prefix, sizeof prefix, "cd '%s' && '%s' pretrain run.json --data.path=data --run.threads=1 --run.device=cpu",
             dir, bin);
    snprintf(cmd, sizeof cmd, "%s --run.out_dir=a 2>&1", prefix);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, "step     20 | val loss ");
    CHECK_CONTAINS(out, " | mtp ");
    free(out);
    if (ct_test_failed()) return;

    char path[1200];
    snprintf(path, sizeof path, "%s/a/metrics.jsonl", dir);
    const double v1 = train_fixture_metric(path, "eval", 20, "val_mtp_loss/1");
    const double v2 = train_fixture_metric(path, "eval", 20, "val_mtp_loss/2");
    const double main_val = train_fixture_metric(path, "eval", 20, "val_loss");
    CHECK_MSG(isfinite(v1) && isfinite(v2), "the eval line of step 20 has no val_mtp_loss/1 or /2");
    CHECK(isfinite(train_fixture_metric(path, "eval", 0, "val_mtp_loss/2")));  // the starting model's too
    CHECK(isnan(train_fixture_metric(path, "eval", 20, "val_mtp_loss/3")));
    CHECK(isnan(train_fixture_metric(path, "train", 20, "val_mtp_loss/1")));

    // a direct forward of the step-20 checkpoint on the first validation batch (train.eval_batches 1)
    CtModel m;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    CHECK_MSG(ct_checkpoint_load(ct_test_path("a/ckpt-step00000020.h5"), &m, ct_ops_cpu(), B, T, 0, NULL, &meta) == 0,
              "%s", ct_error_message());
    ct_checkpoint_meta_free(&meta);
    CtDataset d;
    CtLoader l;
    CHECK_MSG(open_val(&d, &l) == 0, "%s", ct_error_message());
    if (ct_test_failed()) return;
    m.mtp_weight = 0.3f;
    const double loss = forward_next(&m, &l);
    CHECK_NEAR(loss, main_val, 1e-5 * main_val);
    CHECK_NEAR(m.mtp_loss[0], v1, 1e-5 * v1);
    CHECK_NEAR(m.mtp_loss[1], v2, 1e-5 * v2);
    printf("    step 20: val_loss %.4f, val_mtp_loss/1 %.4f, /2 %.4f (direct forward: %.4f, %.4f, %.4f)\n", main_val,
           v1, v2, loss, (double)m.mtp_loss[0], (double)m.mtp_loss[1]);

    // two batches: each depth's validation loss is Σ loss·count / Σ count over them, and the main
    // loss is what the model gives without running the modules
    CtObjectiveRun o = {.set = {.seed = 1337, .eval_batches = 2}, .model = &m, .val = &l};
    int failed = 0;
    const double val = ct_lm_evaluate(&o, &failed);
    CHECK(!failed && o.val_mtp_depth == 2);
    CtLoaderState start = {1337, 0, 0};
    ct_loader_restore(&l, &start);
    double sum[2] = {0}, count[2] = {0};
    for (int i = 0; i < 2; i++) {
        forward_next(&m, &l);
        for (int k = 0; k < 2; k++) {
            sum[k] += (double)m.mtp_loss[k] * m.mtp_loss_count[k];
            count[k] += m.mtp_loss_count[k];
        }
    }
    for (int k = 0; k < 2; k++) CHECK_NEAR(o.val_mtp_loss[k], sum[k] / count[k], 1e-9);
    m.mtp_weight = 0;
    o.val_mtp_depth = -1;
    const double without = ct_lm_evaluate(&o, &failed);
    CHECK(!failed && o.val_mtp_depth == 0);
    CHECK_MSG(val == without, "the modules changed the main val loss: %.9g vs %.9g", val, without);
    ct_loader_close(&l);
    ct_dataset_close(&d);
    ct_model_free(&m);

    // loss.svg: the depths' train and validation curves with their legend
    char *svg = ct_test_read(ct_test_path("a/loss.svg"), NULL);
    CHECK_CONTAINS(svg, "class=\"mtp-train\"");
    CHECK_CONTAINS(svg, "class=\"mtp-val\"");
    CHECK_CONTAINS(svg, "mtp depth 2 (train, val)");
    CHECK(svg && !strstr(svg, "mtp depth 3"));
    // a run stopped at step 10 and resumed draws the same plot: the curves reload from metrics.jsonl
    snprintf(cmd, sizeof cmd, "%s --run.out_dir=b --stop-after 10 && %s --run.out_dir=b --resume b", prefix, prefix);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    free(out);
    char *resumed = ct_test_read(ct_test_path("b/loss.svg"), NULL);
    const char *after_a = svg ? strstr(svg, "</text>") : NULL, *after_b = resumed ? strstr(resumed, "</text>") : NULL;
    CHECK_MSG(after_a && after_b && strcmp(after_a, after_b) == 0,  // past the title, which names the run's folder
              "the resumed run's loss.svg differs from the run's");
    free(svg);
    free(resumed);

    // bench/plot_runs.py --depths draws each depth's validation loss beside the run's
    const char *root = getenv("CTRAIN_ROOT");
    if (!root || system("python3 -c '' 2>/dev/null") != 0) return;  // the binary's side is checked above
    snprintf(cmd, sizeof cmd, "cd '%s' && python3 '%s/bench/plot_runs.py' --out runs.svg --depths a=a 2>&1", dir, root);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    free(out);
    char *runs = ct_test_read(ct_test_path("runs.svg"), NULL), want[64];
    snprintf(want, sizeof want, ">a depth 2 (%.3f)<", v2);
    CHECK_CONTAINS(runs, want);
    CHECK_CONTAINS(runs, "stroke-dasharray");
    free(runs);
}

// The plot without depths has no depth curve; with them, one dashed train line and one validation
// line with markers per depth, inside the plot's range.
TEST(mtp_val, loss_svg_draws_each_depth_beside_the_main_curves) {
    CtCurvePoint train[3] = {{100, 5.0}, {200, 4.0}, {300, 3.5}}, val[2] = {{150, 4.5}, {300, 3.8}};
    CtCurvePoint d1[3] = {{100, 6.0}, {200, 5.5}, {300, 5.2}}, d1v[2] = {{150, 5.8}, {300, 5.4}};
    char *plain = ct_loss_svg(train, 3, val, 2, NULL, "run");
    CHECK(plain && !strstr(plain, "mtp"));
    CtDepthCurves depths = {.depth = 1, .train = {d1}, .val = {d1v}, .n_train = {3}, .n_val = {2}};
    char *svg = ct_loss_svg(train, 3, val, 2, &depths, "run");
    CHECK_CONTAINS(svg, "class=\"mtp-train\"");
    CHECK_CONTAINS(svg, "class=\"mtp-val\"");
    CHECK_CONTAINS(svg, "mtp depth 1 (train, val)");
    CHECK(!strstr(svg, "mtp depth 2"));
    // the y axis reaches the depth's highest loss (6.0): a tick at 6 exists, none without the depth
    CHECK_CONTAINS(svg, ">6</text>");
    CHECK(!strstr(plain, ">6</text>"));
    ct_free(plain);
    ct_free(svg);
}
