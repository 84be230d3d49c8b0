// The ops of the LLaMA-architecture variants (issue #22: Qwen3, Gemma): per-head RMSNorm of queries
// and keys, GeGLU, the activation scale. Backward against central finite differences in double,
// the float op table against double (gradcheck.h). Attention's options, RoPE's frequency table and
// the soft-capped cross-entropy are checked next to their plain forms in test_ops_grad.c.
#include <string.h>

#include "core/alloc.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops.h"
#include "tests/gradcheck.h"
#include "tests/test.h"

#define OPS (ct_ops_cpu())

// ---- per-head RMSNorm of q and k inside a qkv row (v copied) ----
typedef struct {
    int N, NH, NKV, HD;
    int frozen_k;  // dk_weight NULL: a frozen weight gets no gradient, the rest is unchanged
    double rstd[64];
    float rstdf[64];
} QkNormCtx;
static size_t qk_size(const QkNormCtx *c) { return (size_t)c->N * (c->NH + 2 * c->NKV) * c->HD; }
static void qk_f64(void *p, double **x, double *out) {
    QkNormCtx *c = p;
    ct_cpu_qk_norm_forward_f64(out, c->rstd, x[0], x[1], x[2], c->N, c->NH, c->NKV, c->HD, 1e-6f);
}
static void qk_b64(void *p, double **x, const double *dout, double **dx) {
    QkNormCtx *c = p;
    size_t n = qk_size(c);
    double *g = ct_alloc(n * sizeof(double));
    memcpy(g, dout, n * sizeof(double));  // in place: dinp = dout
    ct_cpu_qk_norm_backward_f64(g, dx[1], c->frozen_k ? NULL : dx[2], g, x[0], x[1], x[2], c->rstd, c->N, c->NH,
                                c->NKV, c->HD);
    for (size_t i = 0; i < n; i++) dx[0][i] += g[i];
    ct_free(g);
}
static void qk_f32(void *p, float **x, float *out) {
    QkNormCtx *c = p;
    OPS->qk_norm_forward(out, c->rstdf, x[0], x[1], x[2], c->N, c->NH, c->NKV, c->HD, 1e-6f);
}
static void qk_b32(void *p, float **x, const float *dout, float **dx) {
    QkNormCtx *c = p;
    size_t n = qk_size(c);
    float *g = ct_alloc(n * sizeof(float));  // not in place here: dinp != dout
    OPS->qk_norm_backward(g, dx[1], c->frozen_k ? NULL : dx[2], dout, x[0], x[1], x[2], c->rstdf, c->N, c->NH,
                          c->NKV, c->HD);
    for (size_t i = 0; i < n; i++) dx[0][i] += g[i];
    ct_free(g);
}

static void qk_norm_case(const char *label, int NH, int NKV, int frozen_k) {
    CtRng rng;
    ct_rng_seed(&rng, 21);
    QkNormCtx q = {.N = 5, .NH = NH, .NKV = NKV, .HD = 6, .frozen_k = frozen_k};
    size_t n = qk_size(&q);
    GradCase c = {.label = label, .n_inputs = 3,
                  .x = {gc_random(&rng, n, 2), gc_random(&rng, (size_t)q.HD, 1), gc_random(&rng, (size_t)q.HD, 1)},
                  .n = {n, (size_t)q.HD, (size_t)q.HD}, .n_out = n, .ctx = &q,
                  .forward64 = qk_f64, .backward64 = qk_b64, .forward32 = qk_f32, .backward32 = qk_b32};
    CHECK_GRADS(c);
}

