// LoRA in the model: the adapter op against finite differences in double, step-0 equality with
// the base, the whole model's gradient of every A and B against finite differences, the frozen
// base (no gradient buffer, bit-identical after training), and merging.
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops.h"
#include "optim/adamw.h"
#include "tests/gradcheck.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/model/lora.h"

// ---- the op: an adapter on a column block of a wider output (stride), f64 vs finite differences ----
typedef struct {
    int N, C, R, OC, OS, col0;
    float scale;
    double *h64, *dh64;
    float *h32, *dh32;
} LoraCtx;

static void lora_f64(void *p, double **x, double *out) {
    LoraCtx *c = p;
    memset(out, 0, sizeof(double) * (size_t)c->N * c->OS);
    ct_cpu_lora_forward_f64(out + c->col0, c->h64, x[0], x[1], x[2], c->scale, c->N, c->C, c->R, c->OC, c->OS);
}
static void lora_b64(void *p, double **x, const double *dout, double **dx) {
    LoraCtx *c = p;
    double *tmp = ct_alloc(sizeof(double) * (size_t)c->N * c->OS);
    lora_f64(p, x, tmp);  // h of these inputs
    ct_free(tmp);
    ct_cpu_lora_backward_f64(dx[0], dx[1], dx[2], c->dh64, dout + c->col0, x[0], c->h64, x[1], x[2], c->scale, c->N,
                             c->C, c->R, c->OC, c->OS);
}
static void lora_f32(void *p, float **x, float *out) {
    LoraCtx *c = p;
    memset(out, 0, sizeof(float) * (size_t)c->N * c->OS);
    ct_ops_cpu()->lora_forward(out + c->col0, c->h32, x[0], x[1], x[2], c->scale, c->N, c->C, c->R, c->OC, c->OS);
}
static void lora_b32(void *p, float **x, const float *dout, float **dx) {
    LoraCtx *c = p;
    float *tmp = ct_alloc(sizeof(float) * (size_t)c->N * c->OS);
    lora_f32(p, x, tmp);
    ct_free(tmp);
    ct_ops_cpu()->lora_backward(dx[0], dx[1], dx[2], c->dh32, dout + c->col0, x[0], c->h32, x[1], x[2], c->scale, c->N,
                                c->C, c->R, c->OC, c->OS);
}

TEST(lora, op_gradient_strided_block) {
    CtRng rng;
    ct_rng_seed(&rng, 11);
    LoraCtx c = {.N = 7, .C = 13, .R = 3, .OC = 5, .OS = 12, .col0 = 4, .scale = 2.5f};
    c.h64 = ct_alloc(sizeof(double) * (size_t)c.N * c.R);
    c.dh64 = ct_alloc(sizeof(double) * (size_t)c.N * c.R);
    c.h32 = ct_alloc(sizeof(float) * (size_t)c.N * c.R);
    c.dh32 = ct_alloc(sizeof(float) * (size_t)c.N * c.R);
    GradCase g = {.label = "lora", .n_inputs = 3,
                  .x = {gc_random(&rng, (size_t)c.N * c.C, 1), gc_random(&rng, (size_t)c.R * c.C, 1),
                        gc_random(&rng, (size_t)c.OC * c.R, 1)},
                  .n = {(size_t)c.N * c.C, (size_t)c.R * c.C, (size_t)c.OC * c.R}, .n_out = (size_t)c.N * c.OS,
                  .ctx = &c, .forward64 = lora_f64, .backward64 = lora_b64, .forward32 = lora_f32,
                  .backward32 = lora_b32};
    GradResult r = gradcheck_run(&g, &rng);
    printf("    lora op (x, A, B; block of a strided output): fd %.2g, float %.2g, forward %.2g\n", r.fd_error,
           r.float_error, r.forward_error);
    CHECK(r.fd_error < GC_FD_TOL);
    CHECK(r.float_error < GC_FLOAT_TOL);
    CHECK(r.forward_error < GC_FLOAT_TOL);
    gradcheck_free(&g);
}

// ---- models ----
static CtLoraSpec spec_of(int r, const char *targets) {
    CtLoraSpec s = {.r = r, .alpha = 2.0f * r, .dropout = 0, .rslora = 0};
    snprintf(s.targets, sizeof s.targets, "%s", targets);
    return s;
}

