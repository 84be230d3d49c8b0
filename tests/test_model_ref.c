// Whole model against an independent implementation: PyTorch (autograd), where it is importable.
// The test writes a tiny model of each family (weights, a packed batch with document masks,
// loss mask and weights), ctrain's logits, loss and every gradient, then runs
// tests/ref/check_model.py on them. Without torch the script exits 77 and the test skips.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/device.h"
#include "kernels/ops.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/interop/checkpoint_meta.h"
#include "train/model/rope_scaling.h"

static int write_floats(const char *dir, const char *name, const float *x, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t wrote = fwrite(x, sizeof(float), n, f);
    return fclose(f) == 0 && wrote == n ? 0 : -1;
}

static void json_ints(FILE *f, const char *key, const int32_t *x, int n) {
    fprintf(f, "  \"%s\": [", key);
    for (int i = 0; i < n; i++) fprintf(f, "%s%d", i ? ", " : "", x[i]);
    fprintf(f, "],\n");
}

static void json_floats(FILE *f, const char *key, const float *x, int n) {
    fprintf(f, "  \"%s\": [", key);
    for (int i = 0; i < n; i++) fprintf(f, "%s%.9g", i ? ", " : "", (double)x[i]);
    fprintf(f, "],\n");
}

// The llama variants' fields (ctrain's model_config JSON) and each layer's RoPE table for a pass
// whose largest position is rope_len - 1.
static void json_variants(FILE *f, const CtModelConfig *c, int rope_len) {
    char *json = ct_model_config_json(c);
    fprintf(f, "  \"variants\": %s,\n  \"rope\": [\n", json);
    free(json);
    for (int l = 0; l < c->n_layer; l++) {
        float inv_freq[256], factor;
        ct_model_layer_inv_freq(c, l, rope_len, inv_freq, &factor);
        fprintf(f, "    {\"attention_factor\": %.9g, \"inv_freq\": [", (double)factor);
        for (int i = 0; i < ct_model_head_dim(c) / 2; i++) fprintf(f, "%s%.9g", i ? ", " : "", (double)inv_freq[i]);
        fprintf(f, "]}%s\n", l + 1 < c->n_layer ? "," : "");
    }
    fprintf(f, "  ],\n");
}

