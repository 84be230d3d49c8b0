// LoRA on Mixture-of-Experts models, in the model: adapters on the routed experts' fused
// parameters (PEFT's target_parameters: one A and B per expert, on the expert's block of sorted
// rows), on the shared expert's modules and gate, and on attention; their gradients through the
// whole model against finite differences, training that moves the adapters only, merging into
// each expert's weights, and the targets a user can and cannot name.
#include <math.h>
#include <string.h>

#include "checkpoints/peft.h"
#include "core/alloc.h"
#include "core/error.h"
#include "kernels/ops.h"
#include "optim/adamw.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/interop/lora_peft.h"
#include "train/model/generate.h"
#include "train/model/lora.h"
#include "train/model/model_internal.h"

// Qwen2-MoE's shape: layer 0 dense, layer 1 MoE (4 experts, top 2) with a shared expert and its
// sigmoid gate.
static CtModelConfig qwen2_moe_config(void) {
    CtModelConfig c = tiny_config(CT_ARCH_LLAMA);
    c.n_experts = 4;
    c.top_k = 2;
    c.moe_d_ff = 8;
    c.n_shared_experts = 1;
    c.shared_expert_gate = 1;
    c.moe_layer_freq = 2;
    c.router = CT_ROUTER_SOFTMAX;
    return c;
}
// Mixtral's: every layer MoE, top-k then softmax, no shared expert.
static CtModelConfig mixtral_config(void) {
    CtModelConfig c = tiny_config(CT_ARCH_LLAMA);
    c.n_experts = 4;
    c.top_k = 2;
    c.moe_d_ff = 12;
    c.router = CT_ROUTER_TOPK_SOFTMAX;
    return c;
}

static CtLoraSpec moe_spec(int r, const char *targets, const char *params) {
    CtLoraSpec s = {.r = r, .alpha = 2.0 * r};
    snprintf(s.targets, sizeof s.targets, "%s", targets);
    snprintf(s.target_parameters, sizeof s.target_parameters, "%s", params);
    return s;
}

// A frozen tiny MoE model with random base weights and the spec's adapters.
static int moe_lora_model(CtModel *m, CtModelConfig cfg, const CtLoraSpec *s, int recompute) {
    if (ct_model_create(m, &cfg, ct_ops_cpu(), 2, 8, CT_MODEL_FROZEN | (recompute ? CT_MODEL_RECOMPUTE : 0)) != 0)
        return -1;
    tiny_randomize_params(m, 42);
    if (ct_lora_attach(m, s) != 0) return -1;
    ct_lora_init(m, 7);
    return 0;
}

// Every MoE layer's chosen experts of the last forward, concatenated (N = 16 tokens).
static void routing_of(const CtModel *m, int32_t *ids) {
    const size_t NK = (size_t)16 * m->config.top_k;
    for (int l = 0, i = 0; l < m->config.n_layer; l++)
        if (ct_model_layer_is_moe(&m->config, l)) memcpy(ids + NK * i++, ct_model_moe_acts(m, l).ids, NK * 4);
}

