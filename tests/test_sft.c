// SFT's loss: masked tokens contribute nothing, packing does not change the loss or the
// gradients, and the normalisation over the step does not depend on how it is split; best.h5
// is never worse than the start.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/ops.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/interop/checkpoint_io.h"
#include "train/objectives/step_batches.h"

typedef struct {
    int len;
    int32_t tok[12];
    uint8_t mask[12];  // 1 on response targets
} Example;

static void make_examples(Example *ex, int n, int V) {
    CtRng rng;
    ct_rng_seed(&rng, 99);
    for (int e = 0; e < n; e++) {
        ex[e].len = 5 + e % 4;
        for (int i = 0; i < ex[e].len; i++) {
            ex[e].tok[i] = (int32_t)ct_rng_below(&rng, (uint32_t)V);
            ex[e].mask[i] = i >= ex[e].len / 2;
        }
    }
}

// Fills micro-batch rows: examples placed one per row (packed = 0) or two per row (packed = 1).
static void place(CtStepBatches *s, const Example *ex, int n, int packed) {
    const int T = s->T;
    size_t total = (size_t)s->accum * s->rows * T;
    for (size_t k = 0; k < total; k++) {
        s->tokens[k] = 0;
        s->targets[k] = -1;
        s->loss_mask[k] = 0;
        s->positions[k] = 0;
        s->doc_ids[k] = -1;
    }
    int row = 0, at = 0, doc = 0;
    for (int e = 0; e < n; e++) {
        if (!packed || at + ex[e].len - 1 > T) {
            if (e > 0) row++;
            at = 0;
            doc = 0;
        }
        for (int i = 0; i + 1 < ex[e].len; i++, at++) {
            size_t k = (size_t)row * T + at;
            s->tokens[k] = ex[e].tok[i];
            s->targets[k] = ex[e].tok[i + 1];
            s->loss_mask[k] = ex[e].mask[i + 1];
            s->positions[k] = i;
            s->doc_ids[k] = doc;
        }
        doc++;
    }
    const size_t per = (size_t)s->rows * T;
    s->total = 0;
    for (int i = 0; i < s->accum; i++) {
        s->counts[i] = 0;
        for (size_t k = 0; k < per; k++) s->counts[i] += s->loss_mask[i * per + k] && s->targets[i * per + k] >= 0;
        s->total += s->counts[i];
    }
    ct_step_batches_normalise(s, s->total);
}

static double run_step(CtModel *m, const CtStepBatches *s) {
    ct_model_zero_grad(m);
    double loss = 0;
    for (int i = 0; i < s->accum; i++) {
        CtBatch b = ct_step_batch(s, i, 1);
        loss += ct_model_forward(m, &b);
        ct_model_backward(m);
    }
    return loss;
}

static double max_rel_diff(const float *a, const float *b, size_t n) {
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(a[i]));
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(a[i] - b[i]) / scale);
    return worst;
}

TEST(sft, masked_tokens_contribute_exactly_zero_gradient) {
    CtModelConfig c = tiny_config(CT_ARCH_LLAMA);
    CtModel m;
    CHECK_EQ_INT(ct_model_create(&m, &c, ct_ops_cpu(), 4, 16, 0), 0);
    tiny_randomize_params(&m, 4);
    Example ex[4];
    make_examples(ex, 4, c.vocab_size);
    CtStepBatches s;
    ct_step_batches_init(&s, 1, 4, 16);
    place(&s, ex, 4, 0);
    double loss = run_step(&m, &s);
    float *g1 = ct_alloc(m.n_params * sizeof(float));
    memcpy(g1, m.grads, m.n_params * sizeof(float));
    // Change every masked-out target: nothing may move.
    for (size_t k = 0; k < (size_t)4 * 16; k++)
        if (!s.loss_mask[k] && s.targets[k] >= 0) s.targets[k] = (s.targets[k] + 7) % c.vocab_size;
    double loss2 = run_step(&m, &s);
    CHECK(loss == loss2);
    CHECK(memcmp(g1, m.grads, m.n_params * sizeof(float)) == 0);
    ct_free(g1);
    ct_step_batches_free(&s);
    ct_model_free(&m);
}

