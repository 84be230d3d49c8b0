// Multi-token prediction on the GPU (suite "cuda"): the modules run on the same ops as the rest
// of the model (norms, products, the block, the cross-entropy; the concatenation is row copies),
// so a step of a model with two modules gives the CPU's main loss, per-depth losses and gradients,
// in fp32 (few ulps) and in bf16 (close), with sequential modules and with parallel heads;
// self-speculative decoding with the modules or heads drafting (the hidden rows, the module
// passes and their caches in device memory) gives the CPU's text and the CPU's acceptance
// counts. Without a usable GPU the tests skip (they also run on
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
#include "train/model/speculative_mtp.h"

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

// Greedy self-speculative decoding (train/model/speculative_mtp.h) of `count` tokens with k
// drafts per round on m's ops; the counts per depth to drafted_at / accepted_at [2].
static void self_speculative(CtModel *m, int k, const int32_t *prompt, int n, int count, int32_t *out,
                             long *drafted_at, long *accepted_at) {
    CtGenerator g;
    ct_generator_init(&g, m, m->config.max_seq_len);
    CtDrafter drafter;
    CtMtpDrafter md;
    ct_mtp_drafter_init(&md, &drafter, &g);
    const CtSampling greedy = {.temperature = 0};
    CtSpeculative sp;
    ct_speculative_init(&sp, &g, &drafter, k, &greedy, NULL, prompt, n);
    int32_t round[3];
    for (int done = 0; done < count;) {
        const int got = ct_speculative_round(&sp, round, count - done < k + 1 ? count - done : k + 1);
        CHECK(got >= 1);
        if (got < 1) break;
        memcpy(out + done, round, sizeof(int32_t) * (size_t)got);
        done += got;
    }
    for (int i = 0; i < 2; i++) {
        drafted_at[i] = i < k ? sp.drafted_at[i] : 0;
        accepted_at[i] = i < k ? sp.accepted_at[i] : 0;
    }
    ct_speculative_free(&sp);
    ct_mtp_drafter_free(&md);
    ct_generator_free(&g);
}

static void self_speculative_case(const CtOps *ops, CtArch arch, CtMtpStyle style) {
    enum { CTX = 24, N = 3, COUNT = CTX - N };
    CtModelConfig c = tiny_config(arch);
    c.mtp_depth = 2;
    c.mtp_style = style;
    c.max_seq_len = CTX;
    CtModel cpu, gpu;
    CHECK_EQ_INT(ct_model_create(&cpu, &c, ct_ops_cpu(), 1, 4, 0), 0);
    CHECK_EQ_INT(ct_model_create(&gpu, &c, ct_ops_cpu(), 1, 4, 0), 0);
    if (ct_test_failed()) return;
    tiny_randomize_params(&cpu, 5);
    memcpy(gpu.params, cpu.params, cpu.n_params * sizeof(float));
    ct_model_to_backend(&gpu, ops);
    const int32_t prompt[N] = {3, 9, 4};
    int32_t on_cpu[COUNT], on_gpu[COUNT];
    long cpu_drafted[2], cpu_accepted[2], gpu_drafted[2], gpu_accepted[2];
    for (int k = 1; k <= 2 && !ct_test_failed(); k++) {
        self_speculative(&cpu, k, prompt, N, COUNT, on_cpu, cpu_drafted, cpu_accepted);
        self_speculative(&gpu, k, prompt, N, COUNT, on_gpu, gpu_drafted, gpu_accepted);
        for (int i = 0; i < COUNT; i++)
            CHECK_MSG(on_gpu[i] == on_cpu[i], "%s, k %d: token %d is %d on the GPU, %d on the CPU", ct_arch_name(arch),
                      k, i, on_gpu[i], on_cpu[i]);
        for (int d = 0; d < k; d++)
            CHECK_MSG(gpu_drafted[d] == cpu_drafted[d] && gpu_accepted[d] == cpu_accepted[d],
                      "%s, k %d, depth %d: %ld of %ld drafts accepted on the GPU, %ld of %ld on the CPU",
                      ct_arch_name(arch), k, d + 1, gpu_accepted[d], gpu_drafted[d], cpu_accepted[d], cpu_drafted[d]);
    }
    ct_model_free(&cpu);
    ct_model_free(&gpu);
}

TEST(cuda, mtp_self_speculative_greedy_matches_cpu) {
    const CtOps *ops = cuda_fixture_ops_or_skip();
    self_speculative_case(ops, CT_ARCH_LLAMA, CT_MTP_SEQUENTIAL);
    if (!ct_test_failed()) self_speculative_case(ops, CT_ARCH_GPT2, CT_MTP_SEQUENTIAL);
}

TEST(cuda, mtp_parallel_self_speculative_greedy_matches_cpu) {
    const CtOps *ops = cuda_fixture_ops_or_skip();
    self_speculative_case(ops, CT_ARCH_LLAMA, CT_MTP_PARALLEL);
    if (!ct_test_failed()) self_speculative_case(ops, CT_ARCH_GPT2, CT_MTP_PARALLEL);
}
