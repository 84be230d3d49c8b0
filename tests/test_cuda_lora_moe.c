// LoRA on an MoE model on the GPU against the CPU (suite "cuda"): adapters on attention, the
// shared expert and its gate, and each routed expert's gate|up and down (on its block of sorted
// rows): the loss, every adapter gradient and the merged weights. Skips without a usable GPU
// (runs on the CPU emulation of CUDA, tests/test_cuda_emu/run.sh).
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
#include "train/model/lora.h"

#define TOL 1e-5  // fp32 on both sides, sums in other orders


TEST(cuda, lora_on_experts_step_matches_cpu) {
    const CtOps *ops = cuda_fixture_ops_or_skip();
    CtModelConfig c = tiny_config(CT_ARCH_LLAMA);
    c.n_experts = 4;
    c.top_k = 2;
    c.moe_d_ff = 8;
    c.n_shared_experts = 1;
    c.shared_expert_gate = 1;
    c.moe_layer_freq = 2;
    c.router = CT_ROUTER_SOFTMAX;
    const int B = 2, T = 16;
    CtModel cpu, gpu;
    CHECK_EQ_INT(ct_model_create(&cpu, &c, ct_ops_cpu(), B, T, CT_MODEL_FROZEN), 0);
    CHECK_EQ_INT(ct_model_create(&gpu, &c, ct_ops_cpu(), B, T, CT_MODEL_FROZEN), 0);
    tiny_randomize_params(&cpu, 9);
    memcpy(gpu.params, cpu.params, cpu.n_params * sizeof(float));
    ct_model_to_backend(&gpu, ops);
    CtLoraSpec spec = {.r = 4, .alpha = 8};
    snprintf(spec.targets, sizeof spec.targets, "all-linear");
    snprintf(spec.target_parameters, sizeof spec.target_parameters, "mlp.experts.gate_up_proj,mlp.experts.down_proj");
    CHECK_EQ_INT(ct_lora_attach(&cpu, &spec), 0);
    CHECK_EQ_INT(ct_lora_attach(&gpu, &spec), 0);  // attached on the device
    ct_lora_init(&cpu, 3);
    for (size_t i = 0; i < cpu.lora->n_params; i++) cpu.lora->params[i] += 0.01f * (float)((i * 7919) % 13) - 0.06f;
    memcpy(gpu.lora->params, cpu.lora->params, cpu.lora->n_params * sizeof(float));
    ct_lora_sync(&gpu, 1);
    CtRng rng;
    ct_rng_seed(&rng, 4);
    TinyBatch tb;
    tiny_batch(&tb, &rng, B, T, c.vocab_size, 1);
    ct_model_zero_grad(&cpu);
    ct_model_zero_grad(&gpu);
    float lc = ct_model_forward(&cpu, &tb.batch), lg = ct_model_forward(&gpu, &tb.batch);
    CHECK_MSG(fabsf(lg - lc) <= TOL * fabsf(lc), "MoE LoRA loss %.9g on the GPU, %.9g on the CPU", lg, lc);
    ct_model_backward(&cpu);
    ct_model_backward(&gpu);
    double g = cuda_fixture_device_vs_host(ops, gpu.lora->dev_grads, cpu.lora->grads, cpu.lora->n_params);
    ct_lora_merge(&cpu);
    ct_lora_merge(&gpu);
    double w = cuda_fixture_device_vs_host(ops, gpu.dev_params, cpu.params, cpu.n_params);
    printf("    MoE LoRA on the GPU: loss %.7g vs %.7g, adapter gradients within %.2g, merged weights within %.2g\n", lg,
           lc, g, w);
    CHECK_MSG(g < TOL, "adapter gradients: GPU differs from CPU by %.3g", g);
    CHECK_MSG(w < TOL, "merged weights: GPU differs from CPU by %.3g", w);
    ct_model_free(&cpu);
    ct_model_free(&gpu);
}
