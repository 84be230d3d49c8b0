// LoRA through the training loop (the ctrain binary on a tiny llama): a base pretrained for a
// few steps, then adapters (with dropout) trained over it with train.init_from + lora.r; checkpoints hold the
// adapters, their optimizer state and the base's path and hash; resume continues to the bit;
// a different base is refused.
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
#include "train/model/lora.h"

static const char *CONFIG =
    "{\"model\": {\"preset\": \"llama-tiny\", \"n_layer\": 1, \"d_model\": 32, \"n_head\": 2, \"n_kv_head\": 1,"
    " \"d_ff\": 64, \"max_seq_len\": 32},"
    " \"train\": {\"batch_size\": 4, \"seq_len\": 32, \"max_steps\": 10, \"eval_every\": 5, \"eval_batches\": 2,"
    " \"save_every\": 5, \"keep_last\": 3, \"n_samples\": 1, \"sample_tokens\": 8},"
    " \"optim\": {\"lr\": 3e-3, \"warmup_steps\": 2}}";

static const char *prepare(void) {
    static char prefix[2048];
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    if (train_fixture_base(300, CONFIG, "") != 0) return NULL;
    snprintf(prefix, sizeof prefix,
             "cd '%s' && '%s' pretrain run.json --data.path=data --train.init_from=base/ckpt-step00000010.h5 "
             "--lora.r=4 --lora.alpha=8 --lora.dropout=0.1 --lora.targets=q_proj,v_proj,down_proj --train.max_steps=20 "
             "--optim.lr=1e-2",
             dir, bin);
    return prefix;
}

