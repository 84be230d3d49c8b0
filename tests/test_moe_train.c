// Training a Mixture-of-Experts model (issue 23) through the run config and the ctrain binary:
// the config keys and their errors, the checkpoint's model fields, the routing metrics of a
// pretraining run (and none for a dense one), resume to the bit with the aux-free bias moving,
// and SFT and DPO on an MoE model. Data parallelism: tests/test_dist.c (dist.moe_*).
#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "tests/test.h"
#include "tests/train_fixture.h"
#include "train/interop/checkpoint_meta.h"
#include "train/loop/run_config.h"
#include "train/loop/run_model.h"

// ---- the config ----

// Loads `json` as a run config file and resolves its model: 0, or -1 with the error set.
static int load_config(const char *json, CtRunConfig *cfg, CtModelConfig *model) {
    memset(cfg, 0, sizeof *cfg);
    const char *path = ct_test_write("run.json", json);
    if (ct_run_config_load(cfg, path, NULL) != 0) return -1;
    return ct_model_config_from_run(cfg, model);
}

// The config is refused, and the error names `key`.
static void check_refused(const char *json, const char *key) {
    CtRunConfig cfg;
    CtModelConfig model;
    ct_error_clear();
    CHECK_MSG(load_config(json, &cfg, &model) != 0, "accepted: %s", json);
    CHECK_CONTAINS(ct_error_message(), key);
}

TEST(moe_train, config_keys_reach_the_model_and_errors_name_the_key) {
    CtRunConfig cfg;
    CtModelConfig m;
    int rc = load_config("{\"model\": {\"preset\": \"llama-tiny\", \"n_layer\": 4, \"n_experts\": 8, \"top_k\": 2,"
                         " \"moe_d_ff\": 96, \"n_shared_experts\": 2, \"shared_expert_gate\": true, \"moe_layer_freq\": 2,"
                         " \"router\": \"sigmoid_norm\", \"router_scale\": 2.5},"
                         " \"train\": {\"aux_free_bias_rate\": 0.001, \"aux_loss_coef\": 0}}",
                         &cfg, &m);
    CHECK_MSG(rc == 0, "%s", ct_error_message());
    CHECK(m.n_experts == 8 && m.top_k == 2 && m.moe_d_ff == 96 && m.n_shared_experts == 2 && m.shared_expert_gate);
    CHECK(m.moe_layer_freq == 2 && m.router == CT_ROUTER_SIGMOID_NORM && m.router_scale == 2.5f);
    CHECK_EQ_INT(ct_model_moe_layers(&m), 2);  // layers 1 and 3
    CHECK(cfg.train.aux_free_bias_rate == 0.001 && cfg.train.aux_loss_coef == 0 && cfg.train.router_z_loss_coef == 0.001);
    // Every router by its name; the defaults: a dense preset, the losses' published coefficients.
    const char *names[] = {"softmax", "softmax_norm", "topk_softmax", "sigmoid", "sigmoid_norm"};
    for (int r = 0; r < 5; r++) {
        char json[256];
        snprintf(json, sizeof json, "{\"model\": {\"preset\": \"llama-tiny\", \"n_experts\": 4, \"top_k\": 1, "
                 "\"moe_d_ff\": 32, \"router\": \"%s\"}}", names[r]);
        CHECK_EQ_INT(load_config(json, &cfg, &m), 0);
        CHECK_EQ_INT((int)m.router, r);
    }
    CHECK_EQ_INT(load_config("{\"model\": {\"preset\": \"llama-tiny\"}}", &cfg, &m), 0);
    CHECK(m.n_experts == 0 && cfg.train.aux_loss_coef == 0.01 && cfg.train.router_z_loss_coef == 0.001 &&
          cfg.train.aux_free_bias_rate == 0);
    // Refusals name the key.
    const char *moe = "\"preset\": \"llama-tiny\", \"n_experts\": 8, \"top_k\": 2, \"moe_d_ff\": 32";
    char json[512];
    snprintf(json, sizeof json, "{\"model\": {%s, \"router\": \"greedy\"}}", moe);
    check_refused(json, "model.router");
    snprintf(json, sizeof json, "{\"model\": {%s}, \"train\": {\"aux_free_bias_rate\": 0.001}}", moe);
    check_refused(json, "train.aux_free_bias_rate");
    snprintf(json, sizeof json, "{\"model\": {%s, \"router\": \"topk_softmax\"}, \"train\": {\"aux_free_bias_rate\": 0.01}}",
             moe);
    check_refused(json, "train.aux_free_bias_rate");
    snprintf(json, sizeof json, "{\"model\": {%s}, \"train\": {\"aux_loss_coef\": -1}}", moe);
    check_refused(json, "train.aux_loss_coef");
    snprintf(json, sizeof json, "{\"model\": {%s}, \"train\": {\"router_z_loss_coef\": \"high\"}}", moe);
    check_refused(json, "train.router_z_loss_coef");
    check_refused("{\"model\": {\"preset\": \"llama-tiny\", \"n_experts\": 8, \"top_k\": 9, \"moe_d_ff\": 32}}",
                  "model.top_k");
    check_refused("{\"model\": {\"preset\": \"llama-tiny\", \"n_experts\": 8, \"top_k\": 2}}", "model.moe_d_ff");
    check_refused("{\"model\": {\"preset\": \"llama-tiny\", \"top_k\": 2}}", "model.n_experts");
    check_refused("{\"model\": {\"preset\": \"gpt2-tiny\", \"n_experts\": 8, \"top_k\": 2, \"moe_d_ff\": 32}}",
                  "model.n_experts");
    check_refused("{\"model\": {\"preset\": \"llama-tiny\", \"n_experts\": 4, \"top_k\": 1, \"moe_d_ff\": 32,"
                  " \"shared_expert_gate\": true}}",
                  "model.shared_expert_gate");
}

