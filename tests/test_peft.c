// Prompt tuning and P-tuning in the model: the ReLU and LSTM ops against finite differences in double,
// zero virtual tokens leaving the base bit for bit, virtual tokens that are real tokens' rows
// giving the base's logits over the concatenation, every adapter tensor's gradient (through the
// virtual rows and the prompt encoder) against finite differences, and the frozen base.
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops.h"
#include "tests/gradcheck.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/model/peft.h"

// ---- the op ----
typedef struct {
    size_t n;
} ReluCtx;

static void relu_f64(void *p, double **x, double *out) { ct_cpu_relu_forward_f64(out, x[0], ((ReluCtx *)p)->n); }
static void relu_b64(void *p, double **x, const double *dout, double **dx) {
    ct_cpu_relu_backward_f64(dx[0], x[0], dout, ((ReluCtx *)p)->n);
}
static void relu_f32(void *p, float **x, float *out) { ct_ops_cpu()->relu_forward(out, x[0], ((ReluCtx *)p)->n); }
static void relu_b32(void *p, float **x, const float *dout, float **dx) {
    ct_ops_cpu()->relu_backward(dx[0], x[0], dout, ((ReluCtx *)p)->n);
}

TEST(peft, relu_op_gradient) {
    CtRng rng;
    ct_rng_seed(&rng, 2701);
    ReluCtx p = {.n = 300};
    double *x = gc_random(&rng, p.n, 1);
    for (size_t i = 0; i < p.n; i++)  // away from the kink at 0, where finite differences straddle it
        if (fabs(x[i]) < 1e-3) x[i] = 0.5;
    GradCase c = {.label = "relu", .n_inputs = 1, .x = {x}, .n = {p.n}, .n_out = p.n, .ctx = &p,
                  .forward64 = relu_f64, .backward64 = relu_b64, .forward32 = relu_f32, .backward32 = relu_b32};
    CHECK_GRADS(c);
}

// The LSTM recurrence (P-tuning's LSTM encoder), both directions, h written with a row stride
// (the bidirectional layer's [V,2H] output). Inputs: xg [V,4H], W_hh [4H,H], b_hh [4H].
typedef struct {
    int V, H, ldh, reverse;
    double *c, *g, *dc, *dh;  // scratch of the double instantiation
    float *cf, *gf, *dcf, *dhf;
} LstmCtx;

static void lstm_f64(void *p, double **x, double *out) {
    LstmCtx *c = p;
    memset(out, 0, sizeof(double) * (size_t)c->V * c->ldh);
    ct_cpu_lstm_forward_f64(out, c->c, c->g, x[0], x[1], x[2], c->V, c->H, c->ldh, c->reverse);
}
static void lstm_b64(void *p, double **x, const double *dout, double **dx) {
    LstmCtx *c = p;
    double *h = ct_alloc(sizeof(double) * (size_t)c->V * c->ldh);
    lstm_f64(p, x, h);  // the activations of these inputs
    memcpy(c->dh, dout, sizeof(double) * (size_t)c->V * c->ldh);
    double *dxg = ct_alloc(sizeof(double) * (size_t)c->V * 4 * c->H);
    ct_cpu_lstm_backward_f64(dxg, dx[1], dx[2], c->dh, c->dc, h, c->c, c->g, x[1], c->V, c->H, c->ldh, c->reverse);
    for (size_t i = 0; i < (size_t)c->V * 4 * c->H; i++) dx[0][i] += dxg[i];
    ct_free(dxg);
    ct_free(h);
}
static void lstm_f32(void *p, float **x, float *out) {
    LstmCtx *c = p;
    memset(out, 0, sizeof(float) * (size_t)c->V * c->ldh);
    ct_ops_cpu()->lstm_forward(out, c->cf, c->gf, x[0], x[1], x[2], c->V, c->H, c->ldh, c->reverse);
}
static void lstm_b32(void *p, float **x, const float *dout, float **dx) {
    LstmCtx *c = p;
    float *h = ct_alloc(sizeof(float) * (size_t)c->V * c->ldh);
    lstm_f32(p, x, h);
    memcpy(c->dhf, dout, sizeof(float) * (size_t)c->V * c->ldh);
    float *dxg = ct_alloc(sizeof(float) * (size_t)c->V * 4 * c->H);
    ct_ops_cpu()->lstm_backward(dxg, dx[1], dx[2], c->dhf, c->dcf, h, c->cf, c->gf, x[1], c->V, c->H, c->ldh,
                                c->reverse);
    for (size_t i = 0; i < (size_t)c->V * 4 * c->H; i++) dx[0][i] += dxg[i];
    ct_free(dxg);
    ct_free(h);
}