// d loss / d buffer along u by central differences; *same_routing 0 when a perturbed forward
// chose other experts (top-k is not differentiable there, so the difference would not test
// the gradient).
static double directional_fd(CtModel *m, const CtBatch *b, float *p, const float *u, size_t n, float h,
                             int *same_routing) {
    const size_t n_ids = (size_t)16 * m->config.top_k * ct_model_moe_layers(&m->config);
    int32_t *ref = ct_alloc(n_ids * 4), *got = ct_alloc(n_ids * 4);
    ct_model_forward(m, b);
    routing_of(m, ref);
    float *keep = ct_alloc(n * sizeof(float));
    memcpy(keep, p, n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = keep[i] + h * u[i];
    double lp = ct_model_forward(m, b);
    routing_of(m, got);
    *same_routing = memcmp(ref, got, n_ids * 4) == 0;
    for (size_t i = 0; i < n; i++) p[i] = keep[i] - h * u[i];
    double lm = ct_model_forward(m, b);
    routing_of(m, got);
    *same_routing &= memcmp(ref, got, n_ids * 4) == 0;
    memcpy(p, keep, n * sizeof(float));
    ct_free(keep), ct_free(ref), ct_free(got);
    return (lp - lm) / (2.0 * h);
}

// Every adapter's A and B (an expert parameter's: all experts' at once, and each expert's
// largest entries): the analytic gradient against finite differences of the float model.
static void check_gradients(CtModelConfig cfg, const char *what, const CtLoraSpec *s, int recompute) {
    CtModel m;
    CHECK(moe_lora_model(&m, cfg, s, recompute) == 0);
    if (ct_test_failed()) return;
    CtRng rng;
    ct_rng_seed(&rng, 5);
    for (size_t i = 0; i < m.lora->n_params; i++) m.lora->params[i] = (float)(0.3 * ct_rng_normal(&rng));
    TinyBatch tb;
    tiny_batch(&tb, &rng, 2, 8, m.config.vocab_size, 1);
    ct_model_zero_grad(&m);
    ct_model_forward(&m, &tb.batch);
    ct_model_backward(&m);
    float *grads = ct_alloc(m.n_train * sizeof(float));
    memcpy(grads, m.train_grads, m.n_train * sizeof(float));
    CtNamedTensor *t = ct_alloc(sizeof(CtNamedTensor) * (size_t)ct_lora_n_tensors(m.lora));
    ct_lora_named_tensors(m.lora, m.lora->params, t);
    const float h = 2e-3f;
    double worst_dir = 0, worst_entry = 0;
    int experts = 0;
    for (int i = 0; i < 2 * m.lora->n_adapters; i++) {
        size_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) numel *= (size_t)t[i].shape[d];
        experts += t[i].ndim == 3;
        float *p = t[i].data, *g = grads + (p - m.lora->params);
        double norm = 0;
        for (size_t j = 0; j < numel; j++) norm += (double)g[j] * g[j];
        norm = sqrt(norm);
        CHECK_MSG(norm > 1e-4, "%s: gradient norm %.3g is too small to check (or wrongly zero)", t[i].name, norm);
        float *u = ct_alloc(numel * sizeof(float));
        for (size_t j = 0; j < numel; j++) u[j] = (float)(g[j] / norm);
        int same;
        double fd = directional_fd(&m, &tb.batch, p, u, numel, h, &same);
        CHECK_MSG(same, "%s: the step changed the routing; pick another seed", t[i].name);
        double rel = fabs(fd - norm) / norm;
        worst_dir = fmax(worst_dir, rel);
        CHECK_MSG(rel < 1e-2, "%s: along the gradient: finite differences %.6g, analytic %.6g", t[i].name, fd, norm);
        // the largest entries of each expert's block (a module's adapter: one block)
        const int blocks = t[i].ndim == 3 ? (int)t[i].shape[0] : 1;
        const size_t per = numel / (size_t)blocks;
        for (int e = 0; e < blocks; e++)
            for (int k = 0; k < 2; k++) {
                size_t best = (size_t)e * per;
                for (size_t j = best + 1; j < (size_t)(e + 1) * per; j++)
                    if (fabsf(g[j]) > fabsf(g[best])) best = j;
                if (g[best] == 0) continue;  // an expert no token chose
                memset(u, 0, numel * sizeof(float));
                u[best] = 1;
                double fd1 = directional_fd(&m, &tb.batch, p, u, numel, h, &same);
                CHECK(same);
                double err = fabs(fd1 - g[best]) / fmax(fabs(g[best]), 1e-3);
                worst_entry = fmax(worst_entry, err);
                CHECK_MSG(err < 3e-2, "%s[%zu]: finite differences %.6g, analytic %.6g", t[i].name, best, fd1,
                          g[best]);
                g[best] = 0;
            }
        ct_free(u);
    }
    CHECK_MSG(experts > 0, "no expert adapter was checked");
    printf("    %s%s: %d adapters (%d expert tensors), worst directional error %.2g, worst entry error %.2g\n", what,
           recompute ? " (recompute)" : "", m.lora->n_adapters, experts, worst_dir, worst_entry);
    ct_free(t);
    ct_free(grads);
    ct_model_free(&m);
}

