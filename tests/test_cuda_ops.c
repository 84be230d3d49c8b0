// The CUDA op table against the CPU one: every op forward and backward on random inputs,
// plus AdamW, clipping, the memory API, out-of-memory reporting and run-to-run determinism.
// Error measure, per tensor: max |cuda - cpu| / max |cpu| (nan counts as infinite). fp32
// tolerance 1e-5 (issue 11). Backward ops ADD into their gradients, so gradients start from
// the same random numbers on both sides, which checks the adding too.
//
// Every test skips when no GPU is usable, and the suite is a single skipped test in builds
// without CUDA. Run only these with `make test-cuda`; under compute-sanitizer with
// `make test-cuda-memcheck`.
#include "tests/cuda_fixture.h"
#include "tests/test.h"

#ifdef CTRAIN_CUDA
#include <math.h>
#include <stdint.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/device.h"
#include "kernels/ops.h"
#include "optim/adamw.h"
#include "optim/clip.h"
#include "tests/cuda_ops_check.h"

// ---- memory ----

TEST(cuda, memory_api_counts_bytes_and_copies) {
    need_gpu();
    size_t before = ct_cuda_bytes_in_use();
    float host[1000], back[1000];
    for (int i = 0; i < 1000; i++) host[i] = (float)i * 0.5f;
    float *a = ct_cuda_malloc(sizeof host, "a"), *b = ct_cuda_malloc(sizeof host, "b");
    CHECK_EQ_INT(ct_cuda_bytes_in_use() - before, 2 * sizeof host);
    CHECK(ct_cuda_bytes_peak() >= ct_cuda_bytes_in_use());
    ct_cuda_upload(a, host, sizeof host);
    ct_cuda_copy(b, a, sizeof host);
    ct_cuda_download(back, b, sizeof host);
    CHECK(memcmp(host, back, sizeof host) == 0);
    ct_cuda_zero(b, sizeof host);
    ct_cuda_download(back, b, sizeof host);
    CHECK(back[0] == 0 && back[999] == 0);
    ct_cuda_free(a);
    ct_cuda_free(b);
    ct_cuda_free(NULL);
    CHECK_EQ_INT(ct_cuda_bytes_in_use(), before);
}

// The child touches CUDA first (a CUDA context does not survive fork): exit 77 = no GPU.
static void allocate_too_much(void *arg) {
    (void)arg;
    char why[256];
    if (ct_cuda_device_count(why, sizeof why) <= 0) _exit(77);
    ct_cuda_malloc((size_t)1 << 50, "a petabyte test buffer");
}

TEST(cuda, out_of_memory_reports_sizes_and_a_hint) {
    char *out = NULL;
    int status = ct_test_fork(allocate_too_much, NULL, &out);
    if (status == 77) SKIP("no usable CUDA device");
    CHECK_EQ_INT(status, 1);
    CHECK_CONTAINS(out, "out of GPU memory allocating a petabyte test buffer");
    CHECK_CONTAINS(out, "asked 1073741824.0 MiB");
    CHECK_CONTAINS(out, "MiB free of");
    CHECK_CONTAINS(out, "smaller batch");
    CHECK_CONTAINS(out, "kernels/cuda/memory.cu:");
    free(out);
}


// ---- embedding ----

static void embedding_case(const CtOps *gpu) {
    CtRng rng;
    ct_rng_seed(&rng, 1);
    const int N = 300, C = 96, V = 50;
    int32_t ids[300], pos[300];
    for (int n = 0; n < N; n++) {
        ids[n] = (int32_t)ct_rng_below(&rng, 7) * 7 % V;  // few distinct ids: long runs
        pos[n] = n % 60;
    }
    float *table = rnd(&rng, (size_t)V * C, 1), *ptable = rnd(&rng, 60 * C, 1);
    float *out = ct_alloc(sizeof(float) * N * C);
    CPU->embedding_forward(out, ids, table, N, C, 0);
    CPU->embedding_forward(out, pos, ptable, N, C, 1);
    int32_t *d_ids = up(ids, sizeof ids), *d_pos = up(pos, sizeof pos);
    float *d_table = upf(table, (size_t)V * C), *d_ptable = upf(ptable, 60 * C);
    CtAct *d_out = new_act(gpu, (size_t)N * C, "out");
    gpu->embedding_forward(d_out, d_ids, d_table, N, C, 0);
    gpu->embedding_forward(d_out, d_pos, d_ptable, N, C, 1);  // bf16: rounds the token row, then the sum
    CHECK_ACT_CLOSE(gpu, d_out, out, (size_t)N * C, "embedding forward");

    float *dout = rnd(&rng, (size_t)N * C, 1), *dtable = rnd(&rng, (size_t)V * C, 1);
    as_table_holds(gpu, dout, (size_t)N * C);
    CtAct *d_dout = up_act(gpu, dout, (size_t)N * C);
    float *d_dtable = upf(dtable, (size_t)V * C), *d_dtable2 = upf(dtable, (size_t)V * C);
    CPU->embedding_backward(dtable, dout, ids, N, C);
    gpu->embedding_backward(d_dtable, d_dout, d_ids, N, C);
    CHECK_CLOSE(d_dtable, dtable, (size_t)V * C, "embedding backward");
    gpu->embedding_backward(d_dtable2, d_dout, d_ids, N, C);
    CHECK_MSG(same_bits(d_dtable, d_dtable2, (size_t)V * C), "embedding backward differs between two runs");
}

TEST(cuda, embedding_forward_and_backward) {
    need_gpu();
    embedding_case(GPU);
}
TEST(cuda, embedding_bf16_activations) {
    need_gpu();
    embedding_case(ct_ops_cuda_bf16());
}

// ---- norms ----

static void layernorm_case(const CtOps *gpu) {
    CtRng rng;
    ct_rng_seed(&rng, 2);
    const int N = 133, C = 200;
    const size_t NC = (size_t)N * C;
    float *x = rnd(&rng, NC, 2), *w = rnd(&rng, C, 1), *b = rnd(&rng, C, 1);
    for (size_t i = 0; i < NC; i++) x[i] += 3.0f;  // a mean far from zero
    as_table_holds(gpu, x, NC);
    float *out = ct_alloc(NC * sizeof(float)), mean[133], rstd[133];
    CPU->layernorm_forward(out, mean, rstd, x, w, b, N, C, 1e-5f);
    CtAct *d_x = up_act(gpu, x, NC), *d_out = new_act(gpu, NC, "out");
    float *d_w = upf(w, C), *d_b = upf(b, C);
    float *d_mean = ct_cuda_malloc(N * 4, "mean"), *d_rstd = ct_cuda_malloc(N * 4, "rstd");
    gpu->layernorm_forward(d_out, d_mean, d_rstd, d_x, d_w, d_b, N, C, 1e-5f);
    CHECK_ACT_CLOSE(gpu, d_out, out, NC, "layernorm out");
    CHECK_CLOSE(d_mean, mean, N, "layernorm mean");
    CHECK_CLOSE(d_rstd, rstd, N, "layernorm rstd");

    float *dout = rnd(&rng, NC, 1), *dx = rnd(&rng, NC, 1), *dw = rnd(&rng, C, 1), *db = rnd(&rng, C, 1);
    as_table_holds(gpu, dout, NC);
    as_table_holds(gpu, dx, NC);
    CtAct *d_dout = up_act(gpu, dout, NC), *d_dx = up_act(gpu, dx, NC);
    float *d_dw = upf(dw, C), *d_db = upf(db, C), *d_dw2 = upf(dw, C);
    CPU->layernorm_backward(dx, dw, db, dout, x, w, mean, rstd, N, C);
    gpu->layernorm_backward(d_dx, d_dw, d_db, d_dout, d_x, d_w, d_mean, d_rstd, N, C);
    CHECK_ACT_CLOSE(gpu, d_dx, dx, NC, "layernorm dinp");
    CHECK_CLOSE(d_dw, dw, C, "layernorm dweight");
    CHECK_CLOSE(d_db, db, C, "layernorm dbias");
    // without dinp and dbias (frozen first layer), and the same bits as the full call
    float *dw_before = cuda_fixture_down(d_dw2, C);
    gpu->layernorm_backward(NULL, d_dw2, NULL, d_dout, d_x, d_w, d_mean, d_rstd, N, C);
    ct_cuda_upload(d_dw, dw_before, C * sizeof(float));
    gpu->layernorm_backward(NULL, d_dw, NULL, d_dout, d_x, d_w, d_mean, d_rstd, N, C);
    CHECK_MSG(same_bits(d_dw, d_dw2, C), "layernorm dweight differs between two runs");
}

