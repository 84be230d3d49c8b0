// Every op of kernels/ops.h: backward against central finite differences in double (relative
// error < 1e-6), and the float op table against the double results (< 1e-3). See gradcheck.h.
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops.h"
#include "tests/attention_gradcheck.h"
#include "tests/gradcheck.h"
#include "tests/test.h"

#define OPS (ct_ops_cpu())

// ---- embedding: token table plus learned positions ----
typedef struct {
    int N, C;
    int32_t ids[16], pos[16];
} EmbedCtx;
static void embed_f64(void *p, double **x, double *out) {
    EmbedCtx *e = p;
    ct_cpu_embedding_forward_f64(out, e->ids, x[0], e->N, e->C, 0);
    ct_cpu_embedding_forward_f64(out, e->pos, x[1], e->N, e->C, 1);
}
static void embed_b64(void *p, double **x, const double *dout, double **dx) {
    EmbedCtx *e = p;
    ct_cpu_embedding_backward_f64(dx[0], dout, e->ids, e->N, e->C);
    ct_cpu_embedding_backward_f64(dx[1], dout, e->pos, e->N, e->C);
}
static void embed_f32(void *p, float **x, float *out) {
    EmbedCtx *e = p;
    OPS->embedding_forward(out, e->ids, x[0], e->N, e->C, 0);
    OPS->embedding_forward(out, e->pos, x[1], e->N, e->C, 1);
}
static void embed_b32(void *p, float **x, const float *dout, float **dx) {
    EmbedCtx *e = p;
    OPS->embedding_backward(dx[0], dout, e->ids, e->N, e->C);
    OPS->embedding_backward(dx[1], dout, e->pos, e->N, e->C);
}

TEST(ops, embedding_gradient) {
    CtRng rng;
    ct_rng_seed(&rng, 1);
    EmbedCtx e = {.N = 12, .C = 7};
    int V = 5, T = 6;
    for (int n = 0; n < e.N; n++) {
        e.ids[n] = (int32_t)ct_rng_below(&rng, (uint32_t)V);  // repeated tokens on purpose
        e.pos[n] = n % T;
    }
    GradCase c = {.label = "embedding", .n_inputs = 2, .x = {gc_random(&rng, (size_t)V * e.C, 1), gc_random(&rng, (size_t)T * e.C, 1)},
                  .n = {(size_t)V * e.C, (size_t)T * e.C}, .n_out = (size_t)e.N * e.C, .ctx = &e,
                  .forward64 = embed_f64, .backward64 = embed_b64, .forward32 = embed_f32, .backward32 = embed_b32};
    CHECK_GRADS(c);
}

// ---- LayerNorm / RMSNorm ----
typedef struct {
    int N, C;
    double mean[64], rstd[64];
    float meanf[64], rstdf[64];
} NormCtx;
static void ln_f64(void *p, double **x, double *out) {
    NormCtx *c = p;
    ct_cpu_layernorm_forward_f64(out, c->mean, c->rstd, x[0], x[1], x[2], c->N, c->C, 1e-5f);
}
static void ln_b64(void *p, double **x, const double *dout, double **dx) {
    NormCtx *c = p;
    ct_cpu_layernorm_backward_f64(dx[0], dx[1], dx[2], dout, x[0], x[1], c->mean, c->rstd, c->N, c->C);
}
static void ln_f32(void *p, float **x, float *out) {
    NormCtx *c = p;
    OPS->layernorm_forward(out, c->meanf, c->rstdf, x[0], x[1], x[2], c->N, c->C, 1e-5f);
}
static void ln_b32(void *p, float **x, const float *dout, float **dx) {
    NormCtx *c = p;
    OPS->layernorm_backward(dx[0], dx[1], dx[2], dout, x[0], x[1], c->meanf, c->rstdf, c->N, c->C);
}
static void rms_f64(void *p, double **x, double *out) {
    NormCtx *c = p;
    ct_cpu_rmsnorm_forward_f64(out, c->rstd, x[0], x[1], c->N, c->C, 1e-5f);
}
static void rms_b64(void *p, double **x, const double *dout, double **dx) {
    NormCtx *c = p;
    ct_cpu_rmsnorm_backward_f64(dx[0], dx[1], dout, x[0], x[1], c->rstd, c->N, c->C);
}
static void rms_f32(void *p, float **x, float *out) {
    NormCtx *c = p;
    OPS->rmsnorm_forward(out, c->rstdf, x[0], x[1], c->N, c->C, 1e-5f);
}
static void rms_b32(void *p, float **x, const float *dout, float **dx) {
    NormCtx *c = p;
    OPS->rmsnorm_backward(dx[0], dx[1], dout, x[0], x[1], c->rstdf, c->N, c->C);
}