TEST(lora_moe, gradient_check_experts_shared_expert_and_attention) {
    CtLoraSpec s = moe_spec(3, "all-linear", "mlp.experts.gate_up_proj,mlp.experts.down_proj");
    check_gradients(qwen2_moe_config(), "qwen2-moe all-linear + experts", &s, 0);
}
TEST(lora_moe, gradient_check_experts_every_layer_recompute) {
    CtLoraSpec s = moe_spec(2, "q_proj,o_proj", "experts.gate_up_proj,down_proj");
    check_gradients(mixtral_config(), "mixtral q,o + experts", &s, 1);
}

// At step 0 (B = 0) the adapted model is the base; training steps move the adapters only, and
// lower the loss.
TEST(lora_moe, step0_is_the_base_and_training_moves_adapters_only) {
    CtModelConfig cfg = qwen2_moe_config();
    CtModel base, m;
    CHECK(ct_model_create(&base, &cfg, ct_ops_cpu(), 2, 8, 0) == 0);
    tiny_randomize_params(&base, 42);
    CtLoraSpec s = moe_spec(4, "q_proj,v_proj", "gate_up_proj,down_proj");
    CHECK(moe_lora_model(&m, cfg, &s, 0) == 0);
    if (ct_test_failed()) return;
    CtRng rng;
    ct_rng_seed(&rng, 9);
    TinyBatch tb;
    tiny_batch(&tb, &rng, 2, 8, cfg.vocab_size, 0);
    const size_t n = (size_t)2 * 8 * cfg.vocab_size;
    ct_model_forward(&base, &tb.batch);
    ct_model_forward(&m, &tb.batch);
    CHECK_MSG(memcmp(base.act.logits, m.act.logits, n * sizeof(float)) == 0,
              "the MoE LoRA model's logits at step 0 differ from the base's");
    float *before = ct_alloc(m.n_params * sizeof(float));
    memcpy(before, m.params, m.n_params * sizeof(float));
    CtAdamW opt;
    ct_adamw_init(&opt, m.n_train, 1e-2, 0.9, 0.95, 1e-8, 0.1);
    float first = 0, last = 0;
    for (int step = 0; step < 30; step++) {
        ct_model_zero_grad(&m);
        last = ct_model_forward(&m, &tb.batch);
        if (step == 0) first = last;
        ct_model_backward(&m);
        ct_adamw_step(&opt, m.train_params, m.train_grads);
    }
    // the experts' B moved (their gradient is not lost on the way)
    double moved = 0;
    for (int i = 0; i < m.lora->n_adapters; i++) {
        const CtLoraAdapter *a = &m.lora->adapters[i];
        if (!a->n_experts) continue;
        for (size_t j = 0; j < (size_t)a->n_experts * a->out * a->r; j++)
            moved += fabs(m.lora->params[a->b_offset + j]);
    }
    printf("    qwen2-moe: loss %.4f -> %.4f over 30 steps on one batch; experts' |B| sum %.3g\n", first, last, moved);
    CHECK(last < first - 0.1f);
    CHECK(moved > 0);
    CHECK_MSG(memcmp(before, m.params, m.n_params * sizeof(float)) == 0, "a base weight changed during LoRA training");
    ct_adamw_free(&opt);
    ct_free(before);
    ct_model_free(&m);
    ct_model_free(&base);
}

