// LoRA over a base with multi-token prediction modules through the ctrain binary: a base pretrained
// with model.mtp_depth 2, then adapters on q_proj, v_proj and eh_proj (the modules' too) trained with
// train.init_from + lora.r: metrics.jsonl keeps the depth losses, the checkpoint holds the
// modules' adapters, and a run stopped and resumed ends with the same losses, adapters and
// optimizer state as one that ran through; `lora export` names the modules' adapters by layer.
#include <stdlib.h>
#include <string.h>

#include "checkpoints/checkpoint.h"
#include "core/alloc.h"
#include "core/log.h"
#include "kernels/ops.h"
#include "tests/test.h"
#include "tests/train_fixture.h"
#include "train/interop/checkpoint_io.h"
#include "train/model/lora.h"

static const char *CONFIG =
    "{\"model\": {\"preset\": \"llama-tiny\", \"n_layer\": 1, \"d_model\": 32, \"n_head\": 2, \"n_kv_head\": 1,"
    " \"d_ff\": 64, \"max_seq_len\": 32, \"mtp_depth\": 2},"
    " \"train\": {\"batch_size\": 4, \"seq_len\": 32, \"max_steps\": 10, \"eval_every\": 5, \"eval_batches\": 2,"
    " \"save_every\": 5, \"keep_last\": 3, \"n_samples\": 0},"
    " \"optim\": {\"lr\": 3e-3, \"warmup_steps\": 2}}";

TEST(lora_mtp_run, adapters_on_the_modules_train_and_resume_to_the_bit) {
    ct_log_set_level(CT_LOG_QUIET);
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    if (train_fixture_stories(300) != 0) return;
    ct_test_write("run.json", CONFIG);
    char prefix[2048], cmd[4096], *out;
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' pretrain run.json --data.path=data --run.threads=1 --run.out_dir=base",
             dir, bin);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    free(out);
    snprintf(prefix, sizeof prefix,
             "cd '%s' && '%s' pretrain run.json --data.path=data --run.threads=1 "
             "--train.init_from=base/ckpt-step00000010.h5 --lora.r=4 --lora.alpha=8 --lora.dropout=0.1 "
             "--lora.targets=q_proj,v_proj,eh_proj --train.max_steps=20 --optim.lr=1e-2",
             dir, bin);
    snprintf(cmd, sizeof cmd, "%s --run.out_dir=a", prefix);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    // q_proj and v_proj of layer 0 and of the two modules' blocks (layers 1, 2), and each eh_proj
    CHECK_CONTAINS(out, "targets q_proj,v_proj,eh_proj: 8 adapters");
    CHECK_CONTAINS(out, "done: 20 steps");
    free(out);
    snprintf(cmd, sizeof cmd, "%s --run.out_dir=b --stop-after 10 && %s --run.out_dir=b --resume b", prefix, prefix);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, "resumed from b/ckpt-step00000010.h5 at step 10");
    free(out);
    if (ct_test_failed()) return;
    char *la = train_fixture_metric_lines("a", 11), *lb = train_fixture_metric_lines("b", 11);
    CHECK(la && lb && strstr(la, "mtp_loss/2"));
    CHECK_MSG(la && lb && strcmp(la, lb) == 0, "losses after resuming differ:\n%s\nvs\n%s", la, lb);
    free(la);
    free(lb);

    CtCheckpoint c;
    CHECK(ct_ckpt_open(&c, ct_test_path("a/ckpt-step00000020.h5")) == 0);
    CHECK(ct_ckpt_has(&c, "lora/model.layers.2.eh_proj.lora_A.weight"));
    CHECK(ct_ckpt_has(&c, "lora/model.layers.1.self_attn.v_proj.lora_B.weight"));
    CHECK(ct_ckpt_has(&c, "optim/m/model.layers.1.eh_proj.lora_B.weight"));
    ct_ckpt_close(&c);

    CtModel ma, mb;
    CtAdamW oa = {0}, ob = {0};
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    CHECK(ct_checkpoint_load(ct_test_path("a/ckpt-step00000020.h5"), &ma, ct_ops_cpu(), 1, 1, 0, &oa, &meta) == 0);
    ct_checkpoint_meta_free(&meta);
    CHECK(ct_checkpoint_load(ct_test_path("b/ckpt-step00000020.h5"), &mb, ct_ops_cpu(), 1, 1, 0, &ob, &meta) == 0);
    ct_checkpoint_meta_free(&meta);
    if (ct_test_failed()) return;
    CHECK(ma.lora && mb.lora && ma.lora->n_params == mb.lora->n_params);
    CHECK(memcmp(ma.lora->params, mb.lora->params, ma.n_train * sizeof(float)) == 0);
    CHECK(memcmp(oa.m, ob.m, oa.n * sizeof(float)) == 0 && memcmp(oa.v, ob.v, oa.n * sizeof(float)) == 0);
    // the modules' adapters trained: their B moved away from zero
    double b2 = 0;
    for (int i = 0; i < ma.lora->n_adapters; i++) {
        const CtLoraAdapter *a = &ma.lora->adapters[i];
        if (a->layer < ma.config.n_layer) continue;
        for (size_t j = 0; j < (size_t)a->out * (size_t)a->r; j++) b2 += (double)ma.lora->params[a->b_offset + j] *
                                                                         ma.lora->params[a->b_offset + j];
    }
    CHECK_MSG(b2 > 0, "the modules' adapters did not train");
    ct_model_free(&ma);
    ct_model_free(&mb);
    ct_adamw_free(&oa);
    ct_adamw_free(&ob);

    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' lora export a/ckpt-step00000020.h5 --out adapter --base-name base 2>&1",
             dir, bin);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    free(out);
    size_t size = 0;
    char *st = ct_test_read(ct_test_path("adapter/adapter_model.safetensors"), &size);
    CHECK(st && size > 8);
    CHECK(st && memmem(st, size, "base_model.model.model.layers.2.eh_proj.lora_A.weight", 53));
    free(st);
}
