// The CUDA tables against the CPU for the ops of the LLaMA-architecture variants (issue #22):
// per-head q/k RMSNorm, GeGLU, the activation scale. Both tables: fp32 to TOL, bf16 activations
// to 1e-2, weight gradients (fp32 column sums) to TOL. Attention's options, RoPE's frequency
// table, decoding with options and the soft-capped cross-entropy are in test_cuda_ops.c, next to
// their plain forms. Skips without a GPU (tests/test_cuda_emu/run.sh runs them on the emulation).
#include "tests/cuda_fixture.h"
#include "tests/test.h"

#ifdef CTRAIN_CUDA
#include "tests/cuda_ops_check.h"

// q/k norm forward, then backward into a separate dinp and in place (dinp = dout), weights
// trained and (dk_weight NULL) a frozen k weight.
static void qk_norm_case(const CtOps *gpu, int N, int NH, int NKV, int HD) {
    CtRng rng;
    ct_rng_seed(&rng, (uint64_t)(N * 7 + HD));
    const size_t n = (size_t)N * (NH + 2 * NKV) * HD, nr = (size_t)N * (NH + NKV);
    float *x = rnd(&rng, n, 2), *qw = rnd(&rng, HD, 1), *kw = rnd(&rng, HD, 1), *dout = rnd(&rng, n, 1);
    as_table_holds(gpu, x, n);
    as_table_holds(gpu, dout, n);
    float *y = ct_alloc(n * sizeof(float)), *rstd = ct_alloc(nr * sizeof(float)), *dx = ct_alloc(n * sizeof(float));
    float *dqw = rnd(&rng, HD, 1), *dkw = rnd(&rng, HD, 1);
    float *d_qw = upf(qw, HD), *d_kw = upf(kw, HD), *d_dqw = upf(dqw, HD), *d_dkw = upf(dkw, HD);
    float *d_dkw_frozen = upf(dkw, HD), *d_rstd = ct_cuda_malloc(nr * sizeof(float), "rstd");
    CtAct *d_x = up_act(gpu, x, n), *d_y = new_act(gpu, n, "y"), *d_dout = up_act(gpu, dout, n);
    CtAct *d_dx = new_act(gpu, n, "dx");
    CPU->qk_norm_forward(y, rstd, x, qw, kw, N, NH, NKV, HD, 1e-6f);
    gpu->qk_norm_forward(d_y, d_rstd, d_x, d_qw, d_kw, N, NH, NKV, HD, 1e-6f);
    CHECK_ACT_CLOSE(gpu, d_y, y, n, "qk_norm forward");
    CHECK_CLOSE(d_rstd, rstd, nr, "qk_norm rstd");
    CPU->qk_norm_backward(dx, dqw, dkw, dout, x, qw, kw, rstd, N, NH, NKV, HD);
    gpu->qk_norm_backward(d_dx, d_dqw, d_dkw, d_dout, d_x, d_qw, d_kw, d_rstd, N, NH, NKV, HD);
    CHECK_ACT_CLOSE(gpu, d_dx, dx, n, "qk_norm backward: dinp (values copied)");
    CHECK_CLOSE(d_dqw, dqw, HD, "qk_norm backward: dq_weight");
    CHECK_CLOSE(d_dkw, dkw, HD, "qk_norm backward: dk_weight");
    // in place, with the k weight frozen: dk_weight NULL, the buffer beside it untouched
    float *dkw_before = cuda_fixture_down(d_dkw_frozen, HD);
    gpu->qk_norm_backward(d_dout, NULL, NULL, d_dout, d_x, d_qw, d_kw, d_rstd, N, NH, NKV, HD);
    CHECK_ACT_CLOSE(gpu, d_dout, dx, n, "qk_norm backward in place");
    CHECK_CLOSE_TOL(d_dkw_frozen, dkw_before, HD, 1e-30, "qk_norm backward: frozen weight untouched");
    ct_free(dkw_before);
    ct_cuda_free(d_qw), ct_cuda_free(d_kw), ct_cuda_free(d_dqw), ct_cuda_free(d_dkw), ct_cuda_free(d_dkw_frozen);
    ct_cuda_free(d_rstd), ct_cuda_free(d_x), ct_cuda_free(d_y), ct_cuda_free(d_dout), ct_cuda_free(d_dx);
    ct_free(x), ct_free(qw), ct_free(kw), ct_free(dout), ct_free(y), ct_free(rstd), ct_free(dx), ct_free(dqw);
    ct_free(dkw);
}

TEST(cuda, qk_norm_forward_and_backward) {
    need_gpu();
    qk_norm_case(GPU, 37, 4, 2, 64);
    if (!ct_test_failed()) qk_norm_case(GPU, 300, 3, 1, 40);  // HD not a multiple of 32; many colsum rows
}
TEST(cuda, qk_norm_bf16_activations) {
    need_gpu();
    qk_norm_case(ct_ops_cuda_bf16(), 37, 4, 2, 128);
}

// GeGLU forward and backward (adding into dgate_up), and act_scale in place.
static void geglu_scale_case(const CtOps *gpu) {
    CtRng rng;
    ct_rng_seed(&rng, 71);
    const int N = 31, F = 161;
    const size_t nf = (size_t)N * F, n2 = 2 * nf;
    float *gu = rnd(&rng, n2, 2), *o = ct_alloc(nf * sizeof(float)), *go = rnd(&rng, nf, 1), *dgu = rnd(&rng, n2, 1);
    as_table_holds(gpu, gu, n2);
    as_table_holds(gpu, go, nf);
    as_table_holds(gpu, dgu, n2);
    CtAct *d_gu = up_act(gpu, gu, n2), *d_o = new_act(gpu, nf, "o"), *d_go = up_act(gpu, go, nf);
    CtAct *d_dgu = up_act(gpu, dgu, n2);
    CPU->geglu_forward(o, gu, N, F);
    gpu->geglu_forward(d_o, d_gu, N, F);
    CHECK_ACT_CLOSE(gpu, d_o, o, nf, "geglu forward");
    CPU->geglu_backward(dgu, go, gu, N, F);
    gpu->geglu_backward(d_dgu, d_go, d_gu, N, F);
    CHECK_ACT_CLOSE(gpu, d_dgu, dgu, n2, "geglu backward");
    CPU->act_scale(gu, n2, 5.656854f);
    gpu->act_scale(d_gu, n2, 5.656854f);
    CHECK_ACT_CLOSE(gpu, d_gu, gu, n2, "act_scale");
    ct_cuda_free(d_gu), ct_cuda_free(d_o), ct_cuda_free(d_go), ct_cuda_free(d_dgu);
    ct_free(gu), ct_free(o), ct_free(go), ct_free(dgu);
}

TEST(cuda, geglu_and_act_scale) {
    need_gpu();
    geglu_scale_case(GPU);
}
TEST(cuda, geglu_and_act_scale_bf16_activations) {
    need_gpu();
    geglu_scale_case(ct_ops_cuda_bf16());
}
#else
TEST(cuda, variant_ops_need_a_cuda_build) { SKIP("built without CUDA"); }
#endif
