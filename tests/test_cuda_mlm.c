// Masked-language modelling on the GPU (suite "cuda"): `ctrain mlm` with run.device = cuda masks
// what the CPU run masks (the masks are drawn on the host), its losses and masked-token accuracies
// track the CPU's in fp32 and stay close with bf16 products, and it resumes to the bit. The
// accuracy reads the logits back from the device before backward (train/objectives/mlm.c).
// Skips without a usable GPU; runs on the CPU emulation of CUDA (tests/test_cuda_emu/run.sh).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/cuda_fixture.h"
#include "tests/test.h"
#include "tests/train_fixture.h"

static const char *CONFIG =
    "{\"model\": {\"preset\": \"llama-tiny\", \"n_layer\": 1, \"d_model\": 32, \"n_head\": 2, \"n_kv_head\": 1,"
    " \"d_ff\": 64, \"max_seq_len\": 32},"
    " \"train\": {\"batch_size\": 4, \"seq_len\": 32, \"max_steps\": 8, \"eval_every\": 4, \"eval_batches\": 2,"
    " \"save_every\": 4, \"keep_last\": 3, \"n_samples\": 0},"
    " \"optim\": {\"lr\": 3e-3, \"warmup_steps\": 2}, \"mlm\": {\"mlm_probability\": 0.3}}";

static int run_mlm(const char *extra, char **out) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' mlm run.json --data.path=data --run.threads=1 %s 2>&1", ct_test_tmpdir(),
             ct_test_bin(), extra);
    return ct_test_run(cmd, out);
}

static double metric(const char *run_dir, const char *kind, int step, const char *key) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", ct_test_tmpdir(), run_dir);
    return train_fixture_metric(path, kind, step, key);
}

TEST(cuda, mlm_on_the_gpu_tracks_the_cpu_and_resumes_to_the_bit) {
    cuda_fixture_ops_or_skip();
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' synth stories --documents 200 --out stories.txt && '%s' tokenizer train --input stories.txt "
             "--vocab-size 300 --special '<|endoftext|>' --special '<mask>' --out tok.json && '%s' shard --tokenizer "
             "tok.json --input stories.txt --split paragraphs --val-fraction 0.1 --out data",
             ct_test_tmpdir(), ct_test_bin(), ct_test_bin(), ct_test_bin());
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    free(out);
    ct_test_write("run.json", CONFIG);
    CHECK_EQ_INT(run_mlm("--run.device=cpu --run.out_dir=cpu", &out), 0);
    free(out);
    CHECK_EQ_INT(run_mlm("--run.device=cuda --run.precision=fp32 --run.out_dir=a", &out), 0);
    CHECK_CONTAINS(out, "training on cuda");
    CHECK_CONTAINS(out, "done: held-out masked-token accuracy");
    free(out);
    CHECK_EQ_INT(run_mlm("--run.device=cuda --run.precision=fp32 --run.out_dir=b --stop-after 4", &out), 0);
    free(out);
    CHECK_EQ_INT(run_mlm("--run.device=cuda --run.precision=fp32 --run.out_dir=b --resume b", &out), 0);
    free(out);
    CHECK_EQ_INT(run_mlm("--run.device=cuda --run.out_dir=bf16", &out), 0);
    CHECK_CONTAINS(out, "training on cuda-bf16");
    free(out);
    char *a = train_fixture_metric_lines("a", 5), *b = train_fixture_metric_lines("b", 5);
    CHECK(a && b && strstr(a, "mlm_acc"));
    CHECK_MSG(a && b && strcmp(a, b) == 0, "mlm losses after resuming on the GPU differ:\n%s\nvs\n%s", a, b);
    free(a);
    free(b);
    for (int step = 1; step <= 8; step++) {
        // the same masks: the same number of selected tokens at every step
        CHECK(metric("cpu", "train", step, "mlm_selected") == metric("a", "train", step, "mlm_selected"));
        const double lc = metric("cpu", "train", step, "loss"), lg = metric("a", "train", step, "loss");
        CHECK_MSG(fabs(lg - lc) < 1e-4 * lc, "step %d: mlm loss %.7f on the GPU, %.7f on the CPU", step, lg, lc);
        const double lb = metric("bf16", "train", step, "loss");
        CHECK_MSG(fabs(lb - lc) < 0.02 * lc, "step %d: mlm loss %.5f with bf16 products, %.5f in fp32", step, lb, lc);
    }
    // accuracies: an argmax can flip between near-equal logits, so within a few of the selected tokens
    const double n = metric("cpu", "eval", 8, "val_mlm_selected");
    CHECK(n > 0 && metric("a", "eval", 8, "val_mlm_selected") == n);
    CHECK_MSG(fabs(metric("a", "eval", 8, "val_mlm_acc") - metric("cpu", "eval", 8, "val_mlm_acc")) <= 2 / n,
              "val_mlm_acc %.4f on the GPU, %.4f on the CPU", metric("a", "eval", 8, "val_mlm_acc"),
              metric("cpu", "eval", 8, "val_mlm_acc"));
    CHECK(metric("a", "eval", 0, "val_mlm_unigram_acc") == metric("cpu", "eval", 0, "val_mlm_unigram_acc"));
}
