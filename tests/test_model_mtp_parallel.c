// Parallel multi-token prediction heads (model.mtp_style parallel, train/model/model_mtp.c):
// each head is a block of the family and a norm under the modules' names, beside the main model's
// layout; a head that copies the main model's last block and final norm predicts what the main
// model predicts, shifted (it reads the input of that block); the style is nothing without
// modules, is kept in checkpoints and reads back. The gradients of main + λ/D·Σ_k L_k are checked
// in tests/test_model_grad.c.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/ops.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/interop/checkpoint_io.h"
#include "train/interop/checkpoint_meta.h"
#include "train/loop/run_config.h"
#include "train/loop/run_model.h"

enum { B = 2, T = 8 };

static CtModelConfig parallel_config(CtArch arch, int n_layer, int depth) {
    CtModelConfig c = tiny_config(arch);
    c.n_layer = n_layer;
    c.mtp_depth = depth;
    c.mtp_style = CT_MTP_PARALLEL;
    return c;
}

// Random tokens; targets the next token of the row (the last one: a random id).
static void plain_batch(TinyBatch *tb, int V, uint64_t seed) {
    CtRng rng;
    ct_rng_seed(&rng, seed);
    memset(tb, 0, sizeof *tb);
    tb->B = B;
    tb->T = T;
    for (int n = 0; n < B * T; n++) tb->tokens[n] = (int32_t)(ct_rng_next(&rng) % (uint64_t)V);
    for (int n = 0; n < B * T; n++)
        tb->targets[n] = n % T < T - 1 ? tb->tokens[n + 1] : (int32_t)(ct_rng_next(&rng) % (uint64_t)V);
    tb->batch = (CtBatch){.tokens = tb->tokens, .targets = tb->targets, .B = B, .T = T};
}

static int tensor_index(const CtModel *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m->table[i].name, name) == 0) return i;
    return -1;
}

static void heads_are_a_block_and_a_norm(CtArch arch) {
    CtModelConfig c0 = tiny_config(arch), c = parallel_config(arch, c0.n_layer, 2), cs = c;
    cs.mtp_style = CT_MTP_SEQUENTIAL;
    CtModel m0, m, ms;
    CHECK(ct_model_create(&m0, &c0, ct_ops_cpu(), 1, 4, 0) == 0);
    CHECK(ct_model_create(&m, &c, ct_ops_cpu(), 1, 4, 0) == 0);
    CHECK(ct_model_create(&ms, &cs, ct_ops_cpu(), 1, 4, 0) == 0);
    if (ct_test_failed()) return;
    // the main model's tensors first, as without heads
    for (int i = 0; i < m0.n_tensors; i++)
        CHECK_MSG(strcmp(m0.table[i].name, m.table[i].name) == 0 && m0.table[i].offset == m.table[i].offset,
                  "tensor %d: %s vs %s", i, m0.table[i].name, m.table[i].name);
    const char *p = arch == CT_ARCH_GPT2 ? "transformer.h" : "model.layers";
    const char *block = arch == CT_ARCH_GPT2 ? "attn.c_attn.weight" : "self_attn.q_proj.weight";
    char name[128];
    for (int l = 2; l <= 3; l++) {  // head k is layer n_layer + k − 1 = 2, 3
        snprintf(name, sizeof name, "%s.%d.%s", p, l, block);
        CHECK_MSG(tensor_index(&m, name) >= 0, "no tensor %s", name);
        snprintf(name, sizeof name, "%s.%d.shared_head.norm.weight", p, l);
        CHECK_MSG(tensor_index(&m, name) >= 0, "no tensor %s", name);
    }
    for (int i = 0; i < m.n_tensors; i++)
        CHECK_MSG(!strstr(m.table[i].name, "enorm") && !strstr(m.table[i].name, "hnorm") &&
                      !strstr(m.table[i].name, "eh_proj"),
                  "a parallel head has no input of its own, but the model has %s", m.table[i].name);
    // a head is a sequential module less its enorm, hnorm (with gpt2's biases) and eh_proj [C, 2C]
    const size_t C = (size_t)c.d_model, input = (arch == CT_ARCH_GPT2 ? 4 * C : 2 * C) + 2 * C * C;
    CHECK_EQ_INT((long long)(ms.n_params - m.n_params), (long long)(2 * input));
    snprintf(name, sizeof name, "%s.3.shared_head.norm.%s", p, arch == CT_ARCH_GPT2 ? "bias" : "weight");
    CHECK_MSG(strcmp(m.table[m.n_tensors - 1].name, name) == 0, "the last tensor is %s", m.table[m.n_tensors - 1].name);
    ct_model_free(&m0);
    ct_model_free(&m);
    ct_model_free(&ms);
}
TEST(mtp_parallel, heads_are_a_block_and_a_norm_llama) { heads_are_a_block_and_a_norm(CT_ARCH_LLAMA); }
TEST(mtp_parallel, heads_are_a_block_and_a_norm_gpt2) { heads_are_a_block_and_a_norm(CT_ARCH_GPT2); }

