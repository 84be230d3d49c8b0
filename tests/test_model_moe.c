// The Mixture-of-Experts model (train/model/model_moe.c): the whole model's gradient with the
// router losses against finite differences for every router kind, the MoE layer reducing to the
// dense MLP where it must, generation with the cache, recompute, the routing statistics, the
// aux-free bias rule and the bias staying out of AdamW's reach, the parameter layout and FLOPs.
//
// The gradient check runs the float model, as tests/test_model_grad.c does for the dense
// variants (the ops' own checks in double are tests/test_ops_grad_moe.c). Top-k selection is
// piecewise constant: a finite difference is only meaningful when the perturbed forwards choose
// the same experts as the unperturbed one, so each difference checks that and, where a token
// crossed a tie, retries with a smaller step.
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "kernels/ops.h"
#include "optim/adamw.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/loop/train_common.h"
#include "train/model/generate.h"
#include "train/model/model_internal.h"

// The tiny llama with MoE MLPs: 4 experts of hidden size 8, top 2.
static CtModelConfig moe_config(CtRouter router, int shared, int gate, int layer_freq) {
    CtModelConfig c = tiny_config(CT_ARCH_LLAMA);
    c.n_experts = 4;
    c.top_k = 2;
    c.moe_d_ff = 8;
    c.n_shared_experts = shared;
    c.shared_expert_gate = gate;
    c.moe_layer_freq = layer_freq;
    c.router = router;
    return c;
}

// What backward differentiates: the LM loss plus the router losses at m->moe's coefficients.
static double objective(CtModel *m, const CtBatch *b) {
    ct_model_moe_reset(m);
    double loss = ct_model_forward(m, b);
    return loss + m->moe.aux_coef * m->moe.aux_loss_sum + m->moe.z_coef * m->moe.z_loss_sum;
}

// Every MoE layer's chosen experts of the last forward, concatenated ([MoE layers × N × K]).
static void chosen_experts(const CtModel *m, int N, int32_t *out) {
    const int K = m->config.top_k;
    for (int l = 0, i = 0; l < m->config.n_layer; l++)
        if (ct_model_layer_is_moe(&m->config, l)) memcpy(out + (size_t)i++ * N * K, ct_model_moe_acts(m, l).ids,
                                                         sizeof(int32_t) * (size_t)N * K);
}

typedef struct {
    CtModel *m;
    const CtBatch *b;
    int32_t *ids0, *ids;  // the unperturbed selection, scratch
    size_t n_ids;
    int retries, gave_up;
} FdCtx;

// d objective / d t along u by central differences, with a step that leaves the selection alone.
static double directional_fd(FdCtx *x, float *p, const float *u, size_t n, float h, int *ok) {
    float *keep = ct_alloc(n * sizeof(float));
    memcpy(keep, p, n * sizeof(float));
    double result = 0;
    *ok = 0;
    for (int attempt = 0; attempt < 4 && !*ok; attempt++, h /= 4) {
        for (size_t i = 0; i < n; i++) p[i] = keep[i] + h * u[i];
        double lp = objective(x->m, x->b);
        chosen_experts(x->m, x->b->B * x->b->T, x->ids);
        int same = memcmp(x->ids, x->ids0, x->n_ids * sizeof(int32_t)) == 0;
        for (size_t i = 0; i < n; i++) p[i] = keep[i] - h * u[i];
        double lm = objective(x->m, x->b);
        chosen_experts(x->m, x->b->B * x->b->T, x->ids);
        same = same && memcmp(x->ids, x->ids0, x->n_ids * sizeof(int32_t)) == 0;
        result = (lp - lm) / (2.0 * h);
        *ok = same;
        x->retries += !same;
    }
    x->gave_up += !*ok;
    memcpy(p, keep, n * sizeof(float));
    ct_free(keep);
    return result;
}

static int is_selection_bias(const CtParamEntry *e) { return strstr(e->name, "e_score_correction_bias") != NULL; }