TEST(ops, layernorm_gradient) {
    CtRng rng;
    ct_rng_seed(&rng, 2);
    NormCtx n = {.N = 6, .C = 19};
    GradCase c = {.label = "layernorm", .n_inputs = 3,
                  .x = {gc_random(&rng, (size_t)n.N * n.C, 2), gc_random(&rng, (size_t)n.C, 1), gc_random(&rng, (size_t)n.C, 1)},
                  .n = {(size_t)n.N * n.C, (size_t)n.C, (size_t)n.C}, .n_out = (size_t)n.N * n.C, .ctx = &n,
                  .forward64 = ln_f64, .backward64 = ln_b64, .forward32 = ln_f32, .backward32 = ln_b32};
    CHECK_GRADS(c);
}

TEST(ops, rmsnorm_gradient) {
    CtRng rng;
    ct_rng_seed(&rng, 3);
    NormCtx n = {.N = 6, .C = 19};
    GradCase c = {.label = "rmsnorm", .n_inputs = 2,
                  .x = {gc_random(&rng, (size_t)n.N * n.C, 2), gc_random(&rng, (size_t)n.C, 1)},
                  .n = {(size_t)n.N * n.C, (size_t)n.C}, .n_out = (size_t)n.N * n.C, .ctx = &n,
                  .forward64 = rms_f64, .backward64 = rms_b64, .forward32 = rms_f32, .backward32 = rms_b32};
    CHECK_GRADS(c);
}

// ---- matmul with and without bias, both engines ----
typedef struct {
    int N, C, OC, bias;
} MatCtx;
static void mm_f64(void *p, double **x, double *out) {
    MatCtx *m = p;
    ct_cpu_matmul_forward_f64(out, x[0], x[1], m->bias ? x[2] : NULL, m->N, m->C, m->OC);
}
static void mm_b64(void *p, double **x, const double *dout, double **dx) {
    MatCtx *m = p;
    ct_cpu_matmul_backward_f64(dx[0], dx[1], m->bias ? dx[2] : NULL, dout, x[0], x[1], m->N, m->C, m->OC);
}
static void mm_f32(void *p, float **x, float *out) {
    MatCtx *m = p;
    OPS->matmul_forward(out, x[0], x[1], m->bias ? x[2] : NULL, m->N, m->C, m->OC);
}
static void mm_b32(void *p, float **x, const float *dout, float **dx) {
    MatCtx *m = p;
    OPS->matmul_backward(dx[0], dx[1], m->bias ? dx[2] : NULL, dout, x[0], x[1], m->N, m->C, m->OC);
}