TEST(cuda, layernorm_forward_and_backward) {
    need_gpu();
    layernorm_case(GPU);
}
TEST(cuda, layernorm_bf16_activations) {
    need_gpu();
    layernorm_case(ct_ops_cuda_bf16());
}

static void rmsnorm_case(const CtOps *gpu) {
    CtRng rng;
    ct_rng_seed(&rng, 3);
    const int N = 70, C = 333;
    const size_t NC = (size_t)N * C;
    float *x = rnd(&rng, NC, 2), *w = rnd(&rng, C, 1), *out = ct_alloc(NC * 4), rstd[70];
    as_table_holds(gpu, x, NC);
    CPU->rmsnorm_forward(out, rstd, x, w, N, C, 1e-6f);
    CtAct *d_x = up_act(gpu, x, NC), *d_out = new_act(gpu, NC, "out");
    float *d_w = upf(w, C), *d_rstd = ct_cuda_malloc(N * 4, "rstd");
    gpu->rmsnorm_forward(d_out, d_rstd, d_x, d_w, N, C, 1e-6f);
    CHECK_ACT_CLOSE(gpu, d_out, out, NC, "rmsnorm out");
    CHECK_CLOSE(d_rstd, rstd, N, "rmsnorm rstd");
    float *dout = rnd(&rng, NC, 1), *dx = rnd(&rng, NC, 1), *dw = rnd(&rng, C, 1);
    as_table_holds(gpu, dout, NC);
    as_table_holds(gpu, dx, NC);
    CtAct *d_dout = up_act(gpu, dout, NC), *d_dx = up_act(gpu, dx, NC);
    float *d_dw = upf(dw, C);
    CPU->rmsnorm_backward(dx, dw, dout, x, w, rstd, N, C);
    gpu->rmsnorm_backward(d_dx, d_dw, d_dout, d_x, d_w, d_rstd, N, C);
    CHECK_ACT_CLOSE(gpu, d_dx, dx, NC, "rmsnorm dinp");
    CHECK_CLOSE(d_dw, dw, C, "rmsnorm dweight");
}

TEST(cuda, rmsnorm_forward_and_backward) {
    need_gpu();
    rmsnorm_case(GPU);
}
TEST(cuda, rmsnorm_bf16_activations) {
    need_gpu();
    rmsnorm_case(ct_ops_cuda_bf16());
}

// The products' bias gradient (norm.cu's column sum, not in the table): dbias += Σ_n dout, float
// on both tables, against the CPU's matmul_backward asked for dbias alone. N spans several
// row chunks of the column sum.
TEST(cuda, bias_backward_both_tables) {
    need_gpu();
    const CtOps *tables[] = {GPU, ct_ops_cuda_bf16()};
    for (int k = 0; k < 2; k++) {
        const CtOps *gpu = tables[k];
        CtRng rng;
        ct_rng_seed(&rng, 7);
        const int N = 300, OC = 77;
        float *dout = rnd(&rng, (size_t)N * OC, 1), *dbias = rnd(&rng, OC, 1);
        as_table_holds(gpu, dout, (size_t)N * OC);
        CtAct *d_dout = up_act(gpu, dout, (size_t)N * OC);
        float *d_dbias = upf(dbias, OC);
        CPU->matmul_backward(NULL, NULL, dbias, dout, NULL, NULL, N, 1, OC);
        (is_bf16(gpu) ? ct_cuda_bias_backward_bf16 : ct_cuda_bias_backward)(d_dbias, d_dout, N, OC);
        CHECK_CLOSE(d_dbias, dbias, OC, is_bf16(gpu) ? "bias backward (bf16 dout)" : "bias backward");
    }
}

// ---- matrix products ----

// Activation arrays of a table (float or bf16, kernels/ops.h), for the product and cross-entropy
// tests. mm_up uploads host floats and then overwrites them with what the device holds (in the
// bf16 table: rounded to bf16), so the CPU reference starts from the very inputs the GPU op got
// and the comparison measures the op, not the rounding of its inputs (fp32 table: unchanged).
static CtAct *mm_up(const CtOps *gpu, float *host, size_t n) {
    CtAct *d = cuda_fixture_up_act(gpu, host, n);
    gpu->download_act(host, d, n);
    return d;
}

// gpu: the fp32 table (tol 1e-5) or the bf16 table (tol 1e-2: bf16 activations in memory, weights
// rounded to bf16 in the products, activation outputs rounded to bf16; weight gradients fp32).
static void matmul_case(const CtOps *gpu, double tol, int N, int C, int OC, int with_bias, int want_dinp, int want_dw,
                        int want_db) {
    CtRng rng;
    ct_rng_seed(&rng, (uint64_t)(N * 7 + C * 3 + OC));
    float *x = rnd(&rng, (size_t)N * C, 1), *w = rnd(&rng, (size_t)OC * C, 0.2f), *b = rnd(&rng, OC + 1, 1) + 1;
    float *out = ct_alloc(sizeof(float) * N * OC);
    CtAct *d_x = mm_up(gpu, x, (size_t)N * C);
    // the bias one float into its buffer, as biases at offsets in the parameter buffer are
    float *d_w = upf(w, (size_t)OC * C), *d_b = upf(b - 1, OC + 1) + 1;
    CPU->matmul_forward(out, x, w, with_bias ? b : NULL, N, C, OC);
    CtAct *d_out = new_act(gpu, (size_t)N * OC, "out");
    gpu->matmul_forward(d_out, d_x, d_w, with_bias ? d_b : NULL, N, C, OC);
    CHECK_ACT_CLOSE_TOL(gpu, d_out, out, (size_t)N * OC, tol, "matmul forward");

    float *dout = rnd(&rng, (size_t)N * OC, 1), *dx = rnd(&rng, (size_t)N * C, 1);
    float *dw = rnd(&rng, (size_t)OC * C, 1), *db = rnd(&rng, OC, 1);
    CtAct *d_dout = mm_up(gpu, dout, (size_t)N * OC), *d_dx = mm_up(gpu, dx, (size_t)N * C);
    float *d_dw = upf(dw, (size_t)OC * C), *d_db = upf(db, OC);
    float *dx0 = copy_of(dx, (size_t)N * C);
    CPU->matmul_backward(want_dinp ? dx : NULL, want_dw ? dw : NULL, want_db ? db : NULL, dout, x, w, N, C, OC);
    gpu->matmul_backward(want_dinp ? d_dx : NULL, want_dw ? d_dw : NULL, want_db ? d_db : NULL, d_dout, d_x, d_w, N, C,
                         OC);
    CHECK_ACT_CLOSE_TOL(gpu, d_dx, dx, (size_t)N * C, tol, "matmul dinp");
    CHECK_CLOSE_TOL(d_dw, dw, (size_t)OC * C, tol, "matmul dweight");
    CHECK_CLOSE(d_db, db, OC, "matmul dbias");  // an fp32 column sum of the same dout on both sides
    if (!want_dinp) CHECK_ACT_CLOSE_TOL(gpu, d_dx, dx0, (size_t)N * C, 1e-30, "matmul dinp untouched when NULL");
}

static void matmul_cases(const CtOps *gpu, double tol) {
    matmul_case(gpu, tol, 37, 70, 53, 1, 1, 1, 1);
    if (!ct_test_failed()) matmul_case(gpu, tol, 64, 128, 96, 0, 1, 1, 0);
    if (!ct_test_failed()) matmul_case(gpu, tol, 5, 33, 200, 1, 0, 1, 1);
    if (!ct_test_failed()) matmul_case(gpu, tol, 256, 768, 300, 1, 1, 0, 0);
}

TEST(cuda, matmul_forward_and_backward) {
    need_gpu();
    matmul_cases(GPU, TOL);
}

TEST(cuda, matmul_bf16_within_1e_2) {
    need_gpu();
    matmul_cases(ct_ops_cuda_bf16(), 1e-2);
}

// ---- LoRA: an adapter on a column block of a fused output (stride > OC) ----