static void check_moe_gradients(CtModelConfig cfg, const char *what, int recompute) {
    CtModel m;
    CHECK(ct_model_create(&m, &cfg, ct_ops_cpu(), 2, 8, recompute) == 0);
    tiny_randomize_params(&m, 42);  // the selection bias too (0.1·normal): it changes the choice
    m.moe.aux_coef = 0.5f;  // large enough that the losses' terms are well above the check's noise
    m.moe.z_coef = 0.05f;
    CtRng rng;
    ct_rng_seed(&rng, 3);
    TinyBatch tb;
    tiny_batch(&tb, &rng, 2, 8, cfg.vocab_size, 1);
    const int N = 16;
    ct_model_zero_grad(&m);
    objective(&m, &tb.batch);
    ct_model_backward(&m);
    float *grads = ct_alloc(m.n_params * sizeof(float));
    memcpy(grads, m.grads, m.n_params * sizeof(float));
    const size_t n_ids = (size_t)m.moe.n_layers * N * cfg.top_k;
    FdCtx x = {.m = &m, .b = &tb.batch, .ids0 = ct_alloc(n_ids * sizeof(int32_t)),
               .ids = ct_alloc(n_ids * sizeof(int32_t)), .n_ids = n_ids};
    chosen_experts(&m, N, x.ids0);

    const float h = 1e-2f;
    double worst_dir = 0, worst_entry = 0;
    int checked = 0;
    for (int i = 0; i < m.n_tensors; i++) {
        const CtParamEntry *e = &m.table[i];
        float *p = m.params + e->offset, *g = grads + e->offset;
        if (is_selection_bias(e)) {  // chooses, never weighs: no gradient at all
            for (size_t j = 0; j < e->numel; j++) CHECK_MSG(g[j] == 0, "%s[%zu] has a gradient %g", e->name, j, g[j]);
            continue;
        }
        double norm = 0;
        for (size_t j = 0; j < e->numel; j++) norm += (double)g[j] * g[j];
        norm = sqrt(norm);
        CHECK_MSG(norm > 1e-4, "%s: gradient norm %.3g is too small to check (or wrongly zero)", e->name, norm);
        float *u = ct_alloc(e->numel * sizeof(float));
        for (size_t j = 0; j < e->numel; j++) u[j] = (float)(g[j] / norm);
        int ok;
        double fd = directional_fd(&x, p, u, e->numel, h, &ok);
        double rel = fabs(fd - norm) / norm;
        if (ok && rel > worst_dir) worst_dir = rel;
        CHECK_MSG(!ok || rel < 1e-2, "%s %s: along the gradient: finite differences %.6g, analytic %.6g (rel %.3g)", what,
                  e->name, fd, norm, rel);
        for (int k = 0; k < 3 && (size_t)k < e->numel; k++) {  // the three largest entries, each alone
            size_t best = 0;
            for (size_t j = 1; j < e->numel; j++)
                if (fabsf(g[j]) > fabsf(g[best])) best = j;
            memset(u, 0, e->numel * sizeof(float));
            u[best] = 1;
            double fd1 = directional_fd(&x, p, u, e->numel, h, &ok);
            double err = fabs(fd1 - g[best]) / fmax(fabs(g[best]), 1e-3);
            if (ok && err > worst_entry) worst_entry = err;
            CHECK_MSG(!ok || err < 3e-2, "%s %s[%zu]: finite differences %.6g, analytic %.6g", what, e->name, best, fd1,
                      g[best]);
            g[best] = 0;
        }
        checked++;
        ct_free(u);
    }
    // a selection that flips under every step tried leaves that difference unchecked: rare, never most
    CHECK_MSG(x.gave_up <= checked / 10, "%s: %d differences crossed a routing tie at every step", what, x.gave_up);
    printf("    %s%s: worst directional error %.2g, worst entry error %.2g over %d tensors (%d retries, %d skipped)\n",
           what, recompute ? " (recompute)" : "", worst_dir, worst_entry, checked, x.retries, x.gave_up);
    ct_free(x.ids0);
    ct_free(x.ids);
    ct_free(grads);
    ct_model_free(&m);
}