// The shipped example configs load and describe the models docs/training.md says: an MoE model
// and a dense one whose MLP is as wide as the MoE's active experts (K routed + shared).
TEST(moe_train, shipped_moe_configs_load_with_the_same_active_width) {
    CtRunConfig cfg;
    CtModelConfig moe, dense;
    char path[1200];
    snprintf(path, sizeof path, "%s/configs/moe-tiny.json", getenv("CTRAIN_ROOT") ? getenv("CTRAIN_ROOT") : ".");
    memset(&cfg, 0, sizeof cfg);
    CHECK_MSG(ct_run_config_load(&cfg, path, NULL) == 0 && ct_model_config_from_run(&cfg, &moe) == 0, "%s: %s", path,
              ct_error_message());
    snprintf(path, sizeof path, "%s/configs/moe-tiny-dense.json", getenv("CTRAIN_ROOT") ? getenv("CTRAIN_ROOT") : ".");
    memset(&cfg, 0, sizeof cfg);
    CHECK_MSG(ct_run_config_load(&cfg, path, NULL) == 0 && ct_model_config_from_run(&cfg, &dense) == 0, "%s: %s", path,
              ct_error_message());
    CHECK(moe.n_experts > moe.top_k && moe.top_k >= 1 && dense.n_experts == 0);
    CHECK_EQ_INT((moe.top_k + moe.n_shared_experts) * moe.moe_d_ff, dense.d_ff);
    CHECK(moe.d_model == dense.d_model && moe.n_layer == dense.n_layer && moe.n_head == dense.n_head);
}