// With dropout: training passes, a fixed mask key.
static CtLoraSpec spec_dropout(int r, const char *targets, float p) {
    CtLoraSpec s = {.r = r, .alpha = 2.0f * r, .dropout = p, .rslora = 0};
    snprintf(s.targets, sizeof s.targets, "%s", targets);
    return s;
}

// A frozen tiny model with random base weights and adapters on `targets`.
static int lora_model_cfg(CtModel *m, CtModelConfig cfg, const char *targets, int recompute, float dropout) {
    if (ct_model_create(m, &cfg, ct_ops_cpu(), 2, 8, CT_MODEL_FROZEN | (recompute ? CT_MODEL_RECOMPUTE : 0)) != 0)
        return -1;
    tiny_randomize_params(m, 42);
    CtLoraSpec s = spec_dropout(4, targets, dropout);
    m->training = dropout > 0;
    m->dropout_seed = 77;
    if (ct_lora_attach(m, &s) != 0) return -1;
    ct_lora_init(m, 7);
    return 0;
}
static int lora_model_p(CtModel *m, CtArch arch, const char *targets, int recompute, float dropout) {
    return lora_model_cfg(m, tiny_config(arch), targets, recompute, dropout);
}
static int lora_model(CtModel *m, CtArch arch, const char *targets, int recompute) {
    return lora_model_p(m, arch, targets, recompute, 0);
}

static void step0_equals_base(CtArch arch) {
    CtModelConfig cfg = tiny_config(arch);
    CtModel base, m;
    CHECK(ct_model_create(&base, &cfg, ct_ops_cpu(), 2, 8, 0) == 0);
    tiny_randomize_params(&base, 42);
    CHECK(lora_model(&m, arch, "all-linear", 0) == 0);
    CHECK(m.grads == NULL && m.g.wte == NULL && m.g.layers[0].qkv_w == NULL);
    CtRng rng;
    ct_rng_seed(&rng, 3);
    TinyBatch tb;
    tiny_batch(&tb, &rng, 2, 8, cfg.vocab_size, 1);
    CtBatch no_targets = tb.batch;
    no_targets.targets = NULL;
    ct_model_forward(&base, &no_targets);
    ct_model_forward(&m, &no_targets);
    size_t n = (size_t)2 * 8 * cfg.vocab_size;
    CHECK_MSG(memcmp(base.act.logits, m.act.logits, n * sizeof(float)) == 0,
              "%s: the LoRA model's logits at step 0 differ from the base's", ct_arch_name(arch));
    // A is not zero (else the gradient of B would be zero and nothing would train)
    double a2 = 0;
    for (size_t i = 0; i < (size_t)4 * m.lora->adapters[0].in; i++) a2 += m.lora->params[i] * m.lora->params[i];
    CHECK(a2 > 0);
    ct_model_free(&base);
    ct_model_free(&m);
}
TEST(lora, step0_logits_equal_base_gpt2) { step0_equals_base(CT_ARCH_GPT2); }
TEST(lora, step0_logits_equal_base_llama) { step0_equals_base(CT_ARCH_LLAMA); }