TEST(model_moe, gradient_check_softmax_router_with_shared_expert_and_losses) {
    check_moe_gradients(moe_config(CT_ROUTER_SOFTMAX, 1, 0, 1), "softmax, shared", 0);
}
TEST(model_moe, gradient_check_softmax_norm_router_mixed_dense_layers) {
    check_moe_gradients(moe_config(CT_ROUTER_SOFTMAX_NORM, 0, 0, 2), "softmax_norm, every 2nd layer", 0);
}
TEST(model_moe, gradient_check_topk_softmax_router_gated_shared_expert) {
    check_moe_gradients(moe_config(CT_ROUTER_TOPK_SOFTMAX, 2, 1, 1), "topk_softmax, 2 shared, gate", 0);
}
TEST(model_moe, gradient_check_sigmoid_router_with_bias_mixed_layers) {
    check_moe_gradients(moe_config(CT_ROUTER_SIGMOID, 1, 1, 2), "sigmoid, shared, gate, every 2nd layer", 0);
}
TEST(model_moe, gradient_check_sigmoid_norm_router_scaled_recompute) {
    CtModelConfig c = moe_config(CT_ROUTER_SIGMOID_NORM, 1, 0, 1);
    c.router_scale = 2.5f;
    check_moe_gradients(c, "sigmoid_norm, scale 2.5, shared", 1);
}

// The losses reach the router: its gradient changes when their coefficients do (the check above
// would pass with terms too small to see; this one fails if backward dropped them).
TEST(model_moe, router_losses_change_the_router_gradient) {
    const CtRouter routers[] = {CT_ROUTER_SOFTMAX, CT_ROUTER_SIGMOID_NORM};
    for (int r = 0; r < 2; r++) {
        CtModelConfig c = moe_config(routers[r], 0, 0, 1);
        CtModel m;
        CHECK(ct_model_create(&m, &c, ct_ops_cpu(), 2, 8, 0) == 0);
        tiny_randomize_params(&m, 5);
        CtRng rng;
        ct_rng_seed(&rng, 3);
        TinyBatch tb;
        tiny_batch(&tb, &rng, 2, 8, c.vocab_size, 0);
        const CtParamEntry *router = NULL;
        for (int i = 0; i < m.n_tensors && !router; i++)
            if (strcmp(m.table[i].name, "model.layers.0.mlp.gate.weight") == 0) router = &m.table[i];
        CHECK(router != NULL);
        float without[64 * 16], with[64 * 16];
        for (int pass = 0; pass < 2; pass++) {
            m.moe.aux_coef = pass ? 0.5f : 0;
            m.moe.z_coef = pass ? 0.05f : 0;
            ct_model_zero_grad(&m);
            ct_model_forward(&m, &tb.batch);
            ct_model_backward(&m);
            memcpy(pass ? with : without, m.grads + router->offset, router->numel * sizeof(float));
        }
        double diff = 0, norm = 0;
        for (size_t j = 0; j < router->numel; j++) {
            diff += (with[j] - without[j]) * (double)(with[j] - without[j]);
            norm += (double)without[j] * without[j];
        }
        CHECK_MSG(sqrt(diff) > 0.05 * sqrt(norm), "router %d: the losses moved its gradient by only %.3g of %.3g", r,
                  sqrt(diff), sqrt(norm));
        ct_model_free(&m);
    }
}

