// Feeding several tokens in one pass (what a speculative decoder's verification runs) gives the
// logits of feeding them one at a time, and a rolled-back cache continues as if the forgotten
// tokens had never been fed.
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "kernels/ops.h"
#include "tests/generate_fixture.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/model/generate.h"

// The largest |a − b| over n rows of V logits, relative to each row's largest |b|.
static double worst_row_error(const float *a, const float *b, int n, int V) {
    double worst = 0;
    for (int t = 0; t < n; t++) {
        double scale = 0;
        for (int v = 0; v < V; v++) scale = fmax(scale, fabs(b[(size_t)t * V + v]));
        for (int v = 0; v < V; v++) worst = fmax(worst, fabs(a[(size_t)t * V + v] - b[(size_t)t * V + v]) / scale);
    }
    return worst;
}

static void random_tokens(int32_t *tokens, int n, int V, uint64_t seed) {
    CtRng rng;
    ct_rng_seed(&rng, seed);
    for (int t = 0; t < n; t++) tokens[t] = (int32_t)ct_rng_below(&rng, (uint32_t)V);
}

// A prefix of 5 tokens fed one by one, then chunks of 1, 4 and 7 tokens through feed_many,
// against 17 single feeds; then a rollback to 8 tokens and a re-feed of different ones against a
// fresh generator fed the same 8 + 4 tokens one by one.
static void feed_many_matches_feed(CtModelConfig c, const char *lora_targets, const char *what) {
    enum { T = 17 };
    c.max_seq_len = 24;
    CtModel m;
    // with adapters, room for 3 rows: chunks of 4 and 7 run as several passes
    generate_fixture_model(&m, c, lora_targets ? 3 : 8, 5, lora_targets);
    const int V = c.vocab_size;
    int32_t tokens[T], other[4];
    random_tokens(tokens, T, V, 3);
    random_tokens(other, 4, V, 4);
    float *single = ct_alloc(sizeof(float) * T * (size_t)V), *many = ct_alloc(sizeof(float) * T * (size_t)V);
    CtGenerator one, g;
    ct_generator_init(&one, &m, c.max_seq_len);
    ct_generator_init(&g, &m, c.max_seq_len);
    for (int t = 0; t < T; t++) memcpy(single + (size_t)t * V, ct_generator_feed(&one, tokens[t]), sizeof(float) * V);
    for (int t = 0; t < 5; t++) memcpy(many + (size_t)t * V, ct_generator_feed(&g, tokens[t]), sizeof(float) * V);
    const int chunks[] = {1, 4, 7};
    for (int i = 0, at = 5; i < 3; at += chunks[i], i++) {
        const float *logits = ct_generator_feed_many(&g, tokens + at, chunks[i]);
        memcpy(many + (size_t)at * V, logits, sizeof(float) * (size_t)chunks[i] * V);
        CHECK_EQ_INT(g.n_ctx, at + chunks[i]);
    }
    double worst = worst_row_error(many, single, T, V);
    CHECK_MSG(worst < 1e-5, "%s: feed_many's logits differ from single feeds' by %g (relative)", what, worst);

    // forget tokens 8..16, feed 4 others in one pass; a fresh cache fed 8 + 4 one by one agrees
    ct_generator_rollback(&g, 8);
    CHECK_EQ_INT(g.n_ctx, 8);
    memcpy(many, ct_generator_feed_many(&g, other, 4), sizeof(float) * 4 * (size_t)V);
    ct_generator_reset(&one);
    for (int t = 0; t < 8; t++) ct_generator_feed(&one, tokens[t]);
    for (int t = 0; t < 4; t++) memcpy(single + (size_t)t * V, ct_generator_feed(&one, other[t]), sizeof(float) * V);
    worst = worst_row_error(many, single, 4, V);
    CHECK_MSG(worst < 1e-5, "%s: after a rollback, logits differ from a fresh cache's by %g", what, worst);
    ct_generator_free(&one);
    ct_generator_free(&g);
    ct_free(single);
    ct_free(many);
    ct_model_free(&m);
}

