// DPO through a tiny model: the gradient against finite differences, ln 2 and zero margins at
// the start, and the reference computed on the fly equal to the precomputed one.
#include <math.h>

#include "core/alloc.h"
#include "kernels/ops.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/dpo.h"

// Two pairs (4 rows): a prompt of 3 tokens, completions of 2-4 tokens, loss mask on completions.
static void make_pairs(CtStepBatches *s, int V) {
    CtRng rng;
    ct_rng_seed(&rng, 21);
    const int T = s->T;
    for (int r = 0; r < s->rows; r++) {
        int completion = 2 + r % 3;
        for (int t = 0; t < T; t++) {
            size_t k = (size_t)r * T + t;
            s->tokens[k] = (int32_t)ct_rng_below(&rng, (uint32_t)V);
            s->targets[k] = t < 3 + completion - 1 ? (int32_t)ct_rng_below(&rng, (uint32_t)V) : -1;
            s->loss_mask[k] = t >= 2 && t < 3 + completion - 1;  // targets that are completion tokens
            s->positions[k] = t;
            s->doc_ids[k] = 0;
        }
        s->example_ids[r] = r / 2;
    }
}

static double dpo_loss(CtDpo *d, CtModel *m, CtStepBatches *s, int backward) {
    CtDpoStats st;
    memset(&st, 0, sizeof st);
    if (backward) ct_model_zero_grad(m);
    ct_dpo_micro_step(d, m, s, 0, s->rows / 2, CT_SPLIT_TRAIN, backward, &st);
    return st.loss;
}

TEST(dpo, starts_at_ln2_with_zero_margins) {
    CtModelConfig c = tiny_config(CT_ARCH_GPT2);
    CtModel m;
    CHECK_EQ_INT(ct_model_create(&m, &c, ct_ops_cpu(), 4, 8, 0), 0);
    tiny_randomize_params(&m, 1);
    CtStepBatches s;
    ct_step_batches_init(&s, 1, 4, 8);
    make_pairs(&s, c.vocab_size);
    CtDpo d;
    CHECK_EQ_INT(ct_dpo_init(&d, CT_DPO_SIGMOID, 0.1, 0, &m, NULL, 4, 8), 0);
    CtDpoStats st;
    memset(&st, 0, sizeof st);
    ct_dpo_micro_step(&d, &m, &s, 0, 2, CT_SPLIT_TRAIN, 0, &st);
    ct_dpo_stats_finish(&st);
    CHECK_NEAR(st.loss, log(2.0), 1e-12);
    CHECK(st.reward_chosen == 0 && st.reward_rejected == 0);
    ct_dpo_free(&d);
    ct_step_batches_free(&s);
    ct_model_free(&m);
}

static void gradient_check(CtDpoLoss type) {
    CtModelConfig c = tiny_config(CT_ARCH_LLAMA);
    CtModel m;
    CHECK_EQ_INT(ct_model_create(&m, &c, ct_ops_cpu(), 4, 8, 0), 0);
    tiny_randomize_params(&m, 2);
    CtStepBatches s;
    ct_step_batches_init(&s, 1, 4, 8);
    make_pairs(&s, c.vocab_size);
    CtDpo d;
    CHECK_EQ_INT(ct_dpo_init(&d, type, 0.5, 0.1, &m, NULL, 4, 8), 0);
    tiny_randomize_params(&m, 3);  // the policy moves away from the reference
    dpo_loss(&d, &m, &s, 1);
    // Directional derivative along a random direction u: analytic g·u against (L(θ+hu) − L(θ−hu)) / 2h.
    float *u = ct_alloc(m.n_params * sizeof(float)), *theta = ct_alloc(m.n_params * sizeof(float));
    CtRng rng;
    ct_rng_seed(&rng, 5);
    double analytic = 0, norm = 0;
    for (size_t i = 0; i < m.n_params; i++) {
        u[i] = (float)ct_rng_normal(&rng);
        norm += (double)u[i] * u[i];
    }
    for (size_t i = 0; i < m.n_params; i++) {  // a unit direction: the step stays small
        u[i] = (float)(u[i] / sqrt(norm));
        analytic += (double)u[i] * m.grads[i];
    }
    memcpy(theta, m.params, m.n_params * sizeof(float));
    const double h = 1e-2;  // along a unit direction; float log-probabilities limit smaller steps
    for (size_t i = 0; i < m.n_params; i++) m.params[i] = theta[i] + (float)h * u[i];
    double up = dpo_loss(&d, &m, &s, 0);
    for (size_t i = 0; i < m.n_params; i++) m.params[i] = theta[i] - (float)h * u[i];
    double down = dpo_loss(&d, &m, &s, 0);
    double fd = (up - down) / (2 * h);
    CHECK_MSG(fabs(fd - analytic) <= 2e-2 * fabs(analytic) + 1e-6, "loss %d: analytic %.8g, finite difference %.8g", type,
              analytic, fd);
    ct_free(u);
    ct_free(theta);
    ct_dpo_free(&d);
    ct_step_batches_free(&s);
    ct_model_free(&m);
}

TEST(dpo, gradient_through_the_model_matches_finite_differences) {
    gradient_check(CT_DPO_SIGMOID);
    if (ct_test_failed()) return;
    gradient_check(CT_DPO_IPO);
    if (ct_test_failed()) return;
    gradient_check(CT_DPO_ROBUST);
}
