// Forward values of the ops against direct formulas and against each other.
#include <math.h>
#include <string.h>

#include <omp.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "kernels/cpu/bf16_weights.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/fast_math.h"
#include "kernels/ops.h"
#include "tests/test.h"

static float *random_floats(CtRng *rng, size_t n, float scale) {
    float *x = ct_alloc(n * sizeof(float));
    ct_rng_fill_normal(rng, x, n, 0, scale);
    return x;
}

TEST(ops, fast_expf_is_accurate) {
    double worst = 0;
    for (float x = -87.0f; x < 88.0f; x += 0.0137f) {
        double rel = fabs(ct_fast_expf(x) - exp((double)x)) / exp((double)x);
        if (rel > worst) worst = rel;
    }
    CHECK_MSG(worst < 3e-7, "worst relative error %.3g", worst);
    CHECK(ct_fast_expf(-1000.0f) < 1e-37f);
    CHECK(ct_fast_expf(0.0f) == 1.0f);
}

// A token of a packed sequence must see exactly what it would see if its document stood alone.
static void document_isolation(CtMatmulEngine engine) {
    ct_cpu_set_matmul_engine(engine);
    ct_cpu_set_attention_blas_min_seq(1);
    CtRng rng;
    ct_rng_seed(&rng, 11);
    const int T = 9, NH = 4, NKV = 2, HD = 8, row = (NH + 2 * NKV) * HD;
    int32_t doc[9] = {3, 3, 3, 3, 8, 8, 8, 8, 8};
    float *qkv = random_floats(&rng, (size_t)T * row, 1);
    float *out = ct_alloc(sizeof(float) * T * NH * HD), *att = ct_alloc(sizeof(float) * NH * T * T);
    ct_ops_cpu()->attention_forward(out, att, qkv, doc, 0.0f, 0, 1, T, NH, NKV, HD, NULL);
    const int start = 4, len = T - start;
    float *alone = ct_alloc(sizeof(float) * len * NH * HD), *att2 = ct_alloc(sizeof(float) * NH * len * len);
    ct_ops_cpu()->attention_forward(alone, att2, qkv + (size_t)start * row, NULL, 0.0f, 0, 1, len, NH, NKV, HD, NULL);
    for (int i = 0; i < len * NH * HD; i++) CHECK_NEAR(out[start * NH * HD + i], alone[i], 1e-6);
    // and nothing of the first document leaks into the second's probabilities
    for (int h = 0; h < NH; h++)
        for (int t = start; t < T; t++)
            for (int t2 = 0; t2 < start; t2++) CHECK(att[((size_t)h * T + t) * T + t2] == 0);
}

TEST(ops, attention_document_mask_isolates_documents) {
    document_isolation(CT_MATMUL_BLAS);
    if (!ct_test_failed()) document_isolation(CT_MATMUL_PORTABLE);
}

TEST(ops, xent_logprobs_match_log_softmax) {
    CtRng rng;
    ct_rng_seed(&rng, 12);
    const int N = 5, V = 1000;
    float *logits = random_floats(&rng, (size_t)N * V, 3);
    int32_t targets[5] = {0, 999, 17, 500, 3};
    float losses[5], logprobs[5], lse[5];
    ct_ops_cpu()->xent_forward(losses, logprobs, lse, logits, targets, NULL, NULL, N, V);
    for (int n = 0; n < N; n++) {
        double sum = 0;
        for (int v = 0; v < V; v++) sum += exp((double)logits[n * V + v]);
        double want = logits[n * V + targets[n]] - log(sum);
        CHECK_NEAR(logprobs[n], want, 2e-5);
        CHECK_NEAR(losses[n], -want, 2e-5);
    }
    // the gradient rows of the in-place backward sum to zero (softmax minus a one-hot)
    ct_ops_cpu()->xent_backward(logits, lse, targets, NULL, NULL, 1.0f, N, V, 0.0f);
    for (int n = 0; n < N; n++) {
        double s = 0;
        for (int v = 0; v < V; v++) s += logits[n * V + v];
        CHECK_NEAR(s, 0, 1e-5);
    }
}

