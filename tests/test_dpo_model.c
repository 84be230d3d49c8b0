// DPO through a tiny model: the gradient against finite differences, ln 2 and zero margins at
// the start, and the reference computed on the fly equal to the precomputed one.
#include <math.h>

#include "core/alloc.h"
#include "kernels/ops.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/objectives/dpo.h"

// Two pairs (4 rows): a prompt of 3 tokens, completions of 2-4 tokens, loss mask on completions.
static void make_pairs(CtStepBatches *s, int V) {
    CtRng rng;
    ct_rng_seed(&rng, 21);
    const int T = s->T;
    for (int r = 0; r < s->rows; r++) {
        int completion = 2 + r % 3;
        for (int t = 0; t < T; t++) {
            size_t k = (size_t)r * T + t;
            s->tokens[k] = (int32_t)ct_rng_below(&rng, (uint32_t)V);
            s->targets[k] = t < 3 + completion - 1 ? (int32_t)ct_rng_below(&rng, (uint32_t)V) : -1;
            s->loss_mask[k] = t >= 2 && t < 3 + completion - 1;  // targets that are completion tokens
            s->positions[k] = t;
            s->doc_ids[k] = 0;
        }
        s->example_ids[r] = r / 2;
    }
}

static double dpo_loss(CtDpo *d, CtModel *m, CtStepBatches *s, int backward) {
    CtDpoStats st;
    memset(&st, 0, sizeof st);
    if (backward) ct_model_zero_grad(m);
    ct_dpo_micro_step(d, m, s, 0, s->rows / 2, CT_SPLIT_TRAIN, backward, &st);
    return st.loss;
}

TEST(dpo, starts_at_ln2_with_zero_margins) {
    CtModelConfig c = tiny_config(CT_ARCH_GPT2);
    CtModel m;
    CHECK_EQ_INT(ct_model_create(&m, &c, ct_ops_cpu(), 4, 8, 0), 0);
    tiny_randomize_params(&m, 1);
    CtStepBatches s;
    ct_step_batches_init(&s, 1, 4, 8);
    make_pairs(&s, c.vocab_size);
    CtDpo d;
    CHECK_EQ_INT(ct_dpo_init(&d, CT_DPO_SIGMOID, 0.1, 0, &m, NULL, 4, 8), 0);
    CtDpoStats st;
    memset(&st, 0, sizeof st);
    ct_dpo_micro_step(&d, &m, &s, 0, 2, CT_SPLIT_TRAIN, 0, &st);
    ct_dpo_stats_finish(&st);
    CHECK_NEAR(st.loss, log(2.0), 1e-12);
    CHECK(st.reward_chosen == 0 && st.reward_rejected == 0);
    ct_dpo_free(&d);
    ct_step_batches_free(&s);
    ct_model_free(&m);
}

static void gradient_check(CtDpoLoss type) {
    CtModelConfig c = tiny_config(CT_ARCH_LLAMA);
    CtModel m;
    CHECK_EQ_INT(ct_model_create(&m, &c, ct_ops_cpu(), 4, 8, 0), 0);
    tiny_randomize_params(&m, 2);
    CtStepBatches s;
    ct_step_batches_init(&s, 1, 4, 8);
    make_pairs(&s, c.vocab_size);
    CtDpo d;
    CHECK_EQ_INT(ct_dpo_init(&d, type, 0.5, 0.1, &m, NULL, 4, 8), 0);
    tiny_randomize_params(&m, 3);  // the policy moves away from the reference
    dpo_loss(&d, &m, &s, 1);
    // Directional derivative along a random direction u: analytic g·u against (L(θ+hu) − L(θ−hu)) / 2h.
    float *u = ct_alloc(m.n_params * sizeof(float)), *theta = ct_alloc(m.n_params * sizeof(float));
    CtRng rng;
    ct_rng_seed(&rng, 5);
    double analytic = 0, norm = 0;
    for (size_t i = 0; i < m.n_params; i++) {
        u[i] = (float)ct_rng_normal(&rng);
        norm += (double)u[i] * u[i];
    }
    for (size_t i = 0; i < m.n_params; i++) {  // a unit direction: the step stays small
        u[i] = (float)(u[i] / sqrt(norm));
        analytic += (double)u[i] * m.grads[i];
    }
    memcpy(theta, m.params, m.n_params * sizeof(float));
    const double h = 1e-2;  // along a unit direction; float log-probabilities limit smaller steps
    for (size_t i = 0; i < m.n_params; i++) m.params[i] = theta[i] + (float)h * u[i];
    double up = dpo_loss(&d, &m, &s, 0);
    for (size_t i = 0; i < m.n_params; i++) m.params[i] = theta[i] - (float)h * u[i];
    double down = dpo_loss(&d, &m, &s, 0);
    double fd = (up - down) / (2 * h);
    CHECK_MSG(fabs(fd - analytic) <= 2e-2 * fabs(analytic) + 1e-6, "loss %d: analytic %.8g, finite difference %.8g", type,
              analytic, fd);
    ct_free(u);
    ct_free(theta);
    ct_dpo_free(&d);
    ct_step_batches_free(&s);
    ct_model_free(&m);
}

