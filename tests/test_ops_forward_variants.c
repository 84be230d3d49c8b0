// Forward properties of the ops of the LLaMA-architecture variants (issue #22): attention's
// sliding window, soft cap and query scale, decoding with the same options, RoPE's frequency
// table, per-head q/k RMSNorm, GeGLU and the final soft cap, against limits and simpler ops.
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops.h"
#include "tests/test.h"

#define OPS (ct_ops_cpu())

static float *random_floats(CtRng *rng, size_t n, float scale) {
    float *x = ct_alloc(n * sizeof(float));
    ct_rng_fill_normal(rng, x, n, 0, scale);
    return x;
}

static double max_diff(const float *a, const float *b, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

enum { B_ = 2, T_ = 11, NH_ = 4, NKV_ = 2, HD_ = 8, ROW_ = (NH_ + 2 * NKV_) * HD_ };

// attention_forward of a fixed random qkv with options opt into out (B_·T_·NH_·HD_) and att.
static void forward_with(float *out, float *att, const float *qkv, const CtAttentionOptions *opt) {
    OPS->attention_forward(out, att, qkv, NULL, 0.0f, 0, B_, T_, NH_, NKV_, HD_, opt);
}

static void window_properties(int blas_min_seq) {
    ct_cpu_set_attention_blas_min_seq(blas_min_seq);
    CtRng rng;
    ct_rng_seed(&rng, 31);
    const size_t n_out = (size_t)B_ * T_ * NH_ * HD_, n_att = (size_t)B_ * NH_ * T_ * T_;
    float *qkv = random_floats(&rng, (size_t)B_ * T_ * ROW_, 1);
    float *plain = ct_alloc(n_out * sizeof(float)), *out = ct_alloc(n_out * sizeof(float));
    float *att = ct_alloc(n_att * sizeof(float));
    forward_with(plain, att, qkv, NULL);
    // a window as long as the sequence (or longer) changes nothing
    const CtAttentionOptions full = {.window = T_}, longer = {.window = 1000};
    forward_with(out, att, qkv, &full);
    CHECK(max_diff(out, plain, n_out) == 0);
    forward_with(out, att, qkv, &longer);
    CHECK(max_diff(out, plain, n_out) == 0);
    // a window of 4: nothing older than 3 positions back has probability, each row sums to 1
    const CtAttentionOptions w4 = {.window = 4};
    forward_with(out, att, qkv, &w4);
    for (size_t r = 0; r < (size_t)B_ * NH_ * T_; r++) {
        const int t = (int)(r % T_);
        double sum = 0;
        for (int t2 = 0; t2 < T_; t2++) {
            const float p = att[r * T_ + t2];
            if (t2 > t || t - t2 >= 4) CHECK(p == 0);
            sum += p;
        }
        CHECK_NEAR(sum, 1, 1e-5);
    }
    CHECK(max_diff(out, plain, n_out) > 1e-3);  // and it does change the later rows
    // a window of 1: each token sees only itself, so its output is its own value head
    const CtAttentionOptions w1 = {.window = 1};
    forward_with(out, att, qkv, &w1);
    for (int n = 0; n < B_ * T_; n++)
        for (int h = 0; h < NH_; h++)
            for (int i = 0; i < HD_; i++)
                CHECK_NEAR(out[((size_t)n * NH_ + h) * HD_ + i],
                           qkv[(size_t)n * ROW_ + (NH_ + NKV_ + h / (NH_ / NKV_)) * HD_ + i], 1e-6);
}

TEST(ops, attention_window_limits_blas) { window_properties(1); }
TEST(ops, attention_window_limits_loops) { window_properties(1000); }

static void softcap_and_scale_properties(int blas_min_seq) {
    ct_cpu_set_attention_blas_min_seq(blas_min_seq);
    CtRng rng;
    ct_rng_seed(&rng, 32);
    const size_t n_out = (size_t)B_ * T_ * NH_ * HD_, n_att = (size_t)B_ * NH_ * T_ * T_;
    float *qkv = random_floats(&rng, (size_t)B_ * T_ * ROW_, 2);
    float *plain = ct_alloc(n_out * sizeof(float)), *out = ct_alloc(n_out * sizeof(float));
    float *att = ct_alloc(n_att * sizeof(float));
    forward_with(plain, att, qkv, NULL);
    // cap → ∞ is no cap; a small cap flattens the probabilities
    const CtAttentionOptions huge = {.softcap = 1e5f}, small = {.softcap = 0.5f};
    forward_with(out, att, qkv, &huge);
    CHECK_MSG(max_diff(out, plain, n_out) < 1e-4, "cap 1e5: %.3g", max_diff(out, plain, n_out));
    forward_with(out, att, qkv, &small);
    CHECK(max_diff(out, plain, n_out) > 1e-2);
    // a cap c bounds every score to (−c, c): a probability is at most e^{2c} times another of its row
    for (size_t r = 0; r < (size_t)B_ * NH_ * T_; r++) {
        const int t = (int)(r % T_);
        for (int t2 = 0; t2 <= t; t2++) CHECK(att[r * T_ + t2] <= att[r * T_] * expf(2 * 0.5f) * 1.0001f);
    }
    // the explicit default scale is the default; another scale is as if q were scaled
    const CtAttentionOptions same = {.scale = 1.0f / sqrtf((float)HD_)}, twice = {.scale = 2.0f / sqrtf((float)HD_)};
    forward_with(out, att, qkv, &same);
    CHECK(max_diff(out, plain, n_out) < 1e-6);
    float *q2 = ct_alloc((size_t)B_ * T_ * ROW_ * sizeof(float));
    memcpy(q2, qkv, (size_t)B_ * T_ * ROW_ * sizeof(float));
    for (int n = 0; n < B_ * T_; n++)
        for (int i = 0; i < NH_ * HD_; i++) q2[(size_t)n * ROW_ + i] *= 2;
    forward_with(plain, att, q2, NULL);
    forward_with(out, att, qkv, &twice);
    CHECK(max_diff(out, plain, n_out) < 1e-5);
    ct_free(q2);
}

TEST(ops, attention_softcap_and_scale_limits_blas) { softcap_and_scale_properties(1); }
TEST(ops, attention_softcap_and_scale_limits_loops) { softcap_and_scale_properties(1000); }

// Decoding the last R tokens over the cache (one, or a speculative decoder's several, each
// causal among themselves) gives the last R rows of the full forward, options included.
TEST(ops, attention_decode_is_the_last_rows_of_forward) {
    CtRng rng;
    ct_rng_seed(&rng, 33);
    const int T = 9;
    float *qkv = random_floats(&rng, (size_t)T * ROW_, 1.5f);
    float *k = ct_alloc(sizeof(float) * T * NKV_ * HD_), *v = ct_alloc(sizeof(float) * T * NKV_ * HD_);
    for (int t = 0; t < T; t++) {
        memcpy(k + (size_t)t * NKV_ * HD_, qkv + (size_t)t * ROW_ + NH_ * HD_, sizeof(float) * NKV_ * HD_);
        memcpy(v + (size_t)t * NKV_ * HD_, qkv + (size_t)t * ROW_ + (NH_ + NKV_) * HD_, sizeof(float) * NKV_ * HD_);
    }
    const CtAttentionOptions cases[] = {{0}, {.window = 3}, {.softcap = 1.0f}, {.scale = 0.3f, .softcap = 2.0f, .window = 5}};
    float *out = ct_alloc(sizeof(float) * T * NH_ * HD_), *att = ct_alloc(sizeof(float) * NH_ * T * T);
    float dec[5 * NH_ * HD_];
    for (int c = 0; c < 4; c++) {
        OPS->attention_forward(out, att, qkv, NULL, 0.0f, 0, 1, T, NH_, NKV_, HD_, &cases[c]);
        for (int R = 1; R <= 5; R += 4) {
            OPS->attention_decode(dec, qkv + (size_t)(T - R) * ROW_, ROW_, k, v, T, R, NH_, NKV_, HD_, &cases[c]);
            double d = max_diff(dec, out + (size_t)(T - R) * NH_ * HD_, R * NH_ * HD_);
            CHECK_MSG(d < 1e-5, "options case %d, %d rows: decode differs by %.3g", c, R, d);
        }
    }
}

// ct_rope_default is transformers' table; the attention factor scales; scores stay relative.
TEST(ops, rope_table_default_and_attention_factor) {
    CtRope rope;
    ct_rope_default(&rope, 500000.0f, 64);
    CHECK(rope.n_pairs == 32 && rope.attention_factor == 1.0f && rope.inv_freq[0] == 1.0f);
    for (int i = 0; i < 32; i++) {
        const double want = 1.0 / pow(500000.0, 2.0 * i / 64);
        CHECK_NEAR(rope.inv_freq[i] / want, 1, 2e-7);
    }
    CtRng rng;
    ct_rng_seed(&rng, 34);
    const int HD = 16;
    float *x = random_floats(&rng, 3 * HD, 1);
    float a[48], b[48];
    int32_t pos[3] = {0, 7, 123};
    ct_rope_default(&rope, 10000.0f, HD);
    OPS->rope_forward(a, x, pos, 1, 3, 1, HD, HD, &rope);
    for (int i = 0; i < HD; i++) CHECK(a[i] == x[i]);  // position 0 is the identity
    rope.attention_factor = 1.5f;
    OPS->rope_forward(b, x, pos, 1, 3, 1, HD, HD, &rope);
    for (int i = 0; i < 3 * HD; i++) CHECK_NEAR(b[i], 1.5 * a[i], 1e-5);
    // backward undoes forward up to the factor²: R(−θ)·R(θ) = 1
    OPS->rope_backward(b, b, pos, 1, 3, 1, HD, HD, &rope);
    for (int i = 0; i < 3 * HD; i++) CHECK_NEAR(b[i], 2.25 * x[i], 1e-5);
}

// qk_norm_forward is rmsnorm_forward on every q head (q_weight) and k head (k_weight); v is copied.
TEST(ops, qk_norm_is_rmsnorm_per_head) {
    CtRng rng;
    ct_rng_seed(&rng, 35);
    const int N = 3, heads = NH_ + NKV_;
    float *x = random_floats(&rng, (size_t)N * ROW_, 2), *qw = random_floats(&rng, HD_, 1);
    float *kw = random_floats(&rng, HD_, 1), *out = ct_alloc(sizeof(float) * N * ROW_);
    float rstd[3 * (NH_ + NKV_)], ref[HD_], r1;
    OPS->qk_norm_forward(out, rstd, x, qw, kw, N, NH_, NKV_, HD_, 1e-6f);
    for (int n = 0; n < N; n++) {
        for (int j = 0; j < heads; j++) {
            OPS->rmsnorm_forward(ref, &r1, x + (size_t)n * ROW_ + j * HD_, j < NH_ ? qw : kw, 1, HD_, 1e-6f);
            CHECK(max_diff(ref, out + (size_t)n * ROW_ + j * HD_, HD_) == 0);
            CHECK(rstd[n * heads + j] == r1);
        }
        const size_t v = (size_t)n * ROW_ + heads * HD_;
        CHECK(memcmp(out + v, x + v, sizeof(float) * NKV_ * HD_) == 0);
    }
}

// GeGLU is gelu_forward of the gate times the up half; the soft cap bounds and is ~identity near 0.
TEST(ops, geglu_and_softcap_forward) {
    CtRng rng;
    ct_rng_seed(&rng, 36);
    const int N = 4, F = 9;
    float *gu = random_floats(&rng, (size_t)N * 2 * F, 2), out[36], g[9];
    OPS->geglu_forward(out, gu, N, F);
    for (int n = 0; n < N; n++) {
        OPS->gelu_forward(g, gu + (size_t)n * 2 * F, F);
        for (int f = 0; f < F; f++) CHECK_NEAR(out[n * F + f], g[f] * gu[(size_t)n * 2 * F + F + f], 1e-6);
    }
    float x[5] = {-1000.0f, -30.0f, 0.001f, 29.0f, 1e6f};
    OPS->softcap_forward(x, 5, 30.0f);
    CHECK(x[0] >= -30.0f && x[0] < -29.99f && x[4] <= 30.0f && x[4] > 29.99f);
    CHECK_NEAR(x[1], -30 * tanh(1.0), 1e-5);
    CHECK_NEAR(x[2], 0.001, 1e-9);
    float y[3] = {1, -2, 3};
    OPS->act_scale(y, 3, 0.5f);
    CHECK(y[0] == 0.5f && y[1] == -1.0f && y[2] == 1.5f);
}
