// The masked-language-model objective (train/objectives/mlm.h): its loss is the cross-entropy of
// the original token at each selected position (no shift) and nothing else, its accuracy counts
// the selected positions whose largest logit is the original; and end to end through `ctrain mlm`
// on a causal model (the objective needs only logits at every position): it learns well above the
// unigram baseline, resumes to the bit, accumulation and two ranks equal one big batch, LoRA
// trains over a checkpoint, and a tokenizer without a mask token is refused.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"
#include "kernels/ops.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "tests/train_fixture.h"
#include "train/model/lora.h"
#include "train/objectives/mlm.h"

// Ids 0 ("<s>", special), 1 .. V-2 (single bytes), V-1 ("<mask>", special).
static void id_tokenizer(CtTokenizer *t, int V) {
    ct_tokenizer_init(t, CT_PATTERN_GPT2, CT_MERGES_BY_LIST);
    ct_tokenizer_add(t, 0, (const uint8_t *)"<s>", 3, CT_TOKEN_SPECIAL);
    for (int i = 1; i < V - 1; i++) {
        uint8_t byte = (uint8_t)('A' + i);
        ct_tokenizer_add(t, i, &byte, 1, CT_TOKEN_NORMAL);
    }
    ct_tokenizer_add(t, V - 1, (const uint8_t *)"<mask>", 6, CT_TOKEN_SPECIAL);
}

TEST(mlm, loss_is_cross_entropy_of_the_original_tokens_at_selected_positions) {
    CtModelConfig c = tiny_config(CT_ARCH_LLAMA);
    const int V = c.vocab_size, B = 3, T = 16;
    CtModel m;
    CHECK_EQ_INT(ct_model_create(&m, &c, ct_ops_cpu(), B, T, 0), 0);
    tiny_randomize_params(&m, 21);
    CtTokenizer tok;
    id_tokenizer(&tok, V);
    CtMlmRun st;
    const CtMlmRates rates = {0.4, 0.8, 0.1, 0};
    CHECK_EQ_INT(ct_mlm_run_init(&st, &tok, V, &rates), 0);
    CtStepBatches s;
    ct_step_batches_init(&s, 1, B, T);
    CtRng rng;
    ct_rng_seed(&rng, 3);
    int32_t original[3 * 16];
    for (int k = 0; k < B * T; k++) {
        original[k] = s.tokens[k] = k % T == 0 ? 0 : 1 + (int32_t)ct_rng_below(&rng, (uint32_t)V - 2);
        s.targets[k] = -7;  // the loader's next tokens: masking replaces them all
        s.doc_ids[k] = 0;
        s.loss_mask[k] = 1;
    }
    s.counts[0] = s.total = B * T;
    const int64_t n = ct_mlm_mask_micro_batch(&st.masking, &s, 0, 5, ct_mlm_train_stream(0), 0);
    CHECK(n > 5 && n < B * T - 5);
    CHECK(s.counts[0] == n && s.total == n);
    ct_step_batches_normalise(&s, s.total);
    CtBatch batch = ct_step_batch(&s, 0, 0);
    const double loss = ct_model_forward(&m, &batch);
    // By hand, in double: the mean over selected positions of lse(z_t) − z_t[x_t], x_t the token
    // that was at position t before masking; no other position counts.
    const float *z = ct_model_logits(&m);
    double sum = 0;
    int count = 0, correct = 0, changed = 0;
    for (int k = 0; k < B * T; k++) {
        CHECK(s.targets[k] == (s.loss_mask[k] ? original[k] : -1));
        changed += s.tokens[k] != original[k];
        if (!s.loss_mask[k]) continue;
        const float *zk = z + (size_t)k * V;
        double mx = zk[0], e = 0;
        int best = 0;
        for (int v = 1; v < V; v++)
            if (zk[v] > mx) mx = zk[v], best = v;
        for (int v = 0; v < V; v++) e += exp((double)zk[v] - mx);
        sum += mx + log(e) - zk[original[k]];
        count++;
        correct += best == original[k];
    }
    CHECK_EQ_INT(count, (int)n);
    CHECK(changed > 0 && changed <= count);  // the inputs were masked where selected, only there
    CHECK_MSG(fabs(loss - sum / count) < 1e-5 * fmax(1, sum / count), "model %.7f, by hand %.7f", loss, sum / count);
    CHECK_EQ_INT((int)ct_mlm_correct(&m, batch.targets, B * T), correct);
    ct_step_batches_free(&s);
    ct_mlm_masking_free(&st.masking);
    ct_tokenizer_free(&tok);
    ct_model_free(&m);
}