// Gemma 2's 256000 ids: sixteen dominant logits (one in every lane of any vector width) and a tail
// of 1e-8 terms that sums to 2.6e-3 of the total. A float sum per row (or per lane) stops growing
// once it nears 1 and drops the whole tail (lse off by 1.6e-4); the kernel's float blocks summed
// in double keep it.
TEST(ops, xent_keeps_a_large_vocabularys_tail_behind_dominant_logits) {
    const int V = 256000, top = 16;
    const float tail = -18.420681f;  // exp(tail) = 1e-8
    float *logits = ct_alloc(sizeof(float) * V);
    for (int v = 0; v < V; v++) logits[v] = v < top ? 0.0f : tail;
    const double want = log(top + (V - top) * exp((double)tail));
    int32_t target = V - 1;
    float loss, logprob, lse;
    ct_ops_cpu()->xent_forward(&loss, &logprob, &lse, logits, &target, NULL, NULL, 1, V);
    CHECK_NEAR(lse, want, 2e-6);
    CHECK_NEAR(logprob, tail - want, 4e-6);
    ct_free(logits);
}

// The gated units' backward writes dgate_up (kernels/ops.h): what the buffer held before, NaN
// here, leaves no trace, and the numbers are those of a zeroed buffer.
TEST(ops, gated_unit_backward_writes_its_gradient) {
    CtRng rng;
    ct_rng_seed(&rng, 15);
    const int N = 3, F = 37;
    float *gu = random_floats(&rng, (size_t)N * 2 * F, 2), *dout = random_floats(&rng, (size_t)N * F, 1);
    float *nan_start = ct_alloc(sizeof(float) * N * 2 * F), *zero_start = ct_alloc(sizeof(float) * N * 2 * F);
    for (int geglu = 0; geglu < 2; geglu++) {
        for (int i = 0; i < N * 2 * F; i++) nan_start[i] = NAN, zero_start[i] = 0;
        void (*backward)(CtAct *, const CtAct *, const CtAct *, int, int) =
            geglu ? ct_ops_cpu()->geglu_backward : ct_ops_cpu()->swiglu_backward;
        backward(nan_start, dout, gu, N, F);
        backward(zero_start, dout, gu, N, F);
        CHECK(!memcmp(nan_start, zero_start, sizeof(float) * N * 2 * F));
    }
    ct_free(gu);
    ct_free(dout);
    ct_free(nan_start);
    ct_free(zero_start);
}

// Our portable engine and OpenBLAS agree on shapes that exercise every blocking edge.
TEST(ops, matmul_portable_matches_blas) {
    CtRng rng;
    ct_rng_seed(&rng, 13);
    const int N = 67, C = 301, OC = 261;
    float *x = random_floats(&rng, (size_t)N * C, 1), *w = random_floats(&rng, (size_t)OC * C, 1);
    float *b = random_floats(&rng, OC, 1), *g = random_floats(&rng, (size_t)N * OC, 1);
    float *out[2], *dx[2], *dw[2], *db[2];
    for (int e = 0; e < 2; e++) {
        ct_cpu_set_matmul_engine(e == 0 ? CT_MATMUL_BLAS : CT_MATMUL_PORTABLE);
        out[e] = ct_alloc(sizeof(float) * N * OC);
        dx[e] = ct_calloc((size_t)N * C, sizeof(float));
        dw[e] = ct_calloc((size_t)OC * C, sizeof(float));
        db[e] = ct_calloc(OC, sizeof(float));
        ct_ops_cpu()->matmul_forward(out[e], x, w, b, N, C, OC);
        ct_ops_cpu()->matmul_backward(dx[e], dw[e], db[e], g, x, w, N, C, OC);
    }
    for (int i = 0; i < N * OC; i++) CHECK_NEAR(out[0][i], out[1][i], 1e-3);
    for (int i = 0; i < N * C; i++) CHECK_NEAR(dx[0][i], dx[1][i], 1e-3);
    for (int i = 0; i < OC * C; i++) CHECK_NEAR(dw[0][i], dw[1][i], 1e-3);
    for (int i = 0; i < OC; i++) CHECK_NEAR(db[0][i], db[1][i], 1e-3);
}

