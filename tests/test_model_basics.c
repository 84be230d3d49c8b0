// The model's parameter table, loss at initialisation, recompute, and learning one batch.
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/ops.h"
#include "optim/adamw.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/model/model_internal.h"

TEST(model, gpt2_124m_has_the_reference_parameter_count) {
    CtModelConfig c;
    CHECK(ct_model_preset("gpt2-124m", &c) == 0);
    int n_tensors;
    size_t n_floats;
    ct_model_layout_count(&c, &n_tensors, &n_floats);
    CHECK_EQ_INT(n_floats, 124439808);  // Hugging Face's gpt2 (tied head)
    CHECK_EQ_INT(n_tensors, 2 + 12 * 12 + 2);
}

TEST(model, parameter_table_names_shapes_offsets) {
    CtModelConfig c = tiny_config(CT_ARCH_LLAMA);
    c.tie_embeddings = 0;
    CtModel m;
    CHECK(ct_model_create(&m, &c, ct_ops_cpu(), 1, 4, 0) == 0);
    CHECK_STR_EQ(m.table[0].name, "model.embed_tokens.weight");
    CHECK_STR_EQ(m.table[3].name, "model.layers.0.self_attn.k_proj.weight");
    CHECK_EQ_INT(m.table[3].shape[0], 2 * 4);  // n_kv_head · head_dim
    CHECK_EQ_INT(m.table[3].shape[1], 16);
    CHECK_STR_EQ(m.table[m.n_tensors - 1].name, "lm_head.weight");
    size_t at = 0;
    for (int i = 0; i < m.n_tensors; i++) {  // dense, in order, no overlap
        CHECK_EQ_INT(m.table[i].offset, at);
        at += m.table[i].numel;
    }
    CHECK_EQ_INT(at, m.n_params);
    // the fused products read adjacent table entries
    CHECK(m.w.layers[1].qkv_w == m.params + m.table[1 + 9 + 1].offset);
    CtNamedTensor named[64];
    ct_model_named_tensors(&m, 1, named);
    CHECK(named[0].data == m.grads);
    ct_model_free(&m);

    CtModelConfig g = tiny_config(CT_ARCH_GPT2);
    CHECK(ct_model_create(&m, &g, ct_ops_cpu(), 1, 4, 0) == 0);
    CHECK_STR_EQ(m.table[4].name, "transformer.h.0.attn.c_attn.weight");
    CHECK(m.table[4].hf_transposed);
    CHECK(m.w.lm_head == m.w.wte);
    ct_model_free(&m);
}

TEST(model, config_errors_name_the_key) {
    CtModelConfig c = tiny_config(CT_ARCH_LLAMA);
    c.n_kv_head = 3;
    CHECK(ct_model_config_validate(&c) == -1);
    CHECK_CONTAINS(ct_error_message(), "n_kv_head");
    CHECK(ct_model_preset("gpt5", &c) == -1);
    CHECK_CONTAINS(ct_error_message(), "llama-tiny");
    c = tiny_config(CT_ARCH_GPT2);
    c.dropout = 1.0f;
    CtModel m;
    CHECK(ct_model_create(&m, &c, ct_ops_cpu(), 1, 4, 0) == -1);
    CHECK_CONTAINS(ct_error_message(), "dropout");
}

// Dropout acts in training mode only, with masks fixed by the seed.
TEST(model, dropout_only_in_training_mode) {
    CtModelConfig c = tiny_config(CT_ARCH_GPT2), c0 = c;
    c.dropout = 0.2f;
    CtModel m, m0;
    CHECK(ct_model_create(&m, &c, ct_ops_cpu(), 2, 8, 0) == 0);
    CHECK(ct_model_create(&m0, &c0, ct_ops_cpu(), 2, 8, 0) == 0);
    tiny_randomize_params(&m, 3);
    memcpy(m0.params, m.params, m.n_params * sizeof(float));
    CtRng rng;
    ct_rng_seed(&rng, 4);
    TinyBatch tb;
    tiny_batch(&tb, &rng, 2, 8, c.vocab_size, 0);
    float eval = ct_model_forward(&m, &tb.batch), plain = ct_model_forward(&m0, &tb.batch);
    CHECK(eval == plain);
    ct_model_set_dropout(&m, 1, 11);
    float t1 = ct_model_forward(&m, &tb.batch), t1_again = ct_model_forward(&m, &tb.batch);
    ct_model_set_dropout(&m, 1, 12);
    float t2 = ct_model_forward(&m, &tb.batch);
    CHECK(t1 == t1_again);
    CHECK(t1 != eval && t2 != t1);
    ct_model_set_dropout(&m, 0, 0);
    CHECK(ct_model_forward(&m, &tb.batch) == eval);
    ct_model_free(&m);
    ct_model_free(&m0);
}