static void matmul_case(CtMatmulEngine engine, int bias) {
    ct_cpu_set_matmul_engine(engine);
    CtRng rng;
    ct_rng_seed(&rng, 4);
    MatCtx m = {.N = 7, .C = 13, .OC = 9, .bias = bias};
    GradCase c = {.label = engine == CT_MATMUL_BLAS ? "matmul (blas)" : "matmul (portable)", .n_inputs = bias ? 3 : 2,
                  .x = {gc_random(&rng, (size_t)m.N * m.C, 1), gc_random(&rng, (size_t)m.OC * m.C, 1), gc_random(&rng, (size_t)m.OC, 1)},
                  .n = {(size_t)m.N * m.C, (size_t)m.OC * m.C, (size_t)m.OC}, .n_out = (size_t)m.N * m.OC, .ctx = &m,
                  .forward64 = mm_f64, .backward64 = mm_b64, .forward32 = mm_f32, .backward32 = mm_b32};
    CHECK_GRADS(c);
}

TEST(ops, matmul_gradient_blas) {
    matmul_case(CT_MATMUL_BLAS, 1);
    if (!ct_test_failed()) matmul_case(CT_MATMUL_BLAS, 0);
}
TEST(ops, matmul_gradient_portable) {
    matmul_case(CT_MATMUL_PORTABLE, 1);
    if (!ct_test_failed()) matmul_case(CT_MATMUL_PORTABLE, 0);
}

// ---- attention: multi-head, grouped-query, document masks ----

// blas_min_seq 1 makes the BLAS engine run even at these short lengths.
static void attention_case_with(const char *label, int NH, int NKV, int with_docs, int blas_min_seq, float dropout,
                                const CtAttentionOptions *opt) {
    ct_cpu_set_attention_blas_min_seq(blas_min_seq);
    CtRng rng;
    ct_rng_seed(&rng, 5);
    AttentionGradCtx a = {.B = 2, .T = 7, .NH = NH, .NKV = NKV, .HD = 4, .p = dropout, .seed = 4242, .opt = opt};
    int32_t doc[14] = {0, 0, 0, 1, 1, 2, 2, 5, 5, 5, 5, 6, 6, 6};  // documents packed in each row
    a.doc = with_docs ? doc : NULL;
    a.att = ct_alloc(sizeof(double) * a.B * NH * a.T * a.T);
    a.attf = ct_alloc(sizeof(float) * a.B * NH * a.T * a.T);
    size_t n_in = (size_t)a.B * a.T * (NH + 2 * NKV) * a.HD;
    GradCase c = {.label = label, .n_inputs = 1, .x = {gc_random(&rng, n_in, 1)}, .n = {n_in},
                  .n_out = (size_t)a.B * a.T * NH * a.HD, .ctx = &a,
                  .forward64 = attention_grad_f64, .backward64 = attention_grad_b64, .forward32 = attention_grad_f32,
                  .backward32 = attention_grad_b32};
    CHECK_GRADS(c);
}

static void attention_case_at(const char *label, int NH, int NKV, int with_docs, int blas_min_seq, float dropout) {
    attention_case_with(label, NH, NKV, with_docs, blas_min_seq, dropout, NULL);
}

static void attention_case(const char *label, int NH, int NKV, int with_docs) {
    attention_case_at(label, NH, NKV, with_docs, 1, 0);
}

TEST(ops, attention_gradient_mha) { attention_case("attention MHA", 3, 3, 0); }
TEST(ops, attention_gradient_portable_engine) {
    ct_cpu_set_matmul_engine(CT_MATMUL_PORTABLE);  // the loop engine: GQA with documents
    attention_case("attention loops, GQA + documents", 4, 2, 1);
}
TEST(ops, attention_gradient_short_sequences_use_loops) {
    // the default: BLAS products, but loop attention below 64 positions
    attention_case_at("attention default path, GQA + documents", 4, 2, 1, 64, 0);
}
TEST(ops, attention_gradient_dropout_blas) {
    attention_case_at("attention BLAS, GQA + documents + dropout", 4, 2, 1, 1, 0.3f);
}
TEST(ops, attention_gradient_dropout_loops) {
    attention_case_at("attention loops, GQA + documents + dropout", 4, 2, 1, 64, 0.3f);
}
TEST(ops, attention_gradient_gqa) { attention_case("attention GQA 4/2", 4, 2, 0); }
TEST(ops, attention_gradient_mqa) { attention_case("attention MQA 3/1", 3, 1, 0); }
TEST(ops, attention_gradient_doc_mask) { attention_case("attention GQA + documents", 4, 2, 1); }