static void lora_case(const CtOps *gpu, double tol) {
    CtRng rng;
    ct_rng_seed(&rng, 70);
    const int N = 45, C = 72, R = 8, OC = 40, stride = 3 * OC, off = OC;  // the k block of q|k|v
    const size_t ab = gpu->act_bytes;
    const float s = 2.0f;
    float *x = rnd(&rng, (size_t)N * C, 1), *A = rnd(&rng, (size_t)R * C, 0.1f), *B = rnd(&rng, (size_t)OC * R, 0.1f);
    float *y = rnd(&rng, (size_t)N * stride, 1), *h = ct_alloc(sizeof(float) * N * R);
    CtAct *d_x = mm_up(gpu, x, (size_t)N * C), *d_y = mm_up(gpu, y, (size_t)N * stride);
    float *d_A = upf(A, (size_t)R * C), *d_B = upf(B, (size_t)OC * R);
    CtAct *d_h = new_act(gpu, (size_t)N * R, "h");
    CPU->lora_forward(y + off, h, x, A, B, s, N, C, R, OC, stride);
    gpu->lora_forward(ct_act_at(ab, d_y, off), d_h, d_x, d_A, d_B, s, N, C, R, OC, stride);
    CHECK_ACT_CLOSE_TOL(gpu, d_y, y, (size_t)N * stride, tol, "lora forward (and the other column blocks untouched)");
    CHECK_ACT_CLOSE_TOL(gpu, d_h, h, (size_t)N * R, tol, "lora h");
    for (int with_all = 1; with_all >= 0; with_all--) {
        float *dy = rnd(&rng, (size_t)N * stride, 1), *dx = rnd(&rng, (size_t)N * C, 1);
        float *dA = rnd(&rng, (size_t)R * C, 1), *dB = rnd(&rng, (size_t)OC * R, 1), *dh = ct_alloc(sizeof(float) * N * R);
        CtAct *d_dy = mm_up(gpu, dy, (size_t)N * stride), *d_dx = mm_up(gpu, dx, (size_t)N * C);
        float *d_dA = upf(dA, (size_t)R * C), *d_dB = upf(dB, (size_t)OC * R);
        CtAct *d_dh = new_act(gpu, (size_t)N * R, "dh");
        CPU->lora_backward(with_all ? dx : NULL, dA, with_all ? dB : NULL, dh, dy + off, x, h, A, B, s, N, C, R, OC,
                           stride);
        gpu->lora_backward(with_all ? d_dx : NULL, d_dA, with_all ? d_dB : NULL, d_dh, ct_act_at(ab, d_dy, off), d_x,
                           d_h, d_A, d_B, s, N, C, R, OC, stride);
        CHECK_ACT_CLOSE_TOL(gpu, d_dx, dx, (size_t)N * C, tol, "lora dinp");
        CHECK_CLOSE_TOL(d_dA, dA, (size_t)R * C, tol, "lora dA");
        CHECK_CLOSE_TOL(d_dB, dB, (size_t)OC * R, tol, "lora dB");
        CHECK_ACT_CLOSE_TOL(gpu, d_dh, dh, (size_t)N * R, tol, "lora dh");
    }
}

TEST(cuda, lora_forward_and_backward) {
    need_gpu();
    lora_case(GPU, TOL);
}

TEST(cuda, lora_bf16_within_1e_2) {
    need_gpu();
    lora_case(ct_ops_cuda_bf16(), 1e-2);
}

// ---- GPT-2's MLP with GELU fused into its products (the bf16 table's optional ops) ----

// fc: pre = x·W1ᵀ + b1, act = gelu(pre); then the backward of proj (weight W2 [C,F]) into GELU:
// dpre = gelu'(pre) ⊙ (dout·W2) (written over garbage), dW2 += doutᵀ·act, db2 += Σ dout.
// Against the CPU's unfused ops (matmul, gelu) at 1e-2: weights and outputs are rounded to bf16.
static void fused_gelu_case(const CtOps *gpu, int N, int C, int F, int with_bias, int want_dw) {
    const double tol = 1e-2;
    CtRng rng;
    ct_rng_seed(&rng, (uint64_t)(N * 5 + C * 11 + F));
    const size_t NC = (size_t)N * C, NF = (size_t)N * F, FC = (size_t)F * C;
    float *x = rnd(&rng, NC, 1), *w1 = rnd(&rng, FC, 0.3f), *b1 = rnd(&rng, F, 0.5f);
    float *pre = ct_alloc(NF * sizeof(float)), *act = ct_alloc(NF * sizeof(float));
    CtAct *d_x = mm_up(gpu, x, NC);
    float *d_w1 = upf(w1, FC), *d_b1 = upf(b1, F);
    CPU->matmul_forward(pre, x, w1, with_bias ? b1 : NULL, N, C, F);
    CPU->gelu_forward(act, pre, NF);
    CtAct *d_pre = new_act(gpu, NF, "pre"), *d_act = new_act(gpu, NF, "act");
    gpu->matmul_bias_gelu_forward(d_act, d_pre, d_x, d_w1, with_bias ? d_b1 : NULL, N, C, F);
    CHECK_ACT_CLOSE_TOL(gpu, d_pre, pre, NF, tol, "fused forward: the pre-activation");
    CHECK_ACT_CLOSE_TOL(gpu, d_act, act, NF, tol, "fused forward: gelu");

    // backward from the CPU's pre and act (as bf16, on both sides), so it is checked on its own
    float *w2 = rnd(&rng, FC, 0.3f), *dout = rnd(&rng, NC, 1), *dw2 = rnd(&rng, FC, 1), *db2 = rnd(&rng, C, 1);
    float *dact = ct_alloc(NF * sizeof(float)), *dpre = ct_alloc(NF * sizeof(float));
    memset(dact, 0, NF * sizeof(float));
    memset(dpre, 0, NF * sizeof(float));
    CtAct *d_dout = mm_up(gpu, dout, NC);
    float *d_w2 = upf(w2, FC), *d_dw2 = upf(dw2, FC), *d_db2 = upf(db2, C);
    float *dw2_before = copy_of(dw2, FC), *db2_before = copy_of(db2, C);
    CtAct *d_dpre = mm_up(gpu, rnd(&rng, NF, 100), NF);  // garbage: the op writes dpre
    d_pre = mm_up(gpu, pre, NF);
    d_act = mm_up(gpu, act, NF);
    CPU->matmul_backward(dact, want_dw ? dw2 : NULL, want_dw ? db2 : NULL, dout, act, w2, N, F, C);
    CPU->gelu_backward(dpre, pre, dact, NF);
    gpu->matmul_backward_dgelu(d_dpre, want_dw ? d_dw2 : NULL, want_dw ? d_db2 : NULL, d_dout, d_act, d_pre, d_w2, N,
                               F, C);
    CHECK_ACT_CLOSE_TOL(gpu, d_dpre, dpre, NF, tol, "fused backward: dpre");
    if (want_dw) {
        CHECK_CLOSE_TOL(d_dw2, dw2, FC, tol, "fused backward: dweight");
        CHECK_CLOSE(d_db2, db2, C, "fused backward: dbias (an fp32 column sum)");
    } else {
        CHECK_CLOSE_TOL(d_dw2, dw2_before, FC, 1e-30, "fused backward: dweight untouched when NULL");
        CHECK_CLOSE_TOL(d_db2, db2_before, C, 1e-30, "fused backward: dbias untouched when NULL");
    }
}

TEST(cuda, matmul_gelu_fused_bf16_within_1e_2) {
    need_gpu();
    const CtOps *bf16 = ct_ops_cuda_bf16();
    // fp32's promise is 1e-5 of the CPU; cuBLASLt's GELU (approximate tanh) is not within it
    CHECK(GPU->matmul_bias_gelu_forward == NULL && GPU->matmul_backward_dgelu == NULL);
    CHECK(CPU->matmul_bias_gelu_forward == NULL && CPU->matmul_backward_dgelu == NULL);
    const size_t fallbacks = ct_cuda_gelu_epilogue_fallbacks();
    fused_gelu_case(bf16, 37, 40, 64, 1, 1);                       // through cuBLASLt's epilogues
    if (!ct_test_failed()) fused_gelu_case(bf16, 16, 32, 96, 0, 1);  // GELU_AUX without a bias
    if (!ct_test_failed()) fused_gelu_case(bf16, 5, 24, 200, 1, 0);  // frozen proj: dweight, dbias NULL
    CHECK_MSG(ct_cuda_gelu_epilogue_fallbacks() == fallbacks,
              "cuBLASLt offered no algorithm for the GELU epilogues (bf16 A/B/C/D, bias and aux) in %zu of 6 "
              "products: the fused ops ran unfused",
              ct_cuda_gelu_epilogue_fallbacks() - fallbacks);
    if (!ct_test_failed()) fused_gelu_case(bf16, 33, 16, 52, 1, 1);  // F % 8 != 0: the unfused fallback
    CHECK_EQ_INT(ct_cuda_gelu_epilogue_fallbacks() - fallbacks, 2);
}

