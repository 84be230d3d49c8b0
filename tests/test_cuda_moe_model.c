// The Mixture-of-Experts model on the GPU against the same model on the CPU (suite "cuda"): one
// training step with the router losses (loss, every gradient, the routing statistics) for each
// router kind with shared experts and mixed dense/MoE layers, generation with the cache, the
// aux-free bias update on both copies, and the bf16 table close to fp32. Without a usable GPU
// every test skips (they also run on the CPU emulation, tests/test_cuda_emu/run.sh).
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/device.h"
#include "kernels/ops.h"
#include "tests/cuda_fixture.h"
#include "tests/hf_fixture.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/model/generate.h"

// fp32 on both sides, sums in other orders: a few ulps of the largest value (see test_cuda_train.c).
#define TOL 1e-5



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

static void twin_models(CtModel *cpu, CtModel *gpu, const CtModelConfig *c, const CtOps *ops, int B, int T, int flags,
                        uint64_t seed) {
    CHECK_EQ_INT(ct_model_create(cpu, c, ct_ops_cpu(), B, T, flags), 0);
    CHECK_EQ_INT(ct_model_create(gpu, c, ct_ops_cpu(), B, T, flags), 0);
    tiny_randomize_params(cpu, seed);
    memcpy(gpu->params, cpu->params, cpu->n_params * sizeof(float));
    ct_model_to_backend(gpu, ops);
    cpu->moe.aux_coef = gpu->moe.aux_coef = 0.1f;
    cpu->moe.z_coef = gpu->moe.z_coef = 0.01f;
}

// One forward and backward on both; the routing must be the same (the same counts per expert).
// *r: the gradients' difference relative to the largest.
static void step_difference(const CtOps *ops, CtModelConfig c, int recompute, uint64_t seed, double *r) {
    const int B = 3, T = 16;
    CtModel cpu, gpu;
    twin_models(&cpu, &gpu, &c, ops, B, T, recompute ? CT_MODEL_RECOMPUTE : 0, seed);
    CtRng rng;
    ct_rng_seed(&rng, seed + 1);
    TinyBatch tb;
    tiny_batch(&tb, &rng, B, T, c.vocab_size, 1);
    ct_model_zero_grad(&cpu);
    ct_model_zero_grad(&gpu);
    const float lc = ct_model_forward(&cpu, &tb.batch), lg = ct_model_forward(&gpu, &tb.batch);
    const double tol = ct_ops_products_bf16(ops) ? 1e-2 : TOL;
    CHECK_MSG(fabsf(lg - lc) <= tol * fabsf(lc), "loss %.9g on the GPU, %.9g on the CPU", lg, lc);
    for (int i = 0; i < cpu.moe.n_layers * cpu.moe.E && !ct_ops_products_bf16(ops); i++)  // bf16: a near tie may flip
        CHECK_MSG(gpu.moe.load[i] == cpu.moe.load[i], "expert load %d: %g on the GPU, %g on the CPU", i,
                  gpu.moe.load[i], cpu.moe.load[i]);
    CHECK_MSG(fabs(gpu.moe.aux_loss_sum - cpu.moe.aux_loss_sum) <= 10 * tol * cpu.moe.aux_loss_sum, "aux loss %.9g vs %.9g",
              gpu.moe.aux_loss_sum, cpu.moe.aux_loss_sum);
    CHECK_MSG(fabs(gpu.moe.z_loss_sum - cpu.moe.z_loss_sum) <= 10 * tol * cpu.moe.z_loss_sum, "z loss %.9g vs %.9g",
              gpu.moe.z_loss_sum, cpu.moe.z_loss_sum);
    ct_model_backward(&cpu);
    ct_model_backward(&gpu);
    float *g = ct_alloc(cpu.n_params * sizeof(float));
    ops->download(g, gpu.dev_grads, cpu.n_params * sizeof(float));
    *r = hf_fixture_relative_error(g, cpu.grads, cpu.n_params);
    ct_free(g);
    ct_model_free(&cpu);
    ct_model_free(&gpu);
}

