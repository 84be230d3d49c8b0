// Bidirectional attention (CtAttentionOptions.bidirectional, an encoder's attention; issue 26):
// the forward of both CPU engines against a direct softmax over every visible key in double,
// padding kept away from the real tokens, and the backward against finite differences in double
// (gradcheck.h) with documents/padding, GQA, dropout, the symmetric window and the soft cap.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops.h"
#include "tests/attention_gradcheck.h"
#include "tests/gradcheck.h"
#include "tests/test.h"

#define OPS (ct_ops_cpu())

// The attention of query t of head h in sequence b written out: softmax, in double, over the keys
// t2 with the same document id and |t − t2| < window (any distance without a window), of the
// capped scaled scores, times V. out[B,T,NH·HD].
static void reference_attention(double *out, const float *qkv, const int32_t *doc, int B, int T, int NH, int NKV,
                                int HD, const CtAttentionOptions *opt) {
    const int row = (NH + 2 * NKV) * HD, group = NH / NKV;
    const double scale = opt->scale != 0 ? opt->scale : 1 / sqrt((double)HD);
    double *w = malloc(sizeof(double) * (size_t)T);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                const float *q = qkv + ((size_t)b * T + t) * row + h * HD;
                double max = -INFINITY, sum = 0;
                for (int t2 = 0; t2 < T; t2++) {
                    int visible = (!doc || doc[b * T + t2] == doc[b * T + t]) &&
                                  (opt->window <= 0 || abs(t - t2) < opt->window);
                    w[t2] = -INFINITY;
                    if (!visible) continue;
                    const float *k = qkv + ((size_t)b * T + t2) * row + NH * HD + (h / group) * HD;
                    double s = 0;
                    for (int i = 0; i < HD; i++) s += (double)q[i] * k[i];
                    s *= scale;
                    if (opt->softcap > 0) s = opt->softcap * tanh(s / opt->softcap);
                    w[t2] = s;
                    if (s > max) max = s;
                }
                for (int t2 = 0; t2 < T; t2++) sum += (w[t2] = exp(w[t2] - max));
                double *o = out + ((size_t)b * T + t) * NH * HD + h * HD;
                for (int i = 0; i < HD; i++) {
                    double acc = 0;
                    for (int t2 = 0; t2 < T; t2++)
                        acc += w[t2] / sum * qkv[((size_t)b * T + t2) * row + (NH + NKV) * HD + (h / group) * HD + i];
                    o[i] = acc;
                }
            }
    free(w);
}

// Both engines' float forward against the reference: max |op − ref| / max |ref| < 1e-5.
static void forward_matches_reference(const char *label, int NH, int NKV, const int32_t *doc,
                                      const CtAttentionOptions *opt) {
    const int B = 2, T = 11, HD = 8, row = (NH + 2 * NKV) * HD;
    CtRng rng;
    ct_rng_seed(&rng, 31);
    float *qkv = ct_alloc(sizeof(float) * B * T * row);
    ct_rng_fill_normal(&rng, qkv, (size_t)B * T * row, 0, 1);
    double *want = ct_alloc(sizeof(double) * B * T * NH * HD);
    reference_attention(want, qkv, doc, B, T, NH, NKV, HD, opt);
    float *out = ct_alloc(sizeof(float) * B * T * NH * HD), *att = ct_alloc(sizeof(float) * B * NH * T * T);
    const int engines[2] = {1, 1000};  // blas_min_seq: 1 runs BLAS, 1000 the loops
    for (int e = 0; e < 2; e++) {
        ct_cpu_set_attention_blas_min_seq(engines[e]);
        OPS->attention_forward(out, att, qkv, doc, 0.0f, 0, B, T, NH, NKV, HD, opt);
        double err = 0, ref = 0;
        for (int i = 0; i < B * T * NH * HD; i++) {
            err = fmax(err, fabs(out[i] - want[i]));
            ref = fmax(ref, fabs(want[i]));
        }
        CHECK_MSG(err / ref < 1e-5, "%s (%s): %.3g off the reference", label, e ? "loops" : "BLAS", err / ref);
        // every row of the saved probabilities sums to 1 over keys the query may see (and only those)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++)
                for (int t = 0; t < T; t++) {
                    const float *a = att + (((size_t)b * NH + h) * T + t) * T;
                    double sum = 0;
                    for (int t2 = 0; t2 < T; t2++) {
                        int visible = (!doc || doc[b * T + t2] == doc[b * T + t]) &&
                                      (opt->window <= 0 || abs(t - t2) < opt->window);
                        if (!visible) CHECK(a[t2] == 0);
                        sum += a[t2];
                    }
                    CHECK_NEAR(sum, 1, 1e-5);
                }
    }
    ct_free(qkv);
    ct_free(want);
    ct_free(out);
    ct_free(att);
}