static void lstm_case(int reverse) {
    CtRng rng;
    ct_rng_seed(&rng, 2702 + (uint64_t)reverse);
    LstmCtx p = {.V = 5, .H = 3, .ldh = 7, .reverse = reverse};
    const size_t VH = (size_t)p.V * p.H, VL = (size_t)p.V * p.ldh;
    p.c = ct_alloc(sizeof(double) * VH), p.dc = ct_alloc(sizeof(double) * VH);
    p.g = ct_alloc(sizeof(double) * VH * 4), p.dh = ct_alloc(sizeof(double) * VL);
    p.cf = ct_alloc(sizeof(float) * VH), p.dcf = ct_alloc(sizeof(float) * VH);
    p.gf = ct_alloc(sizeof(float) * VH * 4), p.dhf = ct_alloc(sizeof(float) * VL);
    GradCase c = {.label = reverse ? "lstm reverse" : "lstm", .n_inputs = 3,
                  .x = {gc_random(&rng, VH * 4, 1), gc_random(&rng, (size_t)12 * p.H, 0.6), gc_random(&rng, 12, 0.5)},
                  .n = {VH * 4, (size_t)12 * p.H, 12}, .n_out = VL, .ctx = &p,
                  .forward64 = lstm_f64, .backward64 = lstm_b64, .forward32 = lstm_f32, .backward32 = lstm_b32};
    CHECK_GRADS(c);
    for (int i = 0; i < 3; i++) ct_free(c.x[i]);
    ct_free(p.c), ct_free(p.dc), ct_free(p.g), ct_free(p.dh);
    ct_free(p.cf), ct_free(p.dcf), ct_free(p.gf), ct_free(p.dhf);
}

TEST(peft, lstm_op_gradient_forward_direction) { lstm_case(0); }
TEST(peft, lstm_op_gradient_reverse_direction) { lstm_case(1); }

// ---- the model ----
static int peft_model(CtModel *m, CtModelConfig cfg, CtPeftType type, int V, int hidden, CtPeftEncoder enc) {
    if (ct_model_create(m, &cfg, ct_ops_cpu(), 2, 8, CT_MODEL_FROZEN) != 0) return -1;
    tiny_randomize_params(m, 11);
    CtPeftSpec spec = {.type = type, .num_virtual_tokens = V, .encoder_hidden_size = hidden, .encoder_num_layers = 2,
                       .encoder = enc};
    if (ct_peft_attach(m, &spec) != 0) {
        ct_model_free(m);
        return -1;
    }
    ct_peft_init(m, 7);
    return 0;
}

static void zero_tokens_equal_base(CtModelConfig cfg, CtPeftType type) {
    CtModel base, m;
    CHECK(ct_model_create(&base, &cfg, ct_ops_cpu(), 2, 8, CT_MODEL_FROZEN) == 0);
    tiny_randomize_params(&base, 11);
    CHECK(peft_model(&m, cfg, type, 0, 0, CT_PEFT_ENCODER_MLP) == 0);
    CtRng rng;
    ct_rng_seed(&rng, 3);
    TinyBatch tb;
    tiny_batch(&tb, &rng, 2, 8, cfg.vocab_size, 1);
    float lb = ct_model_forward(&base, &tb.batch), lm = ct_model_forward(&m, &tb.batch);
    CHECK(memcmp(&lb, &lm, sizeof lb) == 0);
    const size_t n = (size_t)2 * 8 * cfg.vocab_size;
    CHECK(memcmp(ct_model_logits(&base), ct_model_logits(&m), n * sizeof(float)) == 0);
    CHECK_EQ_INT((int)m.n_train, 0 + (type == CT_PEFT_P_TUNING ? (int)m.peft->n_params : 0));
    ct_model_free(&base);
    ct_model_free(&m);
}

TEST(peft, zero_virtual_tokens_equal_the_base_gpt2) { zero_tokens_equal_base(tiny_config(CT_ARCH_GPT2), CT_PEFT_PROMPT_TUNING); }
TEST(peft, zero_virtual_tokens_equal_the_base_llama) { zero_tokens_equal_base(tiny_config(CT_ARCH_LLAMA), CT_PEFT_PROMPT_TUNING); }
TEST(peft, zero_virtual_tokens_equal_the_base_p_tuning) { zero_tokens_equal_base(tiny_config(CT_ARCH_LLAMA), CT_PEFT_P_TUNING); }