TEST(generate, feed_many_equals_single_feeds_gpt2) {
    feed_many_matches_feed(tiny_config(CT_ARCH_GPT2), NULL, "gpt2");
}

// GQA (the tiny llama has 2 kv heads for 4 heads)
TEST(generate, feed_many_equals_single_feeds_llama_gqa) {
    feed_many_matches_feed(tiny_config(CT_ARCH_LLAMA), NULL, "llama");
}

// Windows (mistral: 3, shorter than a chunk), soft-caps, q/k norms, post-norms, RoPE tables
// (dynamic scaling left out: its table depends on the pass's length, as in transformers).
TEST(generate, feed_many_equals_single_feeds_llama_variants) {
    for (int i = 0; tiny_variant_names[i]; i++) {
        if (strcmp(tiny_variant_names[i], "dynamic") == 0) continue;
        feed_many_matches_feed(tiny_variant_config(tiny_variant_names[i]), NULL, tiny_variant_names[i]);
        if (ct_test_failed()) return;
    }
}

TEST(generate, feed_many_equals_single_feeds_with_lora_adapters) {
    feed_many_matches_feed(tiny_config(CT_ARCH_LLAMA), "all-linear", "llama with LoRA");
}

// Mixture of Experts: the router picks per row, so a pass over several rows routes each alone.
TEST(generate, feed_many_equals_single_feeds_moe) {
    CtModelConfig c = tiny_config(CT_ARCH_LLAMA);
    c.n_experts = 4;
    c.top_k = 2;
    c.moe_d_ff = 8;
    c.n_shared_experts = 1;
    feed_many_matches_feed(c, NULL, "moe");
}

// A prompt through feed_prompt (the head on its last row only) gives feed_many's last row (bit for
// bit here: a product of 1 and of 7 rows take the same few-rows kernel), and leaves the same cache: the next token's logits agree too. With LoRA adapters on every
// product (lm_head included) the 7-token prompt runs as passes of 3 rows.
static void feed_prompt_matches_feed_many(const char *lora_targets, const char *what) {
    CtModelConfig c = tiny_config(CT_ARCH_LLAMA);
    c.max_seq_len = 16;
    CtModel m;
    generate_fixture_model(&m, c, lora_targets ? 3 : 8, 6, lora_targets);
    const int V = c.vocab_size;
    int32_t tokens[8];
    random_tokens(tokens, 8, V, 7);
    float *many = ct_alloc(sizeof(float) * 2 * (size_t)V), *prompt = ct_alloc(sizeof(float) * 2 * (size_t)V);
    CtGenerator a, b;
    ct_generator_init(&a, &m, c.max_seq_len);
    ct_generator_init(&b, &m, c.max_seq_len);
    memcpy(many, ct_generator_feed_many(&a, tokens, 7) + (size_t)6 * V, sizeof(float) * V);
    memcpy(many + V, ct_generator_feed(&a, tokens[7]), sizeof(float) * V);
    memcpy(prompt, ct_generator_feed_prompt(&b, tokens, 7), sizeof(float) * V);
    CHECK_EQ_INT(b.n_ctx, 7);
    memcpy(prompt + V, ct_generator_feed(&b, tokens[7]), sizeof(float) * V);
    CHECK_MSG(memcmp(many, prompt, sizeof(float) * 2 * (size_t)V) == 0, "%s: feed_prompt's logits differ from "
              "feed_many's last row (worst %g relative)", what, worst_row_error(prompt, many, 2, V));
    ct_generator_free(&a);
    ct_generator_free(&b);
    ct_free(many);
    ct_free(prompt);
    ct_model_free(&m);
}

TEST(generate, feed_prompt_equals_feed_many_last_row) {
    feed_prompt_matches_feed_many(NULL, "llama");
    feed_prompt_matches_feed_many("all-linear", "llama with LoRA");
}
