// Attention with a learned prefix (attention_prefix_forward/backward: prefix tuning, issue 27):
// gradients through qkv and the prefix's keys and values against finite differences in double
// on both CPU engines (MHA, GQA, documents, dropout, window, soft cap, query scale, bidirectional),
// the BLAS engine also with tiles of query rows smaller than T (spans split at the prefix);
// the forward against plain attention over the prefix written as the sequence's first P tokens;
// and P = 0 equal to attention_forward/backward bit for bit.
#include <string.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops.h"
#include "tests/attention_gradcheck.h"
#include "tests/gradcheck.h"
#include "tests/test.h"

#define OPS (ct_ops_cpu())

// The prefix rows are 2·NKV·HD + 3 numbers apart: the op must read only each row's keys and
// values (as when the prefix is one layer's slice of PEFT's [P, L·2·NKV·HD] embedding).
static void prefix_case(const char *label, int NH, int NKV, int P, int with_docs, int blas_min_seq, float dropout,
                        const CtAttentionOptions *opt) {
    ct_cpu_set_attention_blas_min_seq(blas_min_seq);
    CtRng rng;
    ct_rng_seed(&rng, 11);
    AttentionGradCtx a = {.B = 2, .T = 6, .NH = NH, .NKV = NKV, .HD = 4, .p = dropout, .seed = 99, .opt = opt,
                          .P = P};
    a.prefix_stride = 2 * NKV * a.HD + 3;
    int32_t doc[12] = {0, 0, 1, 1, 1, 2, 4, 4, 4, 4, 7, 7};
    a.doc = with_docs ? doc : NULL;
    const size_t n_att = (size_t)a.B * NH * a.T * (a.T + P);
    a.att = ct_alloc(sizeof(double) * n_att);
    a.attf = ct_alloc(sizeof(float) * n_att);
    const size_t n_qkv = (size_t)a.B * a.T * (NH + 2 * NKV) * a.HD, n_pre = (size_t)P * a.prefix_stride;
    GradCase c = {.label = label, .n_inputs = 2, .x = {gc_random(&rng, n_qkv, 1), gc_random(&rng, n_pre, 1)},
                  .n = {n_qkv, n_pre}, .n_out = (size_t)a.B * a.T * NH * a.HD, .ctx = &a,
                  .forward64 = attention_prefix_grad_f64, .backward64 = attention_prefix_grad_b64,
                  .forward32 = attention_prefix_grad_f32, .backward32 = attention_prefix_grad_b32};
    CHECK_GRADS(c);
    ct_free(a.att);
    ct_free(a.attf);
    ct_free(c.x[0]);
    ct_free(c.x[1]);
}

// blas_min_seq 1: the BLAS engine; 64: the loops.
static void prefix_cases(int blas_min_seq) {
    const CtAttentionOptions window = {.window = 3}, all = {.scale = 0.7f, .softcap = 2.0f, .window = 4};
    const CtAttentionOptions bidir = {.bidirectional = 1};
    prefix_case("prefix attention MHA", 3, 3, 2, 0, blas_min_seq, 0, NULL);
    prefix_case("prefix attention GQA + documents", 4, 2, 3, 1, blas_min_seq, 0, NULL);
    prefix_case("prefix attention MQA + dropout", 3, 1, 2, 0, blas_min_seq, 0.3f, NULL);
    prefix_case("prefix attention, window (prefix slides out)", 4, 2, 3, 0, blas_min_seq, 0, &window);
    prefix_case("prefix attention, window + cap + scale + documents + dropout", 4, 2, 2, 1, blas_min_seq, 0.3f, &all);
    prefix_case("prefix attention, bidirectional + documents", 4, 2, 2, 1, blas_min_seq, 0, &bidir);
}
TEST(ops, attention_prefix_gradient_blas) { prefix_cases(1); }
TEST(ops, attention_prefix_gradient_loops) { prefix_cases(64); }
// T 6 over tiles of 4 (the second short) and of 1: a tile's key span split into its prefix and
// token parts, the prefix sliding out of later tiles' spans with a window.
TEST(ops, attention_prefix_gradient_blas_tiled) {
    ct_cpu_set_attention_tile(4);
    prefix_cases(1);
    ct_cpu_set_attention_tile(1);
    prefix_cases(1);
    ct_cpu_set_attention_tile(64);
}