// Virtual tokens holding the embedding rows of tokens x₀..x_{V-1}: the logits of the real rows are
// the base's over the batch x ⧺ tokens (the same products on the same numbers: bit for bit), and
// the loss counts the real rows alone.
static void prompt_is_a_prefix_of_tokens(CtModelConfig cfg) {
    const int V = 3, T = 5, B = 2, C = cfg.d_model, Vocab = cfg.vocab_size;
    CtModel base, m;
    CHECK(ct_model_create(&base, &cfg, ct_ops_cpu(), B, V + T, CT_MODEL_FROZEN) == 0);
    tiny_randomize_params(&base, 11);
    CHECK(peft_model(&m, cfg, CT_PEFT_PROMPT_TUNING, V, 0, CT_PEFT_ENCODER_MLP) == 0);
    const int32_t x[3] = {5, 1, 9};
    for (int v = 0; v < V; v++) memcpy(m.peft->params + (size_t)v * C, base.w.wte + (size_t)x[v] * C, C * sizeof(float));
    int32_t tok[2 * 5], tgt[2 * 5], tok2[2 * 8], tgt2[2 * 8];
    for (int b = 0; b < B; b++)
        for (int t = 0; t < V + T; t++) {
            const int r = t - V;
            tok2[b * (V + T) + t] = t < V ? x[t] : (7 * b + 3 * r + 1) % Vocab;
            tgt2[b * (V + T) + t] = t < V ? -1 : (5 * b + r + 2) % Vocab;
            if (r >= 0) {
                tok[b * T + r] = tok2[b * (V + T) + t];
                tgt[b * T + r] = tgt2[b * (V + T) + t];
            }
        }
    CtBatch b1 = {.tokens = tok, .targets = tgt, .B = B, .T = T}, b2 = {.tokens = tok2, .targets = tgt2, .B = B, .T = V + T};
    const float lm = ct_model_forward(&m, &b1), lb = ct_model_forward(&base, &b2);
    CHECK_MSG(memcmp(&lm, &lb, sizeof lm) == 0, "loss %.9g vs the base's %.9g", (double)lm, (double)lb);
    CHECK_EQ_INT((int)m.loss_count, B * T);
    const float *pl = ct_model_logits(&m), *bl = ct_model_logits(&base);
    for (int b = 0; b < B; b++)
        CHECK(memcmp(pl + (size_t)b * T * Vocab, bl + ((size_t)b * (V + T) + V) * Vocab, (size_t)T * Vocab * sizeof(float)) == 0);
    for (int b = 0; b < B; b++)  // per-token values in the batch's layout
        for (int t = 0; t < T; t++) CHECK(m.logprobs[b * T + t] == base.logprobs[b * (V + T) + V + t]);
    ct_model_free(&base);
    ct_model_free(&m);
}

TEST(peft, prompt_rows_act_as_a_prefix_of_tokens_gpt2) { prompt_is_a_prefix_of_tokens(tiny_config(CT_ARCH_GPT2)); }
TEST(peft, prompt_rows_act_as_a_prefix_of_tokens_llama) { prompt_is_a_prefix_of_tokens(tiny_config(CT_ARCH_LLAMA)); }