// W_e + s·B_e·A_e (each expert's gate|up and down, the shared expert's, attention's) gives the
// adapted model's logits.
static void merge_equals_adapters(CtModelConfig cfg, const char *what, const CtLoraSpec *s) {
    CtModel m;
    CHECK(moe_lora_model(&m, cfg, s, 0) == 0);
    if (ct_test_failed()) return;
    CtRng rng;
    ct_rng_seed(&rng, 21);
    for (size_t i = 0; i < m.lora->n_params; i++) m.lora->params[i] = (float)(0.2 * ct_rng_normal(&rng));
    TinyBatch tb;
    tiny_batch(&tb, &rng, 2, 8, m.config.vocab_size, 0);
    CtBatch b = tb.batch;
    b.targets = NULL;
    const size_t n = (size_t)2 * 8 * m.config.vocab_size;
    float *with = ct_alloc(n * sizeof(float)), *base = ct_alloc(n * sizeof(float));
    ct_model_forward(&m, &b);
    memcpy(with, m.act.logits, n * sizeof(float));
    ct_lora_merge(&m);
    CHECK(m.lora == NULL);
    ct_model_forward(&m, &b);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs((double)with[i] - ct_model_logits(&m)[i]));
        scale = fmax(scale, fabs((double)with[i]));
    }
    // the adapters did change the logits (else the comparison would say nothing)
    CtModel plain;
    CHECK(ct_model_create(&plain, &m.config, ct_ops_cpu(), 2, 8, 0) == 0);
    tiny_randomize_params(&plain, 42);
    ct_model_forward(&plain, &b);
    memcpy(base, plain.act.logits, n * sizeof(float));
    double effect = 0;
    for (size_t i = 0; i < n; i++) effect = fmax(effect, fabs((double)with[i] - base[i]));
    printf("    %s: merged vs adapters: max |diff| %.3g (logits up to %.3g; the adapters moved them by %.3g)\n", what,
           worst, scale, effect);
    CHECK(effect > 1e-2);
    CHECK(worst <= 1e-4 * fmax(scale, 1));
    ct_free(with), ct_free(base);
    ct_model_free(&plain);
    ct_model_free(&m);
}
TEST(lora_moe, merge_equals_adapted_model) {
    CtLoraSpec s = moe_spec(3, "all-linear", "mlp.experts.gate_up_proj,mlp.experts.down_proj");
    merge_equals_adapters(qwen2_moe_config(), "qwen2-moe all-linear + experts", &s);
    if (ct_test_failed()) return;
    CtLoraSpec e = moe_spec(2, "", "down_proj");
    merge_equals_adapters(mixtral_config(), "mixtral experts' down_proj only", &e);
}

// ---- targets ----
// The adapted modules ("name:r[xE]"), or the error.
static const char *attach_result(CtModelConfig cfg, const CtLoraSpec *s) {
    static char buf[4096];
    CtModel m;
    if (ct_model_create(&m, &cfg, ct_ops_cpu(), 2, 8, CT_MODEL_FROZEN) != 0) return "(no model)";
    if (ct_lora_attach(&m, s) != 0) {
        snprintf(buf, sizeof buf, "error: %s", ct_error_message());
    } else {
        buf[0] = '\0';
        for (int i = 0; i < m.lora->n_adapters; i++) {
            const CtLoraAdapter *a = &m.lora->adapters[i];
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s:%d", i ? " " : "", a->module, a->r);
            if (a->n_experts) snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "x%d", a->n_experts);
        }
    }
    ct_model_free(&m);
    return buf;
}
#define EXPECT_ADAPTED(cfg, spec, want)                                                              \
    do {                                                                                             \
        const char *got_ = attach_result(cfg, spec);                                                 \
        CHECK_MSG(strcmp(got_, want) == 0, "adapted:\n      %s\n    expected:\n      %s", got_, want); \
    } while (0)
#define EXPECT_ERROR(cfg, spec, fragment)                                                            \
    do {                                                                                             \
        const char *got_ = attach_result(cfg, spec);                                                 \
        CHECK_MSG(strncmp(got_, "error: ", 7) == 0 && strstr(got_, fragment), "got '%s', expected an error with '%s'", \
                  got_, fragment);                                                                   \
    } while (0)

