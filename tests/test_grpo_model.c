// GRPO's loss through a tiny model: its gradient with respect to the per-token log-probabilities
// (train/objectives/grpo_loss.h) reaches the parameters through the cross-entropy backward DPO
// uses (loss weights w = −K·dlogp), and the parameters' gradient matches finite differences.
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "kernels/ops.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/objectives/grpo_advantages.h"
#include "train/objectives/grpo_loss.h"

enum { B = 4, T = 8, N = B * T, PROMPT = 3 };

typedef struct {
    int32_t tokens[N], targets[N];
    uint8_t model_mask[N], mask[N];  // the model's loss mask; GRPO's completion mask (the same tokens)
    double adv[B], old[N], ref[N];
    const double *old_or_null;
    CtGrpoLossConfig c;
} Case;

// Two prompts × G = 2 completions of 2-5 tokens after a 3-token prompt.
static void make_case(Case *k, int V) {
    CtRng rng;
    ct_rng_seed(&rng, 31);
    for (int b = 0; b < B; b++) {
        const int completion = 2 + b;
        for (int t = 0; t < T; t++) {
            const int i = b * T + t;
            k->tokens[i] = (int32_t)ct_rng_below(&rng, (uint32_t)V);
            k->targets[i] = t < PROMPT + completion - 1 ? (int32_t)ct_rng_below(&rng, (uint32_t)V) : -1;
            k->model_mask[i] = k->mask[i] = t >= PROMPT - 1 && t < PROMPT + completion - 1;
        }
    }
    const double rewards[B] = {1, 0, 0.2, 0.9};
    ct_grpo_advantages(k->adv, rewards, 2, 2, CT_SCALE_REWARDS_GROUP);
}

static CtBatch batch_of(const Case *k) {
    CtBatch b = {.tokens = k->tokens, .targets = k->targets, .loss_mask = k->model_mask, .B = B, .T = T};
    return b;
}

static void logp_of(CtModel *m, const Case *k, double *logp) {
    CtBatch b = batch_of(k);
    ct_model_forward(m, &b);
    for (int i = 0; i < N; i++) logp[i] = k->mask[i] ? m->logprobs[i] : 0;
}

static double loss_at(CtModel *m, const Case *k, const double *old) {
    double logp[N];
    logp_of(m, k, logp);
    return ct_grpo_loss(&k->c, NULL, logp, old, k->ref, k->adv, k->mask, B, T, 20, NULL);
}

// The analytic gradient (old_or_null as the loss sees it) against the directional finite
// difference with old held at `fd_old` (for μ = 1: the current log-probs, fixed).
static void check_direction(CtModel *m, const Case *k, const double *fd_old) {
    double logp[N], dlogp[N];
    float w[N];
    ct_model_zero_grad(m);
    logp_of(m, k, logp);
    ct_grpo_loss(&k->c, dlogp, logp, k->old_or_null, k->ref, k->adv, k->mask, B, T, 20, NULL);
    const float K = m->loss_count;
    for (int i = 0; i < N; i++) w[i] = (float)(-(double)K * dlogp[i]);
    ct_model_set_loss_weights(m, w);
    ct_model_backward(m);
    float *u = ct_alloc(m->n_params * sizeof(float)), *theta = ct_alloc(m->n_params * sizeof(float));
    CtRng rng;
    ct_rng_seed(&rng, 5);
    double analytic = 0, norm = 0;
    for (size_t i = 0; i < m->n_params; i++) u[i] = (float)ct_rng_normal(&rng), norm += (double)u[i] * u[i];
    for (size_t i = 0; i < m->n_params; i++) {
        u[i] = (float)(u[i] / sqrt(norm));
        analytic += (double)u[i] * m->grads[i];
    }
    memcpy(theta, m->params, m->n_params * sizeof(float));
    const double h = 1e-2;  // along a unit direction; float log-probabilities limit smaller steps
    for (size_t i = 0; i < m->n_params; i++) m->params[i] = theta[i] + (float)h * u[i];
    double up = loss_at(m, k, fd_old);
    for (size_t i = 0; i < m->n_params; i++) m->params[i] = theta[i] - (float)h * u[i];
    double down = loss_at(m, k, fd_old);
    memcpy(m->params, theta, m->n_params * sizeof(float));
    ct_free(u);
    ct_free(theta);
    double fd = (up - down) / (2 * h);
    CHECK_MSG(analytic != 0, "no gradient reached the parameters");
    CHECK_MSG(fabs(fd - analytic) <= 2e-2 * fabs(analytic) + 1e-6, "loss_type %d beta %g mu %d: analytic %.8g, fd %.8g",
              k->c.loss_type, k->c.beta, k->old_or_null ? 2 : 1, analytic, fd);
}