// Every tensor of the adapter: the analytic gradient against finite differences of the float
// model, along the gradient and on its three largest entries (as tests/test_lora.c does), on a
// packed batch (two documents per row, positions restarting, a loss mask, weights).
static void check_gradients(CtModelConfig cfg, const char *what, CtPeftType type, CtPeftEncoder enc) {
    CtModel m;
    CHECK(peft_model(&m, cfg, type, 3, 12, enc) == 0);
    if (type == CT_PEFT_PROMPT_TUNING)  // normal(0, 1) rows dwarf the tiny model's embeddings: scale them down
        for (size_t i = 0; i < m.peft->n_params; i++) m.peft->params[i] *= 0.3f;
    if (enc == CT_PEFT_ENCODER_LSTM)  // torch's ±1/√H weights pass tiny gradients back through time: widen them
        for (size_t i = m.peft->tensors[1].offset; i < m.peft->n_params; i++) m.peft->params[i] *= 2.5f;
    CtRng rng;
    ct_rng_seed(&rng, 5);
    TinyBatch tb;
    tiny_batch(&tb, &rng, 2, 8, m.config.vocab_size, 1);  // both rows: a first document with counted tokens
    ct_model_zero_grad(&m);
    memset(m.peft->grads, 0, m.peft->n_params * sizeof(float));
    ct_model_forward(&m, &tb.batch);
    ct_model_backward(&m);
    // the LSTM's gates squash: its gradients are ~10× smaller, so a longer step keeps float's
    // rounding of the loss out of the differences (the op's own check, above, is in double)
    const float h = enc == CT_PEFT_ENCODER_LSTM ? 1e-2f : 2e-3f;
    double worst_dir = 0, worst_entry = 0;
    for (int i = 0; i < m.peft->n_tensors; i++) {
        const CtPeftTensor *t = &m.peft->tensors[i];
        float *p = m.peft->params + t->offset, *g = ct_alloc(t->numel * sizeof(float));
        memcpy(g, m.peft->grads + t->offset, t->numel * sizeof(float));
        double norm = 0;
        for (size_t j = 0; j < t->numel; j++) norm += (double)g[j] * g[j];
        norm = sqrt(norm);
        CHECK_MSG(norm > 1e-5, "%s: gradient norm %.3g is too small to check (or wrongly zero)", t->name, norm);
        float *u = ct_alloc(t->numel * sizeof(float));
        for (size_t j = 0; j < t->numel; j++) u[j] = (float)(g[j] / norm);
        double fd = tiny_directional_fd(&m, &tb.batch, p, u, t->numel, h), rel = fabs(fd - norm) / norm;
        if (rel > worst_dir) worst_dir = rel;
        CHECK_MSG(rel < 1e-2, "%s: along the gradient: finite differences %.6g, analytic %.6g", t->name, fd, norm);
        for (int k = 0; k < 3 && (size_t)k < t->numel; k++) {
            size_t best = 0;
            for (size_t j = 1; j < t->numel; j++)
                if (fabsf(g[j]) > fabsf(g[best])) best = j;
            memset(u, 0, t->numel * sizeof(float));
            u[best] = 1;
            double fd1 = tiny_directional_fd(&m, &tb.batch, p, u, t->numel, h);
            double err = fabs(fd1 - g[best]) / fmax(fabs(g[best]), 1e-3);
            if (err > worst_entry) worst_entry = err;
            CHECK_MSG(err < 3e-2, "%s[%zu]: finite differences %.6g, analytic %.6g", t->name, best, fd1, g[best]);
            g[best] = 0;
        }
        ct_free(u);
        ct_free(g);
    }
    printf("    %s %s: %d tensors, worst directional error %.2g, worst entry error %.2g\n", what,
           m.peft->kind->name, m.peft->n_tensors, worst_dir, worst_entry);
    CHECK(m.grads == NULL);  // the frozen base has no gradient buffer
    ct_model_free(&m);
}

TEST(peft, gradient_check_prompt_tuning_gpt2) {
    check_gradients(tiny_config(CT_ARCH_GPT2), "gpt2", CT_PEFT_PROMPT_TUNING, CT_PEFT_ENCODER_MLP);
}
TEST(peft, gradient_check_prompt_tuning_llama) {
    check_gradients(tiny_config(CT_ARCH_LLAMA), "llama", CT_PEFT_PROMPT_TUNING, CT_PEFT_ENCODER_MLP);
}
TEST(peft, gradient_check_prompt_tuning_gemma2) {  // the embedding scale √C applies to the virtual rows too
    check_gradients(tiny_variant_config("gemma2"), "gemma2", CT_PEFT_PROMPT_TUNING, CT_PEFT_ENCODER_MLP);
}
TEST(peft, gradient_check_p_tuning_gpt2) {
    check_gradients(tiny_config(CT_ARCH_GPT2), "gpt2", CT_PEFT_P_TUNING, CT_PEFT_ENCODER_MLP);
}
TEST(peft, gradient_check_p_tuning_lstm_gpt2) {  // PEFT's bidirectional 2-layer LSTM, then its MLP head
    check_gradients(tiny_config(CT_ARCH_GPT2), "gpt2", CT_PEFT_P_TUNING, CT_PEFT_ENCODER_LSTM);
}
TEST(peft, gradient_check_p_tuning_lstm_llama) {
    check_gradients(tiny_config(CT_ARCH_LLAMA), "llama", CT_PEFT_P_TUNING, CT_PEFT_ENCODER_LSTM);
}
TEST(peft, gradient_check_p_tuning_llama) {
    check_gradients(tiny_config(CT_ARCH_LLAMA), "llama", CT_PEFT_P_TUNING, CT_PEFT_ENCODER_MLP);
}

