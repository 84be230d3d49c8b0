// Prefix tuning in the model (train/model/peft_prefix.c, issue 27): gradients of the prefix (with and
// without PEFT's projection) against finite differences of the float model, generation's cache
// against the full forward, gradient accumulation, training that moves only the prefix, and the
// refusals. The attention op itself is checked in double in tests/test_ops_attention_prefix.c;
// the numbers against PEFT in tests/test_prefix_ref.c.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/ops.h"
#include "optim/adamw.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/model/generate.h"
#include "train/model/model.h"
#include "train/model/peft.h"

static int prefix_model(CtModel *m, CtModelConfig c, int P, int projection, int recompute, int max_T) {
    if (ct_model_create(m, &c, ct_ops_cpu(), 2, max_T, CT_MODEL_FROZEN | (recompute ? CT_MODEL_RECOMPUTE : 0)) != 0)
        return -1;
    tiny_randomize_params(m, 5);
    const CtPeftSpec spec = {.type = CT_PEFT_PREFIX_TUNING, .num_virtual_tokens = P, .prefix_projection = projection};
    if (ct_peft_attach(m, &spec) != 0) return -1;
    ct_peft_init(m, 7);
    return 0;
}

// Every tensor of the prefix: the analytic gradient against finite differences, along the
// gradient and on its three largest entries (as tests/test_lora.c checks the adapters).
static void check_prefix_gradients(CtModelConfig c, const char *what, int projection, int recompute, int packed) {
    CtModel m;
    CHECK(prefix_model(&m, c, 3, projection, recompute, 8) == 0);
    if (ct_test_failed()) return;
    CtRng rng;
    ct_rng_seed(&rng, 5);
    for (size_t i = 0; i < m.peft->n_params; i++) m.peft->params[i] = (float)(0.5 * ct_rng_normal(&rng));
    TinyBatch tb;
    tiny_batch(&tb, &rng, 2, 8, m.config.vocab_size, packed);
    ct_model_zero_grad(&m);
    ct_model_forward(&m, &tb.batch);
    ct_model_backward(&m);
    float *grads = ct_alloc(m.n_train * sizeof(float));
    memcpy(grads, m.train_grads, m.n_train * sizeof(float));
    CtNamedTensor t[CT_PEFT_MAX_TENSORS];
    ct_peft_named_tensors(m.peft, m.peft->params, t);
    const float h = 2e-3f;
    double worst_dir = 0, worst_entry = 0;
    for (int i = 0; i < m.peft->n_tensors; i++) {
        const size_t numel = (size_t)t[i].shape[0] * (size_t)(t[i].ndim > 1 ? t[i].shape[1] : 1);
        float *p = t[i].data, *g = grads + (p - m.peft->params);
        double norm = 0;
        for (size_t j = 0; j < numel; j++) norm += (double)g[j] * g[j];
        norm = sqrt(norm);
        CHECK_MSG(norm > 1e-5, "%s %s: gradient norm %.3g is too small to check (or wrongly zero)", what, t[i].name, norm);
        float *u = ct_alloc(numel * sizeof(float));
        for (size_t j = 0; j < numel; j++) u[j] = (float)(g[j] / norm);
        const double fd = tiny_directional_fd(&m, &tb.batch, p, u, numel, h), rel = fabs(fd - norm) / norm;
        if (rel > worst_dir) worst_dir = rel;
        CHECK_MSG(rel < 1e-2, "%s %s: along the gradient: finite differences %.6g, analytic %.6g", what, t[i].name, fd,
                  norm);
        for (int k = 0; k < 3 && (size_t)k < numel; k++) {
            size_t best = 0;
            for (size_t j = 1; j < numel; j++)
                if (fabsf(g[j]) > fabsf(g[best])) best = j;
            memset(u, 0, numel * sizeof(float));
            u[best] = 1;
            const double fd1 = tiny_directional_fd(&m, &tb.batch, p, u, numel, h);
            const double err = fabs(fd1 - g[best]) / fmax(fabs(g[best]), 1e-3);
            if (err > worst_entry) worst_entry = err;
            CHECK_MSG(err < 3e-2, "%s %s[%zu]: finite differences %.6g, analytic %.6g", what, t[i].name, best, fd1,
                      g[best]);
            g[best] = 0;
        }
        ct_free(u);
    }
    printf("    %s%s%s%s: worst directional error %.2g, worst entry error %.2g\n", what,
           projection ? " (projection)" : "", recompute ? " (recompute)" : "", packed ? " (packed documents)" : "",
           worst_dir, worst_entry);
    ct_free(grads);
    ct_model_free(&m);
}
TEST(prefix, gradient_check_gpt2) { check_prefix_gradients(tiny_config(CT_ARCH_GPT2), "gpt2", 0, 0, 0); }
TEST(prefix, gradient_check_llama_gqa_packed) { check_prefix_gradients(tiny_config(CT_ARCH_LLAMA), "llama", 0, 0, 1); }
TEST(prefix, gradient_check_llama_projection_recompute) {
    check_prefix_gradients(tiny_config(CT_ARCH_LLAMA), "llama", 1, 1, 0);
}
TEST(prefix, gradient_check_gemma2_window_softcap) {
    check_prefix_gradients(tiny_variant_config("gemma2"), "gemma2", 0, 0, 0);
}