// Writes the case into dir, computed with `ops` (the model moved to the GPU for CUDA); 0 on success.
static int export_case(const char *dir, CtModelConfig c, const char *name, const CtOps *ops) {
    CtModel m;
    if (ct_model_create(&m, &c, ct_ops_cpu(), 2, 8, 0) != 0) return -1;
    tiny_randomize_params(&m, 77);
    if (!ops->host_memory) ct_model_to_backend(&m, ops);
    CtRng rng;
    ct_rng_seed(&rng, 78);
    TinyBatch tb;
    tiny_batch(&tb, &rng, 2, 8, c.vocab_size, 1);
    ct_model_zero_grad(&m);
    float loss = ct_model_forward(&m, &tb.batch);
    const int N = tb.B * tb.T;
    float *logits = ct_alloc((size_t)N * c.vocab_size * sizeof(float)), *grads = ct_alloc(m.n_params * sizeof(float));
    memcpy(logits, ct_model_logits(&m), (size_t)N * c.vocab_size * sizeof(float));
    ct_model_backward(&m);
    ops->download(grads, m.dev_grads, m.n_params * sizeof(float));
    ct_model_sync_to_host(&m);
    int bad = write_floats(dir, "logits.bin", logits, (size_t)N * c.vocab_size) != 0 ||
              write_floats(dir, "params.bin", m.params, m.n_params) != 0 || write_floats(dir, "grads.bin", grads, m.n_params) != 0;
    ct_free(logits);
    ct_free(grads);
    if (bad) return -1;
    char path[1024];
    snprintf(path, sizeof path, "%s/case.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "{\n  \"arch\": \"%s\", \"n_layer\": %d, \"n_head\": %d, \"n_kv_head\": %d, \"d_model\": %d, \"d_ff\": %d,\n",
            ct_arch_name(c.arch), c.n_layer, c.n_head, c.n_kv_head, c.d_model, c.d_ff);
    fprintf(f, "  \"vocab_size\": %d, \"max_seq_len\": %d, \"norm_eps\": %.9g, \"rope_theta\": %.9g, \"tie_embeddings\": %s,\n",
            c.vocab_size, c.max_seq_len, (double)c.norm_eps, (double)c.rope_theta, c.tie_embeddings ? "true" : "false");
    fprintf(f, "  \"B\": %d, \"T\": %d, \"loss\": %.9g, \"name\": \"%s\",\n", tb.B, tb.T, (double)loss, name);
    if (c.arch == CT_ARCH_LLAMA) {
        int top = 0;
        for (int i = 0; i < N; i++) top = tb.positions[i] > top ? tb.positions[i] : top;
        json_variants(f, &c, top + 1);
    }
    json_ints(f, "tokens", tb.tokens, N);
    json_ints(f, "targets", tb.targets, N);
    json_ints(f, "doc_ids", tb.doc_ids, N);
    json_ints(f, "positions", tb.positions, N);
    int32_t mask[256];
    for (int i = 0; i < N; i++) mask[i] = tb.mask[i];
    json_ints(f, "loss_mask", mask, N);
    json_floats(f, "loss_weights", tb.weights, N);
    fprintf(f, "  \"tensors\": [\n");
    for (int i = 0; i < m.n_tensors; i++) {
        const CtParamEntry *e = &m.table[i];
        fprintf(f, "    {\"name\": \"%s\", \"shape\": [%lld%s%.0lld], \"offset\": %zu}%s\n", e->name, (long long)e->shape[0],
                e->ndim == 2 ? ", " : "", e->ndim == 2 ? (long long)e->shape[1] : 0LL, e->offset,
                i + 1 < m.n_tensors ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    int rc = fclose(f);
    ct_model_free(&m);
    return rc;
}

static void check_config_against_pytorch(CtModelConfig c, const char *name, const CtOps *ops) {
    const char *root = getenv("CTRAIN_ROOT");
    if (!root) SKIP("CTRAIN_ROOT is not set (run through make test)");
    char dir[1024], cmd[4096], *out = NULL;
    snprintf(dir, sizeof dir, "%s/%s-%s", ct_test_tmpdir(), name, ops->name);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    CHECK(ct_test_run(cmd, NULL) == 0);
    CHECK(export_case(dir, c, name, ops) == 0);
    snprintf(cmd, sizeof cmd, "python3 '%s/tests/ref/check_model.py' '%s'", root, dir);
    int rc = ct_test_run(cmd, &out);
    if (rc == 77) SKIP("%s", out);
    printf("%s", out);
    CHECK_MSG(rc == 0, "tests/ref/check_model.py exited %d", rc);
    free(out);
}

static void check_against_pytorch(CtArch arch, const CtOps *ops) {
    check_config_against_pytorch(tiny_config(arch), ct_arch_name(arch), ops);
}

TEST(ref, pytorch_gpt2_logits_loss_gradients) { check_against_pytorch(CT_ARCH_GPT2, ct_ops_cpu()); }
TEST(ref, pytorch_llama_logits_loss_gradients) { check_against_pytorch(CT_ARCH_LLAMA, ct_ops_cpu()); }

// The llama variants (tests/model_fixture.h): q/k/v biases, q/k norms with head_dim ≠ d_model/n_head,
// windows, Gemma's GeGLU, post-norms, embedding scale, query scale and soft-caps, RoPE tables.
TEST(ref, pytorch_llama_variants_logits_loss_gradients) {
    for (int i = 0; tiny_variant_names[i]; i++) {
        check_config_against_pytorch(tiny_variant_config(tiny_variant_names[i]), tiny_variant_names[i], ct_ops_cpu());
        if (ct_test_failed()) return;
    }
}

// The same step with the model on the GPU (the CUDA suite; skips without a GPU or torch).
static const CtOps *gpu_or_skip(void) {
    const CtOps *ops = ct_ops_select("cuda");
    if (!ops) SKIP("%s", ct_error_message());
    return ops;
}
TEST(cuda, pytorch_gpt2_step_on_the_gpu) { check_against_pytorch(CT_ARCH_GPT2, gpu_or_skip()); }
TEST(cuda, pytorch_llama_step_on_the_gpu) { check_against_pytorch(CT_ARCH_LLAMA, gpu_or_skip()); }