// The options of issue #22: a sliding window (3 of the 7 positions), Gemma 2's soft cap of the
// scores (small, so that tanh bends them) and a query scale other than 1/√HD; each alone and all
// together with documents and dropout, on both engines (blas_min_seq 1: BLAS, 64: loops).
static void attention_options_cases(int blas_min_seq) {
    const CtAttentionOptions window = {.window = 3}, cap = {.softcap = 1.5f}, scale = {.scale = 0.8f};
    const CtAttentionOptions all = {.scale = 0.7f, .softcap = 2.0f, .window = 2};
    attention_case_with("attention, sliding window", 4, 2, 0, blas_min_seq, 0, &window);
    attention_case_with("attention, soft cap", 4, 2, 0, blas_min_seq, 0, &cap);
    attention_case_with("attention, query scale", 3, 3, 0, blas_min_seq, 0, &scale);
    attention_case_with("attention, window + cap + scale + documents + dropout", 4, 2, 1, blas_min_seq, 0.3f, &all);
}
TEST(ops, attention_gradient_options_blas) { attention_options_cases(1); }
TEST(ops, attention_gradient_options_loops) { attention_options_cases(64); }

// ---- RoPE, applied in place to the q and k heads of a qkv row (v is left alone) ----
typedef struct {
    int B, T, n_heads, HD, row;
    int32_t *pos;
    CtRope rope;
} RopeCtx;
static void rope_f64(void *p, double **x, double *out) {
    RopeCtx *r = p;
    memcpy(out, x[0], sizeof(double) * r->B * r->T * r->row);
    ct_cpu_rope_forward_f64(out, out, r->pos, r->B, r->T, r->n_heads, r->HD, r->row, &r->rope);
}
static void rope_b64(void *p, double **x, const double *dout, double **dx) {
    RopeCtx *r = p;
    size_t n = (size_t)r->B * r->T * r->row;
    double *g = ct_alloc(n * sizeof(double));
    memcpy(g, dout, n * sizeof(double));
    ct_cpu_rope_backward_f64(g, g, r->pos, r->B, r->T, r->n_heads, r->HD, r->row, &r->rope);
    for (size_t i = 0; i < n; i++) dx[0][i] += g[i];
    ct_free(g);
}
static void rope_f32(void *p, float **x, float *out) {
    RopeCtx *r = p;
    memcpy(out, x[0], sizeof(float) * r->B * r->T * r->row);
    OPS->rope_forward(out, out, r->pos, r->B, r->T, r->n_heads, r->HD, r->row, &r->rope);
}
static void rope_b32(void *p, float **x, const float *dout, float **dx) {
    RopeCtx *r = p;
    size_t n = (size_t)r->B * r->T * r->row;
    float *g = ct_alloc(n * sizeof(float));
    memcpy(g, dout, n * sizeof(float));
    OPS->rope_backward(g, g, r->pos, r->B, r->T, r->n_heads, r->HD, r->row, &r->rope);
    for (size_t i = 0; i < n; i++) dx[0][i] += g[i];
    ct_free(g);
}

