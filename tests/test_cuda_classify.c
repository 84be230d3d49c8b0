// The sequence classifier on the GPU (suite "cuda"; train/model/model_classify.h): the head's
// products, tanh and dropout run on the op table (pooling and the loss on the host), so a
// classification step over a padded batch gives the CPU's logits and gradients, in fp32 (few ulps)
// and in bf16 (close), for BERT (pooler + classifier), RoBERTa (classifier.dense + out_proj, both
// dropouts) and a llama (score on the last token); and a LoRA classifier (PEFT's SEQ_CLS: adapters
// on the frozen blocks, the head trained in full from the adapters' buffer) gives the CPU's
// adapter and head gradients. Without a usable GPU the tests skip (they also run on the CPU
// emulation of CUDA, tests/test_cuda_emu/run.sh).
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "kernels/device.h"
#include "kernels/ops.h"
#include "tests/cuda_fixture.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/model/lora.h"
#include "train/model/model_classify.h"
#include "train/model/model_resize.h"

enum { B = 2, T = 12, LABELS = 3 };

// One step of both models over a padded batch (dropout on, the same masks): the device's logits
// within 3·tol of the largest CPU logit; both backward from the CPU's loss gradient.
static void step_both(CtModel *cpu, CtModel *gpu, const CtModelConfig *c, const int labels[B], double tol) {
    ct_model_set_dropout(cpu, 1, 99);
    ct_model_set_dropout(gpu, 1, 99);
    EncoderBatch eb;
    CtModelConfig framing = *c;
    if (!ct_model_is_encoder(c)) framing.pad_token_id = 0, framing.type_vocab_size = 1;
    tiny_encoder_batch(&eb, &framing, T, 13);
    eb.batch.targets = NULL;
    const int len[B] = {T, T - 3};
    float zc[B * LABELS], zg[B * LABELS], dz[B * LABELS];
    ct_model_zero_grad(cpu);
    ct_model_zero_grad(gpu);
    ct_model_classify_forward(cpu, &eb.batch, len, zc);
    ct_model_classify_forward(gpu, &eb.batch, len, zg);
    double zmax = 0;
    for (int i = 0; i < B * LABELS; i++) zmax = fmax(zmax, fabs(zc[i]));
    // (bf16: the logits themselves are bf16 activations, 2^-8 relative, where the gradients accumulate in fp32)
    for (int i = 0; i < B * LABELS; i++)
        CHECK_MSG(fabs(zg[i] - zc[i]) <= 3 * tol * zmax, "logit %d: %.9g on the GPU, %.9g on the CPU", i, zg[i], zc[i]);
    for (int r = 0; r < B; r++) ct_classify_xent(zc + r * LABELS, LABELS, labels[r], 1.0 / B, dz + r * LABELS);
    ct_model_classify_backward(cpu, dz);
    ct_model_classify_backward(gpu, dz);
}

static void classify_step_case(const CtOps *ops, CtModelConfig c, CtPooling pooling, float dropout, double tol) {
    c.dropout = dropout;
    CtModel cpu, gpu;
    CHECK_EQ_INT(ct_model_create(&cpu, &c, ct_ops_cpu(), B, T, 0), 0);
    CHECK_EQ_INT(ct_model_add_classifier(&cpu, LABELS, pooling, 3, B, T, 0), 0);
    CHECK_EQ_INT(ct_model_create(&gpu, &cpu.config, ct_ops_cpu(), B, T, 0), 0);
    if (ct_test_failed()) return;
    tiny_randomize_params(&cpu, 6);
    memcpy(gpu.params, cpu.params, cpu.n_params * sizeof(float));
    ct_model_to_backend(&gpu, ops);
    const int labels[B] = {2, 0};
    step_both(&cpu, &gpu, &c, labels, tol);
    tiny_check_device_grads(ops, &cpu, &gpu, tol);
    ct_model_free(&cpu);
    ct_model_free(&gpu);
}

TEST(cuda, classify_step_matches_cpu) {
    const CtOps *ops = cuda_fixture_ops_or_skip();
    classify_step_case(ops, tiny_encoder_config(CT_ARCH_BERT), CT_POOL_CLS, 0.2f, 1e-5);
    if (!ct_test_failed()) classify_step_case(ops, tiny_encoder_config(CT_ARCH_ROBERTA), CT_POOL_MEAN, 0.2f, 1e-5);
    if (!ct_test_failed()) classify_step_case(ops, tiny_config(CT_ARCH_LLAMA), CT_POOL_LAST, 0, 1e-5);
}