TEST(sft, packed_and_unpacked_batches_agree) {
    CtModelConfig c = tiny_config(CT_ARCH_LLAMA);
    CtModel m;
    CHECK_EQ_INT(ct_model_create(&m, &c, ct_ops_cpu(), 6, 16, 0), 0);
    tiny_randomize_params(&m, 6);
    Example ex[6];
    make_examples(ex, 6, c.vocab_size);
    CtStepBatches one_per_row, packed;
    ct_step_batches_init(&one_per_row, 1, 6, 16);
    ct_step_batches_init(&packed, 1, 6, 16);
    place(&one_per_row, ex, 6, 0);
    place(&packed, ex, 6, 1);
    double a = run_step(&m, &one_per_row);
    float *ga = ct_alloc(m.n_params * sizeof(float));
    memcpy(ga, m.grads, m.n_params * sizeof(float));
    double b = run_step(&m, &packed);
    CHECK_NEAR(a, b, 1e-5 * fabs(a));
    double diff = max_rel_diff(ga, m.grads, m.n_params);
    CHECK_MSG(diff < 1e-5, "gradients differ by %g between packed and unpacked batches", diff);
    ct_free(ga);
    ct_step_batches_free(&one_per_row);
    ct_step_batches_free(&packed);
    ct_model_free(&m);
}

TEST(sft, step_loss_does_not_depend_on_the_micro_batch_split) {
    CtModelConfig c = tiny_config(CT_ARCH_GPT2);
    CtModel m;
    CHECK_EQ_INT(ct_model_create(&m, &c, ct_ops_cpu(), 4, 16, 0), 0);
    tiny_randomize_params(&m, 8);
    Example ex[4];
    make_examples(ex, 4, c.vocab_size);  // examples of different lengths: per-batch means would differ
    float *reference = ct_alloc(m.n_params * sizeof(float));
    double reference_loss = 0;
    for (int accum = 1; accum <= 4; accum *= 2) {
        CtStepBatches s;
        ct_step_batches_init(&s, accum, 4 / accum, 16);
        place(&s, ex, 4, 0);
        double loss = run_step(&m, &s);
        if (accum == 1) {
            reference_loss = loss;
            memcpy(reference, m.grads, m.n_params * sizeof(float));
        } else {
            CHECK_NEAR(loss, reference_loss, 1e-5 * fabs(reference_loss));
            double diff = max_rel_diff(reference, m.grads, m.n_params);
            CHECK_MSG(diff < 1e-5, "accum %d: gradients differ by %g", accum, diff);
        }
        ct_step_batches_free(&s);
    }
    ct_free(reference);
    ct_model_free(&m);
}

// The number after the last occurrence of key in text (NAN if none).
static double last_number_after(const char *text, const char *key) {
    double v = NAN;
    for (const char *p = strstr(text, key); p; p = strstr(p + 1, key)) sscanf(p + strlen(key), "%lf", &v);
    return v;
}

// 400 arithmetic questions, a 1024-id tokenizer trained on the corpus, and the sft dataset "qa"
// (10% held out) in the test's folder; `extra` runs after it (may be ""). 0, or -1 after
// recording a failure.
static int make_qa_dataset(const char *extra) {
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir(), *shared = ct_test_shared_data();
    char path[1200];
    snprintf(path, sizeof path, "%s/qa.jsonl", dir);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 400; i++)
        fprintf(f, "{\"prompt\": \"What is %d plus %d?\", \"response\": \"%d\"}\n", i % 17, i % 23, i % 17 + i % 23);
    fclose(f);
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd,
             "cd '%s' && head -c 300000 '%s/corpora/nlp-corpus-40k.txt' > corpus.txt && '%s' tokenizer train --input "
             "corpus.txt --vocab-size 1024 --special '<|endoftext|>' --out tok.json && '%s' shard --tokenizer tok.json "
             "--input qa.jsonl --format sft --val-fraction 0.1 --out qa %s",
             dir, shared, bin, bin, extra);
    int rc = ct_test_run(cmd, &out);
    if (rc != 0) ct_test_fail(__FILE__, __LINE__, "making the qa dataset failed (%d): %s", rc, out);
    free(out);
    return rc == 0 ? 0 : -1;
}