// Every adapter's A and B: the analytic gradient against finite differences of the float model,
// along the gradient and on the three largest entries (as tests/test_model_grad.c does for the base).
static void check_adapter_gradients_cfg(CtModelConfig cfg, const char *what, const char *targets, int recompute,
                                        float dropout) {
    CtModel m;
    CHECK(lora_model_cfg(&m, cfg, targets, recompute, dropout) == 0);
    CtRng rng;
    ct_rng_seed(&rng, 5);
    for (size_t i = 0; i < m.lora->n_params; i++) m.lora->params[i] = (float)(0.3 * ct_rng_normal(&rng));
    TinyBatch tb;
    tiny_batch(&tb, &rng, 2, 8, m.config.vocab_size, 1);
    ct_model_zero_grad(&m);
    ct_model_forward(&m, &tb.batch);
    ct_model_backward(&m);
    float *grads = ct_alloc(m.n_train * sizeof(float));
    memcpy(grads, m.train_grads, m.n_train * sizeof(float));
    CtNamedTensor *t = ct_alloc(sizeof(CtNamedTensor) * 2 * (size_t)m.lora->n_adapters);
    ct_lora_named_tensors(m.lora, m.lora->params, t);
    const float h = 2e-3f;
    double worst_dir = 0, worst_entry = 0;
    for (int i = 0; i < 2 * m.lora->n_adapters; i++) {
        size_t numel = (size_t)(t[i].shape[0] * t[i].shape[1]);
        float *p = t[i].data, *g = grads + (p - m.lora->params);
        double norm = 0;
        for (size_t j = 0; j < numel; j++) norm += (double)g[j] * g[j];
        norm = sqrt(norm);
        CHECK_MSG(norm > 1e-4, "%s: gradient norm %.3g is too small to check (or wrongly zero)", t[i].name, norm);
        float *u = ct_alloc(numel * sizeof(float));
        for (size_t j = 0; j < numel; j++) u[j] = (float)(g[j] / norm);
        double fd = tiny_directional_fd(&m, &tb.batch, p, u, numel, h);
        double rel = fabs(fd - norm) / norm;
        if (rel > worst_dir) worst_dir = rel;
        CHECK_MSG(rel < 1e-2, "%s: along the gradient: finite differences %.6g, analytic %.6g", t[i].name, fd, norm);
        for (int k = 0; k < 3 && (size_t)k < numel; k++) {
            size_t best = 0;
            for (size_t j = 1; j < numel; j++)
                if (fabsf(g[j]) > fabsf(g[best])) best = j;
            memset(u, 0, numel * sizeof(float));
            u[best] = 1;
            double fd1 = tiny_directional_fd(&m, &tb.batch, p, u, numel, h);
            double err = fabs(fd1 - g[best]) / fmax(fabs(g[best]), 1e-3);
            if (err > worst_entry) worst_entry = err;
            CHECK_MSG(err < 3e-2, "%s[%zu]: finite differences %.6g, analytic %.6g", t[i].name, best, fd1, g[best]);
            g[best] = 0;
        }
        ct_free(u);
    }
    printf("    %s %s%s%s: %d adapters, worst directional error %.2g, worst entry error %.2g\n", what,
           targets, recompute ? " (recompute)" : "", dropout > 0 ? " (dropout 0.3, fixed masks)" : "",
           m.lora->n_adapters, worst_dir, worst_entry);
    ct_free(t);
    ct_free(grads);
    ct_model_free(&m);
}
static void check_adapter_gradients_p(CtArch arch, const char *targets, int recompute, float dropout) {
    check_adapter_gradients_cfg(tiny_config(arch), ct_arch_name(arch), targets, recompute, dropout);
}
static void check_adapter_gradients(CtArch arch, const char *targets, int recompute) {
    check_adapter_gradients_p(arch, targets, recompute, 0);
}
TEST(lora, gradient_check_dropout_gpt2) { check_adapter_gradients_p(CT_ARCH_GPT2, "all-linear", 0, 0.3f); }
TEST(lora, gradient_check_dropout_llama_recompute) { check_adapter_gradients_p(CT_ARCH_LLAMA, "all-linear", 1, 0.3f); }

// The dropout op: about p of the elements dropped, the rest scaled by 1/(1-p); the same key gives
// the same mask (backward), another key another one.
TEST(lora, dropout_op_mask) {
    const size_t n = 200000;
    const float p = 0.25f;
    float *ones = ct_alloc(n * sizeof(float)), *a = ct_alloc(n * sizeof(float)), *b = ct_alloc(n * sizeof(float));
    float *g = ct_calloc(n, sizeof(float));
    for (size_t i = 0; i < n; i++) ones[i] = 1;
    ct_ops_cpu()->dropout_forward(a, ones, n, p, 5);
    ct_ops_cpu()->dropout_forward(b, ones, n, p, 6);
    ct_ops_cpu()->dropout_backward(g, ones, n, p, 5);
    size_t dropped = 0, differ = 0;
    for (size_t i = 0; i < n; i++) {
        dropped += a[i] == 0;
        differ += (a[i] == 0) != (b[i] == 0);
        CHECK(a[i] == 0 || fabsf(a[i] - 1 / (1 - p)) < 1e-6f);
        CHECK(g[i] == a[i]);
    }
    printf("    dropout p=%.2f: dropped %.4f of %zu; masks of two keys differ on %.4f\n", p, (double)dropped / n, n,
           (double)differ / n);
    CHECK(fabs((double)dropped / n - p) < 0.005);
    CHECK(fabs((double)differ / n - 2 * p * (1 - p)) < 0.01);
    ct_free(ones), ct_free(a), ct_free(b), ct_free(g);
}

