// The CUDA tables against the CPU for prefix tuning's op (issue 27): attention with a learned
// prefix, forward and backward (adding into the gradients, the prefix's summed over the batch;
// P-tuning's ReLU is checked with the other elementwise ops in tests/test_cuda_ops.c). Both tables: fp32 to TOL, bf16 activations
// to 1e-2. P = 0 is the table's plain attention, bit for bit. Skips without a GPU
// (tests/test_cuda_emu/run.sh runs them on the emulation).
#include "tests/cuda_fixture.h"
#include "tests/test.h"

#ifdef CTRAIN_CUDA
#include "tests/cuda_ops_check.h"

#define SEED_PREFIX 0x5eedu

typedef struct {
    int B, T, NH, NKV, HD, P;
    int docs;                        // 0: none; 1: packed documents
    float dropout;                   // attention dropout probability (0: none)
    const CtAttentionOptions *opt;  // NULL: the defaults
} PrefixCase;

// One case on table gpu against the CPU: out, dqkv and dprefix_kv (the prefix rows padded to a
// stride wider than their 2·NKV·HD numbers, whose tail must stay untouched).
static void prefix_case(const CtOps *gpu, double tol, PrefixCase c) {
    CtRng rng;
    ct_rng_seed(&rng, (uint64_t)(c.T * 131 + c.HD + c.P));
    const int row = (c.NH + 2 * c.NKV) * c.HD, stride = 2 * c.NKV * c.HD + 3;
    const size_t n_qkv = (size_t)c.B * c.T * row, n_out = (size_t)c.B * c.T * c.NH * c.HD;
    const size_t n_pre = (size_t)(c.P ? c.P : 1) * stride, n_doc = (size_t)c.B * c.T;
    float *qkv = rnd(&rng, n_qkv, 1), *pre = rnd(&rng, n_pre, 1);
    as_table_holds(gpu, qkv, n_qkv);
    as_table_holds(gpu, pre, n_pre);
    int32_t *doc = ct_alloc(sizeof(int32_t) * n_doc);
    for (int b = 0; b < c.B; b++)
        for (int t = 0; t < c.T; t++) doc[b * c.T + t] = (t / (7 + 5 * b)) % 3;
    const int32_t *docs = c.docs ? doc : NULL;
    const size_t n_att = (size_t)c.B * c.NH * c.T * (c.P + c.T);
    float *out = ct_alloc(sizeof(float) * n_out), *att = ct_alloc(sizeof(float) * n_att);
    CPU->attention_prefix_forward(out, att, qkv, pre, c.P, stride, docs, c.dropout, SEED_PREFIX, c.B, c.T, c.NH,
                                  c.NKV, c.HD, c.opt);
    CtAct *d_qkv = up_act(gpu, qkv, n_qkv), *d_pre = up_act(gpu, pre, n_pre), *d_out = new_act(gpu, n_out, "out");
    int32_t *d_doc = up(doc, sizeof(int32_t) * n_doc);
    float *d_att = ct_cuda_malloc(sizeof(float) * gpu->attention_saved_floats(c.B, c.T + c.P, c.NH), "att");
    gpu->attention_prefix_forward(d_out, d_att, d_qkv, d_pre, c.P, stride, c.docs ? d_doc : NULL, c.dropout,
                                  SEED_PREFIX, c.B, c.T, c.NH, c.NKV, c.HD, c.opt);
    CHECK_ACT_CLOSE_TOL(gpu, d_out, out, n_out, tol, "prefix attention forward");
    if (c.P == 0) {  // the table's own attention, bit for bit
        CtAct *d_out2 = new_act(gpu, n_out, "out2");
        float *d_att2 = ct_cuda_malloc(sizeof(float) * gpu->attention_saved_floats(c.B, c.T, c.NH), "att2");
        gpu->attention_forward(d_out2, d_att2, d_qkv, c.docs ? d_doc : NULL, c.dropout, SEED_PREFIX, c.B, c.T, c.NH,
                               c.NKV, c.HD, c.opt);
        float *a = cuda_fixture_down_act(gpu, d_out, n_out), *b = cuda_fixture_down_act(gpu, d_out2, n_out);
        CHECK_MSG(memcmp(a, b, n_out * sizeof(float)) == 0, "P = 0 differs from attention_forward");
        ct_free(a), ct_free(b);
        ct_cuda_free(d_out2), ct_cuda_free(d_att2);
    }

    float *dout = rnd(&rng, n_out, 1), *dqkv = rnd(&rng, n_qkv, 1), *dpre = rnd(&rng, n_pre, 1);
    as_table_holds(gpu, dout, n_out);
    as_table_holds(gpu, dqkv, n_qkv);
    as_table_holds(gpu, dpre, n_pre);
    CtAct *d_dout = up_act(gpu, dout, n_out), *d_dqkv = up_act(gpu, dqkv, n_qkv), *d_dpre = up_act(gpu, dpre, n_pre);
    CtAct *d_dqkv2 = up_act(gpu, dqkv, n_qkv), *d_dpre2 = up_act(gpu, dpre, n_pre);
    CPU->attention_prefix_backward(dqkv, dpre, dout, qkv, pre, c.P, stride, att, c.dropout, SEED_PREFIX, c.B, c.T,
                                   c.NH, c.NKV, c.HD, c.opt);
    gpu->attention_prefix_backward(d_dqkv, d_dpre, d_dout, d_qkv, d_pre, c.P, stride, d_att, c.dropout, SEED_PREFIX,
                                   c.B, c.T, c.NH, c.NKV, c.HD, c.opt);
    CHECK_ACT_CLOSE_TOL(gpu, d_dqkv, dqkv, n_qkv, tol, "prefix attention backward dqkv");
    CHECK_ACT_CLOSE_TOL(gpu, d_dpre, dpre, n_pre, tol, "prefix attention backward dprefix_kv");
    // the same bits on a second run (no atomics)
    gpu->attention_prefix_backward(d_dqkv2, d_dpre2, d_dout, d_qkv, d_pre, c.P, stride, d_att, c.dropout,
                                   SEED_PREFIX, c.B, c.T, c.NH, c.NKV, c.HD, c.opt);
    float *g1 = cuda_fixture_down_act(gpu, d_dpre, n_pre), *g2 = cuda_fixture_down_act(gpu, d_dpre2, n_pre);
    CHECK_MSG(memcmp(g1, g2, n_pre * sizeof(float)) == 0, "prefix gradient differs between two runs");
    ct_free(g1), ct_free(g2);
    ct_cuda_free(d_qkv), ct_cuda_free(d_pre), ct_cuda_free(d_out), ct_cuda_free(d_doc), ct_cuda_free(d_att);
    ct_cuda_free(d_dout), ct_cuda_free(d_dqkv), ct_cuda_free(d_dpre), ct_cuda_free(d_dqkv2), ct_cuda_free(d_dpre2);
    ct_free(qkv), ct_free(pre), ct_free(doc), ct_free(out), ct_free(att), ct_free(dout), ct_free(dqkv),
        ct_free(dpre);
}