// Two rows: [a b c d e f g PAD PAD PAD PAD] (pads an id of their own, -1) and two packed documents.
static const int32_t padded_docs[22] = {0, 0, 0, 0, 0, 0, 0, -1, -1, -1, -1, 4, 4, 4, 4, 4, 9, 9, 9, 9, 9, 9};

TEST(ops, attention_bidirectional_forward_matches_reference) {
    const CtAttentionOptions bi = {.bidirectional = 1};
    forward_matches_reference("MHA", 2, 2, NULL, &bi);
    forward_matches_reference("GQA 4/2", 4, 2, NULL, &bi);
    forward_matches_reference("GQA + padding and documents", 4, 2, padded_docs, &bi);
    forward_matches_reference("MQA + padding and documents", 3, 1, padded_docs, &bi);
}

TEST(ops, attention_bidirectional_options_match_reference) {
    const CtAttentionOptions window = {.bidirectional = 1, .window = 3}, cap = {.bidirectional = 1, .softcap = 1.5f};
    const CtAttentionOptions all = {.bidirectional = 1, .window = 4, .softcap = 2.0f, .scale = 0.6f};
    forward_matches_reference("symmetric window", 4, 2, NULL, &window);
    forward_matches_reference("soft cap", 4, 2, NULL, &cap);
    forward_matches_reference("window + cap + scale + padding", 4, 2, padded_docs, &all);
}

// A padded sequence's real tokens get exactly what the unpadded sequence gives them: padding
// leaks into no real token's output, whatever the pads hold.
static void padding_is_invisible(int blas_min_seq) {
    ct_cpu_set_attention_blas_min_seq(blas_min_seq);
    const int T = 10, len = 6, NH = 4, NKV = 2, HD = 8, row = (NH + 2 * NKV) * HD;
    const CtAttentionOptions bi = {.bidirectional = 1};
    int32_t doc[10] = {0, 0, 0, 0, 0, 0, 1, 1, 1, 1};
    CtRng rng;
    ct_rng_seed(&rng, 12);
    float *qkv = ct_alloc(sizeof(float) * T * row);
    ct_rng_fill_normal(&rng, qkv, (size_t)T * row, 0, 1);
    for (int i = len * row; i < T * row; i++) qkv[i] *= 50;  // loud pads
    float *out = ct_alloc(sizeof(float) * T * NH * HD), *att = ct_alloc(sizeof(float) * NH * T * T);
    float *alone = ct_alloc(sizeof(float) * len * NH * HD), *att2 = ct_alloc(sizeof(float) * NH * len * len);
    OPS->attention_forward(out, att, qkv, doc, 0.0f, 0, 1, T, NH, NKV, HD, &bi);
    OPS->attention_forward(alone, att2, qkv, NULL, 0.0f, 0, 1, len, NH, NKV, HD, &bi);
    for (int i = 0; i < len * NH * HD; i++) CHECK_NEAR(out[i], alone[i], 1e-6);
    // and the first real token does attend to the last one (not causal)
    CHECK(att[len - 1] > 0);
    ct_free(qkv);
    ct_free(out);
    ct_free(att);
    ct_free(alone);
    ct_free(att2);
}
TEST(ops, attention_bidirectional_padding_is_invisible_blas) { padding_is_invisible(1); }
TEST(ops, attention_bidirectional_padding_is_invisible_loops) { padding_is_invisible(1000); }

// ---- gradients ----

// blas_min_seq 1: the BLAS engine; 64: the loops.
static void gradient_case(const char *label, int NH, int NKV, int with_docs, int blas_min_seq, float dropout,
                          const CtAttentionOptions *opt) {
    ct_cpu_set_attention_blas_min_seq(blas_min_seq);
    CtRng rng;
    ct_rng_seed(&rng, 5);
    AttentionGradCtx a = {.B = 2, .T = 7, .NH = NH, .NKV = NKV, .HD = 4, .p = dropout, .seed = 4242, .opt = opt};
    // row 0: five tokens and two pads (id -1); row 1: three packed documents
    static const int32_t doc[14] = {0, 0, 0, 0, 0, -1, -1, 5, 5, 5, 6, 6, 7, 7};
    a.doc = with_docs ? doc : NULL;
    a.att = ct_alloc(sizeof(double) * a.B * NH * a.T * a.T);
    a.attf = ct_alloc(sizeof(float) * a.B * NH * a.T * a.T);
    size_t n_in = (size_t)a.B * a.T * (NH + 2 * NKV) * a.HD;
    GradCase c = {.label = label, .n_inputs = 1, .x = {gc_random(&rng, n_in, 1)}, .n = {n_in},
                  .n_out = (size_t)a.B * a.T * NH * a.HD, .ctx = &a,
                  .forward64 = attention_grad_f64, .backward64 = attention_grad_b64, .forward32 = attention_grad_f32,
                  .backward32 = attention_grad_b32};
    CHECK_GRADS(c);
    ct_free(a.att);
    ct_free(a.attf);
}