// ---- attention ----

typedef struct {
    int B, T, NH, NKV, HD;
    int docs;                        // 0: none; 1: packed documents; 2: padded rows (real tokens, then pads of id -1)
    float dropout;                   // attention dropout probability (0: none)
    const CtAttentionOptions *opt;  // NULL: the defaults
} AttCase;
#define SEED 0x5eedu

static int att_same_bits(const CtOps *gpu, const CtAct *a_dev, const CtAct *b_dev, size_t n) {
    float *a = cuda_fixture_down_act(gpu, a_dev, n), *b = cuda_fixture_down_act(gpu, b_dev, n);
    int same = memcmp(a, b, n * sizeof(float)) == 0;
    ct_free(a);
    ct_free(b);
    return same;
}

// The GPU table's attention against the CPU's to `tol`: ct_ops_cuda() (fp32, TOL) or
// ct_ops_cuda_bf16() (bf16 activations; tensor cores at head sizes 64 and 128, 1e-2). The
// device qkv starts `offset` elements into its buffer (1: not 16-byte aligned).
static void attention_case_at(const CtOps *gpu, double tol, AttCase c, int offset) {
    CtRng rng;
    ct_rng_seed(&rng, (uint64_t)(c.T * 131 + c.HD));
    const int row = (c.NH + 2 * c.NKV) * c.HD;
    const size_t n_qkv = (size_t)c.B * c.T * row, n_out = (size_t)c.B * c.T * c.NH * c.HD;
    float *qkv_buf = rnd(&rng, n_qkv + offset, 1), *qkv = qkv_buf + offset;
    as_table_holds(gpu, qkv, n_qkv);
    int32_t *doc = ct_alloc(sizeof(int32_t) * (size_t)c.B * c.T);
    for (int b = 0; b < c.B; b++)  // packed documents of varying length, and one id that returns
        for (int t = 0; t < c.T; t++) doc[b * c.T + t] = (t / (7 + 5 * b)) % 3;
    if (c.docs == 2)  // an encoder's padded batch: rows of different real lengths
        for (int b = 0; b < c.B; b++)
            for (int t = 0; t < c.T; t++) doc[b * c.T + t] = t < c.T * (3 + b) / 5 ? 0 : -1;
    float *out = ct_alloc(sizeof(float) * n_out), *att = ct_alloc(sizeof(float) * c.B * c.NH * c.T * c.T);
    CPU->attention_forward(out, att, qkv, c.docs ? doc : NULL, c.dropout, SEED, c.B, c.T, c.NH, c.NKV, c.HD, c.opt);
    CtAct *d_qkv_buf = cuda_fixture_up_act(gpu, qkv_buf, n_qkv + offset);
    CtAct *d_qkv = ct_act_at(gpu->act_bytes, d_qkv_buf, offset);
    CtAct *d_out = ct_cuda_malloc(gpu->act_bytes * n_out, "out");
    int32_t *d_doc = up(doc, sizeof(int32_t) * (size_t)c.B * c.T);
    // the smallest saved state the CUDA op asks for: compute-sanitizer catches any overrun
    float *d_att = ct_cuda_malloc(sizeof(float) * ct_cuda_attention_saved_floats(c.B, c.T, c.NH), "att");
    gpu->attention_forward(d_out, d_att, d_qkv, c.docs ? d_doc : NULL, c.dropout, SEED, c.B, c.T, c.NH, c.NKV, c.HD, c.opt);
    CHECK_ACT_CLOSE_TOL(gpu, d_out, out, n_out, tol, "attention forward");
    // the saved log-sum-exp (the rest of att is the document ids): log of the CPU's row sums
    // of exp(S - max), recovered here as L = S_tt - log P_tt from the query's own score
    float *L = ct_alloc(sizeof(float) * c.B * c.NH * c.T);
    for (int b = 0; b < c.B; b++)
        for (int h = 0; h < c.NH; h++)
            for (int t = 0; t < c.T; t++) {
                const float *q = qkv + ((size_t)b * c.T + t) * row + h * c.HD;
                const float *k = qkv + ((size_t)b * c.T + t) * row + (c.NH + h / (c.NH / c.NKV)) * c.HD;
                double s = 0;
                for (int i = 0; i < c.HD; i++) s += (double)q[i] * k[i];
                s *= c.opt && c.opt->scale != 0 ? c.opt->scale : 1 / sqrt((double)c.HD);
                if (c.opt && c.opt->softcap > 0) s = c.opt->softcap * tanh(s / c.opt->softcap);
                const size_t bht = ((size_t)b * c.NH + h) * c.T + t;
                L[bht] = (float)(s - log((double)att[bht * c.T + t]));
            }
    CHECK_CLOSE_TOL(d_att, L, (size_t)c.B * c.NH * c.T, tol, "attention saved log-sum-exp");
    ct_free(L);

    float *dout = rnd(&rng, n_out, 1), *dqkv = rnd(&rng, n_qkv, 1);
    as_table_holds(gpu, dout, n_out);
    as_table_holds(gpu, dqkv, n_qkv);  // backward adds into dqkv: both sides start from the same numbers
    CtAct *d_dout = cuda_fixture_up_act(gpu, dout, n_out), *d_dqkv = cuda_fixture_up_act(gpu, dqkv, n_qkv),
          *d_dqkv2 = cuda_fixture_up_act(gpu, dqkv, n_qkv), *d_dqkv3 = cuda_fixture_up_act(gpu, dqkv, n_qkv);
    CPU->attention_backward(dqkv, dout, qkv, att, c.dropout, SEED, c.B, c.T, c.NH, c.NKV, c.HD, c.opt);
    gpu->attention_backward(d_dqkv, d_dout, d_qkv, d_att, c.dropout, SEED, c.B, c.T, c.NH, c.NKV, c.HD, c.opt);
    CHECK_ACT_CLOSE_TOL(gpu, d_dqkv, dqkv, n_qkv, tol, "attention backward");
    // with the forward's output: D from dO·O instead of a recomputation
    gpu->attention_backward_with_out(d_dqkv2, d_dout, d_out, d_qkv, d_att, c.dropout, SEED, c.B, c.T, c.NH, c.NKV,
                                     c.HD, c.opt);
    CHECK_ACT_CLOSE_TOL(gpu, d_dqkv2, dqkv, n_qkv, tol, "attention backward with out");
    gpu->attention_backward(d_dqkv3, d_dout, d_qkv, d_att, c.dropout, SEED, c.B, c.T, c.NH, c.NKV, c.HD, c.opt);
    CHECK_MSG(att_same_bits(gpu, d_dqkv, d_dqkv3, n_qkv), "attention backward differs between two runs");
    ct_cuda_free(d_qkv_buf);
    ct_cuda_free(d_out);
    ct_cuda_free(d_doc);
    ct_cuda_free(d_att);
    ct_cuda_free(d_dout);
    ct_cuda_free(d_dqkv);
    ct_cuda_free(d_dqkv2);
    ct_cuda_free(d_dqkv3);
    ct_free(qkv_buf);
    ct_free(doc);
    ct_free(out);
    ct_free(att);
    ct_free(dout);
    ct_free(dqkv);
}
static void attention_case(const CtOps *gpu, double tol, AttCase c) { attention_case_at(gpu, tol, c, 0); }

#define ATTENTION_CASES(gpu, tol, ...)                                            \
    do {                                                                          \
        AttCase cases_[] = {__VA_ARGS__};                                         \
        for (size_t i_ = 0; i_ < sizeof cases_ / sizeof cases_[0]; i_++) {       \
            attention_case((gpu), (tol), cases_[i_]);                             \
            if (ct_test_failed()) {                                               \
                AttCase c_ = cases_[i_];                                          \
                const CtAttentionOptions o_ = c_.opt ? *c_.opt : (CtAttentionOptions){0}; \
                CHECK_MSG(0, "in case B=%d T=%d NH=%d NKV=%d HD=%d docs=%d dropout=%g scale=%g softcap=%g " \
                          "window=%d bidirectional=%d", c_.B, c_.T, c_.NH, c_.NKV, c_.HD, c_.docs, c_.dropout,  \
                          o_.scale, o_.softcap, o_.window, o_.bidirectional);     \
            }                                                                     \
        }                                                                         \
    } while (0)