TEST(sft, best_checkpoint_is_the_start_when_validation_only_gets_worse) {
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    if (!ct_test_shared_data()) return;
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd, "&& '%s' shard --tokenizer tok.json --input qa.jsonl --format sft --val-fraction 0 --out qa_all",
             bin);
    if (make_qa_dataset(cmd) != 0) return;
    // A learning rate no model survives: every evaluation after the start is worse than it.
    ct_test_write("sft.json", "{\"model\": {\"preset\": \"llama-tiny\", \"n_layer\": 2, \"d_model\": 64, \"n_head\": 4, "
                              "\"n_kv_head\": 2, \"d_ff\": 128, \"max_seq_len\": 32}, \"data\": {\"path\": \"qa\"}, "
                              "\"train\": {\"batch_size\": 4, \"seq_len\": 32, \"max_steps\": 6, \"eval_every\": 2, "
                              "\"eval_batches\": 2, \"eval_exact_match\": 0, \"save_every\": 0}, \"optim\": {\"lr\": 3.0, "
                              "\"min_lr\": 3.0, \"warmup_steps\": 0, \"weight_decay\": 0}}");
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' sft sft.json --run.out_dir=s --run.threads=1", dir, bin);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    double start = last_number_after(out, "step      0 | val loss "), end = last_number_after(out, "| val loss ");
    CHECK_MSG(isfinite(start) && end > start, "validation should only get worse: %s", out);
    CHECK_MSG(!strstr(out, "best so far"), "%s", out);
    CHECK_CONTAINS(out, "best s/best.h5");
    free(out);
    CtModelConfig config;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    CHECK_MSG(ct_checkpoint_read_meta(ct_test_path("s/best.h5"), &config, &meta) == 0, "%s", ct_error_message());
    CHECK_EQ_INT((int)meta.step, 0);  // the starting model
    CHECK_NEAR(meta.val_loss, start, 1e-4);
    ct_checkpoint_meta_free(&meta);
    // Without a validation split there is no best.h5, and the last line does not name one.
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' sft sft.json --run.out_dir=n --run.threads=1 --data.path=qa_all "
             "--optim.lr=1e-3 --optim.min_lr=1e-4", dir, bin);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    const char *done = strstr(out, "done:");  // the warning about the missing split names best.h5; the last line must not
    CHECK_MSG(done && !strstr(done, "best.h5"), "%s", out);
    free(out);
    CHECK(ct_test_read(ct_test_path("n/best.h5"), NULL) == NULL);
}

// Validation runs the model as the training step does: packed examples attend only to
// themselves (positions restarting), so the validation loss is the same packed or not. It was
// evaluated without the document masks, each example reading its row-mates, which gave a fully
// trained model (100% exact match) a validation loss of 4.1 against a train loss of 0.0002.
TEST(sft, validation_loss_is_the_same_packed_or_one_example_per_row) {
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    if (!ct_test_shared_data() || make_qa_dataset("") != 0) return;
    char cmd[4096], *out;
    // A model that has learnt to use its context (a random one barely reads it), then its
    // validation loss with one row a batch and more batches than rows: every validation
    // example is evaluated, one per row or packed.
    const char *model = "\"model\": {\"preset\": \"llama-tiny\", \"n_layer\": 2, \"d_model\": 64, \"n_head\": 4, "
                        "\"n_kv_head\": 2, \"d_ff\": 128, \"max_seq_len\": 64}, \"data\": {\"path\": \"qa\"}";
    char config[1024];
    snprintf(config, sizeof config, "{%s, \"train\": {\"batch_size\": 8, \"seq_len\": 64, \"max_steps\": 150, "
             "\"eval_every\": 0, \"eval_exact_match\": 0, \"save_every\": 0}, \"optim\": {\"lr\": 3e-3}}", model);
    ct_test_write("train.json", config);
    snprintf(config, sizeof config, "{%s, \"train\": {\"batch_size\": 1, \"seq_len\": 64, \"max_steps\": 1, "
             "\"eval_every\": 1, \"eval_batches\": 1000, \"eval_exact_match\": 0, \"save_every\": 0, "
             "\"init_from\": \"t/ckpt-step00000150.h5\"}}", model);
    ct_test_write("eval.json", config);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' sft train.json --run.out_dir=t --run.threads=1", dir, bin);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    free(out);
    double loss[2];
    for (int packed = 0; packed < 2; packed++) {
        snprintf(cmd, sizeof cmd, "cd '%s' && '%s' sft eval.json --run.out_dir=s%d --run.threads=1 --data.packing=%s", dir,
                 bin, packed, packed ? "true" : "false");
        CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
        loss[packed] = last_number_after(out, "step      0 | val loss ");
        CHECK_MSG(isfinite(loss[packed]), "%s", out);
        free(out);
    }
    CHECK_MSG(fabs(loss[0] - loss[1]) <= 2e-4, "validation loss %.4f one example per row, %.4f packed (printed to 4 decimals)", loss[0],
              loss[1]);
}