// Causal attention with a prefix is plain causal attention over a sequence whose first P tokens
// carry the prefix's keys and values (any query; their outputs are dropped): Hugging Face's view,
// past_key_values of length P before the tokens.
static void prefix_equals_longer_sequence(int blas_min_seq, const CtAttentionOptions *opt) {
    ct_cpu_set_attention_blas_min_seq(blas_min_seq);
    const int B = 2, T = 5, P = 3, NH = 4, NKV = 2, HD = 4, row = (NH + 2 * NKV) * HD, kv = NKV * HD;
    const int stride = 2 * kv + 1;
    CtRng rng;
    ct_rng_seed(&rng, 3);
    float *qkv = ct_alloc(sizeof(float) * B * T * row), *prefix = ct_alloc(sizeof(float) * P * stride);
    for (int i = 0; i < B * T * row; i++) qkv[i] = ct_rng_normal(&rng);
    for (int i = 0; i < P * stride; i++) prefix[i] = ct_rng_normal(&rng);
    float *longer = ct_calloc((size_t)B * (P + T) * row, sizeof(float));
    for (int b = 0; b < B; b++) {
        for (int j = 0; j < P; j++) {
            float *r = longer + ((size_t)b * (P + T) + j) * row;
            for (int i = 0; i < NH * HD; i++) r[i] = ct_rng_normal(&rng);  // queries of the prefix rows: unused
            memcpy(r + NH * HD, prefix + (size_t)j * stride, sizeof(float) * 2 * kv);
        }
        memcpy(longer + ((size_t)b * (P + T) + P) * row, qkv + (size_t)b * T * row, sizeof(float) * T * row);
    }
    float *out = ct_alloc(sizeof(float) * B * T * NH * HD), *out_long = ct_alloc(sizeof(float) * B * (P + T) * NH * HD);
    float *att = ct_alloc(sizeof(float) * OPS->attention_saved_floats(B, T + P, NH));
    float *att_long = ct_alloc(sizeof(float) * OPS->attention_saved_floats(B, T + P, NH));
    OPS->attention_prefix_forward(out, att, qkv, prefix, P, stride, NULL, 0, 0, B, T, NH, NKV, HD, opt);
    OPS->attention_forward(out_long, att_long, longer, NULL, 0, 0, B, P + T, NH, NKV, HD, opt);
    double worst = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int i = 0; i < NH * HD; i++) {
                double d = out[((size_t)b * T + t) * NH * HD + i] - out_long[((size_t)b * (P + T) + P + t) * NH * HD + i];
                if (d < 0) d = -d;
                if (d > worst) worst = d;
            }
    CHECK_MSG(worst < 1e-5, "prefix attention vs the longer sequence: max difference %.3g", worst);
    ct_free(qkv);
    ct_free(prefix);
    ct_free(longer);
    ct_free(out);
    ct_free(out_long);
    ct_free(att);
    ct_free(att_long);
}
TEST(ops, attention_prefix_is_attention_over_prepended_keys) {
    const CtAttentionOptions window = {.window = 4, .softcap = 3.0f};
    prefix_equals_longer_sequence(1, NULL);
    prefix_equals_longer_sequence(64, NULL);
    prefix_equals_longer_sequence(1, &window);
    prefix_equals_longer_sequence(64, &window);
    ct_cpu_set_attention_tile(2);  // T 5 over tiles of 2
    prefix_equals_longer_sequence(1, NULL);
    prefix_equals_longer_sequence(1, &window);
    ct_cpu_set_attention_tile(64);
}

// P = 0: the same bits as attention_forward/backward, on both engines, with documents and dropout.
static void empty_prefix_bit_for_bit(int blas_min_seq) {
    ct_cpu_set_attention_blas_min_seq(blas_min_seq);
    const int B = 2, T = 7, NH = 4, NKV = 2, HD = 4, row = (NH + 2 * NKV) * HD;
    const size_t n_qkv = (size_t)B * T * row, n_out = (size_t)B * T * NH * HD;
    const size_t n_att = OPS->attention_saved_floats(B, T, NH);
    int32_t doc[14] = {0, 0, 0, 1, 1, 2, 2, 5, 5, 5, 5, 6, 6, 6};
    const CtAttentionOptions opt = {.softcap = 2.0f, .window = 5};
    CtRng rng;
    ct_rng_seed(&rng, 8);
    float *qkv = ct_alloc(sizeof(float) * n_qkv), *dout = ct_alloc(sizeof(float) * n_out);
    for (size_t i = 0; i < n_qkv; i++) qkv[i] = ct_rng_normal(&rng);
    for (size_t i = 0; i < n_out; i++) dout[i] = ct_rng_normal(&rng);
    float *o1 = ct_alloc(sizeof(float) * n_out), *o2 = ct_alloc(sizeof(float) * n_out);
    float *a1 = ct_alloc(sizeof(float) * n_att), *a2 = ct_alloc(sizeof(float) * n_att);
    float *d1 = ct_calloc(n_qkv, sizeof(float)), *d2 = ct_calloc(n_qkv, sizeof(float));
    OPS->attention_forward(o1, a1, qkv, doc, 0.2f, 77, B, T, NH, NKV, HD, &opt);
    OPS->attention_prefix_forward(o2, a2, qkv, NULL, 0, 0, doc, 0.2f, 77, B, T, NH, NKV, HD, &opt);
    OPS->attention_backward(d1, dout, qkv, a1, 0.2f, 77, B, T, NH, NKV, HD, &opt);
    OPS->attention_prefix_backward(d2, NULL, dout, qkv, NULL, 0, 0, a2, 0.2f, 77, B, T, NH, NKV, HD, &opt);
    CHECK_MSG(memcmp(o1, o2, sizeof(float) * n_out) == 0, "P = 0 forward differs from attention_forward");
    CHECK_MSG(memcmp(d1, d2, sizeof(float) * n_qkv) == 0, "P = 0 backward differs from attention_backward");
    ct_free(qkv);
    ct_free(dout);
    ct_free(o1);
    ct_free(o2);
    ct_free(a1);
    ct_free(a2);
    ct_free(d1);
    ct_free(d2);
}
TEST(ops, attention_prefix_empty_is_attention_bit_for_bit) {
    empty_prefix_bit_for_bit(1);
    empty_prefix_bit_for_bit(64);
}