// A tiny llama with random weights (seed) and the case for its vocabulary.
static void model_and_case(CtModel *m, Case *k, uint64_t seed) {
    CtModelConfig c = tiny_config(CT_ARCH_LLAMA);
    CHECK_EQ_INT(ct_model_create(m, &c, ct_ops_cpu(), B, T, 0), 0);
    tiny_randomize_params(m, seed);
    make_case(k, c.vocab_size);
}

TEST(grpo_model, gradient_through_the_model_matches_finite_differences) {
    CtModel m;
    Case k;
    model_and_case(&m, &k, 2);
    double logp[N];
    logp_of(&m, &k, logp);
    // Old and reference log-probs a fixed distance from the current ones: log-ratios on both sides
    // of the clip range [0.8, 1.28] and inside it, none near its ends (ln 0.8 = −0.22, ln 1.28 = 0.25).
    const double log_ratio[5] = {0.5, 0.1, -0.4, 0.05, -0.1}, gap[3] = {0.3, -0.2, 0.1};
    for (int i = 0; i < N; i++) {
        k.old[i] = logp[i] - log_ratio[i % 5];
        k.ref[i] = logp[i] + gap[i % 3];
    }
    const CtGrpoLossType types[2] = {CT_GRPO_LOSS_GRPO, CT_GRPO_LOSS_DAPO};
    for (int t = 0; t < 2; t++)
        for (int beta_i = 0; beta_i < 2; beta_i++)
            for (int mu = 1; mu <= 2; mu++) {
                CtGrpoLossConfig cfg = {types[t], 0.2, 0.28, beta_i ? 0.04 : 0, 8};
                k.c = cfg;
                k.old_or_null = mu == 2 ? k.old : NULL;
                check_direction(&m, &k, mu == 2 ? k.old : logp);
                if (ct_test_failed()) break;
            }
    ct_model_free(&m);
}

// Log-probabilities at a sampling temperature τ (TRL's logits / τ, the model's logit_temperature):
// they equal log softmax(logits/τ) of the logits a τ = 1 forward gives, and the loss's gradient
// through the scaled logits matches finite differences.
TEST(grpo_model, log_probabilities_at_a_temperature_and_their_gradient) {
    CtModel m;
    Case k;
    model_and_case(&m, &k, 3);
    const int V = m.config.vocab_size;
    const float tau = 0.7f;
    CtBatch b = batch_of(&k);
    ct_model_forward(&m, &b);
    float *logits = ct_alloc(sizeof(float) * N * (size_t)V);
    memcpy(logits, ct_model_logits(&m), sizeof(float) * N * (size_t)V);
    m.logit_temperature = tau;
    ct_model_forward(&m, &b);
    double worst = 0;
    for (int n = 0; n < N; n++) {
        if (!k.model_mask[n]) continue;
        double top = -INFINITY, z = 0;
        for (int v = 0; v < V; v++) top = fmax(top, logits[(size_t)n * V + v] / tau);
        for (int v = 0; v < V; v++) z += exp(logits[(size_t)n * V + v] / tau - top);
        const double want = logits[(size_t)n * V + k.targets[n]] / tau - top - log(z);
        worst = fmax(worst, fabs(m.logprobs[n] - want));
    }
    CHECK_MSG(worst < 1e-5, "log-probabilities at temperature %g differ from log softmax(logits/τ) by %g", tau, worst);
    double logp[N];
    logp_of(&m, &k, logp);
    const CtGrpoLossConfig cfg = {CT_GRPO_LOSS_DAPO, 0.2, 0.28, 0, 8};
    k.c = cfg;
    k.old_or_null = NULL;
    check_direction(&m, &k, logp);
    ct_free(logits);
    ct_model_free(&m);
}