TEST(ops, rope_gradient) {
    CtRng rng;
    ct_rng_seed(&rng, 6);
    int32_t pos[10] = {0, 1, 2, 0, 1, 7, 8, 9, 10, 0};  // positions restart at document starts
    RopeCtx r = {.B = 2, .T = 5, .n_heads = 3, .HD = 8, .row = 4 * 8, .pos = pos};
    ct_rope_default(&r.rope, 10000.0f, r.HD);
    size_t n = (size_t)r.B * r.T * r.row;
    GradCase c = {.label = "rope", .n_inputs = 1, .x = {gc_random(&rng, n, 1)}, .n = {n}, .n_out = n, .ctx = &r,
                  .forward64 = rope_f64, .backward64 = rope_b64, .forward32 = rope_f32, .backward32 = rope_b32};
    CHECK_GRADS(c);
    r.pos = NULL;
    c.label = "rope (positions = t)";
    CHECK_GRADS(c);
    // a scaled table, as rope_scaling fills it: its own frequencies and YaRN's attention factor
    for (int i = 0; i < r.HD / 2; i++) r.rope.inv_freq[i] = 0.9f / (float)(1 + 3 * i);
    r.rope.attention_factor = 1.25f;
    r.pos = pos;
    c.label = "rope (frequency table, attention factor)";
    CHECK_GRADS(c);
}

// ---- GELU, SwiGLU, residual ----
typedef struct {
    int N, F;
} PwCtx;
static void gelu_f64(void *p, double **x, double *out) { ct_cpu_gelu_forward_f64(out, x[0], (size_t)((PwCtx *)p)->N); }
static void gelu_b64(void *p, double **x, const double *dout, double **dx) {
    ct_cpu_gelu_backward_f64(dx[0], x[0], dout, (size_t)((PwCtx *)p)->N);
}
static void gelu_f32(void *p, float **x, float *out) { OPS->gelu_forward(out, x[0], (size_t)((PwCtx *)p)->N); }
static void gelu_b32(void *p, float **x, const float *dout, float **dx) {
    OPS->gelu_backward(dx[0], x[0], dout, (size_t)((PwCtx *)p)->N);
}
static void swiglu_f64(void *p, double **x, double *out) {
    PwCtx *c = p;
    ct_cpu_swiglu_forward_f64(out, x[0], c->N, c->F);
}
static void swiglu_b64(void *p, double **x, const double *dout, double **dx) {
    PwCtx *c = p;
    ct_cpu_swiglu_backward_f64(dx[0], dout, x[0], c->N, c->F);
}
static void swiglu_f32(void *p, float **x, float *out) {
    PwCtx *c = p;
    OPS->swiglu_forward(out, x[0], c->N, c->F);
}
static void swiglu_b32(void *p, float **x, const float *dout, float **dx) {
    PwCtx *c = p;
    OPS->swiglu_backward(dx[0], dout, x[0], c->N, c->F);
}
static void res_f64(void *p, double **x, double *out) { ct_cpu_residual_forward_f64(out, x[0], x[1], (size_t)((PwCtx *)p)->N); }
// The residual add has no backward op: the gradient of a + b is dout for both, which the model
// relies on (it passes the residual stream's gradient on as it is). The check holds it to that.
static void res_b64(void *p, double **x, const double *dout, double **dx) {
    for (int i = 0; i < ((PwCtx *)p)->N; i++) dx[0][i] += dout[i], dx[1][i] += dout[i];
}
static void res_f32(void *p, float **x, float *out) { OPS->residual_forward(out, x[0], x[1], (size_t)((PwCtx *)p)->N); }
static void res_b32(void *p, float **x, const float *dout, float **dx) {
    for (int i = 0; i < ((PwCtx *)p)->N; i++) dx[0][i] += dout[i], dx[1][i] += dout[i];
}

TEST(ops, gelu_gradient) {
    CtRng rng;
    ct_rng_seed(&rng, 7);
    PwCtx p = {.N = 200};
    GradCase c = {.label = "gelu", .n_inputs = 1, .x = {gc_random(&rng, 200, 3)}, .n = {200}, .n_out = 200, .ctx = &p,
                  .forward64 = gelu_f64, .backward64 = gelu_b64, .forward32 = gelu_f32, .backward32 = gelu_b32};
    CHECK_GRADS(c);
}