// The BLAS engine with tiles of 4 rows against the loops (which visit every row's keys one by
// one), with a prefix of 3 over T 13: packed documents (contiguous runs: the token side of the
// spans narrowed, the prefix kept) and an id in two runs (no narrowing), causal, windowed (the
// prefix slides out of later tiles) and bidirectional, with dropout: forward, saved
// probabilities and gradients equal to float rounding.
static double max_diff(const float *x, const float *y, size_t n) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)x[i] - (double)y[i];
        if (d < 0) d = -d;
        if (d > worst) worst = d;
    }
    return worst;
}

static void tiles_match_loops(const int32_t *doc, const CtAttentionOptions *opt, const char *label) {
    const int B = 2, T = 13, P = 3, NH = 4, NKV = 2, HD = 4, row = (NH + 2 * NKV) * HD, stride = 2 * NKV * HD + 1;
    const size_t n_qkv = (size_t)B * T * row, n_out = (size_t)B * T * NH * HD, n_pre = (size_t)P * stride;
    const size_t n_att = (size_t)B * NH * T * (P + T);
    CtRng rng;
    ct_rng_seed(&rng, 21);
    float *qkv = ct_alloc(sizeof(float) * n_qkv), *dout = ct_alloc(sizeof(float) * n_out);
    float *pre = ct_alloc(sizeof(float) * n_pre);
    for (size_t i = 0; i < n_qkv; i++) qkv[i] = ct_rng_normal(&rng);
    for (size_t i = 0; i < n_out; i++) dout[i] = ct_rng_normal(&rng);
    for (size_t i = 0; i < n_pre; i++) pre[i] = ct_rng_normal(&rng);
    float *o[2], *a[2], *d[2], *dp[2];
    for (int e = 0; e < 2; e++) {  // e 0: the loops; e 1: BLAS, tiles of 4
        ct_cpu_set_attention_blas_min_seq(e ? 1 : 64);
        ct_cpu_set_attention_tile(4);
        o[e] = ct_alloc(sizeof(float) * n_out);
        a[e] = ct_alloc(sizeof(float) * n_att);
        d[e] = ct_calloc(n_qkv, sizeof(float));
        dp[e] = ct_calloc(n_pre, sizeof(float));
        OPS->attention_prefix_forward(o[e], a[e], qkv, pre, P, stride, doc, 0.2f, 5, B, T, NH, NKV, HD, opt);
        OPS->attention_prefix_backward(d[e], dp[e], dout, qkv, pre, P, stride, a[e], 0.2f, 5, B, T, NH, NKV, HD, opt);
    }
    const double eo = max_diff(o[0], o[1], n_out), ea = max_diff(a[0], a[1], n_att);
    const double ed = max_diff(d[0], d[1], n_qkv), ep = max_diff(dp[0], dp[1], n_pre);
    CHECK_MSG(eo < 1e-5 && ea < 1e-5 && ed < 1e-4 && ep < 1e-4,
              "%s: tiles vs loops: out %.3g, att %.3g, dqkv %.3g, dprefix %.3g", label, eo, ea, ed, ep);
    for (int e = 0; e < 2; e++) {
        ct_free(o[e]);
        ct_free(a[e]);
        ct_free(d[e]);
        ct_free(dp[e]);
    }
    ct_free(qkv);
    ct_free(dout);
    ct_free(pre);
    ct_cpu_set_attention_tile(64);
}

TEST(ops, attention_prefix_tiles_match_loops) {
    static const int32_t packed[26] = {0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2,  //
                                       3, 3, 3, 3, 3, 3, 3, 3, 3, -1, -1, -1, -1};
    static const int32_t split[26] = {0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0,  //
                                      2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2};
    const CtAttentionOptions window = {.window = 5, .softcap = 2.0f}, bidir = {.bidirectional = 1};
    const CtAttentionOptions bidir_window = {.bidirectional = 1, .window = 4};
    const int32_t *docs[3] = {NULL, packed, split};
    const CtAttentionOptions *opts[4] = {NULL, &window, &bidir, &bidir_window};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) tiles_match_loops(docs[i], opts[j], i == 0 ? "no ids" : i == 1 ? "packed" : "split");
}