TEST(ops, qk_norm_gradient_gqa) { qk_norm_case("qk_norm GQA 4/2", 4, 2, 0); }
TEST(ops, qk_norm_gradient_mha) { qk_norm_case("qk_norm MHA 3/3", 3, 3, 0); }
TEST(ops, qk_norm_gradient_frozen_k_weight) {
    // dk_weight NULL: the harness's dk stays 0 where it should be the gradient, so the check
    // must see a difference there, and nothing else changes
    CtRng rng;
    ct_rng_seed(&rng, 22);
    QkNormCtx q = {.N = 3, .NH = 2, .NKV = 1, .HD = 4, .frozen_k = 1};
    size_t n = qk_size(&q);
    double *x = gc_random(&rng, n, 1), *w = gc_random(&rng, 4, 1), *dout = gc_random(&rng, n, 1);
    double *out = ct_alloc(n * sizeof(double)), *dx = ct_calloc(n, sizeof(double)), *dx2 = ct_calloc(n, sizeof(double));
    double dq[4] = {0}, dq2[4] = {0}, dk2[4] = {0};
    ct_cpu_qk_norm_forward_f64(out, q.rstd, x, w, w, q.N, q.NH, q.NKV, q.HD, 1e-6f);
    ct_cpu_qk_norm_backward_f64(dx, dq, NULL, dout, x, w, w, q.rstd, q.N, q.NH, q.NKV, q.HD);
    ct_cpu_qk_norm_backward_f64(dx2, dq2, dk2, dout, x, w, w, q.rstd, q.N, q.NH, q.NKV, q.HD);
    CHECK(gc_max_rel_error(dx, dx2, n) == 0);
    CHECK(gc_max_rel_error(dq, dq2, 4) == 0);
    CHECK(dk2[0] != 0 || dk2[1] != 0);
    ct_free(x), ct_free(w), ct_free(dout), ct_free(out), ct_free(dx), ct_free(dx2);
}

// ---- GeGLU: gelu(gate)·up ----
typedef struct {
    int N, F;
} GluCtx;
static void geglu_f64(void *p, double **x, double *out) {
    GluCtx *c = p;
    ct_cpu_geglu_forward_f64(out, x[0], c->N, c->F);
}
static void geglu_b64(void *p, double **x, const double *dout, double **dx) {
    GluCtx *c = p;
    ct_cpu_geglu_backward_f64(dx[0], dout, x[0], c->N, c->F);
}
static void geglu_f32(void *p, float **x, float *out) {
    GluCtx *c = p;
    OPS->geglu_forward(out, x[0], c->N, c->F);
}
static void geglu_b32(void *p, float **x, const float *dout, float **dx) {
    GluCtx *c = p;
    OPS->geglu_backward(dx[0], dout, x[0], c->N, c->F);
}

TEST(ops, geglu_gradient) {
    CtRng rng;
    ct_rng_seed(&rng, 23);
    GluCtx g = {.N = 5, .F = 11};
    GradCase c = {.label = "geglu", .n_inputs = 1, .x = {gc_random(&rng, 110, 2)}, .n = {110}, .n_out = 55, .ctx = &g,
                  .forward64 = geglu_f64, .backward64 = geglu_b64, .forward32 = geglu_f32, .backward32 = geglu_b32};
    CHECK_GRADS(c);
}

// ---- the activation scale (Gemma's √C embedding scale): forward and backward are one op ----
typedef struct {
    size_t n;
    float s;
} ScaleCtx;
static void scale_f64(void *p, double **x, double *out) {
    ScaleCtx *c = p;
    memcpy(out, x[0], c->n * sizeof(double));
    ct_cpu_act_scale_f64(out, c->n, c->s);
}
static void scale_b64(void *p, double **x, const double *dout, double **dx) {
    ScaleCtx *c = p;
    double *g = ct_alloc(c->n * sizeof(double));
    memcpy(g, dout, c->n * sizeof(double));
    ct_cpu_act_scale_f64(g, c->n, c->s);
    for (size_t i = 0; i < c->n; i++) dx[0][i] += g[i];
    ct_free(g);
}
static void scale_f32(void *p, float **x, float *out) {
    ScaleCtx *c = p;
    memcpy(out, x[0], c->n * sizeof(float));
    OPS->act_scale(out, c->n, c->s);
}
static void scale_b32(void *p, float **x, const float *dout, float **dx) {
    ScaleCtx *c = p;
    float *g = ct_alloc(c->n * sizeof(float));
    memcpy(g, dout, c->n * sizeof(float));
    OPS->act_scale(g, c->n, c->s);
    for (size_t i = 0; i < c->n; i++) dx[0][i] += g[i];
    ct_free(g);
}

TEST(ops, act_scale_gradient) {
    CtRng rng;
    ct_rng_seed(&rng, 24);
    ScaleCtx s = {.n = 77, .s = 5.65685424949238f};  // √32
    GradCase c = {.label = "act_scale", .n_inputs = 1, .x = {gc_random(&rng, 77, 1)}, .n = {77}, .n_out = 77, .ctx = &s,
                  .forward64 = scale_f64, .backward64 = scale_b64, .forward32 = scale_f32, .backward32 = scale_b32};
    CHECK_GRADS(c);
}