// Dropout acts in training passes only: evaluation equals the model without dropout.
TEST(lora, dropout_only_in_training_passes) {
    CtModel m, plain;
    CHECK(lora_model_p(&m, CT_ARCH_LLAMA, "all-linear", 0, 0.3f) == 0);
    CHECK(lora_model(&plain, CT_ARCH_LLAMA, "all-linear", 0) == 0);
    CtRng rng;
    ct_rng_seed(&rng, 31);
    for (size_t i = 0; i < m.lora->n_params; i++) m.lora->params[i] = plain.lora->params[i] = (float)(0.2 * ct_rng_normal(&rng));
    TinyBatch tb;
    tiny_batch(&tb, &rng, 2, 8, m.config.vocab_size, 0);
    float train_loss = ct_model_forward(&m, &tb.batch);
    m.training = 0;
    float eval_loss = ct_model_forward(&m, &tb.batch), plain_loss = ct_model_forward(&plain, &tb.batch);
    printf("    loss with dropout (training pass) %.6f, evaluation %.6f, without dropout %.6f\n", train_loss, eval_loss,
           plain_loss);
    CHECK(eval_loss == plain_loss);
    CHECK(fabsf(train_loss - eval_loss) > 1e-4f);
    ct_model_free(&m);
    ct_model_free(&plain);
}
TEST(lora, gradient_check_gpt2_all_linear) { check_adapter_gradients(CT_ARCH_GPT2, "all-linear", 0); }
TEST(lora, gradient_check_gpt2_c_attn_recompute) { check_adapter_gradients(CT_ARCH_GPT2, "c_attn", 1); }
TEST(lora, gradient_check_llama_all_linear) { check_adapter_gradients(CT_ARCH_LLAMA, "all-linear", 0); }
TEST(lora, gradient_check_llama_k_v_down) { check_adapter_gradients(CT_ARCH_LLAMA, "k_proj,v_proj,down_proj", 1); }

// Training steps move the adapters only: the base stays bit-identical, the loss falls.
// Adapters on the llama variants: o_proj's input is n_head·head_dim wide (≠ d_model), q|k|v has
// biases and q/k norms after it, the branches have post-norms.
TEST(lora, gradient_check_qwen3_all_linear) {
    check_adapter_gradients_cfg(tiny_variant_config("qwen3"), "qwen3", "all-linear", 0, 0);
}
TEST(lora, gradient_check_gemma2_all_linear_dropout_recompute) {
    check_adapter_gradients_cfg(tiny_variant_config("gemma2"), "gemma2", "all-linear", 1, 0.3f);
}
TEST(lora, gradient_check_gemma3_qkv_o) {
    check_adapter_gradients_cfg(tiny_variant_config("gemma3"), "gemma3", "q_proj,k_proj,v_proj,o_proj", 0, 0);
}
TEST(lora, gradient_check_qwen2_all_linear) {
    check_adapter_gradients_cfg(tiny_variant_config("qwen2"), "qwen2", "all-linear", 0, 0);
}

static void training_lowers_loss_base_untouched(CtModelConfig cfg, const char *what, const char *targets) {
    CtModel m;
    CHECK(lora_model_cfg(&m, cfg, targets, 0, 0) == 0);
    float *before = ct_alloc(m.n_params * sizeof(float));
    memcpy(before, m.params, m.n_params * sizeof(float));
    CtAdamW opt;
    ct_adamw_init(&opt, m.n_train, 1e-2, 0.9, 0.95, 1e-8, 0.1);
    CHECK_EQ_INT(opt.n, m.lora->n_params);
    CtRng rng;
    ct_rng_seed(&rng, 9);
    TinyBatch tb;
    tiny_batch(&tb, &rng, 2, 8, m.config.vocab_size, 0);
    float first = 0, last = 0;
    for (int s = 0; s < 30; s++) {
        ct_model_zero_grad(&m);
        last = ct_model_forward(&m, &tb.batch);
        if (s == 0) first = last;
        ct_model_backward(&m);
        ct_adamw_step(&opt, m.train_params, m.train_grads);
    }
    printf("    %s: loss %.4f -> %.4f over 30 steps on one batch, adapters only\n", what, first, last);
    CHECK(last < first - 0.1f);
    CHECK_MSG(memcmp(before, m.params, m.n_params * sizeof(float)) == 0, "a base weight changed during LoRA training");
    ct_adamw_free(&opt);
    ct_free(before);
    ct_model_free(&m);
}

