// The reward model's scalar head (model.reward_head): where it sits in the parameter table, what
// it reads, and the whole model's gradient of TRL's pair loss against finite differences.
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "kernels/ops.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/objectives/reward_loss.h"

enum { PAIRS = 2, ROWS = 2 * PAIRS, T = 8 };
static const int last_token[ROWS] = {7, 4, 2, 6};  // row 2p chosen, 2p+1 rejected of pair p
static const double margins[PAIRS] = {0.25, -0.5}, center = 0.05;

static CtModelConfig reward_config(CtModelConfig c) {
    c.reward_head = 1;
    return c;
}

// TRL's loss over the pairs: the mean of ℓ(r_c, r_r); with d_scores, ∂loss/∂score per row.
static double pair_loss(CtModel *m, const CtBatch *b, float *d_scores) {
    float s[ROWS];
    ct_model_reward_forward(m, b, last_token, s);
    double loss = 0;
    for (int p = 0; p < PAIRS; p++) {
        CtRewardValue v = ct_reward_loss(s[2 * p], s[2 * p + 1], margins[p], center);
        loss += v.loss / PAIRS;
        if (d_scores) d_scores[2 * p] = (float)(v.d_chosen / PAIRS), d_scores[2 * p + 1] = (float)(v.d_rejected / PAIRS);
    }
    return loss;
}