static void check_init_loss(const char *preset) {
    CtModelConfig c;
    CHECK(ct_model_preset(preset, &c) == 0);
    CtModel m;
    CHECK(ct_model_create(&m, &c, ct_ops_cpu(), 2, 32, 0) == 0);
    ct_model_init(&m, 1337);
    CtRng rng;
    ct_rng_seed(&rng, 5);
    int32_t tokens[64], targets[64];
    for (int i = 0; i < 64; i++) {
        tokens[i] = (int32_t)ct_rng_below(&rng, (uint32_t)c.vocab_size);
        targets[i] = (int32_t)ct_rng_below(&rng, (uint32_t)c.vocab_size);
    }
    CtBatch b = {.tokens = tokens, .targets = targets, .B = 2, .T = 32};
    float loss = ct_model_forward(&m, &b);
    double want = log((double)c.vocab_size);
    printf("    %s: loss at init %.4f, ln(vocab) %.4f\n", preset, loss, want);
    CHECK_MSG(fabs(loss - want) < 0.02 * want, "%s: loss %.4f is not within 2%% of ln(%d) = %.4f", preset, loss,
              c.vocab_size, want);
    ct_model_free(&m);
}

TEST(model, loss_at_init_is_ln_vocab_gpt2) { check_init_loss("gpt2-tiny"); }
TEST(model, loss_at_init_is_ln_vocab_llama) { check_init_loss("llama-tiny"); }

// Recomputing norms and activations in backward gives the same gradients and saves memory.
TEST(model, recompute_gives_the_same_gradients) {
    for (int arch = 0; arch < 2; arch++) {
        CtModelConfig c = tiny_config((CtArch)arch);
        CtModel a, b;
        CHECK(ct_model_create(&a, &c, ct_ops_cpu(), 2, 8, 0) == 0);
        CHECK(ct_model_create(&b, &c, ct_ops_cpu(), 2, 8, 1) == 0);
        tiny_randomize_params(&a, 9);
        memcpy(b.params, a.params, a.n_params * sizeof(float));
        CtRng rng;
        ct_rng_seed(&rng, 4);
        TinyBatch tb;
        tiny_batch(&tb, &rng, 2, 8, c.vocab_size, 1);
        ct_model_zero_grad(&a);
        ct_model_zero_grad(&b);
        float la = ct_model_forward(&a, &tb.batch), lb = ct_model_forward(&b, &tb.batch);
        CHECK(la == lb);
        ct_model_backward(&a);
        ct_model_backward(&b);
        for (size_t i = 0; i < a.n_params; i++) CHECK_NEAR(a.grads[i], b.grads[i], 1e-6);
        CHECK(b.recompute_saved_bytes > 0);
        CHECK(b.activation_bytes + b.recompute_saved_bytes == a.activation_bytes);
        ct_model_free(&a);
        ct_model_free(&b);
    }
}

// A small model memorises one batch: loss below 0.05 within 300 AdamW steps.
static void overfit(CtArch arch) {
    CtModelConfig c = tiny_config(arch);
    c.d_model = 64;
    c.d_ff = arch == CT_ARCH_LLAMA ? 128 : 256;
    c.vocab_size = 64;
    CtModel m;
    CHECK(ct_model_create(&m, &c, ct_ops_cpu(), 4, 16, 0) == 0);
    ct_model_init(&m, 7);
    CtRng rng;
    ct_rng_seed(&rng, 8);
    TinyBatch tb;
    tiny_batch(&tb, &rng, 4, 16, c.vocab_size, 0);
    tb.targets[3] = 5;
    CtAdamW opt;
    ct_adamw_init(&opt, m.n_params, 3e-3f, 0.9f, 0.95f, 1e-8f, 0.0f);
    float first = 0, loss = 0;
    int step;
    for (step = 0; step < 300; step++) {
        ct_model_zero_grad(&m);
        loss = ct_model_forward(&m, &tb.batch);
        if (step == 0) first = loss;
        if (loss < 0.05f) break;
        ct_model_backward(&m);
        ct_adamw_step(&opt, m.params, m.grads);
    }
    printf("    %s: loss %.3f -> %.4f in %d steps\n", ct_arch_name(arch), first, loss, step);
    CHECK_MSG(loss < 0.05f, "%s: loss %.4f after 300 steps (started at %.3f)", ct_arch_name(arch), loss, first);
    ct_adamw_free(&opt);
    ct_model_free(&m);
}

TEST(model, overfits_one_batch_gpt2) { overfit(CT_ARCH_GPT2); }
TEST(model, overfits_one_batch_llama) { overfit(CT_ARCH_LLAMA); }

TEST(optim, adamw_first_step_moves_by_lr) {
    // with bias correction, the first step is lr·sign(g) (for |g| >> eps), plus decay
    float p[3] = {1, -2, 0.5f}, g[3] = {0.3f, -4, 1e-3f};
    CtAdamW opt;
    ct_adamw_init(&opt, 3, 0.1f, 0.9f, 0.999f, 1e-8f, 0.0f);
    ct_adamw_step(&opt, p, g);
    CHECK_NEAR(p[0], 0.9, 1e-5);
    CHECK_NEAR(p[1], -1.9, 1e-5);
    CHECK_NEAR(p[2], 0.4, 1e-4);
    ct_adamw_free(&opt);
    ct_adamw_init(&opt, 1, 0.1f, 0.9f, 0.999f, 1e-8f, 0.5f);
    float q = 2, zero = 0;
    ct_adamw_step(&opt, &q, &zero);
    CHECK_NEAR(q, 2 - 0.1 * 0.5 * 2, 1e-6);  // decoupled decay acts without a gradient
    ct_adamw_free(&opt);
}