TEST(lora, frozen_base_bit_identical_after_training) {
    training_lowers_loss_base_untouched(tiny_config(CT_ARCH_LLAMA), "llama", "q_proj,v_proj,o_proj");
}
TEST(lora, training_qwen3_and_gemma_shapes) {
    training_lowers_loss_base_untouched(tiny_variant_config("qwen3"), "qwen3", "all-linear");
    if (ct_test_failed()) return;
    training_lowers_loss_base_untouched(tiny_variant_config("gemma2"), "gemma2", "q_proj,v_proj,o_proj,down_proj");
    if (ct_test_failed()) return;
    training_lowers_loss_base_untouched(tiny_variant_config("gemma3"), "gemma3", "all-linear");
}

// W + s·B·A gives the adapter model's logits (float32 rounding apart).
static void merge_equals_adapters_cfg(CtModelConfig cfg, const char *what) {
    CtModel m;
    CHECK(lora_model_cfg(&m, cfg, "all-linear", 0, 0) == 0);
    CtRng rng;
    ct_rng_seed(&rng, 21);
    for (size_t i = 0; i < m.lora->n_params; i++) m.lora->params[i] = (float)(0.2 * ct_rng_normal(&rng));
    TinyBatch tb;
    tiny_batch(&tb, &rng, 2, 8, m.config.vocab_size, 0);
    CtBatch b = tb.batch;
    b.targets = NULL;
    const size_t n = (size_t)2 * 8 * m.config.vocab_size;
    ct_model_forward(&m, &b);
    float *with = ct_alloc(n * sizeof(float));
    memcpy(with, m.act.logits, n * sizeof(float));
    ct_model_forward(&m, &b);  // sanity: adapters change the logits relative to the base
    ct_lora_merge(&m);
    CHECK(m.lora == NULL);
    ct_model_forward(&m, &b);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs((double)with[i] - ct_model_logits(&m)[i]));
        scale = fmax(scale, fabs((double)with[i]));
    }
    printf("    %s: merged vs adapters: max |diff| %.3g (logits up to %.3g)\n", what, worst, scale);
    CHECK(worst <= 1e-4 * fmax(scale, 1));
    ct_free(with);
    ct_model_free(&m);
}
static void merge_equals_adapters(CtArch arch) { merge_equals_adapters_cfg(tiny_config(arch), ct_arch_name(arch)); }
TEST(lora, merge_equals_adapter_model_qwen3_gemma2) {
    merge_equals_adapters_cfg(tiny_variant_config("qwen3"), "qwen3");
    if (ct_test_failed()) return;
    merge_equals_adapters_cfg(tiny_variant_config("gemma2"), "gemma2");
}
TEST(lora, merge_equals_adapter_model_gpt2) { merge_equals_adapters(CT_ARCH_GPT2); }
TEST(lora, merge_equals_adapter_model_llama) { merge_equals_adapters(CT_ARCH_LLAMA); }

TEST(lora, unknown_target_is_an_error) {
    CtModelConfig cfg = tiny_config(CT_ARCH_GPT2);
    CtModel m;
    CHECK(ct_model_create(&m, &cfg, ct_ops_cpu(), 1, 4, CT_MODEL_FROZEN) == 0);
    CtLoraSpec s = spec_of(4, "q_proj");
    CHECK(ct_lora_attach(&m, &s) != 0);
    CHECK_CONTAINS(ct_error_message(), "'q_proj' matches no linear layer of this gpt2 model");
    CHECK_CONTAINS(ct_error_message(), "c_attn");
    s = spec_of(4, "c_proj");  // PEFT's suffix rule: attn.c_proj and mlp.c_proj
    CHECK(ct_lora_attach(&m, &s) == 0);
    CHECK_EQ_INT(m.lora->n_adapters, 2 * cfg.n_layer);
    CHECK_STR_EQ(m.lora->adapters[1].module, "transformer.h.0.mlp.c_proj");
    ct_model_free(&m);
}