// A product of 1 to 8 rows (decoding) takes its own path (kernels/cpu/matmul.inc: every weight
// row read once for the rows, several dot products side by side); it equals the sums in double,
// with and without a bias, on widths that are not multiples of its blocks (C 301: a tail past
// the 16 lanes; OC 262: two columns past the groups of four), and so does a product of 9 rows
// (BLAS) around it.
TEST(ops, matmul_of_few_rows_matches_double_sums) {
    CtRng rng;
    ct_rng_seed(&rng, 15);
    const int C = 301, OC = 262;
    float *x = random_floats(&rng, (size_t)9 * C, 1), *w = random_floats(&rng, (size_t)OC * C, 1);
    float *b = random_floats(&rng, OC, 1), *out = ct_alloc(sizeof(float) * 9 * OC);
    ct_cpu_set_matmul_engine(CT_MATMUL_BLAS);
    for (int N = 1; N <= 9; N++)
        for (int bias = 0; bias < 2; bias++) {
            ct_ops_cpu()->matmul_forward(out, x, w, bias ? b : NULL, N, C, OC);
            double worst = 0;
            for (int n = 0; n < N; n++)
                for (int o = 0; o < OC; o++) {
                    double want = bias ? b[o] : 0;
                    for (int c = 0; c < C; c++) want += (double)x[n * C + c] * w[(size_t)o * C + c];
                    worst = fmax(worst, fabs(out[n * OC + o] - want));
                }
            CHECK_MSG(worst < 2e-4, "%d rows%s: off by %.3g", N, bias ? ", bias" : "", worst);
        }
}

// A speculative decoder checks its drafts in one pass over a few rows, and its greedy output is
// plain greedy decoding's only if each row's logits are those of a pass over that row alone: a
// row of a product of 2 to 8 rows is the 1-row product of that row, bit for bit, on widths with
// and without a tail past whole vectors (C 301, 384) and past whole blocks of columns (OC 262).
TEST(ops, a_row_of_a_few_rows_product_does_not_depend_on_the_rows_beside_it) {
    CtRng rng;
    ct_rng_seed(&rng, 16);
    const int widths[] = {301, 384}, OC = 262;
    ct_cpu_set_matmul_engine(CT_MATMUL_BLAS);
    for (int wi = 0; wi < 2; wi++) {
        const int C = widths[wi];
        float *x = random_floats(&rng, (size_t)8 * C, 1), *w = random_floats(&rng, (size_t)OC * C, 1);
        float *b = random_floats(&rng, OC, 1), *many = ct_alloc(sizeof(float) * 8 * OC);
        float *one = ct_alloc(sizeof(float) * OC);
        for (int N = 2; N <= 8; N++)
            for (int bias = 0; bias < 2; bias++) {
                ct_ops_cpu()->matmul_forward(many, x, w, bias ? b : NULL, N, C, OC);
                int differ = 0;
                for (int n = 0; n < N; n++) {
                    ct_ops_cpu()->matmul_forward(one, x + (size_t)n * C, w, bias ? b : NULL, 1, C, OC);
                    differ += memcmp(one, many + (size_t)n * OC, sizeof(float) * OC) != 0;
                }
                CHECK_MSG(!differ, "C %d, %d rows%s: %d rows differ from their 1-row products", C, N,
                          bias ? ", bias" : "", differ);
            }
        ct_free(x);
        ct_free(w);
        ct_free(b);
        ct_free(many);
        ct_free(one);
    }
}