// Copies every tensor named prefix.FROM.rest to prefix.TO.rest.
static void copy_layer(CtModel *m, const char *prefix, int from, int to) {
    char src[128], dst[128];
    snprintf(src, sizeof src, "%s.%d.", prefix, from);
    const size_t n = strlen(src);
    int copied = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        if (strncmp(m->table[i].name, src, n) != 0) continue;
        snprintf(dst, sizeof dst, "%s.%d.%s", prefix, to, m->table[i].name + n);
        const int j = tensor_index(m, dst);
        CHECK_MSG(j >= 0 && m->table[j].numel == m->table[i].numel, "no tensor %s like %s", dst, m->table[i].name);
        if (j >= 0)
            memcpy(m->params + m->table[j].offset, m->params + m->table[i].offset, m->table[i].numel * sizeof(float));
        copied++;
    }
    CHECK(copied > 4);
}

// Head k with the last block's weights and the final norm's is the main model over the same
// input: its loss is the main logits' cross-entropy against the targets k places later (row i
// against targets[i+k], the rows with i + k inside the sequence). Catches a head reading anything
// but the last block's input (with one layer: the embedding output).
static void copied_head_predicts_what_the_model_predicts(CtArch arch, int n_layer) {
    CtModelConfig c = parallel_config(arch, n_layer, 2);
    CtModel m;
    CHECK(ct_model_create(&m, &c, ct_ops_cpu(), B, T, 0) == 0);
    if (ct_test_failed()) return;
    tiny_randomize_params(&m, 23);
    const char *p = arch == CT_ARCH_GPT2 ? "transformer.h" : "model.layers";
    char name[128];
    for (int k = 1; k <= 2; k++) {
        copy_layer(&m, p, n_layer - 1, n_layer + k - 1);
        snprintf(name, sizeof name, "%s.%d.shared_head.norm.weight", p, n_layer + k - 1);
        const int to = tensor_index(&m, name);
        const int from = tensor_index(&m, arch == CT_ARCH_GPT2 ? "transformer.ln_f.weight" : "model.norm.weight");
        CHECK(to >= 0 && from >= 0);
        if (to >= 0 && from >= 0) memcpy(m.params + m.table[to].offset, m.params + m.table[from].offset, c.d_model * 4);
        if (arch == CT_ARCH_GPT2) {
            snprintf(name, sizeof name, "%s.%d.shared_head.norm.bias", p, n_layer + k - 1);
            const int tb = tensor_index(&m, name), fb = tensor_index(&m, "transformer.ln_f.bias");
            CHECK(tb >= 0 && fb >= 0);
            if (tb >= 0 && fb >= 0) memcpy(m.params + m.table[tb].offset, m.params + m.table[fb].offset, c.d_model * 4);
        }
    }
    if (ct_test_failed()) return;
    m.mtp_weight = 0.3f;
    TinyBatch tb;
    plain_batch(&tb, c.vocab_size, 29);
    ct_model_forward(&m, &tb.batch);
    const float *logits = ct_model_logits(&m);
    const int V = c.vocab_size;
    for (int k = 1; k <= 2; k++) {
        double sum = 0;
        int count = 0;
        for (int b = 0; b < B; b++)
            for (int i = 0; i + k < T; i++) {
                const float *z = logits + ((size_t)b * T + i) * V;
                double mx = z[0], se = 0;
                for (int v = 1; v < V; v++) mx = fmax(mx, z[v]);
                for (int v = 0; v < V; v++) se += exp(z[v] - mx);
                sum += mx + log(se) - z[tb.targets[b * T + i + k]];
                count++;
            }
        CHECK_EQ_INT((int)m.mtp_loss_count[k - 1], count);
        const double want = sum / count, rel = fabs(m.mtp_loss[k - 1] - want) / want;
        CHECK_MSG(rel < 1e-5, "depth %d: the head's loss %.7g, the main logits' shifted %.7g", k, m.mtp_loss[k - 1],
                  want);
    }
    ct_model_free(&m);
}
TEST(mtp_parallel, head_copying_the_last_block_predicts_what_the_model_predicts_llama) {
    copied_head_predicts_what_the_model_predicts(CT_ARCH_LLAMA, 2);
}
TEST(mtp_parallel, head_copying_the_last_block_predicts_what_the_model_predicts_gpt2) {
    copied_head_predicts_what_the_model_predicts(CT_ARCH_GPT2, 2);
}
TEST(mtp_parallel, head_copying_the_only_block_predicts_what_the_model_predicts) {
    copied_head_predicts_what_the_model_predicts(CT_ARCH_LLAMA, 1);
}