// Shapes large enough for the op's parallel path (small ones run on one thread): the float op
// against plain loops in double.
TEST(lora, op_parallel_path_matches_plain_loops) {
    const int N = 96, C = 300, R = 8, OC = 200, OS = 260, col0 = 40;
    const float s = 0.75f;
    CtRng rng;
    ct_rng_seed(&rng, 12);
    float *x = ct_alloc(sizeof(float) * N * C), *A = ct_alloc(sizeof(float) * R * C), *B = ct_alloc(sizeof(float) * OC * R);
    float *dy = ct_alloc(sizeof(float) * N * OS), *out = ct_calloc((size_t)N * OS, sizeof(float));
    float *h = ct_alloc(sizeof(float) * N * R), *dh = ct_alloc(sizeof(float) * N * R);
    float *dx = ct_calloc((size_t)N * C, sizeof(float)), *dA = ct_calloc((size_t)R * C, sizeof(float));
    float *dB = ct_calloc((size_t)OC * R, sizeof(float));
    ct_rng_fill_normal(&rng, x, (size_t)N * C, 0, 1);
    ct_rng_fill_normal(&rng, A, (size_t)R * C, 0, 1);
    ct_rng_fill_normal(&rng, B, (size_t)OC * R, 0, 1);
    ct_rng_fill_normal(&rng, dy, (size_t)N * OS, 0, 1);
    ct_ops_cpu()->lora_forward(out + col0, h, x, A, B, s, N, C, R, OC, OS);
    ct_ops_cpu()->lora_backward(dx, dA, dB, dh, dy + col0, x, h, A, B, s, N, C, R, OC, OS);
    double *hd = ct_calloc((size_t)N * R, sizeof(double)), *dhd = ct_calloc((size_t)N * R, sizeof(double));
    double worst = 0;
    for (int n = 0; n < N; n++)
        for (int k = 0; k < R; k++) {
            for (int c = 0; c < C; c++) hd[n * R + k] += (double)x[n * C + c] * A[k * C + c];
            for (int j = 0; j < OC; j++) dhd[n * R + k] += s * (double)dy[n * OS + col0 + j] * B[j * R + k];
        }
    for (int n = 0; n < N; n++)
        for (int j = 0; j < OS; j++) {
            double want = 0;
            if (j >= col0 && j < col0 + OC)
                for (int k = 0; k < R; k++) want += s * hd[n * R + k] * B[(j - col0) * R + k];
            worst = fmax(worst, fabs(out[n * OS + j] - want) / (1 + fabs(want)));
        }
    for (int j = 0; j < OC; j++)
        for (int k = 0; k < R; k++) {
            double want = 0;
            for (int n = 0; n < N; n++) want += s * (double)dy[n * OS + col0 + j] * hd[n * R + k];
            worst = fmax(worst, fabs(dB[j * R + k] - want) / (1 + fabs(want)));
        }
    for (int k = 0; k < R; k++)
        for (int c = 0; c < C; c++) {
            double want = 0;
            for (int n = 0; n < N; n++) want += dhd[n * R + k] * x[n * C + c];
            worst = fmax(worst, fabs(dA[k * C + c] - want) / (1 + fabs(want)));
        }
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            double want = 0;
            for (int k = 0; k < R; k++) want += dhd[n * R + k] * A[k * C + c];
            worst = fmax(worst, fabs(dx[n * C + c] - want) / (1 + fabs(want)));
        }
    printf("    lora op, N=%d C=%d R=%d OC=%d (parallel): worst relative error %.2g\n", N, C, R, OC, worst);
    CHECK(worst < 1e-4);
    ct_free(x), ct_free(A), ct_free(B), ct_free(dy), ct_free(out), ct_free(h), ct_free(dh), ct_free(dx), ct_free(dA);
    ct_free(dB), ct_free(hd), ct_free(dhd);
}