TEST(cuda, bf16_classify_step_is_close_to_fp32) {
    const CtOps *ops = cuda_fixture_ops_or_skip();
    const CtOps *bf16 = ct_ops_with_precision(ops, "bf16");
    CHECK(bf16 != NULL);
    if (!ct_test_failed()) classify_step_case(bf16, tiny_encoder_config(CT_ARCH_BERT), CT_POOL_CLS, 0, 8e-3);
}

// A LoRA classifier: the base frozen (no gradient buffer on either side), adapters attached on
// the host and moved with the model, the head's tensors read from the adapters' buffer.
static void lora_classify_case(const CtOps *ops, CtModelConfig c, CtPooling pooling, const char *targets) {
    c.dropout = 0.2f;
    CtModel cpu, gpu;
    CHECK_EQ_INT(ct_model_create(&cpu, &c, ct_ops_cpu(), B, T, CT_MODEL_FROZEN), 0);
    CHECK_EQ_INT(ct_model_add_classifier(&cpu, LABELS, pooling, 3, B, T, CT_MODEL_FROZEN), 0);
    CHECK_EQ_INT(ct_model_create(&gpu, &cpu.config, ct_ops_cpu(), B, T, CT_MODEL_FROZEN), 0);
    if (ct_test_failed()) return;
    tiny_randomize_params(&cpu, 6);
    memcpy(gpu.params, cpu.params, cpu.n_params * sizeof(float));
    CtLoraSpec spec = {.r = 4, .alpha = 8};
    snprintf(spec.targets, sizeof spec.targets, "%s", targets);
    snprintf(spec.modules_to_save, sizeof spec.modules_to_save, "classifier,score,pooler");
    CHECK_EQ_INT(ct_lora_attach(&cpu, &spec), 0);
    CHECK_EQ_INT(ct_lora_attach(&gpu, &spec), 0);
    if (ct_test_failed()) return;
    CHECK(cpu.lora->saved.n >= 1);
    for (size_t i = 0; i < cpu.lora->n_params; i++) cpu.lora->params[i] += 0.01f * (float)((i * 7919) % 13) - 0.06f;
    memcpy(gpu.lora->params, cpu.lora->params, cpu.lora->n_params * sizeof(float));
    ct_model_to_backend(&gpu, ops);
    const int labels[B] = {1, 2};
    step_both(&cpu, &gpu, &c, labels, 1e-5);
    CHECK(gpu.grads == NULL && gpu.dev_grads == NULL);  // the frozen base has no gradient anywhere
    const size_t n = cpu.lora->n_params;
    float *g = ct_alloc(n * sizeof(float));
    ops->download(g, gpu.lora->dev_grads, n * sizeof(float));
    double largest = 0, worst = 0, head = 0;
    for (size_t i = 0; i < n; i++) largest = fmax(largest, fabs(cpu.lora->grads[i]));
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(g[i] - cpu.lora->grads[i]));
    for (size_t i = cpu.lora->saved.t[0].offset; i < n; i++) head = fmax(head, fabs(cpu.lora->grads[i]));
    CHECK_MSG(worst <= 1e-4 * largest, "adapter and head gradients: the GPU's differ from the CPU's by %.3g of %.3g",
              worst, largest);
    CHECK_MSG(head > 0, "the head trained in full got no gradient");
    ct_free(g);
    ct_model_free(&cpu);
    ct_model_free(&gpu);
}

TEST(cuda, lora_classify_step_matches_cpu) {
    const CtOps *ops = cuda_fixture_ops_or_skip();
    lora_classify_case(ops, tiny_encoder_config(CT_ARCH_BERT), CT_POOL_CLS,
                       "query,key,value,attention.output.dense,intermediate.dense,output.dense");
    if (!ct_test_failed()) lora_classify_case(ops, tiny_encoder_config(CT_ARCH_ROBERTA), CT_POOL_CLS, "query,value");
    if (!ct_test_failed()) lora_classify_case(ops, tiny_config(CT_ARCH_LLAMA), CT_POOL_LAST, "all-linear");
}