TEST(cuda, attention_causal_gqa) {
    need_gpu();
    ATTENTION_CASES(GPU, TOL, (AttCase){2, 37, 4, 2, 16, 0, 0, NULL}, (AttCase){1, 150, 2, 1, 64, 0, 0, NULL},
                    (AttCase){1, 1, 2, 2, 32, 0, 0, NULL}, (AttCase){1, 64, 6, 2, 64, 0, 0, NULL},
                    (AttCase){2, 65, 2, 2, 128, 0, 0, NULL});
}

TEST(cuda, attention_document_masks) {
    need_gpu();
    ATTENTION_CASES(GPU, TOL, (AttCase){2, 70, 3, 3, 40, 1, 0, NULL}, (AttCase){1, 200, 4, 1, 64, 1, 0, NULL},
                    (AttCase){2, 2, 2, 1, 8, 1, 0, NULL}, (AttCase){1, 130, 2, 2, 96, 1, 0, NULL});
}

TEST(cuda, attention_dropout) {
    need_gpu();
    ATTENTION_CASES(GPU, TOL, (AttCase){2, 70, 4, 2, 32, 1, 0.1f, NULL}, (AttCase){1, 130, 2, 1, 64, 0, 0.5f, NULL});
}

// The bf16 table's attention (bf16 activations) runs on the tensor cores at HD 64 and 128 (bf16
// Q, K, V, P, dO, dS; fp32 accumulation): within 1e-2 of the largest value of the CPU's fp32
// result on the same bf16-rounded inputs. T not a multiple of the 64-row tiles, GQA groups of 1
// to 4, the fallback to attention.cu's kernels on bf16 activations (head sizes 40 and 32, and
// HD 64 with qkv one element off 16-byte alignment) must still pass.
TEST(cuda, attention_bf16_causal_gqa) {
    need_gpu();
    ATTENTION_CASES(ct_ops_cuda_bf16(), 1e-2, (AttCase){1, 150, 4, 1, 64, 0, 0, NULL}, (AttCase){1, 1, 2, 2, 64, 0, 0, NULL},
                    (AttCase){2, 64, 6, 2, 64, 0, 0, NULL}, (AttCase){2, 65, 2, 2, 128, 0, 0, NULL},
                    (AttCase){1, 200, 4, 2, 128, 0, 0, NULL}, (AttCase){1, 37, 2, 1, 40, 0, 0, NULL},
                    (AttCase){2, 37, 4, 2, 32, 0, 0, NULL});
    if (ct_test_failed()) return;
    attention_case_at(ct_ops_cuda_bf16(), 1e-2, (AttCase){1, 70, 2, 1, 64, 1, 0, NULL}, 1);
    CHECK_MSG(!ct_test_failed(), "in case B=1 T=70 NH=2 NKV=1 HD=64 docs=1, qkv one element off 16-byte alignment");
}

TEST(cuda, attention_bf16_document_masks) {
    need_gpu();
    ATTENTION_CASES(ct_ops_cuda_bf16(), 1e-2, (AttCase){2, 130, 2, 1, 64, 1, 0, NULL}, (AttCase){1, 2, 2, 1, 64, 1, 0, NULL},
                    (AttCase){1, 140, 2, 2, 128, 1, 0, NULL}, (AttCase){2, 70, 3, 3, 32, 1, 0, NULL});
}

TEST(cuda, attention_bf16_dropout) {
    need_gpu();
    ATTENTION_CASES(ct_ops_cuda_bf16(), 1e-2, (AttCase){2, 70, 4, 2, 64, 1, 0.1f, NULL},
                    (AttCase){1, 130, 2, 1, 128, 0, 0.5f, NULL});
}

// The options of issue #22 (Mistral's sliding window, Gemma's soft cap and query scale): windows
// shorter than a 64-row tile and longer, so whole key tiles are skipped (forward, dQ) and whole
// query tiles left out (dKV); with documents and dropout on top.
static const CtAttentionOptions WINDOW_7 = {.window = 7}, WINDOW_70 = {.window = 70}, CAP = {.softcap = 1.5f},
                                SCALE = {.scale = 0.3f}, ALL = {.scale = 0.2f, .softcap = 2.0f, .window = 50};

TEST(cuda, attention_window_softcap_scale) {
    need_gpu();
    ATTENTION_CASES(GPU, TOL, (AttCase){2, 150, 4, 2, 32, 0, 0, &WINDOW_7}, (AttCase){1, 200, 2, 1, 64, 1, 0, &WINDOW_70},
                    (AttCase){2, 70, 4, 2, 16, 0, 0, &CAP}, (AttCase){1, 65, 2, 2, 128, 0, 0, &SCALE},
                    (AttCase){2, 140, 4, 2, 64, 1, 0.1f, &ALL}, (AttCase){1, 5, 2, 1, 8, 0, 0, &WINDOW_70});
}

// The bf16 table: the tensor-core kernels (HD 64 and 128) and the CUDA-core fallback (HD 32).
TEST(cuda, attention_bf16_window_softcap_scale) {
    need_gpu();
    ATTENTION_CASES(ct_ops_cuda_bf16(), 1e-2, (AttCase){2, 150, 4, 2, 64, 0, 0, &WINDOW_7},
                    (AttCase){1, 200, 2, 1, 128, 1, 0, &WINDOW_70}, (AttCase){2, 70, 4, 2, 64, 0, 0, &CAP},
                    (AttCase){1, 65, 2, 2, 128, 0, 0, &SCALE}, (AttCase){2, 140, 4, 2, 64, 1, 0.1f, &ALL},
                    (AttCase){1, 90, 2, 1, 32, 0, 0, &ALL});
}

// Bidirectional attention (an encoder's, issue 26): every key tile instead of those up to the
// diagonal, masks inside the tiles; without documents, with packed documents, with padded rows
// (docs 2), GQA, dropout, symmetric windows shorter and longer than a tile (whole key tiles
// skipped on both sides in forward and dQ, whole query tiles before and after in dKV), with
// the soft cap and a scale; T off the 64-row tiles and T = 1.
static const CtAttentionOptions BI = {.bidirectional = 1}, BI_WINDOW_7 = {.bidirectional = 1, .window = 7},
                                BI_WINDOW_70 = {.bidirectional = 1, .window = 70},
                                BI_ALL = {.bidirectional = 1, .scale = 0.2f, .softcap = 2.0f, .window = 50};

TEST(cuda, attention_bidirectional) {
    need_gpu();
    ATTENTION_CASES(GPU, TOL, (AttCase){2, 37, 4, 2, 16, 0, 0, &BI}, (AttCase){1, 150, 2, 1, 64, 0, 0, &BI},
                    (AttCase){1, 1, 2, 2, 32, 0, 0, &BI}, (AttCase){2, 65, 2, 2, 128, 0, 0, &BI},
                    (AttCase){2, 70, 3, 3, 40, 1, 0, &BI}, (AttCase){2, 140, 4, 1, 64, 2, 0, &BI},
                    (AttCase){2, 70, 4, 2, 32, 2, 0.1f, &BI}, (AttCase){2, 150, 4, 2, 32, 0, 0, &BI_WINDOW_7},
                    (AttCase){1, 200, 2, 1, 64, 1, 0, &BI_WINDOW_70}, (AttCase){2, 140, 4, 2, 64, 2, 0.1f, &BI_ALL},
                    (AttCase){1, 90, 4, 2, 256, 2, 0.1f, &BI_ALL});
}

// The bf16 table: the tensor-core kernels (HD 64 and 128) and the CUDA-core fallback (HD 32, and
// HD 64 one element off 16-byte alignment).
TEST(cuda, attention_bf16_bidirectional) {
    need_gpu();
    ATTENTION_CASES(ct_ops_cuda_bf16(), 1e-2, (AttCase){1, 150, 4, 1, 64, 0, 0, &BI},
                    (AttCase){1, 1, 2, 2, 64, 0, 0, &BI}, (AttCase){2, 65, 2, 2, 128, 0, 0, &BI},
                    (AttCase){2, 130, 2, 1, 64, 1, 0, &BI}, (AttCase){2, 140, 2, 2, 128, 2, 0, &BI},
                    (AttCase){2, 70, 4, 2, 64, 2, 0.1f, &BI}, (AttCase){2, 150, 4, 2, 64, 0, 0, &BI_WINDOW_7},
                    (AttCase){1, 200, 2, 1, 128, 1, 0, &BI_WINDOW_70}, (AttCase){2, 140, 4, 2, 64, 2, 0.1f, &BI_ALL},
                    (AttCase){1, 90, 2, 1, 32, 2, 0, &BI_ALL});
    if (ct_test_failed()) return;
    attention_case_at(ct_ops_cuda_bf16(), 1e-2, (AttCase){1, 70, 2, 1, 64, 2, 0, &BI}, 1);
    CHECK_MSG(!ct_test_failed(), "in case B=1 T=70 NH=2 NKV=1 HD=64 padded, bidirectional, qkv one element off "
                                 "16-byte alignment");
}