TEST(dpo, gradient_through_the_model_matches_finite_differences) {
    gradient_check(CT_DPO_SIGMOID);
    if (ct_test_failed()) return;
    gradient_check(CT_DPO_IPO);
    if (ct_test_failed()) return;
    gradient_check(CT_DPO_ROBUST);
}

// ---- end to end through the binary ----

// Writes noisy SFT data (half the answers reversed, half copied) and preference pairs
// (chosen: reversed, rejected: copied) as chat JSON lines.
static void write_reverse_data(const char *dir) {
    char path[1200];
    CtRng rng;
    ct_rng_seed(&rng, 17);
    snprintf(path, sizeof path, "%s/noisy.jsonl", dir);
    FILE *sft = fopen(path, "w");
    snprintf(path, sizeof path, "%s/pairs.jsonl", dir);
    FILE *pairs = fopen(path, "w");
    for (int i = 0; i < 5000; i++) {
        char letters[8], fwd[32] = "", back[32] = "";
        int n = 2 + (int)ct_rng_below(&rng, 4);
        for (int k = 0; k < n; k++) letters[k] = (char)('a' + ct_rng_below(&rng, 26));
        for (int k = 0; k < n; k++) {
            snprintf(fwd + strlen(fwd), sizeof fwd - strlen(fwd), "%s%c", k ? " " : "", letters[k]);
            snprintf(back + strlen(back), sizeof back - strlen(back), "%s%c", k ? " " : "", letters[n - 1 - k]);
        }
        if (i < 3500)
            fprintf(sft, "{\"prompt\": \"reverse: %s\", \"response\": \"%s\"}\n", fwd, ct_rng_below(&rng, 2) ? back : fwd);
        else
            fprintf(pairs, "{\"prompt\": [{\"role\": \"user\", \"content\": \"reverse: %s\"}], \"chosen\": [{\"role\": "
                           "\"assistant\", \"content\": \"%s\"}], \"rejected\": [{\"role\": \"assistant\", \"content\": \"%s\"}]}\n",
                    fwd, back, fwd);
    }
    fclose(sft);
    fclose(pairs);
}

static double number_after(const char *text, const char *key) {
    const char *p = strstr(text, key);
    double v = NAN;
    if (p) sscanf(p + strlen(key), "%lf", &v);
    return v;
}