// With every expert chosen (top_k = n_experts), the softmax_norm weights sum to 1: identical
// experts then give exactly the dense MLP with their weights, the router gets no gradient from
// the LM loss, and the experts' gradients sum to the dense MLP's.
TEST(model_moe, all_experts_identical_equals_the_dense_model) {
    CtModelConfig dense_cfg = tiny_config(CT_ARCH_LLAMA), moe_cfg = moe_config(CT_ROUTER_SOFTMAX_NORM, 0, 0, 1);
    moe_cfg.top_k = moe_cfg.n_experts;
    dense_cfg.d_ff = moe_cfg.moe_d_ff;
    CtModel dense, moe;
    CHECK(ct_model_create(&dense, &dense_cfg, ct_ops_cpu(), 2, 8, 0) == 0);
    CHECK(ct_model_create(&moe, &moe_cfg, ct_ops_cpu(), 2, 8, 0) == 0);
    tiny_randomize_params(&dense, 11);
    tiny_randomize_params(&moe, 12);  // the router: random
    const int C = 16, F = 8, E = moe_cfg.n_experts, L = 2;
    const size_t expert = (size_t)3 * F * C;
    // everything but the MLPs by name, in the same table order up to the MLP tensors
    for (int i = 0, j = 0; i < dense.n_tensors; i++) {
        const CtParamEntry *d = &dense.table[i];
        if (strstr(d->name, "mlp.")) continue;
        while (strcmp(moe.table[j].name, d->name) != 0) j++;
        memcpy(moe.params + moe.table[j].offset, dense.params + d->offset, d->numel * sizeof(float));
    }
    for (int l = 0; l < L; l++)
        for (int e = 0; e < E; e++)  // gate|up then down: the dense layout is the same run of floats
            memcpy(moe.w.layers[l].experts_w + e * expert, dense.w.layers[l].fc_w, expert * sizeof(float));
    CtRng rng;
    ct_rng_seed(&rng, 7);
    TinyBatch tb;
    tiny_batch(&tb, &rng, 2, 8, dense_cfg.vocab_size, 1);
    ct_model_zero_grad(&dense);
    ct_model_zero_grad(&moe);
    const float ld = ct_model_forward(&dense, &tb.batch), lm = ct_model_forward(&moe, &tb.batch);
    CHECK_NEAR(lm, ld, 1e-5 * fabs(ld));
    ct_model_backward(&dense);
    ct_model_backward(&moe);
    double worst = 0, scale = 0;
    for (int i = 0, j = 0; i < dense.n_tensors; i++) {  // the shared tensors' gradients agree
        const CtParamEntry *d = &dense.table[i];
        if (strstr(d->name, "mlp.")) continue;
        while (strcmp(moe.table[j].name, d->name) != 0) j++;
        for (size_t k = 0; k < d->numel; k++) {
            worst = fmax(worst, fabs(moe.grads[moe.table[j].offset + k] - dense.grads[d->offset + k]));
            scale = fmax(scale, fabs(dense.grads[d->offset + k]));
        }
    }
    CHECK_MSG(worst < 1e-4 * scale, "non-MLP gradients differ by %g (largest %g)", worst, scale);
    worst = 0;
    double router = 0;
    for (int l = 0; l < L; l++) {
        const float *ge = moe.g.layers[l].experts_w, *gd = dense.g.layers[l].fc_w;
        for (size_t k = 0; k < expert; k++) {
            double sum = 0;
            for (int e = 0; e < E; e++) sum += ge[e * expert + k];
            worst = fmax(worst, fabs(sum - gd[k]));
        }
        for (int k = 0; k < E * C; k++) router = fmax(router, fabs(moe.g.layers[l].router_w[k]));
    }
    CHECK_MSG(worst < 1e-4 * scale, "the experts' gradients sum to the dense MLP's within %g (largest %g)", worst, scale);
    CHECK_MSG(router < 1e-5 * scale, "the router's gradient is %g (largest gradient %g): it should vanish", router, scale);
    ct_model_free(&dense);
    ct_model_free(&moe);
}

// Decoding one row at a time through the cache runs the same MoE forward over N = 1.
TEST(model_moe, kv_cache_generation_equals_the_full_forward) {
    const CtModelConfig configs[] = {moe_config(CT_ROUTER_SIGMOID_NORM, 1, 1, 2), moe_config(CT_ROUTER_TOPK_SOFTMAX, 0, 0, 1)};
    for (int i = 0; i < 2; i++) {
        const CtModelConfig c = configs[i];
        const int T = 12;
        CtModel m;
        CHECK_EQ_INT(ct_model_create(&m, &c, ct_ops_cpu(), 1, T, 0), 0);
        tiny_randomize_params(&m, 5);
        int32_t tokens[12];
        CtRng rng;
        ct_rng_seed(&rng, 3);
        for (int t = 0; t < T; t++) tokens[t] = (int32_t)ct_rng_below(&rng, (uint32_t)c.vocab_size);
        CtBatch batch = {.tokens = tokens, .B = 1, .T = T};
        ct_model_forward(&m, &batch);
        const float *full = ct_model_logits(&m);
        CtGenerator g;
        ct_generator_init(&g, &m, T);
        double worst = 0;
        for (int t = 0; t < T; t++) {
            const float *logits = ct_generator_feed(&g, tokens[t]), *row = full + (size_t)t * c.vocab_size;
            double scale = 0;
            for (int v = 0; v < c.vocab_size; v++) scale = fmax(scale, fabs(row[v]));
            for (int v = 0; v < c.vocab_size; v++) worst = fmax(worst, fabs(logits[v] - row[v]) / scale);
        }
        CHECK_MSG(worst < 1e-4, "config %d: cached logits differ from the full forward by %g", i, worst);
        ct_generator_free(&g);
        ct_model_free(&m);
    }
}