// On a CPU with AVX-512 the few-rows products run an explicit kernel (kernels/cpu/
// matmul_few_avx512.h) that sums in the portable loops' order: a decoder's logits do not depend
// on which of the two a build has, bit for bit.
TEST(ops, the_avx512_few_rows_kernel_computes_the_portable_loops_numbers) {
#if !defined(__AVX512F__)
    SKIP("this build has no AVX-512 kernel (the portable loops are the only few-rows path)");
#else
    CtRng rng;
    ct_rng_seed(&rng, 17);
    const int widths[] = {7, 301, 384}, OC = 262;
    ct_cpu_set_matmul_engine(CT_MATMUL_BLAS);
    for (int wi = 0; wi < 3; wi++) {
        const int C = widths[wi];
        float *x = random_floats(&rng, (size_t)8 * C, 1), *w = random_floats(&rng, (size_t)OC * C, 1);
        float *b = random_floats(&rng, OC, 1);
        float *fast = ct_alloc(sizeof(float) * 8 * OC), *portable = ct_alloc(sizeof(float) * 8 * OC);
        for (int N = 1; N <= 8; N++)
            for (int bias = 0; bias < 2; bias++) {
                ct_ops_cpu()->matmul_forward(fast, x, w, bias ? b : NULL, N, C, OC);
                ct_cpu_set_matmul_few_rows_portable_only(1);
                ct_ops_cpu()->matmul_forward(portable, x, w, bias ? b : NULL, N, C, OC);
                ct_cpu_set_matmul_few_rows_portable_only(0);
                int differ = 0;
                for (int i = 0; i < N * OC; i++) differ += fast[i] != portable[i];
                CHECK_MSG(!differ, "C %d, %d rows%s: %d of %d numbers differ", C, N, bias ? ", bias" : "", differ,
                          N * OC);
            }
        ct_free(x);
        ct_free(w);
        ct_free(b);
        ct_free(fast);
        ct_free(portable);
    }
#endif
}

// A float rounded to bf16 (nearest even) and back, in double.
static double via_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    float r;
    memcpy(&r, &u, sizeof r);
    return r;
}

// The CPU table for bf16 drafts (kernels/cpu/bf16_weights.h): a product whose weights lie in a
// declared buffer (all of it, or rows of it) reads their bf16 copy, whatever the rows (1 to 9, the
// few-rows path, and 40 and 133, a prompt's: blocks widened to fp32 for sgemm, one of them partial;
// a tail past whole vectors: C 301), with a bias or not; a weight outside gets the fp32 product
// bit for bit, as does the plain CPU table for the declared one; a forgotten buffer is fp32 again.
TEST(ops, the_bf16_weights_table_reads_the_copies_of_declared_weights_only) {
    CtRng rng;
    ct_rng_seed(&rng, 18);
    const int C = 301, OC = 150, MAX_N = 133;
    float *x = random_floats(&rng, (size_t)MAX_N * C, 1), *w = random_floats(&rng, (size_t)OC * C, 1);
    float *other = random_floats(&rng, (size_t)OC * C, 1), *b = random_floats(&rng, OC, 1);
    float *got = ct_alloc(sizeof(float) * MAX_N * OC), *want = ct_alloc(sizeof(float) * MAX_N * OC);
    const CtOps *bf16 = ct_ops_cpu_bf16_weights(), *cpu = ct_ops_cpu();
    ct_cpu_set_matmul_engine(CT_MATMUL_BLAS);
    bf16->keep_low_precision_weights(w, (size_t)OC * C, NULL);
    CHECK(ct_cpu_bf16_weights_bytes() == sizeof(uint16_t) * OC * C);
    static const int row_counts[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 40, MAX_N};
    for (size_t r = 0; r < sizeof row_counts / sizeof *row_counts; r++)
        for (int bias = 0, N = row_counts[r]; bias < 2; bias++) {
            const int rows = bias ? OC - 5 : OC;  // with a bias: rows 5.. of the declared matrix
            const float *wr = bias ? w + (size_t)5 * C : w;
            bf16->matmul_forward(got, x, wr, bias ? b : NULL, N, C, rows);
            double worst = 0, off_fp32 = 0;
            for (int n = 0; n < N; n++)
                for (int o = 0; o < rows; o++) {
                    double exact = bias ? b[o] : 0, fp32 = exact;
                    for (int c = 0; c < C; c++) {
                        exact += (double)x[n * C + c] * via_bf16(wr[(size_t)o * C + c]);
                        fp32 += (double)x[n * C + c] * wr[(size_t)o * C + c];
                    }
                    worst = fmax(worst, fabs(got[n * rows + o] - exact));
                    off_fp32 = fmax(off_fp32, fabs(got[n * rows + o] - fp32));
                }
            CHECK_MSG(worst < 2e-4, "%d rows%s: off the bf16 weights' product by %.3g", N, bias ? ", bias" : "", worst);
            CHECK_MSG(off_fp32 > 1e-3, "%d rows%s: only %.3g from the fp32 product: the copy was not read", N,
                      bias ? ", bias" : "", off_fp32);
            // the plain table, and a weight outside the declared buffer: fp32, bit for bit
            cpu->matmul_forward(want, x, wr, bias ? b : NULL, N, C, rows);
            bf16->matmul_forward(got, x, other, bias ? b : NULL, N, C, rows);
            float *fp32 = ct_alloc(sizeof(float) * MAX_N * OC);
            cpu->matmul_forward(fp32, x, other, bias ? b : NULL, N, C, rows);
            CHECK_MSG(memcmp(got, fp32, sizeof(float) * N * rows) == 0, "%d rows: an undeclared weight's product differs "
                      "from the fp32 one", N);
            ct_free(fp32);
        }
    ct_cpu_forget_bf16_weights(w);
    CHECK(ct_cpu_bf16_weights_bytes() == 0);
    bf16->matmul_forward(got, x, w, NULL, 3, C, OC);
    cpu->matmul_forward(want, x, w, NULL, 3, C, OC);
    CHECK_MSG(memcmp(got, want, sizeof(float) * 3 * OC) == 0, "a forgotten buffer's product is not fp32's");
    ct_free(x);
    ct_free(w);
    ct_free(other);
    ct_free(b);
    ct_free(got);
    ct_free(want);
}