TEST(lora, train_resume_to_the_bit_and_base_untouched) {
    ct_log_set_level(CT_LOG_QUIET);  // the in-process loads below report what trains
    const char *prefix = prepare();
    if (!prefix) return;
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd, "%s --run.out_dir=a", prefix);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, "lora: r 4, alpha 8, scale 2, targets q_proj,v_proj,down_proj: 3 adapters");
    CHECK_CONTAINS(out, "less memory than full fine-tuning");
    CHECK_CONTAINS(out, "done: 20 steps");
    free(out);
    snprintf(cmd, sizeof cmd, "%s --run.out_dir=b --stop-after 10 && %s --run.out_dir=b --resume b", prefix, prefix);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, "resumed from b/ckpt-step00000010.h5 at step 10");
    free(out);
    char *a = train_fixture_metric_lines("a", 11), *b = train_fixture_metric_lines("b", 11);
    CHECK(a && b && strlen(a) > 100);
    CHECK_MSG(strcmp(a, b) == 0, "losses after resuming differ:\n%s\nvs\n%s", a, b);
    free(a);
    free(b);

    // the checkpoint: adapters + moments, no base weights; base path and hash
    CtCheckpoint c;
    CHECK(ct_ckpt_open(&c, ct_test_path("a/ckpt-step00000020.h5")) == 0);
    CHECK(ct_ckpt_has(&c, "lora/model.layers.0.self_attn.q_proj.lora_A.weight"));
    CHECK(ct_ckpt_has(&c, "optim/m/model.layers.0.mlp.down_proj.lora_B.weight"));
    CHECK(!ct_ckpt_has(&c, "model"));
    char *base = NULL;
    CHECK(ct_ckpt_get_string(&c, "lora_base", &base) == 0);
    CHECK_CONTAINS(base, "base/ckpt-step00000010.h5");
    ct_free(base);
    ct_ckpt_close(&c);

    // resumed and uninterrupted runs agree to the bit; the base in memory equals the base file
    CtModel ma, mb, base_model;
    CtAdamW oa = {0}, ob = {0};
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    CHECK(ct_checkpoint_load(ct_test_path("a/ckpt-step00000020.h5"), &ma, ct_ops_cpu(), 1, 1, 0, &oa, &meta) == 0);
    ct_checkpoint_meta_free(&meta);
    CHECK(ct_checkpoint_load(ct_test_path("b/ckpt-step00000020.h5"), &mb, ct_ops_cpu(), 1, 1, 0, &ob, &meta) == 0);
    ct_checkpoint_meta_free(&meta);
    CHECK(ma.lora && mb.lora && ma.grads == NULL);
    CHECK_EQ_INT(oa.n, ma.lora->n_params);
    CHECK(memcmp(ma.lora->params, mb.lora->params, ma.n_train * sizeof(float)) == 0);
    CHECK(memcmp(oa.m, ob.m, oa.n * sizeof(float)) == 0 && memcmp(oa.v, ob.v, oa.n * sizeof(float)) == 0);
    CHECK_EQ_INT(oa.step, 20);
    double b2 = 0;  // B moved away from zero
    for (int i = 0; i < ma.lora->n_adapters; i++)
        for (int j = 0; j < ma.lora->adapters[i].out * 4; j++) {
            float v = ma.lora->params[ma.lora->adapters[i].b_offset + (size_t)j];
            b2 += (double)v * v;
        }
    CHECK(b2 > 0);
    CHECK(ct_checkpoint_load(ct_test_path("base/ckpt-step00000010.h5"), &base_model, ct_ops_cpu(), 1, 1, 0, NULL, &meta) == 0);
    ct_checkpoint_meta_free(&meta);
    CHECK(memcmp(base_model.params, ma.params, ma.n_params * sizeof(float)) == 0);
    // without an optimizer a LoRA checkpoint loads merged: W + s·B·A
    CtModel merged;
    CHECK(ct_checkpoint_load(ct_test_path("a/ckpt-step00000020.h5"), &merged, ct_ops_cpu(), 1, 1, 0, NULL, &meta) == 0);
    ct_checkpoint_meta_free(&meta);
    CHECK(merged.lora == NULL && memcmp(base_model.params, merged.params, ma.n_params * sizeof(float)) != 0);
    ct_model_free(&merged);
    ct_model_free(&base_model);
    ct_model_free(&ma);
    ct_model_free(&mb);
    ct_adamw_free(&oa);
    ct_adamw_free(&ob);

    // lora export (PEFT folder) and lora merge from the folder and from the run's checkpoint: both
    // merged checkpoints equal the checkpoint loaded merged (the same W + s·B·A)
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' lora export a/ckpt-step00000020.h5 --out adapter --base-name tiny-base && '%s' lora merge "
             "--base base/ckpt-step00000010.h5 --adapter adapter --out m1.h5 && '%s' lora merge --base "
             "base/ckpt-step00000010.h5 --adapter a/ckpt-step00000020.h5 --out m2.h5",
             ct_test_tmpdir(), ct_test_bin(), ct_test_bin(), ct_test_bin());
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, "lora export: 3 adapters (r 4)");
    free(out);
    char *config = ct_test_read(ct_test_path("adapter/adapter_config.json"), NULL);
    CHECK_CONTAINS(config, "\"base_model_name_or_path\":\t\"tiny-base\"");
    CHECK_CONTAINS(config, "\"target_modules\":\t[\"q_proj\", \"v_proj\", \"down_proj\"]");
    free(config);
    CtModel m1, m2;
    CHECK(ct_checkpoint_load(ct_test_path("a/ckpt-step00000020.h5"), &merged, ct_ops_cpu(), 1, 1, 0, NULL, &meta) == 0);
    ct_checkpoint_meta_free(&meta);
    CHECK(ct_checkpoint_load(ct_test_path("m1.h5"), &m1, ct_ops_cpu(), 1, 1, 0, NULL, &meta) == 0);
    ct_checkpoint_meta_free(&meta);
    CHECK(ct_checkpoint_load(ct_test_path("m2.h5"), &m2, ct_ops_cpu(), 1, 1, 0, NULL, &meta) == 0);
    ct_checkpoint_meta_free(&meta);
    CHECK(memcmp(merged.params, m1.params, merged.n_params * sizeof(float)) == 0);
    CHECK(memcmp(merged.params, m2.params, merged.n_params * sizeof(float)) == 0);
    ct_model_free(&merged);
    ct_model_free(&m1);
    ct_model_free(&m2);

    // another base under the recorded path: refused, naming both files
    snprintf(cmd, sizeof cmd, "cp '%s' '%s' && %s --run.out_dir=b --resume b --train.max_steps=25",
             ct_test_path("base/ckpt-step00000005.h5"), ct_test_path("base/ckpt-step00000010.h5"), prefix);
    CHECK(ct_test_run(cmd, &out) != 0);
    CHECK_CONTAINS(out, "is not the model these adapters were trained on");
    free(out);
}

TEST(lora, config_errors_name_the_fix) {
    const char *bin = ct_test_bin();
    char cmd[2048], *out;
    ct_test_write("run.json", CONFIG);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' config run.json --lora.targets=q_proj,v_proj --print", ct_test_tmpdir(), bin);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, "[\"q_proj\", \"v_proj\"]");
    free(out);
    ct_test_write("list.json", "{\"lora\": {\"r\": 8, \"targets\": [\"q_proj\", 3]}}");
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' config list.json", ct_test_tmpdir(), bin);
    CHECK(ct_test_run(cmd, &out) != 0);
    CHECK_CONTAINS(out, "'lora.targets' must hold non-empty strings");
    free(out);
}
