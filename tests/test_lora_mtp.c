// LoRA on a model with multi-token prediction modules (train/model/lora.c, model_mtp.c): the
// targets match the modules' blocks (layers n_layer.., DeepSeek-V3's names) as PEFT matches by
// name, eh_proj is a target of its own, and the loss main + λ/D·Σ_k L_k trains every adapter:
// finite differences of that loss agree with the adapters' gradients, the main model's included
// (the modules' loss reaches them through the frozen modules). The PEFT folder names the modules'
// adapters by their layer and reads back; merging gives the adapted model's depth losses.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoints/safetensors.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "kernels/ops.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/interop/lora_peft.h"
#include "train/model/lora.h"

enum { B = 2, T = 8 };

static CtModelConfig mtp_config(CtArch arch, int depth) {
    CtModelConfig c = tiny_config(arch);
    c.mtp_depth = depth;
    return c;
}

// A frozen model with modules, random base weights, λ = 0.7, and adapters on `targets`.
static int lora_mtp_model(CtModel *m, CtModelConfig cfg, const char *targets, const char *layers) {
    if (ct_model_create(m, &cfg, ct_ops_cpu(), B, T, CT_MODEL_FROZEN) != 0) return -1;
    tiny_randomize_params(m, 42);
    m->mtp_weight = 0.7f;
    CtLoraSpec s = {.r = 4, .alpha = 8, .dropout = 0, .rslora = 0};
    snprintf(s.targets, sizeof s.targets, "%s", targets);
    for (const char *p = layers; p && *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] ? 1 : 0))
        s.layers[s.n_layers++] = atoi(p);
    if (ct_lora_attach(m, &s) != 0) {
        ct_model_free(m);
        return -1;
    }
    ct_lora_init(m, 7);
    return 0;
}

static int has_adapter(const CtModel *m, const char *module) {
    for (int i = 0; i < m->lora->n_adapters; i++)
        if (strcmp(m->lora->adapters[i].module, module) == 0) return 1;
    return 0;
}

TEST(lora_mtp, targets_match_the_module_blocks_and_eh_proj) {
    CtModel m;
    // tiny_config: 2 layers; modules at layers 2 and 3
    CHECK_MSG(lora_mtp_model(&m, mtp_config(CT_ARCH_LLAMA, 2), "q_proj,v_proj", NULL) == 0, "%s", ct_error_message());
    if (ct_test_failed()) return;
    CHECK_EQ_INT(m.lora->n_adapters, 8);
    CHECK(has_adapter(&m, "model.layers.2.self_attn.q_proj") && has_adapter(&m, "model.layers.3.self_attn.v_proj"));
    CHECK(!has_adapter(&m, "model.layers.2.eh_proj"));
    ct_model_free(&m);

    CHECK_MSG(lora_mtp_model(&m, mtp_config(CT_ARCH_LLAMA, 2), "eh_proj", NULL) == 0, "%s", ct_error_message());
    if (ct_test_failed()) return;
    CHECK_EQ_INT(m.lora->n_adapters, 2);
    CHECK(has_adapter(&m, "model.layers.2.eh_proj") && has_adapter(&m, "model.layers.3.eh_proj"));
    CHECK_EQ_INT(m.lora->adapters[0].in, 2 * m.config.d_model);
    CHECK_EQ_INT(m.lora->adapters[0].out, m.config.d_model);
    ct_model_free(&m);

    // all-linear: the modules' blocks and eh_proj too (every nn.Linear but the head), and PEFT's
    // target_modules list names eh_proj
    CHECK_MSG(lora_mtp_model(&m, mtp_config(CT_ARCH_LLAMA, 1), "all-linear", NULL) == 0, "%s", ct_error_message());
    if (ct_test_failed()) return;
    CHECK_EQ_INT(m.lora->n_adapters, 3 * 7 + 1);
    CHECK(has_adapter(&m, "model.layers.2.eh_proj") && has_adapter(&m, "model.layers.2.mlp.down_proj"));
    CHECK_CONTAINS(m.lora->target_modules, "eh_proj");
    ct_model_free(&m);

    // layers_to_transform counts the modules' layers as PEFT reads the index from the name
    CHECK_MSG(lora_mtp_model(&m, mtp_config(CT_ARCH_LLAMA, 2), "q_proj,eh_proj", "3") == 0, "%s", ct_error_message());
    if (ct_test_failed()) return;
    CHECK_EQ_INT(m.lora->n_adapters, 2);
    CHECK(has_adapter(&m, "model.layers.3.eh_proj") && has_adapter(&m, "model.layers.3.self_attn.q_proj"));
    ct_model_free(&m);

    CHECK_MSG(lora_mtp_model(&m, mtp_config(CT_ARCH_GPT2, 1), "c_attn,eh_proj", NULL) == 0, "%s", ct_error_message());
    if (ct_test_failed()) return;
    CHECK(has_adapter(&m, "transformer.h.2.attn.c_attn") && has_adapter(&m, "transformer.h.2.eh_proj"));
    ct_model_free(&m);
}