// Head 1 of a two-head model computes what the one head of a one-head model with the same
// parameters computes; λ = 0 runs no head and leaves the main gradients those of the model without.
TEST(mtp_parallel, first_head_is_the_same_with_a_second_and_lambda_zero_runs_none) {
    CtModelConfig c0 = tiny_config(CT_ARCH_LLAMA), c1 = parallel_config(CT_ARCH_LLAMA, 2, 1),
                  c2 = parallel_config(CT_ARCH_LLAMA, 2, 2);
    CtModel m0, m1, m2;
    CHECK(ct_model_create(&m0, &c0, ct_ops_cpu(), B, T, 0) == 0);
    CHECK(ct_model_create(&m1, &c1, ct_ops_cpu(), B, T, 0) == 0);
    CHECK(ct_model_create(&m2, &c2, ct_ops_cpu(), B, T, 0) == 0);
    if (ct_test_failed()) return;
    tiny_randomize_params(&m2, 31);
    memcpy(m1.params, m2.params, m1.n_params * sizeof(float));  // each layout is the next one's first part
    memcpy(m0.params, m2.params, m0.n_params * sizeof(float));
    m1.mtp_weight = m2.mtp_weight = 0.3f;
    TinyBatch tb;
    plain_batch(&tb, c1.vocab_size, 37);
    const float main1 = ct_model_forward(&m1, &tb.batch), first1 = m1.mtp_loss[0];
    const float main2 = ct_model_forward(&m2, &tb.batch), first2 = m2.mtp_loss[0];
    CHECK(main1 == main2);
    CHECK_MSG(first1 == first2, "head 1: %.9g alone, %.9g with a second", first1, first2);
    CHECK(m2.mtp_loss[1] > 0 && m2.mtp_loss[1] != first2);
    CHECK(m1.mtp_loss_count[0] == B * (T - 1) && m2.mtp_loss_count[1] == B * (T - 2));
    ct_model_zero_grad(&m0);
    ct_model_zero_grad(&m2);
    const float l0 = ct_model_forward(&m0, &tb.batch);
    ct_model_backward(&m0);
    m2.mtp_weight = 0;
    const float l2 = ct_model_forward(&m2, &tb.batch);
    ct_model_backward(&m2);
    CHECK(l0 == l2);
    CHECK(memcmp(m0.grads, m2.grads, m0.n_params * sizeof(float)) == 0);
    int nonzero = 0;
    for (size_t i = m0.n_params; i < m2.n_params; i++) nonzero += m2.grads[i] != 0;
    CHECK_EQ_INT(nonzero, 0);
    ct_model_free(&m0);
    ct_model_free(&m1);
    ct_model_free(&m2);
}

// Loads `json` as a run config file and resolves its model: 0, or -1 with the error set.
static int load_config(const char *json, CtModelConfig *model) {
    CtRunConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    if (ct_run_config_load(&cfg, ct_test_write("run.json", json), NULL) != 0) return -1;
    return ct_model_config_from_run(&cfg, model);
}