TEST(model_moe, recompute_gives_the_same_gradients) {
    CtModelConfig c = moe_config(CT_ROUTER_SIGMOID, 1, 1, 2);
    CtModel a, b;
    CHECK(ct_model_create(&a, &c, ct_ops_cpu(), 2, 8, 0) == 0);
    CHECK(ct_model_create(&b, &c, ct_ops_cpu(), 2, 8, CT_MODEL_RECOMPUTE) == 0);
    tiny_randomize_params(&a, 9);
    memcpy(b.params, a.params, a.n_params * sizeof(float));
    a.moe.aux_coef = b.moe.aux_coef = 0.01f;
    a.moe.z_coef = b.moe.z_coef = 0.001f;
    CtRng rng;
    ct_rng_seed(&rng, 4);
    TinyBatch tb;
    tiny_batch(&tb, &rng, 2, 8, c.vocab_size, 1);
    ct_model_zero_grad(&a);
    ct_model_zero_grad(&b);
    CHECK(ct_model_forward(&a, &tb.batch) == ct_model_forward(&b, &tb.batch));
    ct_model_backward(&a);
    ct_model_backward(&b);
    CHECK(memcmp(a.grads, b.grads, a.n_params * sizeof(float)) == 0);
    CHECK(b.recompute_saved_bytes > 0);
    CHECK(b.activation_bytes + b.recompute_saved_bytes == a.activation_bytes);
    ct_model_free(&a);
    ct_model_free(&b);
}

// Every token reaches K experts (dropless): each layer's counts sum to N·K per forward; the aux
// loss is E·Σ_e f_e·mean_n p[n,e] recomputed here from the chosen ids and the probabilities.
TEST(model_moe, load_counts_sum_to_tokens_times_top_k_and_losses_match_the_routing) {
    CtModelConfig c = moe_config(CT_ROUTER_SOFTMAX, 0, 0, 1);
    c.n_layer = 3;
    CtModel m;
    CHECK(ct_model_create(&m, &c, ct_ops_cpu(), 2, 8, 0) == 0);
    CHECK_EQ_INT(m.moe.n_layers, 3);
    CHECK_EQ_INT(m.moe.E, 4);
    tiny_randomize_params(&m, 2);
    CtRng rng;
    ct_rng_seed(&rng, 6);
    TinyBatch tb;
    tiny_batch(&tb, &rng, 2, 8, c.vocab_size, 0);
    const int N = 16, K = c.top_k, E = c.n_experts;
    ct_model_moe_reset(&m);
    ct_model_forward(&m, &tb.batch);
    double aux = 0, z = 0;
    for (int l = 0; l < 3; l++) {
        const CtMoeActs a = ct_model_moe_acts(&m, l);
        double sum = 0, f[4] = {0}, q[4] = {0};
        for (int e = 0; e < E; e++) sum += m.moe.load[l * E + e];
        CHECK_NEAR(sum, N * K, 0);
        for (int n = 0; n < N * K; n++) f[a.ids[n]] += 1.0 / N;
        for (int e = 0; e < E; e++) CHECK_NEAR(m.moe.load[l * E + e], f[e] * N, 1e-9);
        for (int n = 0; n < N; n++) {
            for (int e = 0; e < E; e++) q[e] += a.probs[n * E + e] / N;
            z += (double)a.lse[n] * a.lse[n] / N / 3;
        }
        for (int e = 0; e < E; e++) aux += E * f[e] * q[e] / 3;
    }
    CHECK_EQ_INT(m.moe.n_forwards, 1);
    CHECK_NEAR(m.moe.aux_loss_sum, aux, 1e-6);
    CHECK_NEAR(m.moe.z_loss_sum, z, 1e-5);
    ct_model_forward(&m, &tb.batch);  // a second forward adds
    CHECK_EQ_INT(m.moe.n_forwards, 2);
    double sum = 0;
    for (int e = 0; e < E; e++) sum += m.moe.load[e];
    CHECK_NEAR(sum, 2 * N * K, 0);
    CHECK_NEAR(m.moe.aux_loss_sum, 2 * aux, 1e-6);
    ct_model_moe_reset(&m);
    CHECK_EQ_INT(m.moe.n_forwards, 0);
    CHECK(m.moe.aux_loss_sum == 0 && m.moe.z_loss_sum == 0 && m.moe.load[0] == 0);
    ct_model_free(&m);
}

