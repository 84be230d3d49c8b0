// Multi-token prediction through the ctrain binary: `ctrain pretrain --model.mtp_depth=2` writes
// each depth's loss per step (mtp_loss/1, mtp_loss/2) beside the main loss, both fall, the
// checkpoint keeps the modules, and a run stopped and resumed ends with the same losses,
// parameters and optimizer state as one that ran through; the same with parallel heads
// (--model.mtp_style=parallel). Exports leave either out.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "kernels/ops.h"
#include "tests/test.h"
#include "tests/train_fixture.h"

// The run's config with the modules of `style` (model.mtp_style).
static void write_config(const char *style) {
    char json[1024];
    snprintf(json, sizeof json,
             "{\"model\": {\"preset\": \"llama-tiny\", \"n_layer\": 1, \"d_model\": 32, \"n_head\": 2,"
             " \"n_kv_head\": 1, \"d_ff\": 64, \"max_seq_len\": 32, \"mtp_depth\": 2, \"mtp_style\": \"%s\"},"
             " \"train\": {\"batch_size\": 4, \"seq_len\": 32, \"max_steps\": 20, \"eval_every\": 10,"
             " \"eval_batches\": 2, \"save_every\": 10, \"n_samples\": 0},"
             " \"optim\": {\"lr\": 3e-3, \"warmup_steps\": 4}}",
             style);
    ct_test_write("run.json", json);
}

static void pretrain_and_resume(const char *style) {
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    if (train_fixture_stories(400) != 0) return;
    write_config(style);
    char prefix[2048], cmd[4096], *out;
    snprintf(prefix, sizeof prefix, "cd '%s' && '%s' pretrain run.json --data.path=data --run.threads=1", dir, bin);
    snprintf(cmd, sizeof cmd, "%s --run.out_dir=a", prefix);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, "done: 20 steps");
    free(out);
    snprintf(cmd, sizeof cmd, "%s --run.out_dir=b --stop-after 10 && %s --run.out_dir=b --resume b", prefix, prefix);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, "resumed from b/ckpt-step00000010.h5 at step 10");
    free(out);
    if (ct_test_failed()) return;

    char path[1200];
    snprintf(path, sizeof path, "%s/a/metrics.jsonl", dir);
    double first[3], last[3];
    const char *keys[3] = {"loss", "mtp_loss/1", "mtp_loss/2"};
    for (int i = 0; i < 3; i++) {
        first[i] = train_fixture_metric(path, "train", 1, keys[i]);
        last[i] = train_fixture_metric(path, "train", 20, keys[i]);
        CHECK_MSG(isfinite(first[i]) && isfinite(last[i]), "metrics.jsonl has no %s at steps 1 and 20", keys[i]);
        CHECK_MSG(last[i] < first[i] - 0.5, "%s did not fall: %.3f -> %.3f", keys[i], first[i], last[i]);
    }
    CHECK(isnan(train_fixture_metric(path, "train", 20, "mtp_loss/3")));
    printf("    %s: loss %.3f -> %.3f, mtp_loss/1 %.3f -> %.3f, mtp_loss/2 %.3f -> %.3f over 20 steps\n", style,
           first[0], last[0], first[1], last[1], first[2], last[2]);

    char *la = train_fixture_metric_lines("a", 11), *lb = train_fixture_metric_lines("b", 11);
    CHECK(la && lb && strstr(la, "mtp_loss/2"));
    CHECK_MSG(la && lb && strcmp(la, lb) == 0, "losses after resuming differ:\n%s\nvs\n%s", la, lb);
    free(la);
    free(lb);
    CtModel ma, mb;
    CtAdamW oa, ob;
    CHECK_EQ_INT(train_fixture_load_checkpoint("a", "ckpt-step00000020.h5", &ma, &oa), 0);
    CHECK_EQ_INT(train_fixture_load_checkpoint("b", "ckpt-step00000020.h5", &mb, &ob), 0);
    if (ct_test_failed()) return;
    CHECK_EQ_INT(ma.config.mtp_depth, 2);
    CHECK_EQ_INT((int)ma.config.mtp_style, strcmp(style, "parallel") == 0 ? CT_MTP_PARALLEL : CT_MTP_SEQUENTIAL);
    CHECK(ma.n_params == mb.n_params);
    CHECK(memcmp(ma.params, mb.params, ma.n_params * sizeof(float)) == 0);
    CHECK(memcmp(oa.m, ob.m, ma.n_params * sizeof(float)) == 0 && memcmp(oa.v, ob.v, ma.n_params * sizeof(float)) == 0);
    int module_tensors = 0;
    for (int i = 0; i < ma.n_tensors; i++) module_tensors += strstr(ma.table[i].name, "model.layers.2.") != NULL;
    CHECK(module_tensors > 5);
    ct_model_free(&ma);
    ct_model_free(&mb);
    ct_adamw_free(&oa);
    ct_adamw_free(&ob);
}
TEST(mtp_run, pretrain_writes_depth_losses_and_resumes_to_the_bit) { pretrain_and_resume("sequential"); }
TEST(mtp_run, pretrain_with_parallel_heads_writes_depth_losses_and_resumes_to_the_bit) {
    pretrain_and_resume("parallel");
}