static const char *CONFIG =
    "{\"model\": {\"preset\": \"llama-tiny\", \"n_layer\": 2, \"d_model\": 64, \"n_head\": 4, \"n_kv_head\": 2,"
    " \"d_ff\": 128, \"max_seq_len\": 64},"
    " \"train\": {\"batch_size\": 8, \"seq_len\": 64, \"max_steps\": 20, \"eval_every\": 10, \"eval_batches\": 4,"
    " \"save_every\": 10, \"keep_last\": 3, \"n_samples\": 0},"
    " \"optim\": {\"lr\": 3e-3, \"warmup_steps\": 10}, \"run\": {\"threads\": 1}}";

// Synthetic stories -> a 400-token tokenizer with <mask> (or without) -> text shards in data/;
// the ctrain mlm command prefix into *prefix. 0, or -1 after a recorded failure.
static int prepare(char *prefix, size_t size, int with_mask) {
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' synth stories --documents 400 --out stories.txt && '%s' tokenizer train --input stories.txt "
             "--vocab-size 400 --special '<|endoftext|>' %s --out tok.json && '%s' shard --tokenizer tok.json --input "
             "stories.txt --split paragraphs --val-fraction 0.1 --out data",
             dir, bin, bin, with_mask ? "--special '<mask>'" : "", bin);
    if (ct_test_run(cmd, &out) != 0) {
        ct_test_fail(__FILE__, __LINE__, "preparing the data failed: %s", out);
        free(out);
        return -1;
    }
    free(out);
    ct_test_write("run.json", CONFIG);
    snprintf(prefix, size, "cd '%s' && '%s' mlm run.json --data.path=data", dir, bin);
    return 0;
}

static int mlm(const char *prefix, const char *extra, char **out) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", prefix, extra);
    return ct_test_run(cmd, out);
}

static double metric(const char *run_dir, const char *kind, int step, const char *key) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", ct_test_tmpdir(), run_dir);
    return train_fixture_metric(path, kind, step, key);
}

// ‖a − b‖ / ‖b‖ over the parameters of two checkpoints (DIR, FILE in the test folder); -1 unreadable.
static double param_difference(const char *a_dir, const char *a_file, const char *b_dir, const char *b_file) {
    CtModel a, b;
    CtAdamW oa, ob;
    if (train_fixture_load_checkpoint(a_dir, a_file, &a, &oa) != 0) return -1;
    if (train_fixture_load_checkpoint(b_dir, b_file, &b, &ob) != 0) return -1;
    double diff = 0, norm = 0;
    for (size_t i = 0; i < a.n_params && a.n_params == b.n_params; i++) {
        diff += ((double)a.params[i] - b.params[i]) * ((double)a.params[i] - b.params[i]);
        norm += (double)b.params[i] * b.params[i];
    }
    const double rel = a.n_params == b.n_params ? sqrt(diff / norm) : -1;
    ct_model_free(&a), ct_model_free(&b), ct_adamw_free(&oa), ct_adamw_free(&ob);
    return rel;
}
#define STEP10 "ckpt-step00000010.h5"
#define STEP20 "ckpt-step00000020.h5"

TEST(mlm, a_causal_model_learns_well_above_the_unigram_baseline) {
    char prefix[4096], *out;
    if (prepare(prefix, sizeof prefix, 1) != 0) return;
    CHECK_EQ_INT(mlm(prefix, "--run.out_dir=run --train.max_steps=200 --train.eval_every=50 --optim.warmup_steps=10", &out), 0);
    CHECK_CONTAINS(out, "mlm: selecting 15% of the tokens of each row");
    CHECK_CONTAINS(out, "done: held-out masked-token accuracy");
    free(out);
    const double loss0 = metric("run", "eval", 0, "val_loss"), loss = metric("run", "eval", 200, "val_loss");
    const double acc0 = metric("run", "eval", 0, "val_mlm_acc"), acc = metric("run", "eval", 200, "val_mlm_acc");
    const double unigram = metric("run", "eval", 0, "val_mlm_unigram_acc");
    CHECK_MSG(loss < loss0 - 1.5, "val_loss %.4f at the start, %.4f after 200 steps", loss0, loss);
    CHECK_MSG(unigram > 0.03 && acc > 2 * unigram && acc > acc0 + 0.1,
              "val_mlm_acc %.4f at the start, %.4f after 200 steps; unigram baseline %.4f", acc0, acc, unigram);
    // the train lines carry the step's accuracy on its selected tokens
    const double train_acc = metric("run", "train", 200, "mlm_acc");
    CHECK(train_acc > unigram && train_acc <= 1);
}

