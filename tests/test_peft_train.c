// Prompt learning through the training loop (the ctrain binary on a tiny llama): a base pretrained
// for a few steps, then prompt tuning and P-tuning over it with train.init_from + peft.type;
// checkpoints hold the adapter, its moments and the base's path and hash, no base weights; resume
// continues to the bit; peft export / import round-trip the saved prompt embeddings; generate
// takes the folder with --adapter; config mistakes are refused naming the key.
#include <math.h>
#include <unistd.h>

#include "checkpoints/checkpoint.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "kernels/ops.h"
#include "tests/test.h"
#include "tests/train_fixture.h"
#include "train/interop/checkpoint_io.h"
#include "train/interop/peft_folder.h"
#include "train/model/peft.h"

static const char *CONFIG =
    "{\"model\": {\"preset\": \"llama-tiny\", \"n_layer\": 1, \"d_model\": 32, \"n_head\": 2, \"n_kv_head\": 1,"
    " \"d_ff\": 64, \"max_seq_len\": 48},"
    " \"train\": {\"batch_size\": 4, \"seq_len\": 32, \"max_steps\": 10, \"eval_every\": 5, \"eval_batches\": 2,"
    " \"save_every\": 5, \"keep_last\": 3, \"n_samples\": 1, \"sample_tokens\": 8},"
    " \"optim\": {\"lr\": 3e-3, \"warmup_steps\": 2}}";

// The base (10 steps) and the command prefix of a prompt-learning run over it.
static const char *prepare(const char *method) {
    static char prefix[2048];
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    if (train_fixture_base(300, CONFIG, "--run.threads=1") != 0) return NULL;
    snprintf(prefix, sizeof prefix,
             "cd '%s' && '%s' pretrain run.json --data.path=data --train.init_from=base/ckpt-step00000010.h5 "
             "--peft.num_virtual_tokens=6 --train.max_steps=20 --optim.lr=3e-2 --run.threads=1 %s",
             dir, bin, method);
    return prefix;
}

