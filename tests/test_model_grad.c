// Whole-model gradient check: for both families, the analytic gradient of the loss with respect
// to every parameter tensor (from ct_model_forward_train, as training runs it) against central
// finite differences of the float model; and that gradient against ct_model_forward's.
//
// The model runs in float, so differences of the loss carry ~1e-6 of rounding noise. The check
// therefore looks where the signal is: per tensor, (1) the derivative along the gradient's own
// direction (its norm, the largest directional derivative there is), and (2) the three entries
// with the largest gradient, each on its own (which catches a gradient landing in the wrong
// place). Parameters are drawn larger than at initialisation so gradients are well above noise.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "kernels/ops.h"
#include "tests/model_fixture.h"
#include "tests/test.h"

// The loss backward differentiates: the main loss, plus λ/D·Σ_k L_k with multi-token prediction.
static double loss_at(CtModel *m, const CtBatch *b) {
    double loss = ct_model_forward(m, b);
    for (int k = 0; k < m->config.mtp_depth; k++) loss += (double)m->mtp_weight / m->config.mtp_depth * m->mtp_loss[k];
    return loss;
}

// d loss / d t along direction u (unit) by central differences, step h.
static double directional_fd(CtModel *m, const CtBatch *b, float *p, const float *u, size_t n, float h) {
    float *keep = ct_alloc(n * sizeof(float));
    memcpy(keep, p, n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = keep[i] + h * u[i];
    double lp = loss_at(m, b);
    for (size_t i = 0; i < n; i++) p[i] = keep[i] - h * u[i];
    double lm = loss_at(m, b);
    memcpy(p, keep, n * sizeof(float));
    ct_free(keep);
    return (lp - lm) / (2.0 * h);
}

static void check_config_gradients(CtModelConfig cfg, const char *what, int packed, int recompute, float dropout) {
    cfg.dropout = dropout;
    CtModel m;
    CHECK(ct_model_create(&m, &cfg, ct_ops_cpu(), 2, 8, recompute) == 0);
    tiny_randomize_params(&m, 42);
    m.mtp_weight = cfg.mtp_depth ? 0.7f : 0.0f;  // above DeepSeek-V3's 0.3: the modules' gradients well above noise
    ct_model_set_dropout(&m, 1, 1234);  // every forward below draws the same masks
    CtRng rng;
    ct_rng_seed(&rng, 3);
    TinyBatch tb;
    tiny_batch(&tb, &rng, 2, 8, cfg.vocab_size, packed);
    ct_model_zero_grad(&m);
    ct_model_forward_train(&m, &tb.batch);  // as a training step runs it: the head's gradient fused in
    CHECK(m.head_grad == CT_HEAD_GRAD_WRITTEN);
    ct_model_backward(&m);
    float *grads = ct_alloc(m.n_params * sizeof(float));
    memcpy(grads, m.grads, m.n_params * sizeof(float));

    // With multi-token prediction the embedding rows also pass through the modules' enorm, whose
    // curvature makes 1e-2 steps err by ~3% on embed_tokens under dropout (truncation: the error
    // falls ~h², to 0.3% at 3e-3); the smaller step is still far above float noise.
    const float h = cfg.mtp_depth ? 3e-3f : 1e-2f;
    double worst_dir = 0, worst_entry = 0;
    for (int i = 0; i < m.n_tensors; i++) {
        const CtParamEntry *e = &m.table[i];
        float *p = m.params + e->offset, *g = grads + e->offset;
        double norm = 0;
        for (size_t j = 0; j < e->numel; j++) norm += (double)g[j] * g[j];
        norm = sqrt(norm);
        CHECK_MSG(norm > 1e-4, "%s: gradient norm %.3g is too small to check (or wrongly zero)", e->name, norm);
        float *u = ct_alloc(e->numel * sizeof(float));
        for (size_t j = 0; j < e->numel; j++) u[j] = (float)(g[j] / norm);
        double fd = directional_fd(&m, &tb.batch, p, u, e->numel, h);
        double rel = fabs(fd - norm) / norm;
        if (rel > worst_dir) worst_dir = rel;
        CHECK_MSG(rel < 1e-2, "%s: along the gradient: finite differences %.6g, analytic %.6g (rel %.3g)", e->name, fd,
                  norm, rel);
        // the three largest entries, each alone
        for (int k = 0; k < 3 && (size_t)k < e->numel; k++) {
            size_t best = 0;
            for (size_t j = 1; j < e->numel; j++)
                if (fabsf(g[j]) > fabsf(g[best])) best = j;
            memset(u, 0, e->numel * sizeof(float));
            u[best] = 1;
            double fd1 = directional_fd(&m, &tb.batch, p, u, e->numel, h);
            double err = fabs(fd1 - g[best]) / fmax(fabs(g[best]), 1e-3);
            if (err > worst_entry) worst_entry = err;
            CHECK_MSG(err < 3e-2, "%s[%zu]: finite differences %.6g, analytic %.6g", e->name, best, fd1, g[best]);
            g[best] = 0;  // grads is our copy: the next search finds the next largest
        }
        ct_free(u);
    }
    printf("    %s%s%s%s%s: worst directional error %.2g, worst entry error %.2g over %d tensors\n", what,
           cfg.mtp_depth ? " (multi-token prediction)" : "", packed ? " (packed documents, masks, weights)" : "", recompute ? " (recompute)" : "", dropout > 0 ? " (dropout)" : "", worst_dir,
           worst_entry, m.n_tensors);
    ct_free(grads);
    ct_model_free(&m);
}

static void check_model_gradients(CtArch arch, int packed, int recompute, float dropout) {
    check_config_gradients(tiny_config(arch), ct_arch_name(arch), packed, recompute, dropout);
}

TEST(model, gradient_check_gpt2) { check_model_gradients(CT_ARCH_GPT2, 0, 0, 0); }
TEST(model, gradient_check_gpt2_masked) { check_model_gradients(CT_ARCH_GPT2, 1, 0, 0); }
TEST(model, gradient_check_llama_gqa) { check_model_gradients(CT_ARCH_LLAMA, 0, 0, 0); }
TEST(model, gradient_check_llama_packed_documents) { check_model_gradients(CT_ARCH_LLAMA, 1, 0, 0); }
TEST(model, gradient_check_gpt2_dropout) { check_model_gradients(CT_ARCH_GPT2, 1, 0, 0.3f); }
TEST(model, gradient_check_llama_dropout_recompute) { check_model_gradients(CT_ARCH_LLAMA, 1, 1, 0.3f); }

// The llama variants (tests/model_fixture.h's tiny_variant_config), each over packed documents.
static void check_variant(const char *name, int recompute, float dropout) {
    check_config_gradients(tiny_variant_config(name), name, 1, recompute, dropout);
}
TEST(model, gradient_check_qwen2_qkv_bias) { check_variant("qwen2", 0, 0); }
TEST(model, gradient_check_qwen3_qk_norm_head_dim) { check_variant("qwen3", 0, 0); }
TEST(model, gradient_check_olmoe_qk_norm_over_projections) { check_variant("olmoe_qk", 0, 0); }
TEST(model, gradient_check_mistral_sliding_window) { check_variant("mistral", 0, 0); }
TEST(model, gradient_check_gemma2) { check_variant("gemma2", 0, 0); }
TEST(model, gradient_check_gemma2_dropout_recompute) { check_variant("gemma2", 1, 0.3f); }
TEST(model, gradient_check_gemma3) { check_variant("gemma3", 0, 0); }
TEST(model, gradient_check_gemma3_dropout_recompute) { check_variant("gemma3", 1, 0.3f); }
TEST(model, gradient_check_rope_yarn) { check_variant("yarn", 0, 0); }
TEST(model, gradient_check_rope_llama3) { check_variant("llama3", 0, 0); }
TEST(model, gradient_check_rope_dynamic) { check_variant("dynamic", 0, 0); }

// Multi-token prediction (DeepSeek-V3): the loss main + λ/D·Σ_k L_k, the modules' own tensors, their
// blocks and the shared embedding and head, at depths 1 and 2.
static void check_mtp(CtArch arch, int depth, int packed, float dropout) {
    CtModelConfig cfg = tiny_config(arch);
    cfg.mtp_depth = depth;
    check_config_gradients(cfg, ct_arch_name(arch), packed, 0, dropout);
}
// With recompute the main blocks refill one shared slice; the modules keep their own activations.
TEST(model, gradient_check_llama_mtp_depth2_recompute) {
    CtModelConfig cfg = tiny_config(CT_ARCH_LLAMA);
    cfg.mtp_depth = 2;
    check_config_gradients(cfg, "llama", 1, 1, 0.3f);
}
TEST(model, gradient_check_llama_mtp_depth1) { check_mtp(CT_ARCH_LLAMA, 1, 0, 0); }
TEST(model, gradient_check_llama_mtp_depth2) { check_mtp(CT_ARCH_LLAMA, 2, 0, 0); }
TEST(model, gradient_check_llama_mtp_depth2_packed_documents) { check_mtp(CT_ARCH_LLAMA, 2, 1, 0); }
TEST(model, gradient_check_llama_mtp_depth2_dropout) { check_mtp(CT_ARCH_LLAMA, 2, 1, 0.3f); }
TEST(model, gradient_check_gpt2_mtp_depth1) { check_mtp(CT_ARCH_GPT2, 1, 0, 0); }
TEST(model, gradient_check_gpt2_mtp_depth2_masked) { check_mtp(CT_ARCH_GPT2, 2, 1, 0); }
TEST(model, gradient_check_gemma2_mtp_depth2) {  // soft-capped logits, tied head, post-norms
    CtModelConfig cfg = tiny_variant_config("gemma2");
    cfg.mtp_depth = 2;
    check_config_gradients(cfg, "gemma2", 1, 0, 0);
}

// Parallel heads (Gloeckle et al. 2024, model.mtp_style parallel): D blocks beside the last one,
// all reading its input; the trunk's gradient is the last block's plus every head's. With one
// layer the trunk state is the embedding output itself.
static void check_parallel(CtModelConfig cfg, const char *what, int depth, int packed, int recompute, float dropout) {
    cfg.mtp_depth = depth;
    cfg.mtp_style = CT_MTP_PARALLEL;
    char name[64];
    snprintf(name, sizeof name, "%s, parallel heads", what);
    check_config_gradients(cfg, name, packed, recompute, dropout);
}
TEST(model, gradient_check_llama_mtp_parallel_depth1) {
    check_parallel(tiny_config(CT_ARCH_LLAMA), "llama", 1, 0, 0, 0);
}
TEST(model, gradient_check_llama_mtp_parallel_depth2) {
    check_parallel(tiny_config(CT_ARCH_LLAMA), "llama", 2, 0, 0, 0);
}
TEST(model, gradient_check_llama_mtp_parallel_depth2_packed_documents) {
    check_parallel(tiny_config(CT_ARCH_LLAMA), "llama", 2, 1, 0, 0);
}
TEST(model, gradient_check_llama_mtp_parallel_depth2_dropout_recompute) {
    check_parallel(tiny_config(CT_ARCH_LLAMA), "llama", 2, 1, 1, 0.3f);
}
TEST(model, gradient_check_llama_mtp_parallel_one_layer) {  // the heads read the embedding output
    CtModelConfig cfg = tiny_config(CT_ARCH_LLAMA);
    cfg.n_layer = 1;
    check_parallel(cfg, "llama, one layer", 2, 1, 0, 0);
}
TEST(model, gradient_check_gpt2_mtp_parallel_depth1) { check_parallel(tiny_config(CT_ARCH_GPT2), "gpt2", 1, 0, 0, 0); }
TEST(model, gradient_check_gpt2_mtp_parallel_depth2_masked) {
    check_parallel(tiny_config(CT_ARCH_GPT2), "gpt2", 2, 1, 0, 0);
}
TEST(model, gradient_check_gpt2_mtp_parallel_one_layer_dropout) {  // learned positions under the heads' gradient
    CtModelConfig cfg = tiny_config(CT_ARCH_GPT2);
    cfg.n_layer = 1;
    check_parallel(cfg, "gpt2, one layer", 2, 1, 0, 0.3f);
}
TEST(model, gradient_check_gemma2_mtp_parallel_depth2) {  // soft-capped logits, tied head, post-norms
    check_parallel(tiny_variant_config("gemma2"), "gemma2", 2, 1, 0, 0);
}

// ct_model_forward_train (the cross-entropy's gradient written in its forward pass) and
// ct_model_forward then backward: the same loss, per-token values and gradients up to float
// rounding, with masks and weights, a soft cap, multi-token prediction and a logit temperature;
// a batch where no token counts fuses nothing (backward adds nothing).
static void check_fused_head(CtModelConfig cfg, const char *what, float temperature, int none_counts) {
    CtModel m;
    CHECK(ct_model_create(&m, &cfg, ct_ops_cpu(), 2, 8, 0) == 0);
    tiny_randomize_params(&m, 42);
    m.mtp_weight = cfg.mtp_depth ? 0.7f : 0.0f;
    m.logit_temperature = temperature;
    CtRng rng;
    ct_rng_seed(&rng, 5);
    TinyBatch tb;
    tiny_batch(&tb, &rng, 2, 8, cfg.vocab_size, 1);
    if (none_counts) memset(tb.mask, 0, sizeof tb.mask);
    const size_t N = 16;
    float *grads[2], losses[2][16], loss[2];
    for (int fused = 0; fused < 2; fused++) {
        ct_model_zero_grad(&m);
        loss[fused] = fused ? ct_model_forward_train(&m, &tb.batch) : ct_model_forward(&m, &tb.batch);
        CHECK_MSG(m.head_grad == (fused && !none_counts ? CT_HEAD_GRAD_WRITTEN : CT_HEAD_GRAD_NONE), "%s", what);
        memcpy(losses[fused], m.losses, N * sizeof(float));
        ct_model_backward(&m);
        grads[fused] = ct_alloc(m.n_params * sizeof(float));
        memcpy(grads[fused], m.grads, m.n_params * sizeof(float));
    }
    CHECK_MSG(loss[0] == loss[1] && !memcmp(losses[0], losses[1], sizeof losses[0]), "%s: losses differ", what);
    double worst = 0, largest = 0;
    for (size_t i = 0; i < m.n_params; i++) {
        worst = fmax(worst, fabs((double)grads[1][i] - grads[0][i]));
        largest = fmax(largest, fabs((double)grads[0][i]));
    }
    CHECK_MSG(none_counts ? largest == 0 && worst == 0 : worst <= 1e-5 * largest,
              "%s: gradients differ by %.3g (largest %.3g)", what, worst, largest);
    ct_free(grads[0]);
    ct_free(grads[1]);
    ct_model_free(&m);
}

TEST(model, forward_train_gives_the_gradients_of_forward_then_backward) {
    check_fused_head(tiny_config(CT_ARCH_LLAMA), "llama", 0, 0);
    check_fused_head(tiny_config(CT_ARCH_GPT2), "gpt2, temperature 0.7", 0.7f, 0);
    check_fused_head(tiny_variant_config("gemma2"), "gemma2 (soft-capped logits)", 0, 0);
    CtModelConfig mtp = tiny_config(CT_ARCH_LLAMA);
    mtp.mtp_depth = 2;
    check_fused_head(mtp, "llama, multi-token prediction", 0, 0);
    check_fused_head(tiny_config(CT_ARCH_LLAMA), "llama, no token counted", 0, 1);
}