// RoPE makes q·k depend on positions only through their difference.
TEST(ops, rope_scores_depend_on_relative_position) {
    CtRng rng;
    ct_rng_seed(&rng, 14);
    const int HD = 16;
    float *q = random_floats(&rng, HD, 1), *k = random_floats(&rng, HD, 1);
    float qa[16], ka[16], qb[16], kb[16];
    int32_t p1 = 5, p2 = 2, p3 = 105, p4 = 102;
    CtRope rope;
    ct_rope_default(&rope, 10000.0f, HD);
    ct_ops_cpu()->rope_forward(qa, q, &p1, 1, 1, 1, HD, HD, &rope);
    ct_ops_cpu()->rope_forward(ka, k, &p2, 1, 1, 1, HD, HD, &rope);
    ct_ops_cpu()->rope_forward(qb, q, &p3, 1, 1, 1, HD, HD, &rope);
    ct_ops_cpu()->rope_forward(kb, k, &p4, 1, 1, 1, HD, HD, &rope);
    double s1 = 0, s2 = 0;
    for (int i = 0; i < HD; i++) {
        s1 += qa[i] * ka[i];
        s2 += qb[i] * kb[i];
    }
    CHECK_NEAR(s1, s2, 1e-4);
}

// A batch's rotation reads its angles from a table of the positions it holds (computed once),
// a single token computes them itself: the same numbers to the bit, forward and backward, with
// the default positions and with packed documents' restarting ones, in rows wider than the heads.
TEST(ops, rope_of_a_batch_equals_rope_token_by_token) {
    CtRng rng;
    ct_rng_seed(&rng, 15);
    enum { B = 3, T = 10, NH = 3, HD = 8, STRIDE = NH * HD + 5, N = B * T };
    CtRope rope;
    ct_rope_default(&rope, 10000.0f, HD);
    float *x = random_floats(&rng, N, STRIDE), batch[N * STRIDE], one[N * STRIDE];
    int32_t packed[N];
    for (int n = 0; n < N; n++) packed[n] = n % T < 4 ? n % T : n % T - 4;  // documents of 4 and 6 tokens
    for (int with_positions = 0; with_positions < 2; with_positions++)
        for (int backward = 0; backward < 2; backward++) {
            void (*rope_op)(CtAct *, const CtAct *, const int32_t *, int, int, int, int, int, const CtRope *) =
                backward ? ct_ops_cpu()->rope_backward : ct_ops_cpu()->rope_forward;
            memcpy(batch, x, sizeof batch);
            memcpy(one, x, sizeof one);
            rope_op(batch, batch, with_positions ? packed : NULL, B, T, NH, HD, STRIDE, &rope);
            for (int n = 0; n < N; n++) {
                const int32_t pos = with_positions ? packed[n] : n % T;
                rope_op(one + n * STRIDE, one + n * STRIDE, &pos, 1, 1, NH, HD, STRIDE, &rope);
            }
            CHECK_MSG(memcmp(batch, one, sizeof batch) == 0, "positions %d backward %d: the batch differs", with_positions,
                      backward);
        }
    ct_free(x);
}