// token_dim: adapter_config.json's (the model's width; prefix tuning's key/value width, PEFT's GQA rule).
static void resume_to_the_bit(const char *method, const char *kind, int n_tensors, int token_dim) {
    ct_log_set_level(CT_LOG_QUIET);
    const char *prefix = prepare(method);
    if (!prefix) return;
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd, "%s --run.out_dir=a", prefix);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    char want[128];
    snprintf(want, sizeof want, "peft: %s, 6 virtual tokens", kind);
    CHECK_CONTAINS(out, want);
    CHECK_CONTAINS(out, "less memory than full fine-tuning");
    CHECK_CONTAINS(out, "done: 20 steps");
    free(out);
    snprintf(cmd, sizeof cmd, "%s --run.out_dir=b --stop-after 10 && %s --run.out_dir=b --resume b", prefix, prefix);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, "resumed from b/ckpt-step00000010.h5 at step 10");
    free(out);
    char *a = train_fixture_metric_lines("a", 11), *b = train_fixture_metric_lines("b", 11);
    CHECK(a && b && strlen(a) > 100);
    CHECK_MSG(a && b && strcmp(a, b) == 0, "losses after resuming differ:\n%s\nvs\n%s", a, b);
    free(a);
    free(b);
    const double g20 = train_fixture_metric(ct_test_path("a/metrics.jsonl"), "train", 20, "grad_norm");
    CHECK_MSG(g20 > 0, "the adapter's gradient norm at step 20: %g", g20);  // it trains (learning: bench/peft_cpu.sh)

    CtCheckpoint c;
    CHECK(ct_ckpt_open(&c, ct_test_path("a/ckpt-step00000020.h5")) == 0);
    CHECK(ct_ckpt_has(&c, "peft/embedding.weight"));
    CHECK(ct_ckpt_has(&c, "optim/m/embedding.weight"));
    CHECK(!ct_ckpt_has(&c, "model"));
    ct_ckpt_close(&c);

    CtModel ma, mb, base;
    CtAdamW oa = {0}, ob = {0};
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    CHECK(ct_checkpoint_load(ct_test_path("a/ckpt-step00000020.h5"), &ma, ct_ops_cpu(), 1, 1, 0, &oa, &meta) == 0);
    ct_checkpoint_meta_free(&meta);
    CHECK(ct_checkpoint_load(ct_test_path("b/ckpt-step00000020.h5"), &mb, ct_ops_cpu(), 1, 1, 0, &ob, &meta) == 0);
    ct_checkpoint_meta_free(&meta);
    CHECK(ma.peft && mb.peft && ma.grads == NULL);
    CHECK_EQ_INT(ma.peft->n_tensors, n_tensors);
    CHECK_EQ_INT((int)oa.n, (int)ma.peft->n_params);
    CHECK(memcmp(ma.peft->params, mb.peft->params, ma.n_train * sizeof(float)) == 0);
    CHECK(memcmp(oa.m, ob.m, oa.n * sizeof(float)) == 0 && memcmp(oa.v, ob.v, oa.n * sizeof(float)) == 0);
    CHECK(ct_checkpoint_load(ct_test_path("base/ckpt-step00000010.h5"), &base, ct_ops_cpu(), 1, 1, 0, NULL, &meta) == 0);
    ct_checkpoint_meta_free(&meta);
    CHECK(memcmp(base.params, ma.params, ma.n_params * sizeof(float)) == 0);  // the base stayed as it was

    // export, then the folder read back onto the base: the same prompt rows (P-tuning's computed)
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' peft export a/ckpt-step00000020.h5 --out adapter --base-name tiny-base && '%s' peft "
             "import adapter --base base/ckpt-step00000010.h5 --out imported.h5 && '%s' generate --checkpoint "
             "base/ckpt-step00000010.h5 --adapter adapter --prompt 'Once' --max-tokens 5 --temperature 0 && '%s' "
             "generate --checkpoint imported.h5 --prompt 'Once' --max-tokens 5 --temperature 0",
             ct_test_tmpdir(), ct_test_bin(), ct_test_bin(), ct_test_bin(), ct_test_bin());
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, "peft export:");
    free(out);
    char *config = ct_test_read(ct_test_path("adapter/adapter_config.json"), NULL);
    CHECK_CONTAINS(config, "\"base_model_name_or_path\":\t\"tiny-base\"");
    CHECK_CONTAINS(config, "\"num_virtual_tokens\":\t6");
    snprintf(want, sizeof want, "\"token_dim\":\t%d", token_dim);
    CHECK_CONTAINS(config, want);
    free(config);
    CHECK(ct_peft_load_folder(&base, ct_test_path("adapter")) == 0);
    int64_t shape[2];
    float *want_rows = ma.peft->kind->prompt_embeddings(&ma, shape);
    CHECK(base.peft && base.peft->spec.inference && base.n_train == 0);
    CHECK(memcmp(base.peft->params, want_rows, (size_t)(shape[0] * shape[1]) * sizeof(float)) == 0);
    ct_free(want_rows);
    ct_model_free(&base);
    ct_model_free(&ma);
    ct_model_free(&mb);
    ct_adamw_free(&oa);
    ct_adamw_free(&ob);
}

TEST(peft_run, prompt_tuning_resume_to_the_bit_export_import) {
    resume_to_the_bit("--peft.type=prompt_tuning", "prompt_tuning", 1, 32);
}

TEST(peft_run, p_tuning_resume_to_the_bit_export_import) {
    resume_to_the_bit("--peft.type=p_tuning --peft.encoder_hidden_size=16", "p_tuning", 7, 32);
}

TEST(peft_run, p_tuning_lstm_resume_to_the_bit_export_import) {  // 1 + 2 layers × 2 directions × 4 + 4 tensors
    resume_to_the_bit("--peft.type=p_tuning --peft.encoder_reparameterization_type=LSTM --peft.encoder_hidden_size=8",
                      "p_tuning", 21, 32);
}

// Prefix tuning: the base's 1 key/value head of 16 (2 query heads of d_model 32) make token_dim 16.
TEST(peft_run, prefix_tuning_resume_to_the_bit_export_import) {
    resume_to_the_bit("--peft.type=prefix_tuning", "prefix_tuning", 1, 16);
}

TEST(peft_run, prefix_projection_resume_to_the_bit_export_import) {
    resume_to_the_bit("--peft.type=prefix_tuning --peft.prefix_projection=true --peft.encoder_hidden_size=16",
                      "prefix_tuning", 5, 16);
}

