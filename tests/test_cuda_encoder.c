// The encoders (bert, roberta) on the GPU (suite "cuda"): the embeddings with token types and
// RoBERTa's positions, the post-LN blocks, bidirectional attention over a padded batch and the MLM
// head run on the op table's ops, so a training step gives the CPU's loss and gradients, in fp32
// (few ulps) and in bf16 (close). Without a usable GPU the tests skip (they also run on the CPU
// emulation of CUDA, tests/test_cuda_emu/run.sh).
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "kernels/device.h"
#include "kernels/ops.h"
#include "tests/cuda_fixture.h"
#include "tests/hf_fixture.h"
#include "tests/model_fixture.h"
#include "tests/test.h"

static void encoder_step_case(const CtOps *ops, CtArch arch, float dropout, double tol) {
    const int T = 12;
    CtModelConfig c = tiny_encoder_config(arch);
    c.dropout = dropout;
    CtModel cpu, gpu;
    CHECK_EQ_INT(ct_model_create(&cpu, &c, ct_ops_cpu(), 2, T, 0), 0);
    CHECK_EQ_INT(ct_model_create(&gpu, &c, ct_ops_cpu(), 2, T, 0), 0);
    if (ct_test_failed()) return;
    tiny_randomize_params(&cpu, 6);
    memcpy(gpu.params, cpu.params, cpu.n_params * sizeof(float));
    ct_model_to_backend(&gpu, ops);
    ct_model_set_dropout(&cpu, 1, 99);  // the counter-based masks are the same on both
    ct_model_set_dropout(&gpu, 1, 99);
    EncoderBatch eb;
    tiny_encoder_batch(&eb, &c, T, 13);
    const float lc = ct_model_forward(&cpu, &eb.batch), lg = ct_model_forward(&gpu, &eb.batch);
    CHECK_MSG(fabsf(lg - lc) <= tol * fabsf(lc), "loss %.9g on the GPU, %.9g on the CPU", lg, lc);
    ct_model_zero_grad(&cpu);
    ct_model_zero_grad(&gpu);
    ct_model_backward(&cpu);
    ct_model_backward(&gpu);
    tiny_check_device_grads(ops, &cpu, &gpu, tol);
    ct_model_free(&cpu);
    ct_model_free(&gpu);
}

TEST(cuda, encoder_step_matches_cpu) {
    const CtOps *ops = cuda_fixture_ops_or_skip();
    encoder_step_case(ops, CT_ARCH_BERT, 0, 1e-5);
    if (!ct_test_failed()) encoder_step_case(ops, CT_ARCH_ROBERTA, 0.2f, 1e-5);
}

TEST(cuda, bf16_encoder_step_is_close_to_fp32) {
    const CtOps *ops = cuda_fixture_ops_or_skip();
    const CtOps *bf16 = ct_ops_with_precision(ops, "bf16");
    CHECK(bf16 != NULL);
    if (!ct_test_failed()) encoder_step_case(bf16, CT_ARCH_BERT, 0, 8e-3);
}