TEST(mlm, resume_continues_to_the_bit) {
    char prefix[4096], *out;
    if (prepare(prefix, sizeof prefix, 1) != 0) return;
    CHECK_EQ_INT(mlm(prefix, "--run.out_dir=a", &out), 0);
    free(out);
    CHECK_EQ_INT(mlm(prefix, "--run.out_dir=b --stop-after 10", &out), 0);
    free(out);
    CHECK_EQ_INT(mlm(prefix, "--run.out_dir=b --resume b", &out), 0);
    CHECK_CONTAINS(out, "resumed from b/ckpt-step00000010.h5 at step 10");
    free(out);
    char *a = train_fixture_metric_lines("a", 11), *b = train_fixture_metric_lines("b", 11);
    CHECK(a && b && strstr(a, "mlm_acc") && strstr(a, "\"step\": 20"));
    CHECK_MSG(a && b && strcmp(a, b) == 0, "losses after resuming differ:\n%s\nvs\n%s", a, b);
    free(a);
    free(b);
    CHECK(param_difference("a", STEP20, "b", STEP20) == 0);
    CHECK(metric("a", "eval", 20, "val_mlm_acc") == metric("b", "eval", 20, "val_mlm_acc"));
}

TEST(mlm, accumulated_micro_batches_equal_one_batch) {
    char prefix[4096], *out;
    if (prepare(prefix, sizeof prefix, 1) != 0) return;
    CHECK_EQ_INT(mlm(prefix, "--run.out_dir=one", &out), 0);
    free(out);
    CHECK_EQ_INT(mlm(prefix, "--run.out_dir=two --train.batch_size=4 --train.grad_accum=2", &out), 0);
    free(out);
    const double rel = param_difference("one", STEP20, "two", STEP20);
    CHECK_MSG(rel >= 0 && rel < 1e-5, "batch 8 vs 2 micro-batches of 4: relative difference %g", rel);
    CHECK(metric("one", "train", 20, "mlm_selected") == metric("two", "train", 20, "mlm_selected"));
    const double moved = param_difference("one", STEP10, "one", STEP20);  // the comparison means something
    CHECK_MSG(moved > 1e-3, "the parameters barely moved (%g)", moved);
}

TEST(mlm, lora_adapters_train_over_a_checkpoint) {
    char prefix[4096], *out;
    if (prepare(prefix, sizeof prefix, 1) != 0) return;
    CHECK_EQ_INT(mlm(prefix, "--run.out_dir=base --train.max_steps=60 --train.eval_every=0", &out), 0);
    free(out);
    CHECK_EQ_INT(mlm(prefix, "--run.out_dir=lora --train.init_from=base/ckpt-step00000060.h5 --lora.r=4 "
                             "--lora.targets=all-linear --train.max_steps=40 --optim.lr=1e-2 --train.eval_every=40", &out), 0);
    CHECK_CONTAINS(out, "starting from the weights of base/ckpt-step00000060.h5");
    free(out);
    const double before = metric("lora", "eval", 0, "val_loss"), after = metric("lora", "eval", 40, "val_loss");
    CHECK_MSG(after < before - 0.02, "LoRA val_loss %.4f -> %.4f", before, after);
}

TEST(mlm, a_tokenizer_without_a_mask_token_is_refused) {
    char prefix[4096], *out;
    if (prepare(prefix, sizeof prefix, 0) != 0) return;
    CHECK_EQ_INT(mlm(prefix, "--run.out_dir=run", &out), 1);
    CHECK_CONTAINS(out, "mlm: the tokenizer has no mask token");
    CHECK_CONTAINS(out, "--special");
    free(out);
    CHECK_EQ_INT(mlm(prefix, "--run.out_dir=run --mlm.mask_replace_prob=0.95", &out), 1);
    CHECK_CONTAINS(out, "mlm.mask_replace_prob 0.95 + mlm.random_replace_prob 0.1 exceed 1");
    free(out);
}