TEST(ops, swiglu_gradient) {
    CtRng rng;
    ct_rng_seed(&rng, 8);
    PwCtx p = {.N = 5, .F = 11};
    GradCase c = {.label = "swiglu", .n_inputs = 1, .x = {gc_random(&rng, 110, 3)}, .n = {110}, .n_out = 55, .ctx = &p,
                  .forward64 = swiglu_f64, .backward64 = swiglu_b64, .forward32 = swiglu_f32, .backward32 = swiglu_b32};
    CHECK_GRADS(c);
}

TEST(ops, residual_gradient) {
    CtRng rng;
    ct_rng_seed(&rng, 9);
    PwCtx p = {.N = 33};
    GradCase c = {.label = "residual", .n_inputs = 2, .x = {gc_random(&rng, 33, 1), gc_random(&rng, 33, 1)}, .n = {33, 33},
                  .n_out = 33, .ctx = &p,
                  .forward64 = res_f64, .backward64 = res_b64, .forward32 = res_f32, .backward32 = res_b32};
    CHECK_GRADS(c);
}

// ---- fused softmax + cross-entropy with loss mask, weights and an ignored target ----
typedef struct {
    int N, V;
    int32_t targets[8];
    uint8_t mask[8];
    float weights[8];
    float scale, softcap;
    int fused;  // backward through xent_forward_backward (which computes the forward again) instead
    double losses[8], logprobs[8], lse[8];
    float lossesf[8], logprobsf[8], lsef[8];
} XentCtx;
static void xent_f64(void *p, double **x, double *out) {
    XentCtx *c = p;
    const double *logits = x[0];
    double *capped = NULL;  // with a cap, the loss is over softcap_forward's output
    if (c->softcap > 0) {
        capped = ct_alloc(sizeof(double) * c->N * c->V);
        memcpy(capped, x[0], sizeof(double) * c->N * c->V);
        ct_cpu_softcap_forward_f64(capped, (size_t)c->N * c->V, c->softcap);
        logits = capped;
    }
    ct_cpu_xent_forward_f64(c->losses, c->logprobs, c->lse, logits, c->targets, c->mask, c->weights, c->N, c->V);
    ct_free(capped);
    out[0] = 0;
    for (int n = 0; n < c->N; n++) out[0] += c->scale * c->losses[n];
}
static void xent_b64(void *p, double **x, const double *dout, double **dx) {
    XentCtx *c = p;
    size_t n = (size_t)c->N * c->V;
    double *g = ct_alloc(n * sizeof(double));
    memcpy(g, x[0], n * sizeof(double));
    if (c->softcap > 0) ct_cpu_softcap_forward_f64(g, n, c->softcap);
    if (c->fused)
        ct_cpu_xent_forward_backward_f64(c->losses, c->logprobs, c->lse, g, c->targets, c->mask, c->weights,
                                         c->scale * (float)dout[0], c->N, c->V, c->softcap);
    else
        ct_cpu_xent_backward_f64(g, c->lse, c->targets, c->mask, c->weights, c->scale * (float)dout[0], c->N, c->V,
                                 c->softcap);
    for (size_t i = 0; i < n; i++) dx[0][i] += g[i];
    ct_free(g);
}
static void xent_f32(void *p, float **x, float *out) {
    XentCtx *c = p;
    const float *logits = x[0];
    float *capped = NULL;
    if (c->softcap > 0) {
        capped = ct_alloc(sizeof(float) * c->N * c->V);
        memcpy(capped, x[0], sizeof(float) * c->N * c->V);
        OPS->softcap_forward(capped, (size_t)c->N * c->V, c->softcap);
        logits = capped;
    }
    OPS->xent_forward(c->lossesf, c->logprobsf, c->lsef, logits, c->targets, c->mask, c->weights, c->N, c->V);
    ct_free(capped);
    out[0] = 0;
    for (int n = 0; n < c->N; n++) out[0] += c->scale * c->lossesf[n];
}
static void xent_b32(void *p, float **x, const float *dout, float **dx) {
    XentCtx *c = p;
    size_t n = (size_t)c->N * c->V;
    float *g = ct_alloc(n * sizeof(float));
    memcpy(g, x[0], n * sizeof(float));
    if (c->softcap > 0) OPS->softcap_forward(g, n, c->softcap);
    if (c->fused)
        OPS->xent_forward_backward(c->lossesf, c->logprobsf, c->lsef, g, c->targets, c->mask, c->weights,
                                   c->scale * dout[0], c->N, c->V, c->softcap);
    else
        OPS->xent_backward(g, c->lsef, c->targets, c->mask, c->weights, c->scale * dout[0], c->N, c->V, c->softcap);
    for (size_t i = 0; i < n; i++) dx[0][i] += g[i];
    ct_free(g);
}