// Exports leave the modules out (transformers' and llama.cpp's models have none): the safetensors
// and the GGUF hold the main model's layers only, and the export says so.
static void exports_leave_the_modules_out(const char *style) {
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    if (train_fixture_stories(100) != 0) return;
    write_config(style);
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' pretrain run.json --data.path=data --run.threads=1 --run.out_dir=a --train.max_steps=2 "
             "--train.eval_every=0 && '%s' export hf a/ckpt-step00000002.h5 --out hf 2>&1 && "
             "'%s' export gguf a/ckpt-step00000002.h5 --out model.gguf 2>&1",
             dir, bin, bin, bin);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, "2 multi-token prediction modules are left out");
    free(out);
    size_t size = 0;
    char *st = ct_test_read(ct_test_path("hf/model.safetensors"), &size);
    CHECK_MSG(st && size > 8, "no model.safetensors");
    if (!st) return;
    const uint64_t header = (uint64_t)(unsigned char)st[0] | (uint64_t)(unsigned char)st[1] << 8;  // < 64 KiB here
    char *json = strndup(st + 8, header);
    CHECK_CONTAINS(json, "model.layers.0.self_attn.q_proj.weight");
    CHECK_MSG(!strstr(json, "model.layers.1.") && !strstr(json, "enorm") && !strstr(json, "eh_proj") &&
                  !strstr(json, "shared_head"),
              "the export holds a module's tensor: %s", json);
    free(json);
    free(st);
    char *gguf = ct_test_read(ct_test_path("model.gguf"), &size);
    CHECK_MSG(gguf && size > 0, "no model.gguf");
    int module = 0;
    for (size_t i = 0; gguf && i + 6 < size; i++) module |= memcmp(gguf + i, "blk.1.", 6) == 0;
    CHECK_MSG(!module, "the GGUF holds a block 1 (a module) of a one-layer model");
    free(gguf);
}
TEST(mtp_run, exports_leave_the_modules_out) { exports_leave_the_modules_out("sequential"); }
// Parallel heads have no Hugging Face layout: --keep-mtp (DeepSeek-V3's sequential modules) is
// refused, with the way out, and writes nothing.
TEST(mtp_run, exports_leave_parallel_heads_out) {
    exports_leave_the_modules_out("parallel");
    if (ct_test_failed()) return;
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' export hf a/ckpt-step00000002.h5 --out kept --keep-mtp 2>&1",
             ct_test_tmpdir(), ct_test_bin());
    CHECK(ct_test_run(cmd, &out) != 0);
    CHECK_CONTAINS(out, "model.mtp_style parallel");
    CHECK_CONTAINS(out, "export without --keep-mtp");
    free(out);
    CHECK(ct_test_read(ct_test_path("kept/config.json"), NULL) == NULL);
}