TEST(mtp_parallel, style_without_modules_changes_nothing) {
    CtModelConfig plain, styled, heads;
    CHECK(load_config("{\"model\": {\"preset\": \"llama-tiny\"}}", &plain) == 0);
    CHECK(load_config("{\"model\": {\"preset\": \"llama-tiny\", \"mtp_style\": \"parallel\"}}", &styled) == 0);
    CHECK(memcmp(&plain, &styled, sizeof plain) == 0);
    CHECK(load_config("{\"model\": {\"preset\": \"llama-tiny\", \"mtp_style\": \"parallel\", \"mtp_depth\": 2}}",
                      &heads) == 0);
    CHECK(heads.mtp_style == CT_MTP_PARALLEL && heads.mtp_depth == 2);
    ct_error_clear();
    CHECK(load_config("{\"model\": {\"preset\": \"llama-tiny\", \"mtp_style\": \"diagonal\"}}", &heads) != 0);
    CHECK_CONTAINS(ct_error_message(), "mtp_style");
    // a model config that says parallel without modules is refused (one spelling of "no modules")
    CtModelConfig c = tiny_config(CT_ARCH_LLAMA);
    c.mtp_style = CT_MTP_PARALLEL;
    CHECK(ct_model_config_validate(&c) != 0);
    CHECK_CONTAINS(ct_error_message(), "model.mtp_style");
}

TEST(mtp_parallel, checkpoint_config_keeps_the_style) {
    CtModelConfig c = parallel_config(CT_ARCH_LLAMA, 2, 2), back;
    char *json = ct_model_config_json(&c);
    CHECK(json && strstr(json, "\"mtp_style\":\"parallel\""));
    CHECK(ct_model_config_parse_json(json, &back, "test") == 0 && back.mtp_style == CT_MTP_PARALLEL);
    free(json);
    c.mtp_style = CT_MTP_SEQUENTIAL;  // sequential modules write the JSON they always did
    json = ct_model_config_json(&c);
    CHECK(json && !strstr(json, "mtp_style"));
    CHECK(ct_model_config_parse_json(json, &back, "test") == 0 && back.mtp_style == CT_MTP_SEQUENTIAL);
    free(json);
    ct_error_clear();
    CHECK(ct_model_config_parse_json("{\"arch\": \"llama\", \"n_layer\": 2, \"n_head\": 4, \"n_kv_head\": 2, "
                                     "\"d_model\": 16, \"d_ff\": 24, \"vocab_size\": 37, \"max_seq_len\": 16, "
                                     "\"mtp_depth\": 1, \"mtp_style\": \"diagonal\"}",
                                     &back, "test") != 0);
    CHECK_CONTAINS(ct_error_message(), "mtp_style");
}

TEST(mtp_parallel, checkpoint_with_two_heads_saves_and_loads) {
    CtModelConfig c = parallel_config(CT_ARCH_GPT2, 2, 2);
    CtModel m, back;
    CHECK(ct_model_create(&m, &c, ct_ops_cpu(), B, T, 0) == 0);
    if (ct_test_failed()) return;
    tiny_randomize_params(&m, 41);
    m.mtp_weight = 0.3f;
    TinyBatch tb;
    plain_batch(&tb, c.vocab_size, 43);
    const float loss = ct_model_forward(&m, &tb.batch), d1 = m.mtp_loss[0], d2 = m.mtp_loss[1];
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    const char *path = ct_test_path("heads.h5");
    CHECK_MSG(ct_checkpoint_save(path, &m, NULL, &meta) == 0, "%s", ct_error_message());
    CtCheckpointMeta read = CT_CHECKPOINT_META_INIT;
    CHECK_MSG(ct_checkpoint_load(path, &back, ct_ops_cpu(), B, T, 0, NULL, &read) == 0, "%s", ct_error_message());
    ct_checkpoint_meta_free(&read);
    if (ct_test_failed()) return;
    CHECK(back.config.mtp_depth == 2 && back.config.mtp_style == CT_MTP_PARALLEL);
    back.mtp_weight = 0.3f;
    CHECK(back.n_params == m.n_params && memcmp(back.params, m.params, m.n_params * sizeof(float)) == 0);
    const float loss2 = ct_model_forward(&back, &tb.batch);
    CHECK(loss2 == loss && back.mtp_loss[0] == d1 && back.mtp_loss[1] == d2);
    ct_model_free(&m);
    ct_model_free(&back);
}