// The loss the modules train with: main + λ/D·Σ_k L_k.
static double total_loss(CtModel *m, const CtBatch *b) {
    double loss = ct_model_forward(m, b);
    for (int k = 0; k < m->config.mtp_depth; k++) loss += (double)m->mtp_weight / m->config.mtp_depth * m->mtp_loss[k];
    return loss;
}

static double directional_fd(CtModel *m, const CtBatch *b, float *p, const float *u, size_t n, float h) {
    float *keep = ct_alloc(n * sizeof(float));
    memcpy(keep, p, n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = keep[i] + h * u[i];
    const double lp = total_loss(m, b);
    for (size_t i = 0; i < n; i++) p[i] = keep[i] - h * u[i];
    const double lm = total_loss(m, b);
    memcpy(p, keep, n * sizeof(float));
    ct_free(keep);
    return (lp - lm) / (2.0 * h);
}

// Every adapter's A and B, in the main model and in the modules: the analytic gradient of
// main + λ/D·Σ L_k against central differences of the float model (the loss summed in double),
// along the gradient and on the three largest entries, as tests/test_lora.c checks the main
// model's adapters.
static void check_gradients(CtModelConfig cfg, const char *targets, int packed) {
    CtModel m;
    CHECK_MSG(lora_mtp_model(&m, cfg, targets, NULL) == 0, "%s", ct_error_message());
    if (ct_test_failed()) return;
    CtRng rng;
    ct_rng_seed(&rng, 5);
    for (size_t i = 0; i < m.lora->n_params; i++) m.lora->params[i] = (float)(0.3 * ct_rng_normal(&rng));
    TinyBatch tb;
    tiny_batch(&tb, &rng, B, T, m.config.vocab_size, packed);
    ct_model_zero_grad(&m);
    total_loss(&m, &tb.batch);
    ct_model_backward(&m);
    float *grads = ct_alloc(m.n_train * sizeof(float));
    memcpy(grads, m.train_grads, m.n_train * sizeof(float));
    CtNamedTensor *t = ct_alloc(sizeof(CtNamedTensor) * 2 * (size_t)m.lora->n_adapters);
    ct_lora_named_tensors(m.lora, m.lora->params, t);
    const float h = 2e-3f;
    double worst_dir = 0, worst_entry = 0;
    int in_modules = 0;
    for (int i = 0; i < 2 * m.lora->n_adapters; i++) {
        in_modules += m.lora->adapters[i / 2].layer >= m.config.n_layer;
        const size_t numel = (size_t)(t[i].shape[0] * t[i].shape[1]);
        float *p = t[i].data, *g = grads + (p - m.lora->params);
        double norm = 0;
        for (size_t j = 0; j < numel; j++) norm += (double)g[j] * g[j];
        norm = sqrt(norm);
        CHECK_MSG(norm > 1e-4, "%s: gradient norm %.3g is too small to check (or wrongly zero)", t[i].name, norm);
        float *u = ct_alloc(numel * sizeof(float));
        for (size_t j = 0; j < numel; j++) u[j] = (float)(g[j] / norm);
        const double fd = directional_fd(&m, &tb.batch, p, u, numel, h), rel = fabs(fd - norm) / norm;
        if (rel > worst_dir) worst_dir = rel;
        CHECK_MSG(rel < 1e-2, "%s: along the gradient: finite differences %.6g, analytic %.6g", t[i].name, fd, norm);
        for (int k = 0; k < 3 && (size_t)k < numel; k++) {
            size_t best = 0;
            for (size_t j = 1; j < numel; j++)
                if (fabsf(g[j]) > fabsf(g[best])) best = j;
            memset(u, 0, numel * sizeof(float));
            u[best] = 1;
            const double fd1 = directional_fd(&m, &tb.batch, p, u, numel, h);
            const double err = fabs(fd1 - g[best]) / fmax(fabs(g[best]), 1e-3);
            if (err > worst_entry) worst_entry = err;
            CHECK_MSG(err < 3e-2, "%s[%zu]: finite differences %.6g, analytic %.6g", t[i].name, best, fd1, g[best]);
            g[best] = 0;
        }
        ct_free(u);
    }
    CHECK_MSG(in_modules > 0, "no adapter in a module");
    printf("    %s D=%d %s%s: %d adapters (%d tensors in the modules), worst directional error %.2g, worst entry %.2g\n",
           ct_arch_name(cfg.arch), cfg.mtp_depth, targets, packed ? " (packed documents)" : "", m.lora->n_adapters,
           in_modules, worst_dir, worst_entry);
    ct_free(t);
    ct_free(grads);
    ct_model_free(&m);
}

TEST(lora_mtp, gradient_check_llama_all_linear_depth2) { check_gradients(mtp_config(CT_ARCH_LLAMA, 2), "all-linear", 0); }
TEST(lora_mtp, gradient_check_llama_q_v_eh_proj_depth2_packed) {
    check_gradients(mtp_config(CT_ARCH_LLAMA, 2), "q_proj,v_proj,eh_proj", 1);
}
TEST(lora_mtp, gradient_check_gpt2_all_linear_depth1) { check_gradients(mtp_config(CT_ARCH_GPT2, 1), "all-linear", 0); }

// Without λ the modules do not run: their adapters get no gradient, and the main adapters'
// gradients change when λ > 0 (the modules' loss reaches them through the frozen modules).
TEST(lora_mtp, module_loss_reaches_the_main_adapters) {
    CtModel m;
    CHECK_MSG(lora_mtp_model(&m, mtp_config(CT_ARCH_LLAMA, 1), "q_proj,v_proj", NULL) == 0, "%s", ct_error_message());
    if (ct_test_failed()) return;
    CtRng rng;
    ct_rng_seed(&rng, 9);
    for (size_t i = 0; i < m.lora->n_params; i++) m.lora->params[i] = (float)(0.3 * ct_rng_normal(&rng));
    TinyBatch tb;
    tiny_batch(&tb, &rng, B, T, m.config.vocab_size, 0);
    float *g[2];
    for (int on = 0; on <= 1; on++) {
        m.mtp_weight = on ? 0.7f : 0.0f;
        ct_model_zero_grad(&m);
        ct_model_forward(&m, &tb.batch);
        ct_model_backward(&m);
        g[on] = ct_alloc(m.n_train * sizeof(float));
        memcpy(g[on], m.train_grads, m.n_train * sizeof(float));
    }
    const CtLoraAdapter *main_q = &m.lora->adapters[0], *module_q = &m.lora->adapters[4];
    CHECK_STR_EQ(module_q->module, "model.layers.2.self_attn.q_proj");
    double module_off = 0, main_diff = 0;
    for (size_t j = 0; j < (size_t)module_q->r * module_q->in; j++) module_off += fabs(g[0][module_q->a_offset + j]);
    for (size_t j = 0; j < (size_t)main_q->r * main_q->in; j++)
        main_diff += fabs(g[1][main_q->a_offset + j] - g[0][main_q->a_offset + j]);
    CHECK_MSG(module_off == 0, "the module's adapter has a gradient with λ = 0: %g", module_off);
    CHECK_MSG(main_diff > 1e-4, "the main adapter's gradient does not change with the modules' loss: %g", main_diff);
    ct_free(g[0]);
    ct_free(g[1]);
    ct_model_free(&m);
}

// The PEFT folder names the modules' adapters by their layer (base_model.model.model.layers.2.eh_proj)
// and reads back onto the base to the bit; the merged model has the adapted model's depth losses.
TEST(lora_mtp, peft_folder_names_module_adapters_and_merge_keeps_depth_losses) {
    ct_log_set_level(CT_LOG_QUIET);
    CtModel m, base;
    const CtModelConfig cfg = mtp_config(CT_ARCH_LLAMA, 2);
    CHECK_MSG(lora_mtp_model(&m, cfg, "q_proj,eh_proj", NULL) == 0, "%s", ct_error_message());
    if (ct_test_failed()) return;
    CtRng rng;
    ct_rng_seed(&rng, 11);
    for (size_t i = 0; i < m.lora->n_params; i++) m.lora->params[i] = (float)(0.3 * ct_rng_normal(&rng));
    const char *dir = ct_test_path("adapter");
    CHECK_MSG(ct_lora_save_peft(&m, dir, "base") == 0, "%s", ct_error_message());
    CtSafetensors f;
    char path[2048];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    CHECK_MSG(ct_st_open(&f, path) == 0, "%s", ct_error_message());
    if (ct_test_failed()) return;
    CHECK(ct_st_find(&f, "base_model.model.model.layers.2.eh_proj.lora_A.weight") != NULL);
    CHECK(ct_st_find(&f, "base_model.model.model.layers.3.eh_proj.lora_B.weight") != NULL);
    CHECK(ct_st_find(&f, "base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight") != NULL);
    ct_st_close(&f);
    char *config = ct_test_read(ct_test_path("adapter/adapter_config.json"), NULL);
    CHECK_CONTAINS(config, "eh_proj");
    free(config);

    CHECK(ct_model_create(&base, &cfg, ct_ops_cpu(), B, T, CT_MODEL_FROZEN) == 0);
    tiny_randomize_params(&base, 42);
    CHECK_MSG(ct_lora_load_peft(&base, dir) == 0, "%s", ct_error_message());
    if (ct_test_failed()) return;
    CHECK_EQ_INT(base.lora->n_adapters, m.lora->n_adapters);
    CHECK(memcmp(base.lora->params, m.lora->params, m.lora->n_params * sizeof(float)) == 0);

    TinyBatch tb;
    tiny_batch(&tb, &rng, B, T, cfg.vocab_size, 0);
    const double loss = ct_model_forward(&m, &tb.batch);
    float depth[2] = {m.mtp_loss[0], m.mtp_loss[1]};
    ct_lora_merge(&m);
    CHECK(m.lora == NULL);
    const double merged = ct_model_forward(&m, &tb.batch);
    CHECK_NEAR(merged, loss, 1e-5 * fabs(loss));
    for (int k = 0; k < 2; k++) CHECK_NEAR(m.mtp_loss[k], depth[k], 1e-5 * fabs(depth[k]));
    ct_model_free(&base);
    ct_model_free(&m);
}

// Trainable token rows would miss the modules' share of their gradient: refused, naming the key.
TEST(lora_mtp, trainable_token_rows_with_modules_are_refused) {
    const CtModelConfig cfg = mtp_config(CT_ARCH_LLAMA, 1);
    CtModel m;
    CHECK(ct_model_create(&m, &cfg, ct_ops_cpu(), B, T, CT_MODEL_FROZEN) == 0);
    CtLoraSpec s = {.r = 4, .alpha = 8, .n_tokens = 1, .token_ids = {5}};
    snprintf(s.targets, sizeof s.targets, "q_proj");
    CHECK(ct_lora_attach(&m, &s) != 0);
    CHECK_CONTAINS(ct_error_message(), "lora.trainable_token_indices");
    CHECK_CONTAINS(ct_error_message(), "model.mtp_depth 1");
    CHECK(m.lora == NULL);
    ct_model_free(&m);
}

// A PEFT folder made for the main model alone (as PEFT makes it on transformers' model, which has
// no modules) read onto a base with modules: the targets match the modules' blocks too, the folder
// has nothing for them, and they start at zero (no effect) as PEFT leaves a missing key; the main
// model's adapters read as saved, and every loss is the saving model's.
TEST(lora_mtp, peft_folder_without_module_adapters_reads_with_them_at_zero) {
    ct_log_set_level(CT_LOG_QUIET);
    const CtModelConfig cfg = mtp_config(CT_ARCH_LLAMA, 2);
    CtModel m, base;
    CHECK_MSG(lora_mtp_model(&m, cfg, "q_proj,v_proj", "0,1") == 0, "%s", ct_error_message());
    if (ct_test_failed()) return;
    CHECK_EQ_INT(m.lora->n_adapters, 4);
    CtRng rng;
    ct_rng_seed(&rng, 12);
    for (size_t i = 0; i < m.lora->n_params; i++) m.lora->params[i] = (float)(0.3 * ct_rng_normal(&rng));
    const char *dir = ct_test_path("adapter");
    CHECK_MSG(ct_lora_save_peft(&m, dir, "base") == 0, "%s", ct_error_message());
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd, "sed -i 's/\"layers_to_transform\":.*/\"layers_to_transform\": null,/' '%s/adapter_config.json'"
             " && grep -c '\"layers_to_transform\": null' '%s/adapter_config.json'", dir, dir);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    free(out);

    CHECK(ct_model_create(&base, &cfg, ct_ops_cpu(), B, T, CT_MODEL_FROZEN) == 0);
    tiny_randomize_params(&base, 42);
    base.mtp_weight = 0.7f;
    CHECK_MSG(ct_lora_load_peft(&base, dir) == 0, "%s", ct_error_message());
    if (ct_test_failed()) return;
    CHECK_EQ_INT(base.lora->n_adapters, 8);
    for (int i = 0; i < base.lora->n_adapters; i++) {
        const CtLoraAdapter *a = &base.lora->adapters[i];
        const float *p = base.lora->params + a->a_offset;
        const size_t numel = (size_t)a->r * (a->in + a->out);  // A then B
        double sum = 0;
        for (size_t j = 0; j < numel; j++) sum += fabs(p[j]);
        if (a->layer >= cfg.n_layer)
            CHECK_MSG(sum == 0, "%s: a module's adapter the folder lacks is not zero", a->module);
        else
            CHECK_MSG(sum > 0 && memcmp(p, m.lora->params + m.lora->adapters[i].a_offset, numel * sizeof(float)) == 0,
                      "%s: not the saved adapter", a->module);
    }
    TinyBatch tb;
    tiny_batch(&tb, &rng, B, T, cfg.vocab_size, 0);
    const float want = ct_model_forward(&m, &tb.batch), want1 = m.mtp_loss[0], want2 = m.mtp_loss[1];
    CHECK(ct_model_forward(&base, &tb.batch) == want);
    CHECK(base.mtp_loss[0] == want1 && base.mtp_loss[1] == want2);
    ct_model_free(&base);
    ct_model_free(&m);
}