// DPO-style per-token weights set after the forward reach the real rows only; the loss weights of
// the virtual rows stay 0 (their gradient comes from the real rows' attention alone).
TEST(peft, loss_weights_after_the_forward_take_the_batch_layout) {
    CtModelConfig cfg = tiny_config(CT_ARCH_LLAMA);
    CtModel m;
    CHECK(peft_model(&m, cfg, CT_PEFT_PROMPT_TUNING, 2, 0, CT_PEFT_ENCODER_MLP) == 0);
    CtRng rng;
    ct_rng_seed(&rng, 9);
    TinyBatch tb;
    tiny_batch(&tb, &rng, 2, 6, cfg.vocab_size, 0);
    ct_model_forward(&m, &tb.batch);
    float w[12];
    for (int i = 0; i < 12; i++) w[i] = (float)(i % 3);
    ct_model_set_loss_weights(&m, w);
    for (int b = 0; b < 2; b++)
        for (int t = 0; t < 8; t++)
            CHECK(m.batch.loss_weights[b * 8 + t] == (t < 2 ? 0.0f : w[b * 6 + t - 2]));
    ct_model_free(&m);
}

TEST(peft, attach_refuses_what_does_not_fit) {
    CtModelConfig cfg = tiny_config(CT_ARCH_GPT2);
    CtModel m;
    CHECK(ct_model_create(&m, &cfg, ct_ops_cpu(), 2, 8, 0) == 0);
    CtPeftSpec spec = {.type = CT_PEFT_PROMPT_TUNING, .num_virtual_tokens = 4};
    CHECK(ct_peft_attach(&m, &spec) != 0);
    CHECK_CONTAINS(ct_error_message(), "frozen");
    ct_model_free(&m);
    CHECK(ct_model_create(&m, &cfg, ct_ops_cpu(), 2, 8, CT_MODEL_FROZEN) == 0);
    spec.num_virtual_tokens = cfg.max_seq_len;  // 8 + max_seq_len rows: longer than the positions
    CHECK(ct_peft_attach(&m, &spec) != 0);
    CHECK_CONTAINS(ct_error_message(), "max_seq_len");
    spec = (CtPeftSpec){.type = CT_PEFT_P_TUNING, .num_virtual_tokens = 2, .encoder = CT_PEFT_ENCODER_LSTM,
                        .encoder_num_layers = 2, .encoder_dropout = 0.1};
    CHECK(ct_peft_attach(&m, &spec) != 0);
    CHECK_CONTAINS(ct_error_message(), "dropout between layers is not implemented");
    spec.encoder_dropout = 0, spec.encoder_num_layers = 4;
    CHECK(ct_peft_attach(&m, &spec) != 0);
    CHECK_CONTAINS(ct_error_message(), "1 to 3 layers");
    ct_model_free(&m);
}

// PEFT's TEXT init: the base's embedding rows of the text's ids, repeated (or cut) to V.
TEST(peft, text_init_repeats_the_texts_embedding_rows) {
    CtModelConfig cfg = tiny_config(CT_ARCH_LLAMA);
    CtModel m;
    CHECK(ct_model_create(&m, &cfg, ct_ops_cpu(), 1, 4, CT_MODEL_FROZEN) == 0);
    tiny_randomize_params(&m, 11);
    CtPeftSpec spec = {.type = CT_PEFT_PROMPT_TUNING, .num_virtual_tokens = 5, .init = CT_PEFT_INIT_TEXT,
                       .init_ids = {3, 4}, .n_init_ids = 2};
    CHECK(ct_peft_attach(&m, &spec) == 0);
    ct_peft_init(&m, 1);
    const int C = cfg.d_model, ids[5] = {3, 4, 3, 4, 3};
    for (int v = 0; v < 5; v++)
        CHECK(memcmp(m.peft->params + (size_t)v * C, m.w.wte + (size_t)ids[v] * C, C * sizeof(float)) == 0);
    ct_model_free(&m);
}