TEST(peft_run, config_errors_name_the_key) {
    const char *bin = ct_test_bin();
    char cmd[4096], *out;
    ct_test_write("c.json", CONFIG);
    static const struct {
        const char *flags, *message;
    } cases[] = {
        {"--peft.type=prompt_tuning --peft.prompt_tuning_init=text", "peft.prompt_tuning_init text needs"},
        {"--peft.type=prompt_tuning --peft.encoder_hidden_size=8", "peft.encoder_hidden_size applies to p_tuning"},
        {"--peft.type=p_tuning --peft.encoder_num_layers=3", "peft.encoder_num_layers 3"},
        {"--peft.type=p_tuning --peft.encoder_reparameterization_type=LSTM --peft.encoder_dropout=0.1",
         "dropout between layers is not implemented"},
        {"--peft.type=prompt_tuning --peft.prefix_projection=true", "peft.prefix_projection belongs to"},
        {"--peft.type=prompt_tuning --lora.r=4", "one adapter kind per run"},
        {"--peft.type=prompt_tuning --peft.typo=1", "peft.typo"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(cmd, sizeof cmd, "cd '%s' && '%s' pretrain c.json --data.path=nowhere %s", ct_test_tmpdir(), bin,
                 cases[i].flags);
        CHECK(ct_test_run(cmd, &out) != 0);
        CHECK_CONTAINS(out, cases[i].message);
        free(out);
    }
}

// Data parallel (DESIGN.md's rule): 2 ranks of batch 2 take the steps of 1 rank of batch 4, for
// prompt tuning, prefix tuning and P-tuning (LSTM): the adapter's gradients are all-reduced like any trained
// buffer's (m->train_grads), and rank 0's initial adapter is broadcast.
TEST(peft_run, two_ranks_equal_one_rank_with_twice_the_batch) {
    ct_log_set_level(CT_LOG_QUIET);
#ifndef CTRAIN_MPI
    SKIP("this build has no MPI (install OpenMPI and rebuild to test data parallelism)");
#endif
    if (ct_test_run("command -v mpirun", NULL) != 0) SKIP("mpirun is not on PATH: data-parallel tests skipped");
    if (!prepare("")) return;
    static const char *const kinds[] = {
        "--peft.type=prompt_tuning", "--peft.type=prefix_tuning",
        "--peft.type=p_tuning --peft.encoder_reparameterization_type=LSTM --peft.encoder_hidden_size=8"};
    for (int k = 0; k < 3; k++) {
        char args[1024], cmd[8192], *out;
        snprintf(args, sizeof args,
                 "pretrain run.json --data.path=data --train.init_from=base/ckpt-step00000010.h5 "
                 "--peft.num_virtual_tokens=6 --train.max_steps=10 --optim.lr=3e-2 --model.dropout=0 --run.threads=1 "
                 "%s",
                 kinds[k]);
        snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s --run.out_dir=one%d", ct_test_tmpdir(), ct_test_bin(), args, k);
        CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
        free(out);
        snprintf(cmd, sizeof cmd, "%s --run.out_dir=two%d --train.batch_size=2", args, k);
        CHECK_EQ_INT(train_fixture_mpirun(2, cmd, &out), 0);
        CHECK_CONTAINS(out, "data parallel: parameters identical on all 2 ranks");
        free(out);
        CtModel a, b;
        CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
        char path[64];
        snprintf(path, sizeof path, "one%d/ckpt-step00000010.h5", k);
        CHECK(ct_checkpoint_load(ct_test_path(path), &a, ct_ops_cpu(), 1, 1, 0, NULL, &meta) == 0);
        ct_checkpoint_meta_free(&meta);
        snprintf(path, sizeof path, "two%d/ckpt-step00000010.h5", k);
        CHECK(ct_checkpoint_load(ct_test_path(path), &b, ct_ops_cpu(), 1, 1, 0, NULL, &meta) == 0);
        ct_checkpoint_meta_free(&meta);
        CHECK(a.peft && b.peft && a.n_train == b.n_train && a.n_train > 0);
        double diff = 0, norm = 0;
        for (size_t i = 0; i < a.n_train; i++) {
            diff += ((double)a.peft->params[i] - b.peft->params[i]) * ((double)a.peft->params[i] - b.peft->params[i]);
            norm += (double)b.peft->params[i] * b.peft->params[i];
        }
        printf("    %s: 2 ranks x 2 vs 1 rank x 4 after 10 steps: relative difference %.3g\n", kinds[k] + 12,
               sqrt(diff / norm));
        CHECK_MSG(sqrt(diff / norm) < 1e-5, "%s: relative difference %g", kinds[k], sqrt(diff / norm));
        ct_model_free(&a), ct_model_free(&b);
    }
}
