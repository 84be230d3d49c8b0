// Pretraining end to end through the ctrain binary on a tiny model: resume to the bit, the
// non-finite stop, the interrupt checkpoint, damaged checkpoints on resume.
#include <math.h>
#include <signal.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/ops.h"
#include "tests/test.h"
#include "tests/train_fixture.h"
#include "train/checkpoint_io.h"

static const char *CONFIG =
    "{\"model\": {\"preset\": \"llama-tiny\", \"n_layer\": 1, \"d_model\": 32, \"n_head\": 2, \"n_kv_head\": 1,"
    " \"d_ff\": 64, \"max_seq_len\": 32},"
    " \"train\": {\"batch_size\": 4, \"seq_len\": 32, \"max_steps\": 20, \"eval_every\": 5, \"eval_batches\": 2,"
    " \"save_every\": 5, \"keep_last\": 3, \"n_samples\": 1, \"sample_tokens\": 8},"
    " \"optim\": {\"lr\": 3e-3, \"warmup_steps\": 4}}";

// stories -> tokenizer -> shards in the test folder; returns the ctrain command prefix.
static const char *prepare(void) {
    static char prefix[2048];
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    if (train_fixture_stories(400) != 0) return NULL;
    ct_test_write("run.json", CONFIG);
    snprintf(prefix, sizeof prefix, "cd '%s' && '%s' pretrain run.json --data.path=data", dir, bin);
    return prefix;
}

static int pretrain(const char *prefix, const char *extra, char **out) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s", prefix, extra);
    return ct_test_run(cmd, out);
}

TEST(pretrain, resume_continues_to_the_bit) {
    const char *prefix = prepare();
    if (!prefix) return;
    char *out;
    CHECK_EQ_INT(pretrain(prefix, "--run.out_dir=a", &out), 0);
    CHECK_CONTAINS(out, "done: 20 steps");
    CHECK_CONTAINS(out, "vs unigram entropy");
    free(out);
    CHECK_EQ_INT(pretrain(prefix, "--run.out_dir=b --stop-after 10", &out), 0);
    CHECK_CONTAINS(out, "stopped after 10 steps as asked");
    free(out);
    CHECK_EQ_INT(pretrain(prefix, "--run.out_dir=b --resume b", &out), 0);
    CHECK_CONTAINS(out, "resumed from b/ckpt-step00000010.h5 at step 10");
    free(out);
    char *a = train_fixture_metric_lines("a", 11), *b = train_fixture_metric_lines("b", 11);
    CHECK(a && b && strlen(a) > 100);
    CHECK_MSG(strcmp(a, b) == 0, "losses after resuming differ:\n%s\nvs\n%s", a, b);
    free(a);
    free(b);
    CtModel ma, mb;
    CtAdamW oa, ob;
    CHECK_EQ_INT(train_fixture_load_checkpoint("a", "ckpt-step00000020.h5", &ma, &oa), 0);
    CHECK_EQ_INT(train_fixture_load_checkpoint("b", "ckpt-step00000020.h5", &mb, &ob), 0);
    CHECK(ma.n_params == mb.n_params);
    CHECK(memcmp(ma.params, mb.params, ma.n_params * sizeof(float)) == 0);
    CHECK(memcmp(oa.m, ob.m, ma.n_params * sizeof(float)) == 0 && memcmp(oa.v, ob.v, ma.n_params * sizeof(float)) == 0);
    CHECK_EQ_INT(oa.step, 20);
    // keep_last 3: steps 10, 15, 20 remain; best.h5 is there too
    char path[1200];
    snprintf(path, sizeof path, "%s/a/ckpt-step00000005.h5", ct_test_tmpdir());
    CHECK(access(path, F_OK) != 0);
    snprintf(path, sizeof path, "%s/a/best.h5", ct_test_tmpdir());
    CHECK(access(path, F_OK) == 0);
    snprintf(path, sizeof path, "%s/a/loss.svg", ct_test_tmpdir());
    char *svg = ct_test_read(path, NULL);
    CHECK(svg && strstr(svg, "<svg") && strstr(svg, "polyline"));
    free(svg);
    ct_model_free(&ma);
    ct_model_free(&mb);
    ct_adamw_free(&oa);
    ct_adamw_free(&ob);
}

