// Generation: the key/value cache gives the logits a full forward pass gives, and sampling
// behaves (greedy is deterministic; top-k and top-p keep what they promise).
#include <math.h>

#include "core/alloc.h"
#include "kernels/ops.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/generate.h"

static void kv_cache_matches_full_forward(CtArch arch) {
    CtModelConfig c = tiny_config(arch);
    const int T = 12;
    CtModel m;
    CHECK_EQ_INT(ct_model_create(&m, &c, ct_ops_cpu(), 1, T, 0), 0);
    tiny_randomize_params(&m, 5);
    int32_t tokens[12];
    CtRng rng;
    ct_rng_seed(&rng, 3);
    for (int t = 0; t < T; t++) tokens[t] = (int32_t)ct_rng_below(&rng, (uint32_t)c.vocab_size);
    CtBatch batch = {.tokens = tokens, .B = 1, .T = T};
    ct_model_forward(&m, &batch);  // no targets: logits stay in m.act.logits
    const float *forward_logits = ct_model_logits(&m);
    CtGenerator g;
    ct_generator_init(&g, &m, T);
    double worst = 0;
    for (int t = 0; t < T; t++) {
        const float *logits = ct_generator_feed(&g, tokens[t]);
        const float *full = forward_logits + (size_t)t * c.vocab_size;
        double scale = 0;  // errors relative to the row's largest logit (near-zero logits make ratios meaningless)
        for (int v = 0; v < c.vocab_size; v++) scale = fmax(scale, fabs(full[v]));
        for (int v = 0; v < c.vocab_size; v++) {
            double err = fabs(logits[v] - full[v]) / scale;
            if (err > worst) worst = err;
        }
    }
    CHECK_MSG(worst < 1e-4, "%s: cached logits differ from the full forward by %g (relative to the largest)", ct_arch_name(arch), worst);
    ct_generator_reset(&g);
    CHECK_EQ_INT(g.n_ctx, 0);
    const float *again = ct_generator_feed(&g, tokens[0]);
    CHECK_NEAR(again[0], forward_logits[0], 1e-4 * (1 + fabs(forward_logits[0])));
    ct_generator_free(&g);
    ct_model_free(&m);
}

TEST(generate, kv_cache_equals_full_recomputation_gpt2) { kv_cache_matches_full_forward(CT_ARCH_GPT2); }
TEST(generate, kv_cache_equals_full_recomputation_llama) { kv_cache_matches_full_forward(CT_ARCH_LLAMA); }

TEST(generate, greedy_is_argmax_and_deterministic) {
    float logits[5] = {0.1f, 2.0f, -1.0f, 1.9f, 0.0f};
    CtSampling greedy = {0, 0, 1};
    CtRng a, b;
    ct_rng_seed(&a, 1);
    ct_rng_seed(&b, 2);
    for (int i = 0; i < 10; i++) {
        CHECK_EQ_INT(ct_sample(logits, 5, &greedy, &a), 1);
        CHECK_EQ_INT(ct_sample(logits, 5, &greedy, &b), 1);
    }
}

TEST(generate, top_k_and_top_p_restrict_the_choice) {
    float logits[6] = {3.0f, 2.9f, 2.8f, -5.0f, -5.0f, -5.0f};
    CtRng rng;
    ct_rng_seed(&rng, 7);
    int counts[6] = {0};
    CtSampling s = {1.0f, 2, 1.0f};  // top-2: only tokens 0 and 1
    for (int i = 0; i < 2000; i++) counts[ct_sample(logits, 6, &s, &rng)]++;
    CHECK(counts[0] > 0 && counts[1] > 0);
    CHECK_EQ_INT(counts[2] + counts[3] + counts[4] + counts[5], 0);
    memset(counts, 0, sizeof counts);
    CtSampling nucleus = {1.0f, 0, 0.5f};  // token 0 holds ~35%, 0+1 ~67% >= 50%: only 0 and 1
    for (int i = 0; i < 2000; i++) counts[ct_sample(logits, 6, &nucleus, &rng)]++;
    CHECK_EQ_INT(counts[2] + counts[3] + counts[4] + counts[5], 0);
    memset(counts, 0, sizeof counts);
    CtSampling full = {1.0f, 0, 1.0f};  // plain sampling follows the softmax: 0 ~ 35%, 2 ~ 31%
    for (int i = 0; i < 4000; i++) counts[ct_sample(logits, 6, &full, &rng)]++;
    CHECK_NEAR(counts[0] / 4000.0, exp(3.0) / (exp(3.0) + exp(2.9) + exp(2.8) + 3 * exp(-5.0)), 0.04);
    CHECK_NEAR(counts[2] / 4000.0, exp(2.8) / (exp(3.0) + exp(2.9) + exp(2.8) + 3 * exp(-5.0)), 0.04);
    CtRng r1, r2;  // the same seed draws the same tokens
    ct_rng_seed(&r1, 11);
    ct_rng_seed(&r2, 11);
    for (int i = 0; i < 50; i++) CHECK_EQ_INT(ct_sample(logits, 6, &full, &r1), ct_sample(logits, 6, &full, &r2));
}