TEST(lora_moe, targets_follow_peft) {
    const CtModelConfig q = qwen2_moe_config(), x = mixtral_config();
    // all-linear: PEFT's nn.Linear modules (attention, the dense layer's MLP, the shared expert and
    // its gate), not the experts' fused parameters
    CtLoraSpec s = moe_spec(2, "all-linear", "");
    EXPECT_ADAPTED(q, &s,
                   "model.layers.0.self_attn.q_proj:2 model.layers.0.self_attn.k_proj:2 model.layers.0.self_attn.v_proj:2 "
                   "model.layers.0.self_attn.o_proj:2 model.layers.0.mlp.gate_proj:2 model.layers.0.mlp.up_proj:2 "
                   "model.layers.0.mlp.down_proj:2 model.layers.1.self_attn.q_proj:2 model.layers.1.self_attn.k_proj:2 "
                   "model.layers.1.self_attn.v_proj:2 model.layers.1.self_attn.o_proj:2 "
                   "model.layers.1.mlp.shared_expert.gate_proj:2 model.layers.1.mlp.shared_expert.up_proj:2 "
                   "model.layers.1.mlp.shared_expert.down_proj:2 model.layers.1.mlp.shared_expert_gate:2");
    // "down_proj" names the dense layer's and the shared expert's modules, as in PEFT
    s = moe_spec(2, "down_proj", "");
    EXPECT_ADAPTED(q, &s, "model.layers.0.mlp.down_proj:2 model.layers.1.mlp.shared_expert.down_proj:2");
    // target_parameters alone: no module (PEFT applies its default target_modules only when neither is
    // given); every MoE layer, whatever layers_to_transform says; rank_pattern by the parameter's name
    s = moe_spec(2, "", "mlp.experts.down_proj");
    s.layers[0] = 0;
    s.n_layers = 1;
    snprintf(s.rank_pattern[0].key, sizeof s.rank_pattern[0].key, "layers.1.mlp.experts.down_proj");
    s.rank_pattern[0].value = 3;
    s.n_rank_pattern = 1;
    EXPECT_ADAPTED(x, &s, "model.layers.0.mlp.experts.down_proj:2x4 model.layers.1.mlp.experts.down_proj:3x4");
    s = moe_spec(2, "", "");  // neither: PEFT's default q_proj, v_proj
    EXPECT_ADAPTED(x, &s,
                   "model.layers.0.self_attn.q_proj:2 model.layers.0.self_attn.v_proj:2 "
                   "model.layers.1.self_attn.q_proj:2 model.layers.1.self_attn.v_proj:2");
    s = moe_spec(2, "o_proj", "gate_up_proj");
    EXPECT_ADAPTED(q, &s,
                   "model.layers.0.self_attn.o_proj:2 model.layers.1.self_attn.o_proj:2 "
                   "model.layers.1.mlp.experts.gate_up_proj:2x4");
}

TEST(lora_moe, target_errors_say_what_to_do) {
    const CtModelConfig q = qwen2_moe_config(), x = mixtral_config(), dense = tiny_config(CT_ARCH_LLAMA);
    CtLoraSpec s = moe_spec(2, "gate_up_proj", "");  // a parameter given as a module
    EXPECT_ERROR(x, &s, "lora.target_parameters");
    s = moe_spec(2, "up_proj", "");  // Mixtral's MoE layers have no up_proj module at all
    EXPECT_ERROR(x, &s, "lora.target_parameters");
    s = moe_spec(2, "gate", "");  // the router
    EXPECT_ERROR(q, &s, "router");
    s = moe_spec(2, "q_proj", "mlp.experts.w1");
    EXPECT_ERROR(x, &s, "matches no expert parameter");
    s = moe_spec(2, "q_proj", "mlp.experts.down_proj");
    EXPECT_ERROR(dense, &s, "no Mixture-of-Experts layer");
    s = moe_spec(2, "q_proj", "mlp.experts.down_proj");
    s.dropout = 0.1;
    EXPECT_ERROR(q, &s, "lora.dropout");
    s = moe_spec(2, "q_proj", "");  // dropout on module adapters of an MoE model is fine
    s.dropout = 0.1;
    EXPECT_ADAPTED(x, &s, "model.layers.0.self_attn.q_proj:2 model.layers.1.self_attn.q_proj:2");
}