// Greedy answers follow the preference only in a window of learning rates: DPO widens the margin
// by pushing the rejected answer down more than the chosen one up, and past ~2e-4 it degrades
// generation (from 35%: 63-67% at 7e-5..1.5e-4, 24% at 2e-4, 34-38% at 3e-4, 1% at 1e-3;
// docs/benchmarks.md). The test runs in that window.
TEST_LONG(dpo, preference_tuning_moves_answers_to_the_chosen_ones) {
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    write_reverse_data(dir);
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd,
             "cd '%s' && cp noisy.jsonl noisy.txt && '%s' tokenizer train --input noisy.txt --vocab-size 300 "
             "--special '<|endoftext|>' --out tok.json && '%s' shard --tokenizer tok.json --input noisy.jsonl --format sft "
             "--val-fraction 0.05 --out sft && '%s' shard --tokenizer sft/tokenizer.json --input pairs.jsonl --format dpo "
             "--val-fraction 0.1 --out pairs",
             dir, bin, bin, bin);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    free(out);
    const char *model = "\"model\": {\"preset\": \"llama-tiny\", \"n_layer\": 3, \"d_model\": 128, \"n_head\": 4, \"n_kv_head\": 2,"
                        " \"d_ff\": 384, \"max_seq_len\": 48}";
    char config[2048];
    snprintf(config, sizeof config,
             "{%s, \"data\": {\"path\": \"sft\"}, \"train\": {\"batch_size\": 16, \"seq_len\": 48, \"max_steps\": 800,"
             " \"eval_every\": 800, \"eval_batches\": 2, \"eval_exact_match\": 0, \"save_every\": 0},"
             " \"optim\": {\"lr\": 2e-3, \"min_lr\": 2e-4, \"warmup_steps\": 30, \"weight_decay\": 0}}", model);
    ct_test_write("sft.json", config);
    snprintf(config, sizeof config,
             "{%s, \"data\": {\"path\": \"pairs\"}, \"train\": {\"batch_size\": 8, \"seq_len\": 48, \"max_steps\": 100,"
             " \"eval_every\": 100, \"eval_batches\": 16, \"eval_exact_match\": 100, \"save_every\": 0,"
             " \"init_from\": \"s/ckpt-step00000800.h5\"}, \"optim\": {\"lr\": 1e-4, \"min_lr\": 1e-5, \"warmup_steps\": 5,"
             " \"weight_decay\": 0}}", model);
    ct_test_write("dpo.json", config);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' sft sft.json --run.out_dir=s --run.threads=1", dir, bin);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    free(out);
    // The reference computed on the fly and precomputed once give the same training.
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' dpo dpo.json --run.out_dir=d --run.threads=1", dir, bin);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' dpo dpo.json --run.out_dir=p --run.threads=1 --dpo.precompute_ref=true "
             "--train.max_steps=100", dir, bin);
    char *out2;
    CHECK_EQ_INT(ct_test_run(cmd, &out2), 0);
    const char *start = strstr(out, "step      0 | dpo val: greedy answers equal to the chosen completion: ");
    double before = number_after(out, "step      0 | dpo val: greedy answers equal to the chosen completion: ");
    double after = number_after(out, "done: exact match ");
    double accuracy = number_after(out, "done: held-out rewards/accuracies ");
    double val0 = number_after(out, "step      0 | val loss ");
    CHECK_MSG(start != NULL, "%s", out);
    CHECK_NEAR(val0, log(2.0), 1e-4);  // policy = reference at the start
    CHECK_MSG(accuracy > 0.9, "held-out rewards/accuracies %.3f", accuracy);
    CHECK_MSG(after >= before + 5, "greedy answers equal to the chosen one: %.1f%% -> %.1f%%", before, after);
    double loss_on_the_fly = number_after(out, "final train loss "), loss_precomputed = number_after(out2, "final train loss ");
    CHECK_NEAR(loss_on_the_fly, loss_precomputed, 1e-3 * fabs(loss_on_the_fly) + 1e-4);
    CHECK_NEAR(accuracy, number_after(out2, "done: held-out rewards/accuracies "), 0.02);
    free(out);
    free(out2);
    // With LoRA: the reference is the base with the adapters off (no second model); the same run
    // with the base loaded as a separate reference model gives the same training.
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' dpo dpo.json --run.out_dir=l --run.threads=1 --optim.lr=5e-4 --lora.r=16 "
             "--lora.alpha=32 --lora.targets=all-linear", dir, bin);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, "reference the frozen base with the adapters off");
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' dpo dpo.json --run.out_dir=m --run.threads=1 --optim.lr=5e-4 --lora.r=16 "
             "--lora.alpha=32 --lora.targets=all-linear --dpo.ref_checkpoint=s/ckpt-step00000800.h5", dir, bin);
    CHECK_EQ_INT(ct_test_run(cmd, &out2), 0);
    before = number_after(out, "step      0 | dpo val: greedy answers equal to the chosen completion: ");
    after = number_after(out, "done: exact match ");
    accuracy = number_after(out, "done: held-out rewards/accuracies ");
    // measured 0.945 (2026-11-22) and 0.898 (115 of 128 pairs, 2026-12-08, after the fused
    // cross-entropy moved the SFT base's rounding): far above chance (0.5), a pair or two either way
    CHECK_MSG(accuracy > 0.85, "LoRA: held-out rewards/accuracies %.3f", accuracy);
    CHECK_MSG(after >= before + 5, "LoRA: greedy answers equal to the chosen one: %.1f%% -> %.1f%%", before, after);
    double off = number_after(out, "final train loss "), copy = number_after(out2, "final train loss ");
    CHECK_NEAR(off, copy, 1e-3 * fabs(off) + 1e-4);
    free(out);
    free(out2);
}