// Head sizes above 128 (Gemma 2 and 3: 256): attention.cu's kernels compiled for HD <= 256, with
// 16-row streamed tiles (T 70 and 90: tiles up to a partial last one, two 64-query blocks), in
// both tables (the bf16 table's CUDA-core fallback), with documents, dropout, a window shorter
// than a tile (7) and longer (50), a soft cap and a scale. HD 192 runs the same kernels below their bound.
static const AttCase HEAD_SIZE_256_CASES[] = {
    {1, 70, 2, 1, 256, 1, 0, NULL},          {2, 40, 2, 2, 192, 0, 0, NULL},
    {1, 90, 2, 1, 256, 0, 0, &WINDOW_7},     {1, 90, 4, 2, 256, 1, 0.1f, &ALL},
    {1, 70, 2, 1, 192, 0, 0, &CAP},
};

TEST(cuda, attention_head_size_256) {
    need_gpu();
    for (size_t i = 0; i < sizeof HEAD_SIZE_256_CASES / sizeof HEAD_SIZE_256_CASES[0] && !ct_test_failed(); i++) {
        attention_case(GPU, TOL, HEAD_SIZE_256_CASES[i]);
        CHECK_MSG(!ct_test_failed(), "in head-size case %zu (HD=%d)", i, HEAD_SIZE_256_CASES[i].HD);
    }
}

TEST(cuda, attention_bf16_head_size_256) {
    need_gpu();
    for (size_t i = 0; i < sizeof HEAD_SIZE_256_CASES / sizeof HEAD_SIZE_256_CASES[0] && !ct_test_failed(); i++) {
        attention_case(ct_ops_cuda_bf16(), 1e-2, HEAD_SIZE_256_CASES[i]);
        CHECK_MSG(!ct_test_failed(), "in head-size case %zu (HD=%d)", i, HEAD_SIZE_256_CASES[i].HD);
    }
}

// Dropped elements of the device array are exactly the CPU's zeros (x has no zeros: the same mask).
static int same_zeros(const CtOps *gpu, const CtAct *dev, const float *host, size_t n) {
    float *h = cuda_fixture_down_act(gpu, dev, n);
    size_t differ = 0;
    for (size_t i = 0; i < n; i++) differ += (h[i] == 0.0f) != (host[i] == 0.0f);
    ct_free(h);
    return differ == 0;
}

// fp32: the same numbers to 1e-7 (one multiplication each); bf16: the same mask, values to 1e-2.
static void dropout_case(const CtOps *gpu) {
    CtRng rng;
    ct_rng_seed(&rng, 60);
    const size_t n = 20011;
    const double tol = is_bf16(gpu) ? 1e-2 : 1e-7;
    float *x = rnd(&rng, n, 1), *y = ct_alloc(n * 4), *dx = ct_alloc(n * 4);
    as_table_holds(gpu, x, n);
    CtAct *d_x = up_act(gpu, x, n), *d_y = new_act(gpu, n, "y");
    const float ps[] = {0.0f, 0.1f, 0.5f};
    for (int k = 0; k < 3; k++) {
        CPU->dropout_forward(y, x, n, ps[k], 1234 + k);
        gpu->dropout_forward(d_y, d_x, n, ps[k], 1234 + k);
        double e = act_vs_host(gpu, d_y, y, n);
        CHECK_MSG(e < tol, "dropout forward (%s): relative difference %.3g", gpu->name, e);
        CHECK_MSG(same_zeros(gpu, d_y, y, n), "dropout forward (%s): not the CPU's mask", gpu->name);
        CPU->dropout_backward(dx, x, n, ps[k], 99);
        gpu->dropout_backward(d_y, d_x, n, ps[k], 99);
        e = act_vs_host(gpu, d_y, dx, n);
        CHECK_MSG(e < tol, "dropout backward (%s): relative difference %.3g", gpu->name, e);
        CHECK_MSG(same_zeros(gpu, d_y, dx, n), "dropout backward (%s): not the CPU's mask", gpu->name);
    }
    gpu->dropout_forward(d_x, d_x, n, 0.3f, 5);  // in place
    CPU->dropout_forward(x, x, n, 0.3f, 5);
    double e = act_vs_host(gpu, d_x, x, n);
    CHECK_MSG(e < tol, "dropout in place (%s): relative difference %.3g", gpu->name, e);
    CHECK_MSG(same_zeros(gpu, d_x, x, n), "dropout in place (%s): not the CPU's mask", gpu->name);
}

TEST(cuda, dropout_forward_and_backward) {
    need_gpu();
    dropout_case(GPU);
}
TEST(cuda, dropout_bf16_activations) {
    need_gpu();
    dropout_case(ct_ops_cuda_bf16());
}

// Decode on table `gpu` against the CPU to `tol` (the CPU gets the inputs rounded as the GPU's).
// The shapes run with the default options, then (cases 6..11) with a window, a cap and a scale;
// head sizes up to 256 (Gemma 2 and 3); one to four new query rows (a speculative decoder's check),
// the queries' rows further apart than their q heads as in a qkv row.
static void attention_decode_cases(const CtOps *gpu, double tol) {
    enum { SHAPES = 6 };
    int shapes[SHAPES][4] = {{300, 4, 2, 64}, {1, 2, 1, 16}, {1000, 8, 8, 128}, {77, 6, 3, 40}, {130, 4, 2, 256},
                             {50, 2, 1, 192}};
    const CtAttentionOptions options[SHAPES] = {{.window = 40},  {.softcap = 1.5f},
                                                {.scale = 0.1f, .softcap = 3.0f, .window = 500},
                                                {.window = 77},  {.softcap = 2.0f, .window = 33},
                                                {.scale = 0.0625f}};
    for (int s = 0; s < 2 * SHAPES; s++) {
        const CtAttentionOptions *opt = s < SHAPES ? NULL : &options[s - SHAPES];
        const int n_ctx = shapes[s % SHAPES][0], NH = shapes[s % SHAPES][1], NKV = shapes[s % SHAPES][2],
                  HD = shapes[s % SHAPES][3];
        CtRng rng;
        ct_rng_seed(&rng, 40 + s);
        const int T = n_ctx < 1 + s % 4 ? n_ctx : 1 + s % 4, q_stride = (NH + 2 * NKV) * HD;
        const size_t nq = (size_t)T * q_stride, nout = (size_t)T * NH * HD, nkv = (size_t)n_ctx * NKV * HD;
        float *q = rnd(&rng, nq, 1), *k = rnd(&rng, nkv, 1), *v = rnd(&rng, nkv, 1);
        as_table_holds(gpu, q, nq);
        as_table_holds(gpu, k, nkv);
        as_table_holds(gpu, v, nkv);
        float *out = ct_alloc(sizeof(float) * nout);
        CPU->attention_decode(out, q, q_stride, k, v, n_ctx, T, NH, NKV, HD, opt);
        CtAct *d_q = cuda_fixture_up_act(gpu, q, nq), *d_k = cuda_fixture_up_act(gpu, k, nkv),
              *d_v = cuda_fixture_up_act(gpu, v, nkv), *d_out = ct_cuda_malloc(gpu->act_bytes * nout, "out");
        gpu->attention_decode(d_out, d_q, q_stride, d_k, d_v, n_ctx, T, NH, NKV, HD, opt);
        char what[128];
        snprintf(what, sizeof what, "attention decode n_ctx=%d T=%d NH=%d NKV=%d HD=%d (options case %d)", n_ctx, T, NH,
                 NKV, HD, s);
        CHECK_ACT_CLOSE_TOL(gpu, d_out, out, nout, tol, what);
        ct_cuda_free(d_q);
        ct_cuda_free(d_k);
        ct_cuda_free(d_v);
        ct_cuda_free(d_out);
        ct_free(q);
        ct_free(k);
        ct_free(v);
        ct_free(out);
    }
}

TEST(cuda, attention_decode) {
    need_gpu();
    attention_decode_cases(GPU, TOL);
}

TEST(cuda, attention_decode_bf16) {
    need_gpu();
    attention_decode_cases(ct_ops_cuda_bf16(), 1e-2);
}