static XentCtx xent_setup(CtRng *rng) {
    XentCtx c = {.N = 6, .V = 23, .scale = 1.0f / 4};
    for (int n = 0; n < c.N; n++) {
        c.targets[n] = (int32_t)ct_rng_below(rng, (uint32_t)c.V);
        c.mask[n] = 1;
        c.weights[n] = 0.5f + (float)ct_rng_uniform(rng);
    }
    c.mask[1] = 0;          // a prompt token: no loss
    c.targets[3] = -1;      // an ignored position
    c.weights[4] = -0.75f;  // a DPO-style signed weight
    // the float forward only has to match at the 1e-4 level; keep the double error check honest
    // by using floats that are exactly representable in the weights
    return c;
}

TEST(ops, xent_gradient_with_mask_and_weights) {
    CtRng rng;
    ct_rng_seed(&rng, 10);
    XentCtx x = xent_setup(&rng);
    size_t n = (size_t)x.N * x.V;
    GradCase c = {.label = "softmax+cross-entropy", .n_inputs = 1, .x = {gc_random(&rng, n, 2)}, .n = {n}, .n_out = 1,
                  .ctx = &x, .forward64 = xent_f64, .backward64 = xent_b64, .forward32 = xent_f32, .backward32 = xent_b32};
    CHECK_GRADS(c);
}

// Gemma 2's final soft cap (softcap_forward after the head) and its backward inside xent_backward:
// the cap of 3 bends logits of scale 2 well into tanh's curve.
TEST(ops, xent_gradient_through_softcap) {
    CtRng rng;
    ct_rng_seed(&rng, 11);
    XentCtx x = xent_setup(&rng);
    x.softcap = 3.0f;
    size_t n = (size_t)x.N * x.V;
    GradCase c = {.label = "soft cap + softmax + cross-entropy", .n_inputs = 1, .x = {gc_random(&rng, n, 2)}, .n = {n},
                  .n_out = 1, .ctx = &x, .forward64 = xent_f64, .backward64 = xent_b64, .forward32 = xent_f32,
                  .backward32 = xent_b32};
    CHECK_GRADS(c);
}

// The fused op of a training step (xent_forward_backward): its gradient, uncapped and capped.
TEST(ops, xent_forward_backward_gradient) {
    for (int capped = 0; capped < 2; capped++) {
        CtRng rng;
        ct_rng_seed(&rng, 12 + (uint64_t)capped);
        XentCtx x = xent_setup(&rng);
        x.fused = 1;
        x.softcap = capped ? 3.0f : 0.0f;
        size_t n = (size_t)x.N * x.V;
        GradCase c = {.label = capped ? "fused cross-entropy, capped" : "fused cross-entropy", .n_inputs = 1,
                      .x = {gc_random(&rng, n, 2)}, .n = {n}, .n_out = 1, .ctx = &x, .forward64 = xent_f64,
                      .backward64 = xent_b64, .forward32 = xent_f32, .backward32 = xent_b32};
        CHECK_GRADS(c);
    }
}