TEST(pretrain, non_finite_loss_stops_naming_the_step) {
    const char *prefix = prepare();
    if (!prefix) return;
    char *out;
    CHECK_EQ_INT(pretrain(prefix, "--run.out_dir=a --train.max_steps=5 --train.save_every=0", &out), 0);
    free(out);
    CtModel m;
    CtAdamW opt;
    CHECK_EQ_INT(train_fixture_load_checkpoint("a", "ckpt-step00000005.h5", &m, &opt), 0);
    for (int i = 0; i < m.n_tensors; i++)  // poison the final norm, which every token goes through
        if (strcmp(m.table[i].name, "model.norm.weight") == 0) m.params[m.table[i].offset] = NAN;
    char path[1200];
    snprintf(path, sizeof path, "%s/nan.h5", ct_test_tmpdir());
    CtCheckpointMeta meta;
    ct_checkpoint_meta_init(&meta);
    CHECK_EQ_INT(ct_checkpoint_save(path, &m, NULL, &meta), 0);
    ct_model_free(&m);
    ct_adamw_free(&opt);
    CHECK_EQ_INT(pretrain(prefix, "--run.out_dir=n --train.init_from=nan.h5", &out), 1);
    CHECK_CONTAINS(out, "step 1: the loss is NaN; stopping");
    free(out);
}

TEST(pretrain, interrupt_saves_and_resume_skips_damaged_checkpoints) {
    const char *prefix = prepare();
    if (!prefix) return;
    char cmd[4096], *out;
    // A long run, interrupted once it has logged a few steps.
    snprintf(cmd, sizeof cmd,
             "%s --run.out_dir=i --train.max_steps=100000 --train.save_every=0 --train.eval_every=0 & pid=$!; "
             "for k in $(seq 200); do sleep 0.05; n=$(grep -c train '%s/i/metrics.jsonl' 2>/dev/null || true); "
             "[ \"${n:-0}\" -ge 3 ] && break; done; kill -INT $pid; wait $pid; echo \"exit=$?\"",
             prefix, ct_test_tmpdir());
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, "exit=130");
    CHECK_CONTAINS(out, "interrupted at step");
    CHECK_CONTAINS(out, "continue with --resume i");
    free(out);
    // Damage the newest checkpoint: resume goes back to an older complete one, or says there is none.
    CHECK_EQ_INT(pretrain(prefix, "--run.out_dir=d --train.max_steps=10 --stop-after 5", &out), 0);
    free(out);
    CHECK_EQ_INT(pretrain(prefix, "--run.out_dir=d --train.max_steps=10 --resume d --stop-after 2", &out), 0);
    free(out);
    snprintf(cmd, sizeof cmd, "cd '%s/d' && head -c 3000 ckpt-step00000007.h5 > x && mv x ckpt-step00000007.h5",
             ct_test_tmpdir());
    CHECK_EQ_INT(ct_test_run(cmd, NULL), 0);
    CHECK_EQ_INT(pretrain(prefix, "--run.out_dir=d --train.max_steps=10 --resume d", &out), 0);
    CHECK_CONTAINS(out, "skipping d/ckpt-step00000007.h5");
    CHECK_CONTAINS(out, "resumed from d/ckpt-step00000005.h5 at step 5");
    free(out);
    CHECK_EQ_INT(pretrain(prefix, "--run.out_dir=e --resume nowhere", &out), 1);
    CHECK_CONTAINS(out, "nowhere: no complete checkpoint to resume from");
    free(out);
}

TEST_LONG(pretrain, make_demo_learns_below_the_unigram_entropy) {
    const char *root = getenv("CTRAIN_ROOT");
    if (!root) SKIP("CTRAIN_ROOT is not set (run through make test-long)");
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd, "cd '%s' && OUT='%s/demo' CTRAIN='%s' scripts/demo.sh", root, ct_test_tmpdir(), ct_test_bin());
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    const char *line = strstr(out, "done: validation loss ");
    CHECK_MSG(line != NULL, "%s", out);
    double val, unigram;
    CHECK_EQ_INT(sscanf(line, "done: validation loss %lf vs unigram entropy %lf", &val, &unigram), 2);
    CHECK_MSG(val < 0.5 * unigram, "validation loss %.4f is not clearly below the unigram entropy %.4f", val, unigram);
    free(out);
}

