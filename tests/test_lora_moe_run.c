// A LoRA SFT run on a tiny MoE model through the ctrain binary: adapters on attention and on the
// routed experts (lora.target_parameters) lower the loss while the base stays frozen, the run
// resumes to the bit (its checkpoint holds the experts' [E, r, in] / [E, out, r] adapters and
// their moments), `lora export` writes PEFT's target_parameters, and `lora merge` changes the
// experts' and attention's weights only.
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "kernels/ops.h"
#include "tests/test.h"
#include "tests/train_fixture.h"
#include "train/interop/checkpoint_io.h"

#define MOE_MODEL                                                                                                   \
    "\"model\": {\"preset\": \"llama-tiny\", \"n_layer\": 2, \"d_model\": 64, \"n_head\": 2, \"n_kv_head\": 1, "  \
    "\"d_ff\": 128, \"max_seq_len\": 64, \"n_experts\": 4, \"top_k\": 2, \"moe_d_ff\": 32, \"router\": \"softmax_norm\"}"

// The "loss" of every train line of DIR/metrics.jsonl, in order; *n of them.
static double *train_losses(const char *dir, int *n) {
    char *lines = train_fixture_metric_lines(dir, 0);
    double *out = ct_calloc(4096, sizeof(double));
    *n = 0;
    for (const char *p = lines ? strstr(lines, "\"loss\":") : NULL; p && *n < 4096; p = strstr(p + 1, "\"loss\":"))
        out[(*n)++] = strtod(p + 7, NULL);
    free(lines);
    return out;
}

TEST(lora_moe, sft_run_on_experts_trains_resumes_exports_and_merges) {
    ct_log_set_level(CT_LOG_QUIET);
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    char cmd[8192], config[2048], *out;
    snprintf(config, sizeof config,
             "{%s, \"data\": {\"path\": \"lm\"}, \"train\": {\"batch_size\": 4, \"seq_len\": 64, \"max_steps\": 4,"
             " \"eval_every\": 4, \"eval_batches\": 1, \"save_every\": 4, \"n_samples\": 0},"
             " \"optim\": {\"lr\": 1e-2, \"warmup_steps\": 1, \"weight_decay\": 0}}", MOE_MODEL);
    ct_test_write("base.json", config);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' synth instructions --task reverse --examples 400 --seed 3 --out rev.jsonl && "
             "sed -E 's/^\\{\"prompt\": \"(.*)\", \"response\": \"(.*)\"\\}$/\\1 => \\2\\n/' rev.jsonl > plain.txt && "
             "'%s' tokenizer train --input plain.txt --vocab-size 300 --special '<|endoftext|>' --out tok.json && "
             "'%s' shard --tokenizer tok.json --input plain.txt --split paragraphs --out lm --val-fraction 0.05 && "
             "'%s' shard --tokenizer tok.json --input rev.jsonl --format sft --out sft --val-fraction 0.05 && "
             "'%s' pretrain base.json --run.out_dir=base --run.threads=1",
             dir, bin, bin, bin, bin, bin);
    int rc = ct_test_run(cmd, &out);
    CHECK_MSG(rc == 0, "preparing failed: %s", out);
    free(out);
    if (rc) return;

    char prefix[2048];
    snprintf(prefix, sizeof prefix,
             "cd '%s' && '%s' sft base.json --data.path=sft --train.init_from=base/ckpt-step00000004.h5 --lora.r=4 "
             "--lora.targets=q_proj,v_proj --lora.target_parameters=mlp.experts.gate_up_proj,mlp.experts.down_proj "
             "--train.max_steps=40 --train.save_every=20 --train.eval_every=20 --optim.lr=3e-3 --run.threads=1",
             dir, bin);
    snprintf(cmd, sizeof cmd, "%s --run.out_dir=a", prefix);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, "lora: r 4");
    free(out);
    int n = 0;
    double *loss = train_losses("a", &n);
    CHECK(n >= 40);
    if (ct_test_failed()) return;
    double first = (loss[0] + loss[1] + loss[2] + loss[3]) / 4, last = (loss[n - 1] + loss[n - 2] + loss[n - 3] + loss[n - 4]) / 4;
    printf("    MoE LoRA SFT (q, v + experts' gate_up and down): loss %.3f -> %.3f (means of 4 steps) over %d steps\n",
           first, last, n);
    CHECK_MSG(last < first - 0.3, "the loss did not fall: %.3f -> %.3f", first, last);
    ct_free(loss);

    // the checkpoint keeps the experts' adapters and their moments
    CtCheckpoint c;
    CHECK(ct_ckpt_open(&c, ct_test_path("a/ckpt-step00000040.h5")) == 0);
    CHECK(ct_ckpt_has(&c, "lora/model.layers.1.mlp.experts.gate_up_proj.lora_A.weight"));
    CHECK(ct_ckpt_has(&c, "optim/v/model.layers.0.mlp.experts.down_proj.lora_B.weight"));
    ct_ckpt_close(&c);

    // resume to the bit
    snprintf(cmd, sizeof cmd, "%s --run.out_dir=b --stop-after 20 && %s --run.out_dir=b --resume b", prefix, prefix);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    free(out);
    char *la = train_fixture_metric_lines("a", 21), *lb = train_fixture_metric_lines("b", 21);
    CHECK(la && lb && strlen(la) > 50);
    CHECK_MSG(la && lb && strcmp(la, lb) == 0, "losses after resuming differ:\n%s\nvs\n%s", la, lb);
    free(la);
    free(lb);

    // PEFT's files
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' lora export a/ckpt-step00000040.h5 --out exported", dir, bin);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    free(out);
    char *json = ct_test_read(ct_test_path("exported/adapter_config.json"), NULL);
    CHECK_CONTAINS(json, "\"target_parameters\":\t[\"mlp.experts.gate_up_proj\", \"mlp.experts.down_proj\"]");
    free(json);

    // merging changes the adapted weights only
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' lora merge --base base/ckpt-step00000004.h5 --adapter exported "
             "--out merged.h5", dir, bin);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    free(out);
    CtModel base, merged;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    CHECK(ct_checkpoint_load(ct_test_path("base/ckpt-step00000004.h5"), &base, ct_ops_cpu(), 1, 8, 0, NULL, &meta) == 0);
    ct_checkpoint_meta_free(&meta);
    CHECK_MSG(ct_checkpoint_load(ct_test_path("merged.h5"), &merged, ct_ops_cpu(), 1, 8, 0, NULL, &meta) == 0, "%s",
              ct_error_message());
    ct_checkpoint_meta_free(&meta);
    if (ct_test_failed()) return;
    int changed = 0, kept = 0;
    for (int i = 0; i < base.n_tensors; i++) {
        const CtParamEntry *e = &base.table[i];
        if (e->numel != merged.table[i].numel) continue;  // the vocabulary grew (ChatML tokens)
        const int same = memcmp(base.params + e->offset, merged.params + merged.table[i].offset,
                                e->numel * sizeof(float)) == 0;
        const int adapted = strstr(e->name, ".experts.") || strstr(e->name, "q_proj.weight") ||
                            strstr(e->name, "v_proj.weight");
        CHECK_MSG(same != adapted, "%s: %s", e->name, adapted ? "its adapter changed nothing" : "changed: it is frozen");
        changed += !same;
        kept += same;
    }
    printf("    merged: %d tensors changed (q, v, every expert's gate, up, down), %d kept (router included)\n", changed,
           kept);
    ct_model_free(&base);
    ct_model_free(&merged);
}