// Generation: the prefix in the cache's first rows gives the logits of the full forward, token by
// token and after a reset.
static void kv_cache_matches_full_forward(CtModelConfig c, const char *what, int projection) {
    const int T = 10;
    CtModel m;
    CHECK(prefix_model(&m, c, 4, projection, 0, T) == 0);
    if (ct_test_failed()) return;
    int32_t tokens[10];
    CtRng rng;
    ct_rng_seed(&rng, 3);
    for (int t = 0; t < T; t++) tokens[t] = (int32_t)ct_rng_below(&rng, (uint32_t)c.vocab_size);
    CtBatch batch = {.tokens = tokens, .B = 1, .T = T};
    ct_model_forward(&m, &batch);
    const float *full = ct_model_logits(&m);
    CtGenerator g;
    ct_generator_init(&g, &m, T + 4);
    CHECK_EQ_INT(g.n_ctx, 4);  // the prefix's rows
    double worst = 0;
    for (int t = 0; t < T; t++) {
        const float *logits = ct_generator_feed(&g, tokens[t]);
        double scale = 0;
        for (int v = 0; v < c.vocab_size; v++) scale = fmax(scale, fabs(full[(size_t)t * c.vocab_size + v]));
        for (int v = 0; v < c.vocab_size; v++)
            worst = fmax(worst, fabs(logits[v] - full[(size_t)t * c.vocab_size + v]) / scale);
    }
    CHECK_MSG(worst < 1e-4, "%s: cached logits differ from the full forward by %g", what, worst);
    ct_generator_reset(&g);
    const float *again = ct_generator_feed_many(&g, tokens, 3);  // a prompt in one pass
    CHECK_NEAR(again[2 * c.vocab_size], full[2 * c.vocab_size], 1e-4 * (1 + fabs(full[2 * c.vocab_size])));
    ct_generator_free(&g);
    ct_model_free(&m);
}
TEST(prefix, kv_cache_equals_full_forward_gpt2) { kv_cache_matches_full_forward(tiny_config(CT_ARCH_GPT2), "gpt2", 0); }
TEST(prefix, kv_cache_equals_full_forward_llama_projection) {
    kv_cache_matches_full_forward(tiny_config(CT_ARCH_LLAMA), "llama", 1);
}
TEST(prefix, kv_cache_equals_full_forward_mistral_window) {
    kv_cache_matches_full_forward(tiny_variant_config("mistral"), "mistral", 0);
}

// Gradient accumulation: two backwards without zeroing add the two batches' gradients.
TEST(prefix, gradients_accumulate_over_micro_batches) {
    CtModel m;
    CHECK(prefix_model(&m, tiny_config(CT_ARCH_LLAMA), 3, 1, 0, 8) == 0);
    if (ct_test_failed()) return;
    CtRng rng;
    ct_rng_seed(&rng, 21);
    TinyBatch a, b;
    tiny_batch(&a, &rng, 2, 8, m.config.vocab_size, 0);
    tiny_batch(&b, &rng, 2, 8, m.config.vocab_size, 1);
    const size_t n = m.n_train;
    float *ga = ct_alloc(n * sizeof(float)), *gb = ct_alloc(n * sizeof(float));
    ct_model_zero_grad(&m);
    ct_model_forward(&m, &a.batch);
    ct_model_backward(&m);
    memcpy(ga, m.train_grads, n * sizeof(float));
    ct_model_zero_grad(&m);
    ct_model_forward(&m, &b.batch);
    ct_model_backward(&m);
    memcpy(gb, m.train_grads, n * sizeof(float));
    ct_model_zero_grad(&m);
    ct_model_forward(&m, &a.batch);
    ct_model_backward(&m);
    ct_model_forward(&m, &b.batch);
    ct_model_backward(&m);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs(m.train_grads[i] - (ga[i] + gb[i])));
        scale = fmax(scale, fabs(ga[i] + gb[i]));
    }
    CHECK_MSG(worst <= 1e-5 * scale, "accumulated gradients differ from the sum by %g (largest %g)", worst, scale);
    ct_free(ga);
    ct_free(gb);
    ct_model_free(&m);
}