// Dropout drops a fraction p, scales the rest by 1/(1-p), draws the same mask for the same seed
// whatever the thread count, and a different one for another seed.
TEST(ops, dropout_mask_statistics_and_determinism) {
    const size_t n = 200000;
    float *x = ct_alloc(n * sizeof(float)), *a = ct_alloc(n * sizeof(float)), *b = ct_alloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = 1.0f;
    ct_ops_cpu()->dropout_forward(a, x, n, 0.25f, 7);
    size_t dropped = 0;
    for (size_t i = 0; i < n; i++) {
        if (a[i] == 0) dropped++;
        else CHECK_NEAR(a[i], 1.0 / 0.75, 1e-6);
    }
    CHECK_NEAR((double)dropped / n, 0.25, 0.005);
    omp_set_num_threads(1);
    ct_ops_cpu()->dropout_forward(b, x, n, 0.25f, 7);
    CHECK(memcmp(a, b, n * sizeof(float)) == 0);
    omp_set_num_threads(2);
    ct_ops_cpu()->dropout_forward(b, x, n, 0.25f, 8);
    size_t same = 0;
    for (size_t i = 0; i < n; i++) same += (a[i] == 0) == (b[i] == 0);
    CHECK(same < n - n / 10);  // masks of different seeds are unrelated (agree on ~62.5%)
    // backward keeps exactly the kept positions
    ct_ops_cpu()->dropout_backward(b, x, n, 0.25f, 7);
    CHECK(memcmp(a, b, n * sizeof(float)) == 0);
}

// Attention dropout: both engines draw the same mask (the index in att), so they agree, and the
// output differs from the undropped one.
TEST(ops, attention_dropout_engines_agree) {
    CtRng rng;
    ct_rng_seed(&rng, 16);
    const int B = 2, T = 70, NH = 4, NKV = 2, HD = 8, row = (NH + 2 * NKV) * HD;
    float *qkv = random_floats(&rng, (size_t)B * T * row, 1);
    size_t no = (size_t)B * T * NH * HD, na = (size_t)B * NH * T * T;
    float *o1 = ct_alloc(no * sizeof(float)), *o2 = ct_alloc(no * sizeof(float)), *o0 = ct_alloc(no * sizeof(float));
    float *att = ct_alloc(na * sizeof(float));
    ct_cpu_set_attention_blas_min_seq(1);
    ct_ops_cpu()->attention_forward(o1, att, qkv, NULL, 0.2f, 5, B, T, NH, NKV, HD, NULL);
    ct_ops_cpu()->attention_forward(o0, att, qkv, NULL, 0.0f, 5, B, T, NH, NKV, HD, NULL);
    ct_cpu_set_attention_blas_min_seq(1000);
    ct_ops_cpu()->attention_forward(o2, att, qkv, NULL, 0.2f, 5, B, T, NH, NKV, HD, NULL);
    double diff0 = 0;
    for (size_t i = 0; i < no; i++) {
        CHECK_NEAR(o1[i], o2[i], 1e-5);
        diff0 += fabs(o1[i] - o0[i]);
    }
    CHECK(diff0 > 1e-2 * no);
}

// The soft caps' tanh: small relative error near 0 (where c·tanh(x/c) ≈ x) and at saturation.
TEST(ops, fast_tanhf_precise_has_small_relative_error) {
    double worst = 0;
    for (float x = -12.0f; x < 12.0f; x += 0.000731f) {
        if (x == 0) continue;
        double rel = fabs(ct_fast_tanhf_precise(x) - tanh((double)x)) / fabs(tanh((double)x));
        if (rel > worst) worst = rel;
    }
    for (float x = 1e-30f; x < 1.0f; x *= 1.7f) {
        double rel = fabs(ct_fast_tanhf_precise(x) - tanh((double)x)) / tanh((double)x);
        if (rel > worst) worst = rel;
    }
    CHECK_MSG(worst < 4e-7, "worst relative error %.3g", worst);
    CHECK(ct_fast_tanhf_precise(100.0f) == 1.0f && ct_fast_tanhf_precise(-100.0f) == -1.0f);
}