// The run's tensors of an expert parameter's adapter: A [E, r, in], B [E, out, r].
TEST(lora_moe, expert_adapter_tensors_are_per_expert) {
    CtModel m;
    CtLoraSpec s = moe_spec(3, "", "gate_up_proj,down_proj");
    CHECK(moe_lora_model(&m, qwen2_moe_config(), &s, 0) == 0);
    if (ct_test_failed()) return;
    CHECK_EQ_INT(m.lora->n_adapters, 2);
    CtNamedTensor t[4];
    CHECK_EQ_INT(ct_lora_n_tensors(m.lora), 4);
    ct_lora_named_tensors(m.lora, m.lora->params, t);
    CHECK(strcmp(t[0].name, "model.layers.1.mlp.experts.gate_up_proj.lora_A.weight") == 0);
    CHECK(t[0].ndim == 3 && t[0].shape[0] == 4 && t[0].shape[1] == 3 && t[0].shape[2] == 16);
    CHECK(t[1].ndim == 3 && t[1].shape[0] == 4 && t[1].shape[1] == 16 && t[1].shape[2] == 3);
    CHECK(strcmp(t[3].name, "model.layers.1.mlp.experts.down_proj.lora_B.weight") == 0);
    CHECK(t[2].shape[1] == 3 && t[2].shape[2] == 8 && t[3].shape[1] == 16 && t[3].shape[2] == 3);
    CHECK_EQ_INT(m.lora->n_params, 4 * (3 * 16 + 16 * 3) + 4 * (3 * 8 + 16 * 3));
    // A is PEFT's Kaiming-uniform over each expert's rows (bound 1/√in), B zero
    const float *A = m.lora->params + m.lora->adapters[1].a_offset;
    float amax = 0;
    for (int i = 0; i < 4 * 3 * 8; i++) amax = fmaxf(amax, fabsf(A[i]));
    CHECK(amax > 0.2f && amax <= 1 / sqrtf(8.0f));
    ct_model_free(&m);
}

// ---- PEFT's files (train/interop/lora_peft_experts.h) ----
// ctrain's adapter folder: target_parameters in the config, the experts' tensors under PEFT's
// nested-wrapper names with lora_A [E·r, in] and lora_B [out, r·E] (B_e[o, k] at column k·E + e),
// and it reads back to the same adapters.
TEST(lora_moe, peft_folder_names_layout_and_round_trip) {
    CtModel a, b;
    CtLoraSpec s = moe_spec(3, "q_proj", "mlp.experts.gate_up_proj,mlp.experts.down_proj");
    CHECK(moe_lora_model(&a, qwen2_moe_config(), &s, 0) == 0);
    if (ct_test_failed()) return;
    CtRng rng;
    ct_rng_seed(&rng, 3);
    for (size_t i = 0; i < a.lora->n_params; i++) a.lora->params[i] = (float)ct_rng_normal(&rng);
    const char *dir = ct_test_path("adapter");
    CHECK_MSG(ct_lora_save_peft(&a, dir, "my/moe") == 0, "%s", ct_error_message());
    char path[1200];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    char *json = ct_test_read(path, NULL);
    CHECK_CONTAINS(json, "\"target_parameters\":\t[\"mlp.experts.gate_up_proj\", \"mlp.experts.down_proj\"]");
    CHECK_CONTAINS(json, "\"target_modules\":\t[\"q_proj\"]");
    free(json);
    CtSafetensors f;
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    CHECK(ct_st_open(&f, path) == 0);
    CHECK_EQ_INT(f.n_tensors, 2 * 2 + 2 * 2);
    const CtStTensor *gu_a = ct_st_find(&f, "base_model.model.model.layers.1.mlp.experts.base_layer.lora_A.weight");
    const CtStTensor *gu_b = ct_st_find(&f, "base_model.model.model.layers.1.mlp.experts.base_layer.lora_B.weight");
    const CtStTensor *dn_a = ct_st_find(&f, "base_model.model.model.layers.1.mlp.experts.lora_A.weight");
    const CtStTensor *dn_b = ct_st_find(&f, "base_model.model.model.layers.1.mlp.experts.lora_B.weight");
    CHECK(gu_a && gu_b && dn_a && dn_b);
    if (ct_test_failed()) return;
    CHECK(gu_a->shape[0] == 12 && gu_a->shape[1] == 16 && gu_b->shape[0] == 16 && gu_b->shape[1] == 12);
    CHECK(dn_a->shape[0] == 12 && dn_a->shape[1] == 8 && dn_b->shape[0] == 16 && dn_b->shape[1] == 12);
    const CtLoraAdapter *down = &a.lora->adapters[a.lora->n_adapters - 1];
    CHECK(down->site == CT_LORA_EXPERTS_DOWN);
    float *peft_b = ct_alloc(16 * 12 * sizeof(float)), *peft_a = ct_alloc(12 * 8 * sizeof(float));
    CHECK(ct_st_read_f32(&f, dn_b, peft_b) == 0 && ct_st_read_f32(&f, dn_a, peft_a) == 0);
    int bad = 0;
    for (int e = 0; e < 4; e++)
        for (int o = 0; o < 16; o++)
            for (int k = 0; k < 3; k++)
                bad += peft_b[o * 12 + k * 4 + e] != a.lora->params[down->b_offset + ((size_t)e * 16 + o) * 3 + k];
    CHECK_MSG(bad == 0, "%d entries of lora_B are not B_e[o, k] at column k·E + e", bad);
    CHECK(memcmp(peft_a, a.lora->params + down->a_offset, 12 * 8 * sizeof(float)) == 0);
    ct_free(peft_a), ct_free(peft_b);
    ct_st_close(&f);

    CtModelConfig cfg = qwen2_moe_config();
    CHECK(ct_model_create(&b, &cfg, ct_ops_cpu(), 2, 8, CT_MODEL_FROZEN) == 0);
    tiny_randomize_params(&b, 42);
    CHECK_MSG(ct_lora_load_peft(&b, dir) == 0, "%s", ct_error_message());
    CHECK_EQ_INT(b.lora->n_params, a.lora->n_params);
    CHECK(memcmp(a.lora->params, b.lora->params, a.lora->n_params * sizeof(float)) == 0);
    ct_model_free(&a);
    ct_model_free(&b);

    // one expert parameter alone sits directly under mlp.experts
    s = moe_spec(2, "", "gate_up_proj");
    CHECK(moe_lora_model(&a, mixtral_config(), &s, 0) == 0);
    CHECK(ct_lora_save_peft(&a, dir, "my/moe") == 0);
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    CHECK(ct_st_open(&f, path) == 0);
    const CtStTensor *t = ct_st_find(&f, "base_model.model.model.layers.0.mlp.experts.lora_B.weight");
    CHECK(t && t->shape[0] == 24 && t->shape[1] == 8);
    ct_st_close(&f);
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    json = ct_test_read(path, NULL);
    CHECK_CONTAINS(json, "\"target_modules\":\tnull");
    free(json);
    ct_model_free(&a);
}