// Training: only the prefix has gradients and optimizer state; the loss falls, the base stays bit for bit.
static void training_moves_only_the_prefix(CtModelConfig c, const char *what, int projection) {
    CtModel m;
    CHECK(prefix_model(&m, c, 4, projection, 0, 8) == 0);
    if (ct_test_failed()) return;
    CHECK(m.grads == NULL);
    CHECK_EQ_INT((long)m.n_train, (long)m.peft->n_params);
    float *before = ct_alloc(m.n_params * sizeof(float));
    memcpy(before, m.params, m.n_params * sizeof(float));
    CtAdamW opt;
    ct_adamw_init(&opt, m.n_train, 3e-2, 0.9, 0.95, 1e-8, 0.0);
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
    printf("    %s%s: loss %.4f -> %.4f over 30 steps on one batch, prefix only\n", what,
           projection ? " (projection)" : "", first, last);
    CHECK(last < first - 0.1f);
    CHECK_MSG(memcmp(before, m.params, m.n_params * sizeof(float)) == 0, "a base weight changed in prefix tuning");
    ct_adamw_free(&opt);
    ct_free(before);
    ct_model_free(&m);
}
TEST(prefix, training_lowers_loss_base_untouched_gpt2) {
    training_moves_only_the_prefix(tiny_config(CT_ARCH_GPT2), "gpt2", 0);
}
TEST(prefix, training_lowers_loss_base_untouched_llama_projection) {
    training_moves_only_the_prefix(tiny_config(CT_ARCH_LLAMA), "llama", 1);
}

TEST(prefix, refuses_encoders_mtp_and_a_trainable_base) {
    CtModel m;
    CtModelConfig c = tiny_encoder_config(CT_ARCH_BERT);
    CHECK(ct_model_create(&m, &c, ct_ops_cpu(), 1, 8, CT_MODEL_FROZEN) == 0);
    const CtPeftSpec spec = {.type = CT_PEFT_PREFIX_TUNING, .num_virtual_tokens = 2};
    CHECK(ct_peft_attach(&m, &spec) != 0);
    CHECK(strstr(ct_error_message(), "encoder") != NULL);
    ct_model_free(&m);
    c = tiny_config(CT_ARCH_LLAMA);
    CHECK(ct_model_create(&m, &c, ct_ops_cpu(), 1, 8, 0) == 0);
    CHECK(ct_peft_attach(&m, &spec) != 0);
    CHECK(strstr(ct_error_message(), "frozen") != NULL);
    ct_model_free(&m);
    c.mtp_depth = 1;
    CHECK(ct_model_create(&m, &c, ct_ops_cpu(), 1, 8, CT_MODEL_FROZEN) == 0);
    CHECK(ct_peft_attach(&m, &spec) != 0);
    CHECK(strstr(ct_error_message(), "multi-token") != NULL);
    ct_model_free(&m);
}

// No virtual tokens: the base model's logits and loss, bit for bit.
TEST(prefix, zero_virtual_tokens_equal_the_base_bit_for_bit) {
    const CtArch archs[] = {CT_ARCH_GPT2, CT_ARCH_LLAMA};
    for (int i = 0; i < 2; i++) {
        CtModel base, m;
        CtModelConfig c = tiny_config(archs[i]);
        CHECK(ct_model_create(&base, &c, ct_ops_cpu(), 2, 8, CT_MODEL_FROZEN) == 0);
        tiny_randomize_params(&base, 5);
        CHECK(prefix_model(&m, c, 0, 0, 0, 8) == 0);
        CtRng rng;
        ct_rng_seed(&rng, 4);
        TinyBatch tb;
        tiny_batch(&tb, &rng, 2, 8, c.vocab_size, 1);
        const float lb = ct_model_forward(&base, &tb.batch), lm = ct_model_forward(&m, &tb.batch);
        CHECK(memcmp(&lb, &lm, sizeof lb) == 0);
        tb.batch.targets = NULL;
        ct_model_forward(&base, &tb.batch);
        ct_model_forward(&m, &tb.batch);
        const size_t n = (size_t)2 * 8 * c.vocab_size;
        CHECK_MSG(memcmp(ct_model_logits(&base), ct_model_logits(&m), n * sizeof(float)) == 0,
                  "%s: a prefix of 0 tokens changes the logits", ct_arch_name(archs[i]));
        ct_model_free(&base);
        ct_model_free(&m);
    }
}

// GPT-2's learned positions: the tokens sit at P.., so seq_len + P must fit max_seq_len (16 here).
TEST(prefix, gpt2_positions_must_fit_after_the_prefix) {
    CtModel m;
    CtModelConfig c = tiny_config(CT_ARCH_GPT2);
    CHECK(ct_model_create(&m, &c, ct_ops_cpu(), 1, 12, CT_MODEL_FROZEN) == 0);
    const CtPeftSpec spec = {.type = CT_PEFT_PREFIX_TUNING, .num_virtual_tokens = 5};
    CHECK(ct_peft_attach(&m, &spec) != 0);
    CHECK(strstr(ct_error_message(), "max_seq_len 16") != NULL);
    ct_model_free(&m);
}