// A checkpoint's model_config keeps the MoE fields; one written before them reads as dense.
TEST(moe_train, checkpoint_config_keeps_the_moe_fields_and_old_ones_read_dense) {
    CtModelConfig c, back;
    CHECK_EQ_INT(ct_model_preset("llama-tiny", &c), 0);
    c.n_layer = 4;
    c.n_experts = 6, c.top_k = 3, c.moe_d_ff = 40, c.n_shared_experts = 1, c.shared_expert_gate = 1;
    c.moe_layer_freq = 2, c.router = CT_ROUTER_SIGMOID, c.router_scale = 1.5f;
    char *json = ct_model_config_json(&c);
    CHECK_MSG(ct_model_config_parse_json(json, &back, "test") == 0, "%s", ct_error_message());
    CHECK(memcmp(&c, &back, sizeof c) == 0);
    CHECK_CONTAINS(json, "\"router\":\"sigmoid\"");
    free(json);
    // A dense model's JSON has no MoE field at all (what older releases wrote and read).
    CHECK_EQ_INT(ct_model_preset("llama-tiny", &c), 0);
    json = ct_model_config_json(&c);
    CHECK(!strstr(json, "experts") && !strstr(json, "router"));
    CHECK_EQ_INT(ct_model_config_parse_json(json, &back, "test"), 0);
    CHECK(back.n_experts == 0 && back.top_k == 0 && back.router == CT_ROUTER_SOFTMAX);
    free(json);
    ct_error_clear();
    CHECK(ct_model_config_parse_json("{\"arch\": \"llama\", \"n_layer\": 1, \"n_head\": 2, \"n_kv_head\": 2,"
                                     " \"d_model\": 32, \"d_ff\": 64, \"vocab_size\": 300, \"max_seq_len\": 32,"
                                     " \"norm_eps\": 1e-5, \"rope_theta\": 10000, \"n_experts\": 4, \"top_k\": 2,"
                                     " \"moe_d_ff\": 16, \"router\": \"argmax\"}",
                                     &back, "old.h5") != 0);
    CHECK_CONTAINS(ct_error_message(), "router argmax");
}

// ---- runs ----

static const char *CONFIG =
    "{\"model\": {\"preset\": \"llama-tiny\", \"n_layer\": 2, \"d_model\": 32, \"n_head\": 2, \"n_kv_head\": 1,"
    " \"d_ff\": 64, \"max_seq_len\": 32, \"n_experts\": 4, \"top_k\": 2, \"moe_d_ff\": 16, \"n_shared_experts\": 1},"
    " \"train\": {\"batch_size\": 4, \"seq_len\": 32, \"max_steps\": 10, \"eval_every\": 5, \"eval_batches\": 2,"
    " \"save_every\": 5, \"keep_last\": 3, \"n_samples\": 1, \"sample_tokens\": 8},"
    " \"optim\": {\"lr\": 3e-3, \"warmup_steps\": 4}, \"run\": {\"threads\": 1}}";

// stories -> tokenizer -> shards in the test folder; the ctrain pretrain command prefix.
static const char *prepare(void) {
    static char prefix[2048];
    if (train_fixture_stories(300) != 0) return NULL;
    ct_test_write("run.json", CONFIG);
    snprintf(prefix, sizeof prefix, "cd '%s' && OMP_NUM_THREADS=1 '%s' pretrain run.json --data.path=data",
             ct_test_tmpdir(), ct_test_bin());
    return prefix;
}

static int pretrain(const char *prefix, const char *extra, char **out) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", prefix, extra);
    return ct_test_run(cmd, out);
}

// The "train" lines of DIR/metrics.jsonl, parsed (free with free_lines); their count.
static int train_lines(const char *run_dir, cJSON **lines, int cap) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", ct_test_tmpdir(), run_dir);
    char *text = ct_test_read(path, NULL);
    int n = 0;
    for (char *line = text ? strtok(text, "\n") : NULL; line && n < cap; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        const char *kind = cJSON_GetStringValue(cJSON_GetObjectItem(o, "kind"));
        if (kind && strcmp(kind, "train") == 0)
            lines[n++] = o;
        else
            cJSON_Delete(o);
    }
    free(text);
    return n;
}

static void free_lines(cJSON **lines, int n) {
    for (int i = 0; i < n; i++) cJSON_Delete(lines[i]);
}