// bias_e += rate·sign(mean load − load_e), per MoE layer; nothing else moves.
TEST(model_moe, update_bias_moves_each_expert_toward_the_mean_load) {
    CtModelConfig c = moe_config(CT_ROUTER_SIGMOID_NORM, 0, 0, 2);
    c.n_layer = 4;  // MoE layers 1 and 3
    CtModel m;
    CHECK(ct_model_create(&m, &c, ct_ops_cpu(), 1, 4, 0) == 0);
    tiny_randomize_params(&m, 1);
    float *before = ct_alloc(m.n_params * sizeof(float));
    memcpy(before, m.params, m.n_params * sizeof(float));
    const double load[2 * 4] = {10, 2, 4, 4, /* mean 5 */ 3, 3, 3, 3 /* balanced */};
    ct_model_moe_update_bias(&m, load, 0.125f);
    const float *b1 = m.w.layers[1].router_bias, *b3 = m.w.layers[3].router_bias;
    const size_t o1 = (size_t)(b1 - m.params), o3 = (size_t)(b3 - m.params);
    CHECK(m.w.layers[0].router_bias == NULL && m.w.layers[2].router_bias == NULL);
    const float expect1[4] = {-0.125f, 0.125f, 0.125f, 0.125f};
    for (int e = 0; e < 4; e++) {
        CHECK(b1[e] == before[o1 + e] + expect1[e]);
        CHECK(b3[e] == before[o3 + e]);
    }
    for (size_t i = 0; i < m.n_params; i++)
        if (!(i >= o1 && i < o1 + 4)) CHECK_MSG(m.params[i] == before[i], "parameter %zu moved", i);
    ct_free(before);
    ct_model_free(&m);
}

// The selection bias is 1-D: the optimizer's spans leave it undecayed, its gradient is zero,
// so AdamW steps with weight decay never change it, while the router's weights do change.
TEST(model_moe, adamw_never_moves_the_selection_bias) {
    CtModelConfig c = moe_config(CT_ROUTER_SIGMOID, 1, 0, 1);
    CtModel m;
    CHECK(ct_model_create(&m, &c, ct_ops_cpu(), 2, 8, 0) == 0);
    tiny_randomize_params(&m, 3);
    m.moe.aux_coef = 0.01f;
    m.moe.z_coef = 0.001f;
    const size_t bias = (size_t)(m.w.layers[0].router_bias - m.params), router = (size_t)(m.w.layers[0].router_w - m.params);
    float keep_bias[4], keep_router = m.params[router];
    memcpy(keep_bias, m.params + bias, sizeof keep_bias);
    CtAdamW opt;
    ct_adamw_init(&opt, m.n_params, 1e-2, 0.9, 0.95, 1e-8, 0.1);
    ct_train_set_decay_spans(&m, &opt, 1);
    for (int s = 0; s < opt.n_spans; s++)
        if (opt.spans[s].offset == bias) CHECK(!opt.spans[s].decay);
    CtRng rng;
    ct_rng_seed(&rng, 8);
    TinyBatch tb;
    tiny_batch(&tb, &rng, 2, 8, c.vocab_size, 0);
    for (int step = 0; step < 3; step++) {
        ct_model_zero_grad(&m);
        ct_model_forward(&m, &tb.batch);
        ct_model_backward(&m);
        for (int e = 0; e < 4; e++) CHECK(m.grads[bias + e] == 0);
        ct_adamw_step(&opt, m.params, m.grads);
    }
    CHECK(memcmp(keep_bias, m.params + bias, sizeof keep_bias) == 0);
    CHECK(m.params[router] != keep_router);
    ct_adamw_free(&opt);
    ct_model_free(&m);
}