// SFT on a synthetic task: a small model from scratch goes from no right answers to at least
// 90% exact match on held-out prompts ("reverse: q w e" -> "e w q").
TEST(sft, learns_to_reverse_from_under_5_to_over_90_percent) {
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' synth instructions --task reverse --examples 6000 --out rev.jsonl && cp rev.jsonl rev.txt && "
             "'%s' tokenizer train --input rev.txt --vocab-size 300 --special '<|endoftext|>' --out tok.json && "
             "'%s' shard --tokenizer tok.json --input rev.jsonl --format sft --val-fraction 0.05 --out data",
             dir, bin, bin, bin);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    free(out);
    ct_test_write("sft.json",
                  "{\"model\": {\"preset\": \"llama-tiny\", \"n_layer\": 3, \"d_model\": 128, \"n_head\": 4, \"n_kv_head\": 2,"
                  " \"d_ff\": 384, \"max_seq_len\": 64}, \"data\": {\"path\": \"data\"},"
                  " \"train\": {\"batch_size\": 16, \"seq_len\": 64, \"max_steps\": 800, \"eval_every\": 400,"
                  " \"eval_batches\": 4, \"eval_exact_match\": 100, \"save_every\": 0},"
                  " \"optim\": {\"lr\": 2e-3, \"min_lr\": 2e-4, \"warmup_steps\": 30, \"weight_decay\": 0.0}}");
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' sft sft.json --run.out_dir=run --run.threads=1", dir, bin);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    double before = -1, after = -1;
    const char *first = strstr(out, "step      0 | exact match ");
    const char *last = strstr(out, "done: exact match ");
    CHECK_MSG(first && last, "%s", out);
    sscanf(first, "step      0 | exact match %lf", &before);
    sscanf(last, "done: exact match %lf", &after);
    CHECK_MSG(before < 5 && after >= 90, "exact match %.1f%% -> %.1f%%", before, after);
    free(out);
    // The chat command renders the prompt with the template stored in the checkpoint and
    // stops at the end-of-turn token.
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' chat --checkpoint run/ckpt-step00000800.h5 --prompt 'reverse: k i w i s' "
             "--temperature 0 --threads 1", dir, bin);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_STR_EQ(out, "s i w i k\n");
    free(out);
}

// SFT with LoRA: a base pretrained on the task's plain text ("reverse: a b => b a") does not
// answer in the chat format (new template tokens, new layout); LoRA adapters on every linear
// layer over the frozen base take it from under 5% to at least 90% exact match.
TEST_LONG(sft, lora_learns_the_chat_format_from_under_5_to_over_90_percent) {
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    char cmd[8192], *out;
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' synth instructions --task reverse --examples 8000 --seed 3 --out rev.jsonl && "
             "sed -E 's/^\\{\"prompt\": \"(.*)\", \"response\": \"(.*)\"\\}$/\\1 => \\2\\n/' rev.jsonl > plain.txt && "
             "'%s' tokenizer train --input plain.txt --vocab-size 300 --special '<|endoftext|>' --out tok.json && "
             "'%s' shard --tokenizer tok.json --input plain.txt --split paragraphs --out lm --val-fraction 0.02 && "
             "'%s' shard --tokenizer tok.json --input rev.jsonl --format sft --out sft --val-fraction 0.05",
             dir, bin, bin, bin, bin);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    free(out);
    const char *model = "\"model\": {\"preset\": \"llama-tiny\", \"n_layer\": 3, \"d_model\": 128, \"n_head\": 4, "
                        "\"n_kv_head\": 2, \"d_ff\": 384, \"max_seq_len\": 64}";
    char config[2048];
    snprintf(config, sizeof config,
             "{%s, \"data\": {\"path\": \"lm\"}, \"train\": {\"batch_size\": 16, \"seq_len\": 64, \"max_steps\": 2000,"
             " \"eval_every\": 1000, \"eval_batches\": 4, \"save_every\": 0, \"n_samples\": 0},"
             " \"optim\": {\"lr\": 2e-3, \"min_lr\": 2e-4, \"warmup_steps\": 30, \"weight_decay\": 0}}", model);
    ct_test_write("base.json", config);
    snprintf(config, sizeof config,
             "{%s, \"data\": {\"path\": \"sft\"}, \"train\": {\"batch_size\": 16, \"seq_len\": 64, \"max_steps\": 600,"
             " \"eval_every\": 600, \"eval_batches\": 4, \"eval_exact_match\": 100, \"save_every\": 0,"
             " \"init_from\": \"base/ckpt-step00002000.h5\"}, \"lora\": {\"r\": 16, \"alpha\": 32, \"targets\": \"all-linear\"},"
             " \"optim\": {\"lr\": 3e-3, \"min_lr\": 3e-4, \"warmup_steps\": 20, \"weight_decay\": 0}}", model);
    ct_test_write("lora.json", config);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' pretrain base.json --run.out_dir=base --run.threads=1 && "
             "'%s' sft lora.json --run.out_dir=lora --run.threads=1", dir, bin, bin);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    double before = -1, after = -1;
    const char *first = strstr(out, "step      0 | exact match ");
    const char *last = strstr(out, "done: exact match ");
    CHECK_MSG(first && last && strstr(out, "lora: r 16"), "%s", out);
    sscanf(first, "step      0 | exact match %lf", &before);
    sscanf(last, "done: exact match %lf", &after);
    CHECK_MSG(before < 5 && after >= 90, "LoRA SFT exact match %.1f%% -> %.1f%%", before, after);
    free(out);
}
