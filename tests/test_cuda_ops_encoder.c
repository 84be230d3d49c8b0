// The CUDA tables against the CPU for the encoder models' element-wise ops (issue #26): the
// exact GELU and tanh, forward and backward (adding into the gradient). Both tables: fp32 to TOL,
// bf16 activations to 1e-2. Skips without a GPU (tests/test_cuda_emu/run.sh runs them on the
// emulation).
#include "tests/cuda_fixture.h"
#include "tests/test.h"

#ifdef CTRAIN_CUDA
#include "tests/cuda_ops_check.h"

static void gelu_erf_tanh_case(const CtOps *gpu) {
    CtRng rng;
    ct_rng_seed(&rng, 263);
    const size_t n = 10007;
    float *x = rnd(&rng, n, 3), *y = ct_alloc(n * sizeof(float)), *dout = rnd(&rng, n, 1), *dx = rnd(&rng, n, 1);
    as_table_holds(gpu, x, n);
    as_table_holds(gpu, dout, n);
    as_table_holds(gpu, dx, n);
    CtAct *d_x = up_act(gpu, x, n), *d_y = new_act(gpu, n, "y"), *d_dout = up_act(gpu, dout, n);
    CtAct *d_dx = up_act(gpu, dx, n), *d_dx2 = up_act(gpu, dx, n);
    float *dx2 = ct_alloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) dx2[i] = dx[i];
    CPU->gelu_erf_forward(y, x, n);
    gpu->gelu_erf_forward(d_y, d_x, n);
    CHECK_ACT_CLOSE(gpu, d_y, y, n, "gelu_erf forward");
    CPU->gelu_erf_backward(dx, x, dout, n);
    gpu->gelu_erf_backward(d_dx, d_x, d_dout, n);
    CHECK_ACT_CLOSE(gpu, d_dx, dx, n, "gelu_erf backward");
    CPU->tanh_forward(y, x, n);
    gpu->tanh_forward(d_y, d_x, n);
    CHECK_ACT_CLOSE(gpu, d_y, y, n, "tanh forward");
    CPU->tanh_backward(dx2, y, dout, n);
    gpu->tanh_backward(d_dx2, d_y, d_dout, n);
    CHECK_ACT_CLOSE(gpu, d_dx2, dx2, n, "tanh backward");
    ct_cuda_free(d_x), ct_cuda_free(d_y), ct_cuda_free(d_dout), ct_cuda_free(d_dx), ct_cuda_free(d_dx2);
    ct_free(x), ct_free(y), ct_free(dout), ct_free(dx), ct_free(dx2);
}

TEST(cuda, gelu_erf_and_tanh) {
    need_gpu();
    gelu_erf_tanh_case(GPU);
}
TEST(cuda, gelu_erf_and_tanh_bf16_activations) {
    need_gpu();
    gelu_erf_tanh_case(ct_ops_cuda_bf16());
}
#else
TEST(cuda, encoder_ops_need_a_cuda_build) { SKIP("built without CUDA"); }
#endif