// Decoding is causal: both tables refuse bidirectional options instead of ignoring them.
static void decode_bidirectional(void *table) {
    const CtAttentionOptions bi = {.bidirectional = 1};
    const CtOps *gpu = table;
    gpu->attention_decode(NULL, NULL, 64, NULL, NULL, 4, 1, 1, 1, 64, &bi);
}
TEST(cuda, attention_decode_refuses_bidirectional) {
    need_gpu();
    const CtOps *tables[2] = {GPU, ct_ops_cuda_bf16()};
    for (int i = 0; i < 2; i++) {
        char *out = NULL;
        CHECK_EQ_INT(ct_test_fork(decode_bidirectional, (void *)tables[i], &out), 1);
        CHECK_CONTAINS(out, "bidirectional");
        free(out);
    }
}

// ---- rope ----

static void rope_case_table(const CtOps *gpu, int scaled) {
    CtRng rng;
    ct_rng_seed(&rng, 5);
    // rotate the query and key heads of a qkv row, leave the value heads alone, in place
    const int B = 2, T = 45, NH = 4, NKV = 2, HD = 32, stride = (NH + 2 * NKV) * HD;
    CtRope rope;
    ct_rope_default(&rope, 10000.0f, HD);
    if (scaled) {  // a table as rope_scaling fills it: other frequencies, YaRN's attention factor
        for (int i = 0; i < HD / 2; i++) rope.inv_freq[i] *= i < HD / 4 ? 0.125f : 1.0f;
        rope.attention_factor = 1.2f;
    }
    const size_t n = (size_t)B * T * stride;
    int32_t pos[90];
    for (int i = 0; i < B * T; i++) pos[i] = (int32_t)ct_rng_below(&rng, 8192);  // large angles
    int32_t *d_pos = up(pos, sizeof pos);
    for (int with_pos = 0; with_pos < 2; with_pos++) {
        float *x = rnd(&rng, n, 1);
        as_table_holds(gpu, x, n);
        float *y = copy_of(x, n);
        CtAct *d_y = up_act(gpu, x, n);
        CPU->rope_forward(y, y, with_pos ? pos : NULL, B, T, NH + NKV, HD, stride, &rope);
        gpu->rope_forward(d_y, d_y, with_pos ? d_pos : NULL, B, T, NH + NKV, HD, stride, &rope);
        CHECK_ACT_CLOSE(gpu, d_y, y, n, "rope forward");
        if (is_bf16(gpu)) {  // the backward's input as the table holds it, on both sides
            float *held = cuda_fixture_down_act(gpu, d_y, n);
            memcpy(y, held, n * sizeof(float));
            ct_free(held);
        }
        float *dx = ct_alloc(n * sizeof(float));
        CtAct *d_dx = up_act(gpu, x, n);  // numbers past the heads must be kept (value heads)
        CPU->rope_backward(x, y, with_pos ? pos : NULL, B, T, NH + NKV, HD, stride, &rope);
        memcpy(dx, x, n * sizeof(float));
        gpu->rope_backward(d_dx, d_y, with_pos ? d_pos : NULL, B, T, NH + NKV, HD, stride, &rope);
        CHECK_ACT_CLOSE(gpu, d_dx, dx, n, "rope backward");
        gpu->rope_backward(d_y, d_y, with_pos ? d_pos : NULL, B, T, NH + NKV, HD, stride, &rope);  // in place
        CHECK_ACT_CLOSE(gpu, d_y, dx, n, "rope backward in place");
    }
}

static void rope_case(const CtOps *gpu) {
    rope_case_table(gpu, 0);
    if (!ct_test_failed()) rope_case_table(gpu, 1);
}

TEST(cuda, rope_forward_and_backward) {
    need_gpu();
    rope_case(GPU);
}
TEST(cuda, rope_bf16_activations) {
    need_gpu();
    rope_case(ct_ops_cuda_bf16());
}

// ---- element-wise ----

static void gelu_swiglu_residual_case(const CtOps *gpu) {
    CtRng rng;
    ct_rng_seed(&rng, 6);
    const size_t n = 10007;
    float *x = rnd(&rng, n, 3), *y = ct_alloc(n * 4), *dout = rnd(&rng, n, 1), *dx = rnd(&rng, n, 1);
    x[0] = 0;  // ReLU's kink: no gradient at 0 (torch's choice)
    as_table_holds(gpu, x, n);
    as_table_holds(gpu, dout, n);
    as_table_holds(gpu, dx, n);
    CtAct *d_x = up_act(gpu, x, n), *d_y = new_act(gpu, n, "y"), *d_dout = up_act(gpu, dout, n);
    CtAct *d_dx = up_act(gpu, dx, n);
    CPU->relu_forward(y, x, n);  // P-tuning's prompt encoder
    gpu->relu_forward(d_y, d_x, n);
    CHECK_ACT_CLOSE(gpu, d_y, y, n, "relu forward");
    CPU->relu_backward(dx, x, dout, n);
    gpu->relu_backward(d_dx, d_x, d_dout, n);
    CHECK_ACT_CLOSE(gpu, d_dx, dx, n, "relu backward");
    CPU->gelu_forward(y, x, n);
    gpu->gelu_forward(d_y, d_x, n);
    CHECK_ACT_CLOSE(gpu, d_y, y, n, "gelu forward");
    // the fused GELU backward's fallback, d ← gelu'(pre) ⊙ d in place (not in the table): the
    // CPU's gelu_backward into zeros is the same product
    float *scaled = ct_calloc(n, sizeof(float));
    CPU->gelu_backward(scaled, x, dout, n);
    CtAct *d_scaled = up_act(gpu, dout, n);
    (is_bf16(gpu) ? ct_cuda_gelu_grad_scale_bf16 : ct_cuda_gelu_grad_scale)(d_scaled, d_x, n);
    CHECK_ACT_CLOSE(gpu, d_scaled, scaled, n, "gelu grad scale");
    CPU->gelu_backward(dx, x, dout, n);
    gpu->gelu_backward(d_dx, d_x, d_dout, n);
    CHECK_ACT_CLOSE(gpu, d_dx, dx, n, "gelu backward");

    const int N = 31, F = 161;
    float *gu = rnd(&rng, (size_t)N * 2 * F, 2), *o = ct_alloc(sizeof(float) * N * F);
    float *go = rnd(&rng, (size_t)N * F, 1), *dgu = rnd(&rng, (size_t)N * 2 * F, 1);
    as_table_holds(gpu, gu, (size_t)N * 2 * F);
    as_table_holds(gpu, go, (size_t)N * F);
    as_table_holds(gpu, dgu, (size_t)N * 2 * F);
    CtAct *d_gu = up_act(gpu, gu, (size_t)N * 2 * F), *d_o = new_act(gpu, (size_t)N * F, "o");
    CtAct *d_go = up_act(gpu, go, (size_t)N * F), *d_dgu = up_act(gpu, dgu, (size_t)N * 2 * F);
    CPU->swiglu_forward(o, gu, N, F);
    gpu->swiglu_forward(d_o, d_gu, N, F);
    CHECK_ACT_CLOSE(gpu, d_o, o, (size_t)N * F, "swiglu forward");
    CPU->swiglu_backward(dgu, go, gu, N, F);
    gpu->swiglu_backward(d_dgu, d_go, d_gu, N, F);
    CHECK_ACT_CLOSE(gpu, d_dgu, dgu, (size_t)N * 2 * F, "swiglu backward");

    float *a = rnd(&rng, n, 1);
    as_table_holds(gpu, a, n);
    CtAct *d_a = up_act(gpu, a, n);
    CPU->residual_forward(y, a, x, n);
    gpu->residual_forward(d_y, d_a, d_x, n);
    CHECK_ACT_CLOSE(gpu, d_y, y, n, "residual forward");
    gpu->residual_forward(d_a, d_a, d_x, n);  // in place (the residual stream: x += f(x))
    CHECK_ACT_CLOSE(gpu, d_a, y, n, "residual forward in place");
}

TEST(cuda, gelu_swiglu_residual) {
    need_gpu();
    gelu_swiglu_residual_case(GPU);
}
TEST(cuda, gelu_swiglu_residual_bf16_activations) {
    need_gpu();
    gelu_swiglu_residual_case(ct_ops_cuda_bf16());
}

// ---- softmax + cross-entropy ----