// Data parallel (issue 10's rule for every objective): 2 ranks with batch 4 mask, score and step
// what 1 rank with batch 8 does. Skipped without MPI.
TEST(mlm, two_ranks_equal_one_rank_with_twice_the_batch) {
#ifndef CTRAIN_MPI
    SKIP("this build has no MPI (install OpenMPI and rebuild to test data parallelism)");
#endif
    if (ct_test_run("command -v mpirun", NULL) != 0) SKIP("mpirun is not on PATH: data-parallel tests skipped");
    char prefix[4096], *out;
    if (prepare(prefix, sizeof prefix, 1) != 0) return;
    CHECK_EQ_INT(mlm(prefix, "--run.out_dir=one", &out), 0);
    free(out);
    CHECK_EQ_INT(train_fixture_mpirun(2, "mlm run.json --data.path=data --run.out_dir=two --train.batch_size=4", &out), 0);
    CHECK_CONTAINS(out, "data parallel: parameters identical on all 2 ranks");
    free(out);
    const double rel = param_difference("one", STEP20, "two", STEP20);
    CHECK_MSG(rel >= 0 && rel < 1e-5, "2 ranks x batch 4 vs 1 rank x batch 8: relative difference %g", rel);
    CHECK(metric("one", "train", 20, "mlm_selected") == metric("two", "train", 20, "mlm_selected"));
    CHECK_NEAR(metric("one", "train", 20, "mlm_acc"), metric("two", "train", 20, "mlm_acc"), 1e-12);
    CHECK_NEAR(metric("one", "eval", 20, "val_mlm_acc"), metric("two", "eval", 20, "val_mlm_acc"), 1e-12);
}

// BERT end to end: a WordPiece tokenizer ([PAD] [UNK] [CLS] [SEP] [MASK]), documents framed
// [CLS] text [SEP], a bidirectional encoder trained by ctrain mlm: held-out masked-token accuracy
// well above the unigram baseline and a falling loss; the next-token objectives refuse it.
//
// It is not compared with a causal model of its size: at this scale the causal llama learns faster
// (seed 1337, 150 steps: val_mlm_acc 0.28 for bert, 0.42 for llama; 300 steps 0.30 vs 0.58; 1500
// steps about equal, 0.63-0.72 vs 0.66-0.70 over three seeds), and transformers' own
// BertForMaskedLM does the same on these rows (0.32 at 300 steps), while ctrain's bert follows it
// step for step from the same weights (docs/encoder.md, "Measured"). BERT must learn its absolute
// position table from scratch before it can use a neighbour; RoPE gives the llama relative
// positions from the start (a bidirectional llama reaches 0.73 at 300 steps, one with BERT's learned
// positions instead of RoPE 0.40).
// Synthetic stories, a WordPiece tokenizer of them, shards with a validation split and bert.json
// (bert-tiny at 2 layers, d_model 64; 150 steps of 8 x 64). 0, or -1 (the test failed).
static int prepare_bert(void) {
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' synth stories --documents 400 --out stories.txt && '%s' tokenizer train --model wordpiece "
             "--lowercase --input stories.txt --vocab-size 400 --out tok.json && '%s' shard --tokenizer tok.json --input "
             "stories.txt --split paragraphs --val-fraction 0.1 --out data",
             dir, bin, bin, bin);
    if (ct_test_run(cmd, &out) != 0) {
        ct_test_fail(__FILE__, __LINE__, "preparing the data failed: %s", out);
        free(out);
        return -1;
    }
    free(out);
    ct_test_write("bert.json",
                  "{\"model\": {\"preset\": \"bert-tiny\", \"n_layer\": 2, \"d_model\": 64, \"n_head\": 4, "
                  "\"d_ff\": 128, \"max_seq_len\": 64}, \"data\": {\"path\": \"data\", \"doc_masking\": true},"
                  " \"train\": {\"batch_size\": 8, \"seq_len\": 64, \"max_steps\": 150, \"eval_every\": 150, "
                  "\"eval_batches\": 4, \"save_every\": 150, \"n_samples\": 0}, \"optim\": {\"lr\": 3e-3, "
                  "\"warmup_steps\": 10}, \"run\": {\"threads\": 1}}");
    return 0;
}

