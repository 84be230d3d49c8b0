// The sequence classifier on the GPU (suite "cuda"; train/model/model_classify.h): the head's
// products, tanh and dropout run on the op table (pooling and the loss on the host), so a
// classification step over a padded batch gives the CPU's logits and gradients, in fp32 (few ulps)
// and in bf16 (close), for BERT (pooler + classifier), RoBERTa (classifier.dense + out_proj, both
// dropouts) and a llama (score on the last token). Without a usable GPU the tests skip (they also
// run on the CPU emulation of CUDA, tests/test_cuda_emu/run.sh).
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "kernels/device.h"
#include "kernels/ops.h"
#include "tests/cuda_fixture.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/model/model_classify.h"
#include "train/model/model_resize.h"

enum { B = 2, T = 12, LABELS = 3 };

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
    ct_model_set_dropout(&cpu, 1, 99);
    ct_model_set_dropout(&gpu, 1, 99);
    EncoderBatch eb;
    CtModelConfig framing = c;
    if (!ct_model_is_encoder(&c)) framing.pad_token_id = 0, framing.type_vocab_size = 1;
    tiny_encoder_batch(&eb, &framing, T, 13);
    eb.batch.targets = NULL;
    const int len[B] = {T, T - 3};
    const int labels[B] = {2, 0};
    float zc[B * LABELS], zg[B * LABELS], dz[B * LABELS];
    ct_model_zero_grad(&cpu);
    ct_model_zero_grad(&gpu);
    ct_model_classify_forward(&cpu, &eb.batch, len, zc);
    ct_model_classify_forward(&gpu, &eb.batch, len, zg);
    double zmax = 0;
    for (int i = 0; i < B * LABELS; i++) zmax = fmax(zmax, fabs(zc[i]));
    // (bf16: the logits themselves are bf16 activations, 2^-8 relative, where the gradients accumulate in fp32)
    for (int i = 0; i < B * LABELS; i++)
        CHECK_MSG(fabs(zg[i] - zc[i]) <= 3 * tol * zmax, "logit %d: %.9g on the GPU, %.9g on the CPU", i, zg[i], zc[i]);
    for (int r = 0; r < B; r++) ct_classify_xent(zc + r * LABELS, LABELS, labels[r], 1.0 / B, dz + r * LABELS);
    ct_model_classify_backward(&cpu, dz);
    ct_model_classify_backward(&gpu, dz);
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