// gpu: the fp32 table (tol 1e-5) or the bf16 one (tol 1e-2: bf16 logits, the dlogits rounded to
// bf16 over them; the CPU gets the same bf16 logits, so the rest is the op's own float math).
// softcap > 0: the logits go through softcap_forward first (Gemma 2's final cap), on both sides,
// and xent_backward returns the gradient through the cap.
static void xent_case_capped(const CtOps *gpu, double tol, int N, int V, int with_mask, int with_weights, float scale,
                             float softcap) {
    CtRng rng;
    ct_rng_seed(&rng, (uint64_t)(N + V));
    const size_t NV = (size_t)N * V;
    float *logits = rnd(&rng, NV, 4), *weights = rnd(&rng, N, 1);
    int32_t *targets = ct_alloc(sizeof(int32_t) * N);
    uint8_t *mask = ct_alloc((size_t)N);
    for (int n = 0; n < N; n++) {
        targets[n] = n == 2 ? -1 : (int32_t)ct_rng_below(&rng, (uint32_t)V);  // one ignored target
        mask[n] = n % 4 != 3;
    }
    CtAct *d_logits = mm_up(gpu, logits, NV);  // logits now as the table holds them
    if (softcap > 0) {
        CPU->softcap_forward(logits, NV, softcap);
        gpu->softcap_forward(d_logits, NV, softcap);
        CHECK_ACT_CLOSE_TOL(gpu, d_logits, logits, NV, is_bf16(gpu) ? 1e-2 : 1e-6, "softcap_forward");
        gpu->download_act(logits, d_logits, NV);  // the capped logits as the device holds them
    }
    // The reference is the CPU op in double: over a 50k vocabulary a float sum of exp carries
    // ~1e-5 relative error of its own (and a different one with and without vectorization).
    double *logits64 = ct_alloc(NV * sizeof(double)), *losses64 = ct_alloc(N * 8), *logprobs64 = ct_alloc(N * 8),
           *lse64 = ct_alloc(N * 8);
    for (size_t i = 0; i < NV; i++) logits64[i] = logits[i];
    float *losses = ct_alloc(N * 4), *logprobs = ct_alloc(N * 4), *lse = ct_alloc(N * 4);
    const uint8_t *m = with_mask ? mask : NULL;
    const float *w = with_weights ? weights : NULL;
    ct_cpu_xent_forward_f64(losses64, logprobs64, lse64, logits64, targets, m, w, N, V);
    for (int n = 0; n < N; n++) losses[n] = (float)losses64[n], logprobs[n] = (float)logprobs64[n], lse[n] = (float)lse64[n];
    float *d_weights = upf(weights, N);
    int32_t *d_targets = up(targets, sizeof(int32_t) * N);
    uint8_t *d_mask = up(mask, (size_t)N);
    float *d_losses = ct_cuda_malloc(N * 4, "losses"), *d_logprobs = ct_cuda_malloc(N * 4, "logprobs"),
          *d_lse = ct_cuda_malloc(N * 4, "lse");
    const uint8_t *dm = with_mask ? d_mask : NULL;
    const float *dw = with_weights ? d_weights : NULL;
    gpu->xent_forward(d_losses, d_logprobs, d_lse, d_logits, d_targets, dm, dw, N, V);
    CHECK_CLOSE_TOL(d_lse, lse, N, tol, "xent lse");
    CHECK_CLOSE_TOL(d_logprobs, logprobs, N, tol, "xent logprobs");
    CHECK_CLOSE_TOL(d_losses, losses, N, tol, "xent losses");
    ct_cpu_xent_backward_f64(logits64, lse64, targets, m, w, scale, N, V, softcap);
    for (size_t i = 0; i < NV; i++) logits[i] = (float)logits64[i];
    gpu->xent_backward(d_logits, d_lse, d_targets, dm, dw, scale, N, V, softcap);
    CHECK_ACT_CLOSE_TOL(gpu, d_logits, logits, NV, tol, "xent dlogits");
    ct_free(logits64);
    ct_free(losses64);
    ct_free(logprobs64);
    ct_free(lse64);
}
static void xent_case(const CtOps *gpu, double tol, int N, int V, int with_mask, int with_weights, float scale) {
    xent_case_capped(gpu, tol, N, V, with_mask, with_weights, scale, 0.0f);
}

TEST(cuda, xent_through_softcap) {
    need_gpu();
    xent_case_capped(GPU, TOL, 9, 5003, 1, 1, 1.0f / 9, 3.0f);
    if (!ct_test_failed()) xent_case_capped(ct_ops_cuda_bf16(), 1e-2, 16, 50257, 1, 1, 0.25f, 30.0f);
}

TEST(cuda, xent_forward_and_backward) {
    need_gpu();
    xent_case(GPU, TOL, 9, 5003, 0, 0, 1.0f / 9);
    if (!ct_test_failed()) xent_case(GPU, TOL, 16, 50257, 1, 1, 0.25f);
    if (!ct_test_failed()) xent_case(GPU, TOL, 5, 17, 1, 0, -2.0f);
}

TEST(cuda, xent_bf16_within_1e_2) {
    need_gpu();
    const CtOps *bf16 = ct_ops_cuda_bf16();
    xent_case(bf16, 1e-2, 9, 5003, 0, 0, 1.0f / 9);
    if (!ct_test_failed()) xent_case(bf16, 1e-2, 16, 50257, 1, 1, 0.25f);
    if (!ct_test_failed()) xent_case(bf16, 1e-2, 5, 17, 1, 0, -2.0f);
}

// ---- optimizer ----

TEST(cuda, adamw_matches_cpu) {
    need_gpu();
    CtRng rng;
    ct_rng_seed(&rng, 8);
    const size_t n = 100003;
    float *p = rnd(&rng, n, 1);
    CtParamSpan spans[] = {{.offset = 50000, .count = 20000, .decay = 0}, {.offset = 0, .count = 1000, .decay = 0},
                           {.offset = 1000, .count = 49000, .decay = 1}};  // unsorted; tail uncovered (decayed)
    CtAdamW cpu;
    ct_adamw_init(&cpu, n, 3e-3, 0.9, 0.95, 1e-8, 0.1);
    ct_adamw_set_spans(&cpu, spans, 3);
    CtAdamW gpu;  // the same optimizer, its moments moved to the GPU (the op table's adamw_update)
    ct_adamw_init(&gpu, n, 3e-3, 0.9, 0.95, 1e-8, 0.1);
    ct_adamw_set_spans(&gpu, spans, 3);
    ct_adamw_move_to(&gpu, GPU);
    float *d_p = upf(p, n), *d_g = ct_cuda_malloc(n * 4, "grads");
    for (int step = 0; step < 3; step++) {
        float *g = rnd(&rng, n, 0.01f);
        ct_cuda_upload(d_g, g, n * 4);
        ct_adamw_step(&cpu, p, g);
        ct_adamw_step(&gpu, d_p, d_g);
        ct_free(g);
    }
    CHECK_EQ_INT(gpu.step, 3);
    // the same operations in the same order, rounded the same way: equal bits are expected,
    // a last-bit difference is tolerated (and reported in the message when it is more)
    CHECK_CLOSE_TOL(d_p, p, n, 1e-6, "adamw params");
    CHECK_CLOSE_TOL(gpu.m, cpu.m, n, 1e-6, "adamw m");
    CHECK_CLOSE_TOL(gpu.v, cpu.v, n, 1e-6, "adamw v");
    ct_adamw_free(&gpu);
    ct_adamw_free(&cpu);
}

TEST(cuda, grad_norm_and_clipping) {
    need_gpu();
    CtRng rng;
    ct_rng_seed(&rng, 9);
    const size_t n = 1000003;
    float *g = rnd(&rng, n, 0.01f);
    float *d_g = upf(g, n);
    double want = ct_grad_norm(g, n), got = ct_grad_norm_on(GPU, d_g, n);
    CHECK_NEAR(got / want, 1.0, 1e-12);
    CHECK(ct_grad_norm_on(GPU, d_g, n) == got);  // the same bits every run
    double norm_cpu = ct_clip_grad_norm(g, n, 1.0), norm_gpu = ct_clip_grad_norm_on(GPU, d_g, n, 1.0);
    CHECK_NEAR(norm_gpu / norm_cpu, 1.0, 1e-12);
    CHECK_CLOSE_TOL(d_g, g, n, 1e-7, "clipped gradients");
    CHECK_NEAR(ct_grad_norm_on(GPU, d_g, n), 1.0, 1e-5);
    // below the threshold nothing changes
    float *before = cuda_fixture_down(d_g, n);
    ct_clip_grad_norm_on(GPU, d_g, n, 10.0);
    CHECK_CLOSE_TOL(d_g, before, n, 1e-30, "unclipped gradients");
}

#else

TEST(cuda, ops) { SKIP("this ctrain was built without CUDA (make CUDA=1 where nvcc is installed)"); }

#endif