TEST(mlm, an_encoder_learns_masked_tokens_well_above_the_unigram_baseline) {
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    char cmd[4096], *out;
    if (prepare_bert() != 0) return;
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' mlm bert.json --run.out_dir=bert 2>&1", dir, bin);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, "mlm: bert (preset bert-tiny)");
    free(out);
    // Measured (seed 1337): baseline 0.107, accuracy 0.28, val_loss 5.66 -> 3.02.
    const double unigram = metric("bert", "eval", 0, "val_mlm_unigram_acc"), acc = metric("bert", "eval", 150, "val_mlm_acc");
    const double before = metric("bert", "eval", 0, "val_loss"), after = metric("bert", "eval", 150, "val_loss");
    CHECK_MSG(unigram > 0.01 && acc > 2 * unigram, "val_mlm_acc after 150 steps %.4f; unigram baseline %.4f", acc, unigram);
    CHECK_MSG(after < before - 1.5, "val_loss %.4f -> %.4f", before, after);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' pretrain bert.json --run.out_dir=next 2>&1", dir, bin);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 1);
    CHECK_CONTAINS(out, "is an encoder");
    CHECK_CONTAINS(out, "ctrain mlm");
    free(out);
}

// Data parallel on an encoder (bidirectional attention, token types, the MLM head): 2 ranks of
// batch 4 take the steps of 1 rank of batch 8, with the same masks; and LoRA adapters on it
// (query, value) likewise. Skipped without MPI.
TEST(mlm, an_encoder_on_two_ranks_equals_one_rank_with_twice_the_batch) {
    ct_log_set_level(CT_LOG_QUIET);  // (loading the LoRA checkpoints below reports them)
#ifndef CTRAIN_MPI
    SKIP("this build has no MPI (install OpenMPI and rebuild to test data parallelism)");
#endif
    if (ct_test_run("command -v mpirun", NULL) != 0) SKIP("mpirun is not on PATH: data-parallel tests skipped");
    if (prepare_bert() != 0) return;
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    char cmd[8192], *out;
    const char *common = "--train.max_steps=20 --train.eval_every=20 --train.save_every=20";
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' mlm bert.json %s --run.out_dir=one 2>&1", dir, bin, common);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    free(out);
    snprintf(cmd, sizeof cmd, "mlm bert.json %s --run.out_dir=two --train.batch_size=4", common);
    CHECK_EQ_INT(train_fixture_mpirun(2, cmd, &out), 0);
    CHECK_CONTAINS(out, "data parallel: parameters identical on all 2 ranks");
    free(out);
    const double rel = param_difference("one", STEP20, "two", STEP20);
    printf("    bert mlm: 2 ranks x 4 vs 1 rank x 8 after 20 steps: relative difference %.3g\n", rel);
    CHECK_MSG(rel >= 0 && rel < 1e-5, "2 ranks x batch 4 vs 1 rank x batch 8: relative difference %g", rel);
    CHECK(metric("one", "train", 20, "mlm_selected") == metric("two", "train", 20, "mlm_selected"));
    CHECK_NEAR(metric("one", "eval", 20, "val_mlm_acc"), metric("two", "eval", 20, "val_mlm_acc"), 1e-12);
    // LoRA over that checkpoint: the adapters step alike
    const char *lora = "--train.init_from=one/" STEP20 " --lora.r=4 --lora.targets=query,value --optim.lr=1e-2";
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' mlm bert.json %s %s --run.out_dir=lora1 2>&1", dir, bin, common, lora);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, "targets query,value: 4 adapters");
    free(out);
    snprintf(cmd, sizeof cmd, "mlm bert.json %s %s --run.out_dir=lora2 --train.batch_size=4", common, lora);
    CHECK_EQ_INT(train_fixture_mpirun(2, cmd, &out), 0);
    free(out);
    CtModel a, b;
    CtAdamW oa, ob;
    CHECK(train_fixture_load_checkpoint("lora1", STEP20, &a, &oa) == 0);
    CHECK(train_fixture_load_checkpoint("lora2", STEP20, &b, &ob) == 0);
    CHECK(a.lora && b.lora && a.n_train == b.n_train);
    double diff = 0, norm = 0;
    for (size_t i = 0; a.lora && b.lora && i < a.n_train; i++) {
        diff += ((double)a.lora->params[i] - b.lora->params[i]) * ((double)a.lora->params[i] - b.lora->params[i]);
        norm += (double)b.lora->params[i] * b.lora->params[i];
    }
    printf("    bert mlm with LoRA: adapters' relative difference %.3g\n", sqrt(diff / norm));
    CHECK_MSG(sqrt(diff / norm) < 1e-5, "LoRA adapters, 2 ranks vs 1: relative difference %g", sqrt(diff / norm));
    ct_model_free(&a), ct_model_free(&b), ct_adamw_free(&oa), ct_adamw_free(&ob);
}