TEST(model_moe, parameter_table_names_and_expert_stride) {
    CtModelConfig c = moe_config(CT_ROUTER_SIGMOID_NORM, 2, 1, 2);
    CtModel m;
    CHECK(ct_model_create(&m, &c, ct_ops_cpu(), 1, 4, 0) == 0);
    const size_t C = 16, F = 8, E = 4, FS = 16;
    const CtLayerTensors *L0 = &m.w.layers[0], *L1 = &m.w.layers[1];
    CHECK(L0->fc_w && L0->fc_out_w && !L0->router_w && !L0->experts_w);  // layer 0 dense (freq 2)
    CHECK(!L1->fc_w && !L1->fc_out_w && L1->router_w && L1->router_bias && L1->experts_w);
    CHECK(L1->shared_fc_w && L1->shared_fc_out_w && L1->shared_gate_w);
    int found = 0;
    for (int i = 0; i < m.n_tensors; i++) {
        const CtParamEntry *e = &m.table[i];
        const float *p = m.params + e->offset;
        if (strcmp(e->name, "model.layers.1.mlp.gate.weight") == 0)
            found += p == L1->router_w && e->shape[0] == (int64_t)E && e->shape[1] == (int64_t)C;
        if (strcmp(e->name, "model.layers.1.mlp.gate.e_score_correction_bias") == 0)
            found += p == L1->router_bias && e->ndim == 1 && e->init == CT_INIT_ZEROS;
        if (strcmp(e->name, "model.layers.1.mlp.experts.2.up_proj.weight") == 0)
            found += p == L1->experts_w + 2 * 3 * F * C + F * C && e->shape[0] == (int64_t)F;
        if (strcmp(e->name, "model.layers.1.mlp.experts.3.down_proj.weight") == 0)
            found += p == L1->experts_w + 3 * 3 * F * C + 2 * F * C && e->shape[0] == (int64_t)C &&
                     e->shape[1] == (int64_t)F && e->init == CT_INIT_NORMAL_RESIDUAL;
        if (strcmp(e->name, "model.layers.1.mlp.shared_expert.up_proj.weight") == 0)
            found += p == L1->shared_fc_w + FS * C && e->shape[0] == (int64_t)FS;
        if (strcmp(e->name, "model.layers.1.mlp.shared_expert.down_proj.weight") == 0)
            found += p == L1->shared_fc_out_w && e->shape[1] == (int64_t)FS;
        if (strcmp(e->name, "model.layers.1.mlp.shared_expert_gate.weight") == 0)
            found += p == L1->shared_gate_w && e->shape[0] == 1 && e->shape[1] == (int64_t)C;
        CHECK_MSG(!strstr(e->name, "layers.1.mlp.gate_proj") && !strstr(e->name, "layers.0.mlp.experts"), "%s", e->name);
    }
    CHECK_EQ_INT(found, 7);
    ct_model_free(&m);
}

// MFU counts what a token runs through: the router, top_k experts and the shared expert.
TEST(model_moe, flops_count_the_active_parameters) {
    CtModelConfig c = moe_config(CT_ROUTER_SOFTMAX, 2, 1, 2), dense = tiny_config(CT_ARCH_LLAMA);
    c.n_layer = dense.n_layer = 4;  // MoE layers 1 and 3
    const double C = 16, F = 8, FS = 16, dense_mlp = 3 * 24 * C;
    const double moe_mlp = 4 * C + 2 * 3 * F * C + 3 * FS * C + C;
    CHECK_NEAR(ct_model_flops_per_token(&c, 8, 0) - ct_model_flops_per_token(&dense, 8, 0),
               6 * 2 * (moe_mlp - dense_mlp), 1e-6);
    const double before = ct_model_flops_per_token(&c, 8, 0);
    c.n_experts = 8;  // more experts at the same top_k: only the router grows
    CHECK_NEAR(ct_model_flops_per_token(&c, 8, 0) - before, 6 * 2 * 4 * C, 1e-6);
}

// ---- the layer as a plain loop over each token's experts, in double, from the stored input ----
static double silu(double g) { return g / (1 + exp(-g)); }

