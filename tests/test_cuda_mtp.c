// Multi-token prediction on the GPU (suite "cuda"): the modules run on the same ops as the rest
// of the model (norms, products, the block, the cross-entropy; the concatenation is row copies),
// so a step of a model with two modules gives the CPU's main loss, per-depth losses and gradients,
// in fp32 (few ulps) and in bf16 (close); the same with two parallel heads. Without a usable GPU the tests skip (they also run on
// the CPU emulation of CUDA, tests/test_cuda_emu/run.sh).
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "kernels/device.h"
#include "kernels/ops.h"
#include "tests/cuda_fixture.h"
#include "tests/hf_fixture.h"
#include "tests/model_fixture.h"
#include "tests/test.h"

static void mtp_step_case(const CtOps *ops, CtArch arch, int packed, CtMtpStyle style, double tol) {
    const int B = 3, T = 16;
    CtModelConfig c = tiny_config(arch);
    c.mtp_depth = 2;
    c.mtp_style = style;
    CtModel cpu, gpu;
    CHECK_EQ_INT(ct_model_create(&cpu, &c, ct_ops_cpu(), B, T, 0), 0);
    CHECK_EQ_INT(ct_model_create(&gpu, &c, ct_ops_cpu(), B, T, 0), 0);
    if (ct_test_failed()) return;
    tiny_randomize_params(&cpu, 5);
    memcpy(gpu.params, cpu.params, cpu.n_params * sizeof(float));
    ct_model_to_backend(&gpu, ops);
    cpu.mtp_weight = gpu.mtp_weight = 0.3f;
    CtRng rng;
    ct_rng_seed(&rng, 17);
    TinyBatch tb;
    tiny_batch(&tb, &rng, B, T, c.vocab_size, packed);
    const float lc = ct_model_forward(&cpu, &tb.batch), lg = ct_model_forward(&gpu, &tb.batch);
    CHECK_MSG(fabsf(lg - lc) <= tol * fabsf(lc), "loss %.9g on the GPU, %.9g on the CPU", lg, lc);
    for (int k = 0; k < 2; k++) {
        CHECK(gpu.mtp_loss_count[k] == cpu.mtp_loss_count[k] && cpu.mtp_loss_count[k] > 0);
        CHECK_MSG(fabsf(gpu.mtp_loss[k] - cpu.mtp_loss[k]) <= tol * fabsf(cpu.mtp_loss[k]),
                  "depth %d: loss %.9g on the GPU, %.9g on the CPU", k + 1, gpu.mtp_loss[k], cpu.mtp_loss[k]);
    }
    ct_model_zero_grad(&cpu);
    ct_model_zero_grad(&gpu);
    ct_model_backward(&cpu);
    ct_model_backward(&gpu);
    float *g = ct_alloc(cpu.n_params * sizeof(float));
    ops->download(g, gpu.dev_grads, cpu.n_params * sizeof(float));
    for (int i = 0; i < cpu.n_tensors; i++) {  // per tensor: the modules' own included
        const CtParamEntry *e = &cpu.table[i];
        const double r = hf_fixture_relative_error(g + e->offset, cpu.grads + e->offset, e->numel);
        CHECK_MSG(r < tol * 10, "%s: GPU gradient differs from the CPU's by %.3g", e->name, r);
    }
    ct_free(g);
    ct_model_free(&cpu);
    ct_model_free(&gpu);
}

TEST(cuda, mtp_step_matches_cpu) {
    const CtOps *ops = cuda_fixture_ops_or_skip();
    mtp_step_case(ops, CT_ARCH_LLAMA, 1, CT_MTP_SEQUENTIAL, 1e-5);  // packed documents, masks, weights
    if (!ct_test_failed()) mtp_step_case(ops, CT_ARCH_GPT2, 0, CT_MTP_SEQUENTIAL, 1e-5);
}

TEST(cuda, bf16_mtp_step_is_close_to_fp32) {
    const CtOps *ops = cuda_fixture_ops_or_skip();
    const CtOps *bf16 = ct_ops_with_precision(ops, "bf16");
    CHECK(bf16 != NULL);
    if (!ct_test_failed()) mtp_step_case(bf16, CT_ARCH_LLAMA, 1, CT_MTP_SEQUENTIAL, 8e-3);
}

// Parallel heads (model.mtp_style parallel): the heads' blocks over the trunk state and its
// gradient summed with the last block's, on the device.
TEST(cuda, mtp_parallel_step_matches_cpu) {
    const CtOps *ops = cuda_fixture_ops_or_skip();
    mtp_step_case(ops, CT_ARCH_LLAMA, 1, CT_MTP_PARALLEL, 1e-5);
    if (!ct_test_failed()) mtp_step_case(ops, CT_ARCH_GPT2, 0, CT_MTP_PARALLEL, 1e-5);
}

TEST(cuda, bf16_mtp_parallel_step_is_close_to_fp32) {
    const CtOps *ops = cuda_fixture_ops_or_skip();
    const CtOps *bf16 = ct_ops_with_precision(ops, "bf16");
    CHECK(bf16 != NULL);
    if (!ct_test_failed()) mtp_step_case(bf16, CT_ARCH_LLAMA, 1, CT_MTP_PARALLEL, 8e-3);
}