TEST(cuda, moe_model_step_matches_cpu) {
    const CtOps *ops = cuda_fixture_ops_or_skip();
    const struct {
        CtRouter router;
        int shared, gate, freq, recompute;
    } cases[] = {{CT_ROUTER_SOFTMAX, 1, 1, 2, 0}, {CT_ROUTER_SOFTMAX_NORM, 0, 0, 1, 1}, {CT_ROUTER_TOPK_SOFTMAX, 2, 0, 1, 0},
                 {CT_ROUTER_SIGMOID, 1, 0, 2, 1}, {CT_ROUTER_SIGMOID_NORM, 1, 1, 1, 0}};
    for (int i = 0; i < 5 && !ct_test_failed(); i++) {
        double r = INFINITY;
        step_difference(ops, moe_config(cases[i].router, cases[i].shared, cases[i].gate, cases[i].freq),
                        cases[i].recompute, 5 + i, &r);
        printf("    %s: gradients within %.2g of the CPU's\n", ct_router_name(cases[i].router), r);
        CHECK_MSG(r < TOL, "%s: the GPU's gradients differ from the CPU's by %.3g", ct_router_name(cases[i].router), r);
    }
}

// bf16 products and activations: close to fp32, as the dense llama (test_cuda_train.c's bound).
TEST(cuda, moe_model_bf16_step_close_to_fp32) {
    const CtOps *ops = cuda_fixture_ops_or_skip();
    const CtOps *bf16 = ct_ops_with_precision(ops, "bf16");
    CHECK(bf16 && ct_ops_products_bf16(bf16));
    double r = INFINITY;
    step_difference(bf16, moe_config(CT_ROUTER_SOFTMAX_NORM, 1, 1, 2), 0, 31, &r);
    printf("    bf16 gradients within %.3g of the largest\n", r);
    CHECK_MSG(r < 8e-2 && r > 0, "gradients with bf16 differ from fp32 by %.3g of the largest", r);
}

TEST(cuda, moe_generation_matches_cpu) {
    const CtOps *ops = cuda_fixture_ops_or_skip();
    CtModelConfig c = moe_config(CT_ROUTER_SIGMOID_NORM, 1, 1, 2);
    CtModel cpu, gpu;
    twin_models(&cpu, &gpu, &c, ops, 1, 12, 0, 41);
    CtGenerator gc, gg;
    ct_generator_init(&gc, &cpu, 12);
    ct_generator_init(&gg, &gpu, 12);
    double worst = 0;
    for (int t = 0; t < 12; t++) {
        const int32_t token = (int32_t)((t * 7 + 3) % c.vocab_size);
        const float *lc = ct_generator_feed(&gc, token), *lg = ct_generator_feed(&gg, token);
        worst = fmax(worst, hf_fixture_relative_error(lg, lc, (size_t)c.vocab_size));
    }
    CHECK_MSG(worst < TOL, "the GPU's cached logits differ from the CPU's by %g", worst);
    ct_generator_free(&gc);
    ct_generator_free(&gg);
    ct_model_free(&cpu);
    ct_model_free(&gpu);
}

// The aux-free rule writes the device's parameters and the host mirror alike.
TEST(cuda, moe_update_bias_moves_device_and_host_copies) {
    const CtOps *ops = cuda_fixture_ops_or_skip();
    CtModelConfig c = moe_config(CT_ROUTER_SIGMOID, 0, 0, 1);
    CtModel cpu, gpu;
    twin_models(&cpu, &gpu, &c, ops, 1, 4, 0, 3);
    const double load[2 * 4] = {1, 9, 5, 5, 2, 2, 2, 6};
    ct_model_moe_update_bias(&cpu, load, 0.001f);
    ct_model_moe_update_bias(&gpu, load, 0.001f);
    CHECK(memcmp(gpu.params, cpu.params, cpu.n_params * sizeof(float)) == 0);  // the host mirror
    float *dev = ct_alloc(cpu.n_params * sizeof(float));
    ops->download(dev, gpu.dev_params, cpu.n_params * sizeof(float));
    CHECK(memcmp(dev, cpu.params, cpu.n_params * sizeof(float)) == 0);
    ct_free(dev);
    ct_model_free(&cpu);
    ct_model_free(&gpu);
}