// Decoding with the KV cache (one row at a time through the MoE layer's own buffers) with
// adapters on the experts gives the full forward's logits at every position.
TEST(lora_moe, cached_generation_with_expert_adapters_equals_the_forward) {
    CtModel m;
    CtLoraSpec s = moe_spec(3, "q_proj,o_proj,shared_expert_gate", "gate_up_proj,down_proj");
    CHECK(moe_lora_model(&m, qwen2_moe_config(), &s, 0) == 0);
    if (ct_test_failed()) return;
    CtRng rng;
    ct_rng_seed(&rng, 12);
    for (size_t i = 0; i < m.lora->n_params; i++) m.lora->params[i] = (float)(0.3 * ct_rng_normal(&rng));
    const int T = 8, V = m.config.vocab_size;
    int32_t tokens[8];
    for (int t = 0; t < T; t++) tokens[t] = (t * 5 + 2) % V;
    CtBatch b = {.tokens = tokens, .B = 1, .T = T};
    ct_model_forward(&m, &b);
    float *full = ct_alloc(sizeof(float) * (size_t)T * V);
    memcpy(full, ct_model_logits(&m), sizeof(float) * (size_t)T * V);
    CtGenerator g;
    ct_generator_init(&g, &m, T);
    double worst = 0, scale = 0;
    for (int t = 0; t < T; t++) {
        const float *l = ct_generator_feed(&g, tokens[t]);
        for (int v = 0; v < V; v++) {
            worst = fmax(worst, fabs((double)l[v] - full[(size_t)t * V + v]));
            scale = fmax(scale, fabs((double)full[(size_t)t * V + v]));
        }
    }
    printf("    cached decoding with expert adapters vs the forward: max |diff| %.3g (logits up to %.3g)\n", worst,
           scale);
    CHECK(worst <= 1e-5 * fmax(scale, 1));
    ct_generator_free(&g);
    ct_free(full);
    ct_model_free(&m);
}