static double number(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

// One train line's routing fields agree with each other: L rows of E fractions, each a whole
// number of (token, slot) pairs out of the step's N·K, summing to 1; max/mean per layer, the worst.
static void check_routing_line(const cJSON *o, int L, int E, double pairs_per_step) {
    const double aux = number(o, "aux_loss"), z = number(o, "router_z_loss"), worst = number(o, "moe_imbalance");
    CHECK_MSG(isfinite(aux) && aux > 0 && isfinite(z) && z >= 0, "aux_loss %g, router_z_loss %g", aux, z);
    const cJSON *load = cJSON_GetObjectItem(o, "expert_load"), *ratio = cJSON_GetObjectItem(o, "expert_load_max_over_mean");
    CHECK(cJSON_GetArraySize(load) == L && cJSON_GetArraySize(ratio) == L);
    double most = 0;
    for (int l = 0; l < L && l < cJSON_GetArraySize(load); l++) {
        const cJSON *row = cJSON_GetArrayItem(load, l);
        CHECK_EQ_INT(cJSON_GetArraySize(row), E);
        double sum = 0, max = 0;
        for (int e = 0; e < cJSON_GetArraySize(row); e++) {
            double f = cJSON_GetArrayItem(row, e)->valuedouble, pairs = f * pairs_per_step;
            CHECK_MSG(f >= 0 && f <= 1, "layer %d expert %d: load %g", l, e, f);
            CHECK_MSG(fabs(pairs - round(pairs)) < 1e-3, "layer %d expert %d: load %g is not a count out of %g", l, e,
                      f, pairs_per_step);
            sum += f;
            max = fmax(max, f);
        }
        CHECK_MSG(fabs(sum - 1) < 1e-5, "layer %d: the loads sum to %.9g", l, sum);
        double r = cJSON_GetArrayItem(ratio, l)->valuedouble;
        CHECK_MSG(r >= 1 && fabs(r - max * E) < 1e-4 * r, "layer %d: max/mean %g, max load %g of %d experts", l, r, max,
                  E);
        most = fmax(most, r);
    }
    // The per-layer ratios are written to 6 digits, moe_imbalance to 9: agree to the coarser.
    CHECK_MSG(fabs(worst - most) < 1e-5 * most, "moe_imbalance %g, the worst layer's %g", worst, most);
}

TEST(moe_train, pretrain_writes_routing_metrics_that_add_up) {
    const char *prefix = prepare();
    if (!prefix) return;
    char *out;
    CHECK_EQ_INT(pretrain(prefix, "--run.out_dir=moe", &out), 0);
    CHECK_CONTAINS(out, "done: 10 steps");
    CHECK_CONTAINS(out, "M active (MoE: 4 experts, top-2, 1 shared, router softmax)");
    CHECK_CONTAINS(out, "| imb ");
    free(out);
    cJSON *lines[32];
    int n = train_lines("moe", lines, 32);
    CHECK_EQ_INT(n, 10);
    for (int i = 0; i < n; i++) check_routing_line(lines[i], 2, 4, 4 * 32 * 2);  // N = 4 rows × 32, K = 2
    double z0 = number(lines[0], "router_z_loss");
    free_lines(lines, n);
    // Every other layer MoE (the first dense), one expert per token, no z-loss: one row per MoE layer.
    CHECK_EQ_INT(pretrain(prefix, "--run.out_dir=freq --model.n_layer=4 --model.moe_layer_freq=2 --model.top_k=1 "
                          "--train.router_z_loss_coef=0 --train.max_steps=3", &out), 0);
    free(out);
    n = train_lines("freq", lines, 32);
    CHECK_EQ_INT(n, 3);
    for (int i = 0; i < n; i++) check_routing_line(lines[i], 2, 4, 4 * 32 * 1);
    CHECK(z0 > 0);
    free_lines(lines, n);
    // A dense model's lines and progress stay as they were.
    CHECK_EQ_INT(pretrain(prefix, "--run.out_dir=dense --model.n_experts=0 --model.top_k=0 --model.moe_d_ff=0 "
                          "--model.n_shared_experts=0 --train.max_steps=2", &out), 0);
    CHECK(!strstr(out, "imb") && !strstr(out, "active"));
    free(out);
    n = train_lines("dense", lines, 32);
    CHECK_EQ_INT(n, 2);
    for (int i = 0; i < n; i++)
        CHECK(!cJSON_GetObjectItem(lines[i], "aux_loss") && !cJSON_GetObjectItem(lines[i], "expert_load") &&
              cJSON_GetObjectItem(lines[i], "loss"));
    free_lines(lines, n);
}

// The selection biases of a checkpoint (model.layers.L.mlp.gate.e_score_correction_bias): how
// many floats were copied into b (at most cap), -1 when unreadable.
static int checkpoint_biases(const char *run_dir, const char *file, float *b, int cap) {
    CtModel m;
    CtAdamW opt;
    if (train_fixture_load_checkpoint(run_dir, file, &m, &opt) != 0) return -1;
    int n = 0;
    for (int i = 0; i < m.n_tensors; i++)
        if (strstr(m.table[i].name, "e_score_correction_bias"))
            for (size_t k = 0; k < m.table[i].numel && n < cap; k++) b[n++] = m.params[m.table[i].offset + k];
    ct_model_free(&m);
    ct_adamw_free(&opt);
    return n;
}

// With a sigmoid router and the aux-free rate, a run stopped and resumed takes the same steps to
// the bit (the bias is a parameter of the checkpoint); the bias moves only in steps of ±γ, and not
// at all with the rate 0 (no gradient and no weight decay reaches it).
TEST(moe_train, resume_continues_to_the_bit_and_the_aux_free_bias_moves_by_gamma) {
    const char *prefix = prepare();
    if (!prefix) return;
    const char *moe = "--model.router=sigmoid_norm --model.router_scale=2 --train.aux_free_bias_rate=0.01";
    char extra[1024], *out;
    snprintf(extra, sizeof extra, "%s --run.out_dir=a", moe);
    CHECK_EQ_INT(pretrain(prefix, extra, &out), 0);
    free(out);
    snprintf(extra, sizeof extra, "%s --run.out_dir=b --stop-after 5", moe);
    CHECK_EQ_INT(pretrain(prefix, extra, &out), 0);
    CHECK_CONTAINS(out, "stopped after 5 steps as asked");
    free(out);
    snprintf(extra, sizeof extra, "%s --run.out_dir=b --resume b", moe);
    CHECK_EQ_INT(pretrain(prefix, extra, &out), 0);
    CHECK_CONTAINS(out, "resumed from b/ckpt-step00000005.h5 at step 5");
    free(out);
    char *a = train_fixture_metric_lines("a", 6), *b = train_fixture_metric_lines("b", 6);
    CHECK(a && b && strstr(a, "expert_load"));
    CHECK_MSG(a && b && strcmp(a, b) == 0, "the steps after resuming differ:\n%s\nvs\n%s", a, b);
    free(a);
    free(b);
    CtModel ma, mb;
    CtAdamW oa, ob;
    CHECK_EQ_INT(train_fixture_load_checkpoint("a", "ckpt-step00000010.h5", &ma, &oa), 0);
    CHECK_EQ_INT(train_fixture_load_checkpoint("b", "ckpt-step00000010.h5", &mb, &ob), 0);
    CHECK(ma.n_params == mb.n_params && memcmp(ma.params, mb.params, ma.n_params * sizeof(float)) == 0);
    CHECK(memcmp(oa.m, ob.m, ma.n_params * sizeof(float)) == 0 && memcmp(oa.v, ob.v, ma.n_params * sizeof(float)) == 0);
    ct_model_free(&ma);
    ct_model_free(&mb);
    ct_adamw_free(&oa);
    ct_adamw_free(&ob);
    // The bias: 2 layers × 4 experts, each a sum of 10 steps of ±0.01 (or 0), not all zero.
    float bias[64];
    int n = checkpoint_biases("a", "ckpt-step00000010.h5", bias, 64);
    CHECK_EQ_INT(n, 8);
    int moved = 0;
    for (int i = 0; i < n; i++) {
        double steps = bias[i] / 0.01;
        CHECK_MSG(fabs(steps - round(steps)) < 1e-3 && fabs(steps) <= 10 + 1e-3, "bias %d: %g", i, bias[i]);
        moved += bias[i] != 0;
    }
    CHECK_MSG(moved > 0, "no bias moved");
    CHECK_EQ_INT(pretrain(prefix, "--model.router=sigmoid --run.out_dir=still --train.max_steps=5", &out), 0);
    free(out);
    n = checkpoint_biases("still", "ckpt-step00000005.h5", bias, 64);
    CHECK_EQ_INT(n, 8);
    for (int i = 0; i < n; i++) CHECK_MSG(bias[i] == 0, "bias %d moved to %g without the rate", i, bias[i]);
    // The rate on a router without the bias, from a checkpoint the config does not describe: refused at setup.
    CHECK_EQ_INT(pretrain(prefix, "--run.out_dir=soft --train.max_steps=1", &out), 0);
    free(out);
    CHECK(pretrain(prefix, "--run.out_dir=c --train.init_from=soft/ckpt-step00000001.h5 --model.n_experts=0 "
                   "--model.top_k=0 --model.moe_d_ff=0 --model.n_shared_experts=0 --train.aux_free_bias_rate=0.01",
                   &out) != 0);
    CHECK_CONTAINS(out, "train.aux_free_bias_rate 0.01 needs a Mixture-of-Experts model with model.router sigmoid");
    free(out);
}

// SFT and DPO train an MoE model (every other layer MoE, a gated shared expert), their train lines
// carry the routing of the policy's forwards.
TEST(moe_train, sft_and_dpo_train_an_moe_model) {
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    char cmd[8192], *out;
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' synth instructions --task reverse --examples 300 --out rev.jsonl && cp rev.jsonl rev.txt && "
             "'%s' tokenizer train --input rev.txt --vocab-size 300 --special '<|endoftext|>' --out rtok.json && "
             "'%s' shard --tokenizer rtok.json --input rev.jsonl --format sft --val-fraction 0.05 --out sft && "
             "sed -E 's/\"prompt\": \"reverse: ([^\"]*)\", \"response\": \"([^\"]*)\"/\"prompt\": \"reverse: \\1\", "
             "\"chosen\": \"\\2\", \"rejected\": \"\\1\"/' rev.jsonl > pairs.jsonl && "
             "'%s' shard --tokenizer sft/tokenizer.json --input pairs.jsonl --format dpo --val-fraction 0.1 --out pairs",
             dir, bin, bin, bin, bin);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    free(out);
    ct_test_write("run.json", CONFIG);
    const char *shape = "--model.n_layer=2 --model.moe_layer_freq=2 --model.shared_expert_gate=true "
                        "--train.eval_exact_match=0 --train.max_steps=6 --train.save_every=6";
    snprintf(cmd, sizeof cmd, "cd '%s' && OMP_NUM_THREADS=1 '%s' sft run.json --data.path=sft --run.out_dir=s %s 2>&1",
             dir, bin, shape);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, "done: 6 steps");
    free(out);
    snprintf(cmd, sizeof cmd, "cd '%s' && OMP_NUM_THREADS=1 '%s' dpo run.json --data.path=pairs --run.out_dir=d "
             "--train.init_from=s/ckpt-step00000006.h5 --train.batch_size=2 %s 2>&1", dir, bin, shape);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, "done: 6 steps");
    CHECK_CONTAINS(out, "| imb ");
    free(out);
    // LoRA over the MoE model: the reference is the policy with its adapters off, whose forwards
    // must leave the policy's routing counts alone (the count check below fails on doubled counts).
    snprintf(cmd, sizeof cmd, "cd '%s' && OMP_NUM_THREADS=1 '%s' dpo run.json --data.path=pairs --run.out_dir=l "
             "--train.init_from=s/ckpt-step00000006.h5 --train.batch_size=2 --lora.r=4 %s 2>&1", dir, bin, shape);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, "done: 6 steps");
    free(out);
    for (int run = 0; run < 3; run++) {
        const int dpo = run > 0;
        cJSON *lines[16];
        int n = train_lines(run == 0 ? "s" : run == 1 ? "d" : "l", lines, 16), routed = 0;
        CHECK_MSG(n >= 6, "%s: %d train lines", dpo ? "dpo" : "sft", n);
        // One MoE layer of 4 experts, top-2; N·K: rows × 32 × 2 (dpo: 2 rows per pair, one forward each step).
        for (int i = 0; i < n; i++)
            if (cJSON_GetObjectItem(lines[i], "expert_load")) {
                check_routing_line(lines[i], 1, 4, (dpo ? 2 * 2 : 4) * 32 * 2);
                routed++;
            }
        CHECK_EQ_INT(routed, 6);
        free_lines(lines, n);
    }
}