static double directional_fd(CtModel *m, const CtBatch *b, float *p, const float *u, size_t n, float h) {
    float *keep = ct_alloc(n * sizeof(float));
    memcpy(keep, p, n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = keep[i] + h * u[i];
    double lp = pair_loss(m, b, NULL);
    for (size_t i = 0; i < n; i++) p[i] = keep[i] - h * u[i];
    double lm = pair_loss(m, b, NULL);
    memcpy(p, keep, n * sizeof(float));
    ct_free(keep);
    return (lp - lm) / (2.0 * h);
}

// As tests/test_model_grad.c: per tensor the derivative along the gradient and the largest entries
// alone. The LM head takes no part in a reward model's loss: its gradient must be exactly 0.
static void check_reward_gradients_with(CtModelConfig cfg, const char *what, int recompute, float dropout) {
    cfg.dropout = dropout;
    CtModel m;
    CHECK(ct_model_create(&m, &cfg, ct_ops_cpu(), ROWS, T, recompute) == 0);
    tiny_randomize_params(&m, 42);
    ct_model_set_dropout(&m, 1, 1234);  // every forward below draws the same masks
    CtRng rng;
    ct_rng_seed(&rng, 3);
    TinyBatch tb;
    tiny_batch(&tb, &rng, ROWS, T, cfg.vocab_size, 0);
    tb.batch.targets = NULL;  // a reward forward reads none
    float d_scores[ROWS];
    ct_model_zero_grad(&m);
    pair_loss(&m, &tb.batch, d_scores);
    ct_model_reward_backward(&m, last_token, d_scores);
    float *grads = ct_alloc(m.n_params * sizeof(float));
    memcpy(grads, m.grads, m.n_params * sizeof(float));
    // smaller than the LM check's 1e-2: a loss of four scores through gemma2's soft-caps bends within 1e-2
    const float h = 1e-3f;
    double worst_dir = 0, worst_entry = 0;
    int checked = 0;
    for (int i = 0; i < m.n_tensors; i++) {
        const CtParamEntry *e = &m.table[i];
        float *p = m.params + e->offset, *g = grads + e->offset;
        double norm = 0;
        for (size_t j = 0; j < e->numel; j++) norm += (double)g[j] * g[j];
        norm = sqrt(norm);
        if (strcmp(e->name, "lm_head.weight") == 0) {
            CHECK_MSG(norm == 0, "lm_head.weight: gradient norm %.3g, want 0 (the reward loss never reads it)", norm);
            continue;
        }
        CHECK_MSG(norm > 1e-4, "%s: gradient norm %.3g is too small to check (or wrongly zero)", e->name, norm);
        float *u = ct_alloc(e->numel * sizeof(float));
        for (size_t j = 0; j < e->numel; j++) u[j] = (float)(g[j] / norm);
        double fd = directional_fd(&m, &tb.batch, p, u, e->numel, h), rel = fabs(fd - norm) / norm;
        worst_dir = fmax(worst_dir, rel);
        CHECK_MSG(rel < 1e-2, "%s: along the gradient: finite differences %.6g, analytic %.6g (rel %.3g)", e->name, fd,
                  norm, rel);
        for (int k = 0; k < 3 && (size_t)k < e->numel; k++) {
            size_t best = 0;
            for (size_t j = 1; j < e->numel; j++)
                if (fabsf(g[j]) > fabsf(g[best])) best = j;
            memset(u, 0, e->numel * sizeof(float));
            u[best] = 1;
            double fd1 = directional_fd(&m, &tb.batch, p, u, e->numel, h);
            double err = fabs(fd1 - g[best]) / fmax(fabs(g[best]), 1e-3);
            worst_entry = fmax(worst_entry, err);
            CHECK_MSG(err < 3e-2, "%s[%zu]: finite differences %.6g, analytic %.6g", e->name, best, fd1, g[best]);
            g[best] = 0;
        }
        ct_free(u);
        checked++;
    }
    printf("    %s reward model%s%s: worst directional error %.2g, worst entry error %.2g over %d tensors\n", what,
           recompute ? " (recompute)" : "", dropout > 0 ? " (dropout)" : "", worst_dir, worst_entry, checked);
    ct_free(grads);
    ct_model_free(&m);
}
static void check_reward_gradients(CtModelConfig cfg, const char *what) { check_reward_gradients_with(cfg, what, 0, 0); }

TEST(reward_model, gradient_check_gpt2) { check_reward_gradients(reward_config(tiny_config(CT_ARCH_GPT2)), "gpt2"); }
TEST(reward_model, gradient_check_llama_untied_head) {
    CtModelConfig c = reward_config(tiny_config(CT_ARCH_LLAMA));
    c.tie_embeddings = 0;
    check_reward_gradients(c, "llama");
}
TEST(reward_model, gradient_check_gemma2) { check_reward_gradients(reward_config(tiny_variant_config("gemma2")), "gemma2"); }
TEST(reward_model, gradient_check_llama_dropout_recompute) {
    check_reward_gradients_with(reward_config(tiny_config(CT_ARCH_LLAMA)), "llama", 1, 0.3f);
}
// Mixture of Experts (4 experts, top 2, a gated shared expert): the pair loss's gradient through the
// routed experts and the router (no router losses: their coefficients stay 0).
TEST(reward_model, gradient_check_moe) {
    CtModelConfig c = reward_config(tiny_config(CT_ARCH_LLAMA));
    c.n_experts = 4;
    c.top_k = 2;
    c.moe_d_ff = 8;
    c.n_shared_experts = 1;
    c.shared_expert_gate = 1;
    check_reward_gradients(c, "moe");
}

TEST(reward_model, score_head_is_the_last_tensor_named_as_transformers_does) {
    CtModelConfig lm = tiny_config(CT_ARCH_LLAMA), rm = reward_config(lm);
    CtModel a, b;
    CHECK(ct_model_create(&a, &lm, ct_ops_cpu(), 1, 4, 0) == 0);
    CHECK(ct_model_create(&b, &rm, ct_ops_cpu(), 1, 4, 0) == 0);
    CHECK(b.n_tensors == a.n_tensors + 1);
    const CtParamEntry *e = &b.table[b.n_tensors - 1];
    CHECK(strcmp(e->name, "score.weight") == 0 && e->ndim == 2 && e->shape[0] == 1 && e->shape[1] == lm.d_model);
    CHECK(b.n_params == a.n_params + (size_t)lm.d_model);
    CHECK(a.w.score == NULL && b.w.score == b.params + e->offset);
    ct_model_free(&a);
    ct_model_free(&b);
}

// score = lnf[last] · score.weight, the final norm's output at the row's last token; the tokens
// after it (padding) do not change it (causal attention).
TEST(reward_model, score_is_the_final_norm_at_the_last_token_dotted_with_the_head) {
    CtModelConfig cfg = reward_config(tiny_config(CT_ARCH_GPT2));
    CtModel m;
    CHECK(ct_model_create(&m, &cfg, ct_ops_cpu(), ROWS, T, 0) == 0);
    tiny_randomize_params(&m, 7);
    CtRng rng;
    ct_rng_seed(&rng, 5);
    TinyBatch tb;
    tiny_batch(&tb, &rng, ROWS, T, cfg.vocab_size, 0);
    tb.batch.targets = NULL;
    float s[ROWS], again[ROWS];
    ct_model_reward_forward(&m, &tb.batch, last_token, s);
    const int C = cfg.d_model;
    for (int r = 0; r < ROWS; r++) {
        const float *x = (const float *)m.act.lnf + ((size_t)r * T + last_token[r]) * C;
        double want = 0;
        for (int c = 0; c < C; c++) want += (double)x[c] * m.w.score[c];
        CHECK_NEAR(s[r], want, 1e-5);
        for (int t = last_token[r] + 1; t < T; t++) tb.tokens[r * T + t] = (tb.tokens[r * T + t] + 1) % cfg.vocab_size;
    }
    ct_model_reward_forward(&m, &tb.batch, last_token, again);
    for (int r = 0; r < ROWS; r++) CHECK_NEAR(again[r], s[r], 0);
    ct_model_free(&m);
}

// A reward step runs score ([1, C]) instead of the LM head ([V, C]): 6 FLOPs a weight a token fewer.
TEST(reward_model, training_flops_count_the_score_head_not_the_lm_head) {
    CtModelConfig lm = tiny_config(CT_ARCH_LLAMA), rm = reward_config(lm);
    const double diff = ct_model_flops_per_token(&lm, 8, 0) - ct_model_flops_per_token(&rm, 8, 0);
    CHECK_NEAR(diff, 6.0 * ((double)lm.vocab_size * lm.d_model - lm.d_model), 1e-6);
}