static void gradient_cases(int blas_min_seq) {
    const CtAttentionOptions bi = {.bidirectional = 1};
    const CtAttentionOptions all = {.bidirectional = 1, .scale = 0.7f, .softcap = 2.0f, .window = 3};
    gradient_case("bidirectional MHA", 3, 3, 0, blas_min_seq, 0, &bi);
    gradient_case("bidirectional GQA 4/2", 4, 2, 0, blas_min_seq, 0, &bi);
    gradient_case("bidirectional GQA + padding and documents", 4, 2, 1, blas_min_seq, 0, &bi);
    gradient_case("bidirectional MQA + padding + dropout", 3, 1, 1, blas_min_seq, 0.3f, &bi);
    gradient_case("bidirectional window + cap + scale + padding + dropout", 4, 2, 1, blas_min_seq, 0.3f, &all);
}
TEST(ops, attention_bidirectional_gradient_blas) { gradient_cases(1); }
TEST(ops, attention_bidirectional_gradient_loops) { gradient_cases(64); }

// The two engines give the same bidirectional probabilities and gradients (dropout included).
TEST(ops, attention_bidirectional_engines_agree) {
    const int B = 2, T = 9, NH = 4, NKV = 2, HD = 8, row = (NH + 2 * NKV) * HD;
    const CtAttentionOptions bi = {.bidirectional = 1, .window = 5};
    static const int32_t doc[18] = {1, 1, 1, 1, 1, 1, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 3};
    CtRng rng;
    ct_rng_seed(&rng, 8);
    const size_t n_in = (size_t)B * T * row, n_out = (size_t)B * T * NH * HD, n_att = (size_t)B * NH * T * T;
    float *qkv = ct_alloc(sizeof(float) * n_in), *dout = ct_alloc(sizeof(float) * n_out);
    ct_rng_fill_normal(&rng, qkv, n_in, 0, 1);
    ct_rng_fill_normal(&rng, dout, n_out, 0, 1);
    float *out[2], *att[2], *dqkv[2];
    for (int e = 0; e < 2; e++) {
        ct_cpu_set_attention_blas_min_seq(e ? 1000 : 1);
        out[e] = ct_alloc(sizeof(float) * n_out);
        att[e] = ct_alloc(sizeof(float) * n_att);
        dqkv[e] = ct_alloc(sizeof(float) * n_in);
        memset(dqkv[e], 0, sizeof(float) * n_in);
        OPS->attention_forward(out[e], att[e], qkv, doc, 0.25f, 77, B, T, NH, NKV, HD, &bi);
        OPS->attention_backward(dqkv[e], dout, qkv, att[e], 0.25f, 77, B, T, NH, NKV, HD, &bi);
    }
    for (size_t i = 0; i < n_out; i++) CHECK_NEAR(out[0][i], out[1][i], 1e-5);
    for (size_t i = 0; i < n_att; i++) CHECK_NEAR(att[0][i], att[1][i], 1e-6);
    for (size_t i = 0; i < n_in; i++) CHECK_NEAR(dqkv[0][i], dqkv[1][i], 1e-5);
    for (int e = 0; e < 2; e++) {
        ct_free(out[e]);
        ct_free(att[e]);
        ct_free(dqkv[e]);
    }
    ct_free(qkv);
    ct_free(dout);
}

// attention_decode does not silently run causal attention for an encoder: it refuses.
static void decode_bidirectional(void *arg) {
    (void)arg;
    const CtAttentionOptions bi = {.bidirectional = 1};
    float q[8] = {0}, k[8] = {0}, v[8] = {0}, out[8];
    OPS->attention_decode(out, q, 8, k, v, 1, 1, 1, 1, 8, &bi);
}
TEST(ops, attention_decode_refuses_bidirectional) {
    char *out = NULL;
    CHECK_EQ_INT(ct_test_fork(decode_bidirectional, NULL, &out), 1);
    CHECK_CONTAINS(out, "bidirectional");
    free(out);
}