// ... and its numbers are the two ops' (the per-row values to the bit: the same sums; the gradient
// within float rounding: softmax·k as exp(x - max)·(k/Σ) instead of k·exp(x - lse), whose float lse
// is off by up to half an ulp of |lse|, relatively as much in the exp), on rows of a
// vocabulary wide enough for whole blocks and a tail, with every kind of row weight.
TEST(ops, xent_forward_backward_equals_forward_then_backward) {
    const int N = 8, V = 1000;
    for (int capped = 0; capped < 2; capped++) {
        CtRng rng;
        ct_rng_seed(&rng, 14);
        XentCtx c = xent_setup(&rng);
        c.N = N;
        c.softcap = capped ? 30.0f : 0.0f;
        const size_t n = (size_t)N * V;
        float *two = ct_alloc(n * sizeof(float)), *one = ct_alloc(n * sizeof(float));
        ct_rng_fill_normal(&rng, two, n, 0, 4);
        if (capped) OPS->softcap_forward(two, n, c.softcap);
        memcpy(one, two, n * sizeof(float));
        float losses[8], logprobs[8], lse[8];
        OPS->xent_forward(c.lossesf, c.logprobsf, c.lsef, two, c.targets, c.mask, c.weights, N, V);
        OPS->xent_backward(two, c.lsef, c.targets, c.mask, c.weights, c.scale, N, V, c.softcap);
        OPS->xent_forward_backward(losses, logprobs, lse, one, c.targets, c.mask, c.weights, c.scale, N, V, c.softcap);
        for (int r = 0; r < N; r++) {
            CHECK(losses[r] == c.lossesf[r] && logprobs[r] == c.logprobsf[r] && lse[r] == c.lsef[r]);
            for (int v = 0; v < V; v++) {
                const float a = one[(size_t)r * V + v], b = two[(size_t)r * V + v];
                CHECK_MSG(fabsf(a - b) <= 4e-7f * (1 + fabsf(lse[r])) * fabsf(b) + 1e-12f, "row %d id %d: fused %.9g, two ops %.9g", r, v, a,
                          b);
                if (ct_test_failed()) return;
            }
        }
        ct_free(two);
        ct_free(one);
    }
}

// ---- dropout (a fixed mask for a fixed seed: a linear map to check like any other) ----
typedef struct {
    size_t n;
    float p;
    uint64_t seed;
} DropCtx;
static void drop_f64(void *c, double **x, double *out) {
    DropCtx *d = c;
    ct_cpu_dropout_forward_f64(out, x[0], d->n, d->p, d->seed);
}
static void drop_b64(void *c, double **x, const double *dout, double **dx) {
    DropCtx *d = c;
    double *g = ct_alloc(d->n * sizeof(double));
    ct_cpu_dropout_backward_f64(g, dout, d->n, d->p, d->seed);
    for (size_t i = 0; i < d->n; i++) dx[0][i] += g[i];
    ct_free(g);
}
static void drop_f32(void *c, float **x, float *out) {
    DropCtx *d = c;
    OPS->dropout_forward(out, x[0], d->n, d->p, d->seed);
}
static void drop_b32(void *c, float **x, const float *dout, float **dx) {
    DropCtx *d = c;
    float *g = ct_alloc(d->n * sizeof(float));
    OPS->dropout_backward(g, dout, d->n, d->p, d->seed);
    for (size_t i = 0; i < d->n; i++) dx[0][i] += g[i];
    ct_free(g);
}

TEST(ops, dropout_gradient) {
    CtRng rng;
    ct_rng_seed(&rng, 15);
    DropCtx d = {.n = 300, .p = 0.3f, .seed = 99};
    GradCase c = {.label = "dropout", .n_inputs = 1, .x = {gc_random(&rng, 300, 1)}, .n = {300}, .n_out = 300, .ctx = &d,
                  .forward64 = drop_f64, .backward64 = drop_b64, .forward32 = drop_f32, .backward32 = drop_b32};
    CHECK_GRADS(c);
}