// y[C] += w·down(silu(gate·x) ⊙ up·x) of the SwiGLU whose gate|up [2F,C] is at fc and down [C,F] at down.
static void swiglu_mlp(double *y, const float *x, const float *fc, const float *down, int C, int F, double w) {
    double h[64];
    for (int f = 0; f < F; f++) {
        double g = 0, u = 0;
        for (int c = 0; c < C; c++) {
            g += (double)fc[(size_t)f * C + c] * x[c];
            u += (double)fc[(size_t)(F + f) * C + c] * x[c];
        }
        h[f] = silu(g) * u;
    }
    for (int c = 0; c < C; c++) {
        double s = 0;
        for (int f = 0; f < F; f++) s += (double)down[(size_t)c * F + f] * h[f];
        y[c] += w * s;
    }
}

// out[n] = Σ_k w_k·expert_k(x_n) + σ(x_n·g)·shared(x_n) with the k experts of largest
// sigmoid(z) + bias, weights sigmoid(z) normalised over the k, times the router scale (sigmoid_norm).
static void naive_sigmoid_norm_layer(const CtModel *m, int l, const float *x, int N, double *out) {
    const CtModelConfig *c = &m->config;
    const CtLayerTensors *p = &m->w.layers[l];
    const int C = c->d_model, E = c->n_experts, K = c->top_k, F = c->moe_d_ff, FS = c->n_shared_experts * F;
    for (int n = 0; n < N; n++) {
        const float *xn = x + (size_t)n * C;
        double s[16], score[16];
        for (int e = 0; e < E; e++) {
            double z = 0;
            for (int j = 0; j < C; j++) z += (double)p->router_w[(size_t)e * C + j] * xn[j];
            s[e] = 1 / (1 + exp(-z));
            score[e] = s[e] + p->router_bias[e];
        }
        int chosen[16];
        double sum = 0;
        for (int k = 0; k < K; k++) {
            int best = -1;
            for (int e = 0; e < E; e++) {
                int taken = 0;
                for (int j = 0; j < k; j++) taken |= chosen[j] == e;
                if (!taken && (best < 0 || score[e] > score[best])) best = e;
            }
            chosen[k] = best;
            sum += s[best];
        }
        double *y = out + (size_t)n * C;
        memset(y, 0, sizeof(double) * (size_t)C);
        for (int k = 0; k < K; k++) {
            const float *fc = p->experts_w + (size_t)chosen[k] * 3 * F * C;
            swiglu_mlp(y, xn, fc, fc + (size_t)2 * F * C, C, F, ct_model_router_scale(c) * s[chosen[k]] / sum);
        }
        double gz = 0;
        for (int j = 0; j < C; j++) gz += (double)p->shared_gate_w[j] * xn[j];
        swiglu_mlp(y, xn, p->shared_fc_w, p->shared_fc_out_w, C, FS, 1 / (1 + exp(-gz)));
    }
}

TEST(model_moe, layer_equals_a_loop_over_each_tokens_experts) {
    CtModelConfig c = moe_config(CT_ROUTER_SIGMOID_NORM, 2, 1, 2);
    c.router_scale = 1.5f;
    CtModel m;
    CHECK(ct_model_create(&m, &c, ct_ops_cpu(), 2, 8, 0) == 0);
    tiny_randomize_params(&m, 21);
    CtRng rng;
    ct_rng_seed(&rng, 2);
    TinyBatch tb;
    tiny_batch(&tb, &rng, 2, 8, c.vocab_size, 0);
    ct_model_forward(&m, &tb.batch);
    const int N = 16, C = c.d_model, l = 1;  // layer 1: MoE (freq 2)
    const float *x = ct_act_ln2(&m, l);     // the layer's MLP input, as the forward kept it
    float out[16 * 16];
    double expect[16 * 16];
    const CtMoeActs acts = ct_model_moe_acts(&m, l);
    ct_model_moe_forward(&m, l, &acts, x, out, N);
    naive_sigmoid_norm_layer(&m, l, x, N, expect);
    double worst = 0, scale = 0;
    for (int i = 0; i < N * C; i++) {
        worst = fmax(worst, fabs(out[i] - expect[i]));
        scale = fmax(scale, fabs(expect[i]));
    }
    printf("    max |layer − loop| = %.2g of max |out| %.3g\n", worst, scale);
    CHECK_MSG(worst <= 1e-6 * scale, "the MoE layer differs from the loop by %g (largest output %g)", worst, scale);
    ct_model_free(&m);
}