#define PREFIX_CASES(gpu, tol, ...)                                                                              \
    do {                                                                                                         \
        PrefixCase cases_[] = {__VA_ARGS__};                                                                     \
        for (size_t i_ = 0; i_ < sizeof cases_ / sizeof cases_[0]; i_++) {                                       \
            prefix_case((gpu), (tol), cases_[i_]);                                                               \
            if (ct_test_failed()) {                                                                              \
                PrefixCase c_ = cases_[i_];                                                                      \
                CHECK_MSG(0, "in case B=%d T=%d NH=%d NKV=%d HD=%d P=%d docs=%d dropout=%g", c_.B, c_.T, c_.NH, \
                          c_.NKV, c_.HD, c_.P, c_.docs, c_.dropout);                                             \
                return;                                                                                          \
            }                                                                                                    \
        }                                                                                                        \
    } while (0)

static const CtAttentionOptions WINDOW_CAP = {0.2f, 5.0f, 9, 0};
static const CtAttentionOptions BIDIRECTIONAL = {0, 0, 0, 1};

// Causal, GQA, documents, P = 0 and P > 0 (a prefix longer than one key tile too), one token.
#define CAUSAL_CASES                                                                                  \
    (PrefixCase){2, 37, 4, 2, 16, 5, 0, 0, NULL}, (PrefixCase){2, 37, 4, 2, 16, 0, 0, 0, NULL},         \
        (PrefixCase){2, 70, 3, 1, 40, 7, 1, 0, NULL}, (PrefixCase){1, 20, 2, 2, 64, 70, 0, 0, NULL},    \
        (PrefixCase){2, 1, 2, 1, 32, 3, 0, 0, NULL}, (PrefixCase){2, 45, 2, 1, 32, 4, 1, 0, NULL}
// Window, soft cap and scale; bidirectional with documents; dropout.
#define OPTION_CASES                                                                                     \
    (PrefixCase){2, 40, 2, 1, 32, 6, 1, 0, &WINDOW_CAP}, (PrefixCase){2, 33, 2, 2, 16, 4, 1, 0, &BIDIRECTIONAL}, \
        (PrefixCase){1, 30, 2, 1, 32, 5, 0, 0.25f, NULL}

TEST(cuda, attention_prefix_matches_cpu) {
    need_gpu();
    PREFIX_CASES(GPU, TOL, CAUSAL_CASES);
}
TEST(cuda, attention_prefix_options_match_cpu) {
    need_gpu();
    PREFIX_CASES(GPU, TOL, OPTION_CASES);
}
TEST(cuda, attention_prefix_bf16_within_1e_2) {
    need_gpu();
    PREFIX_CASES(ct_ops_cuda_bf16(), 1e-2, CAUSAL_CASES, (PrefixCase){1, 70, 2, 1, 64, 6, 1, 0, NULL});
}
TEST(cuda, attention_prefix_bf16_options_within_1e_2) {
    need_gpu();
    PREFIX_CASES(ct_ops_cuda_bf16(), 1e-2, OPTION_CASES);
}
#else
TEST(cuda, prefix_ops_need_a_cuda_build) { SKIP("built without CUDA"); }
#endif
