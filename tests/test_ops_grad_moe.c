// The Mixture-of-Experts ops of kernels/ops.h: each backward against central finite differences
// in double (the _f64 kernels, relative error < 1e-6) and the float op table against the double
// results (< 1e-3). See gradcheck.h.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops.h"
#include "tests/gradcheck.h"
#include "tests/test.h"

#define OPS (ct_ops_cpu())
#define MAX_N 16
#define MAX_E 16
#define MAX_K 4

// ---- the router: weights, load-balancing loss and z-loss in one scalar ----
// The checked outputs are weights[N,K], then aux = aux_coef·E·Σ_e f_e·q_mean_e, then
// z = z_coef·mean(lse²): with dout = (dweights, d_aux, d_z) the gradient of Σ out·dout is what
// moe_route_backward computes with aux_coef·d_aux and z_coef·d_z.
typedef struct {
    int N;
    CtMoeRouting r;
    const float *bias;
    float f[MAX_E], aux_coef, z_coef;
    int32_t ids[MAX_N * MAX_K], idsf[MAX_N * MAX_K];
    double w[MAX_N * MAX_K], p[MAX_N * MAX_E], lse[MAX_N];
    float wf[MAX_N * MAX_K], pf[MAX_N * MAX_E], lsef[MAX_N];
} RouteCtx;

static void route_f64(void *p, double **x, double *out) {
    RouteCtx *c = p;
    const int NK = c->N * c->r.K;
    ct_cpu_moe_route_forward_f64(c->ids, c->w, c->p, c->lse, x[0], c->bias, c->N, &c->r);
    double q_mean[MAX_E], lse_sq;
    ct_cpu_moe_router_stats_f64(q_mean, &lse_sq, c->p, c->lse, c->N, &c->r);
    double aux = 0;
    for (int e = 0; e < c->r.E; e++) aux += c->f[e] * q_mean[e];
    memcpy(out, c->w, sizeof(double) * NK);
    out[NK] = c->aux_coef * c->r.E * aux;
    out[NK + 1] = c->z_coef * lse_sq;
}
static void route_b64(void *p, double **x, const double *dout, double **dx) {
    RouteCtx *c = p;
    const int NK = c->N * c->r.K, NE = c->N * c->r.E;
    double dz[MAX_N * MAX_E];
    ct_cpu_moe_route_backward_f64(dz, dout, x[0], c->p, c->lse, c->ids, c->w, c->f,
                                  (float)(c->aux_coef * dout[NK]), (float)(c->z_coef * dout[NK + 1]), c->N, &c->r);
    for (int i = 0; i < NE; i++) dx[0][i] += dz[i];
}
static void route_f32(void *p, float **x, float *out) {
    RouteCtx *c = p;
    const int NK = c->N * c->r.K;
    OPS->moe_route_forward(c->idsf, c->wf, c->pf, c->lsef, x[0], c->bias, c->N, &c->r);
    double q_mean[MAX_E], lse_sq;
    OPS->moe_router_stats(q_mean, &lse_sq, c->pf, c->lsef, c->N, &c->r);
    double aux = 0;
    for (int e = 0; e < c->r.E; e++) aux += c->f[e] * q_mean[e];
    memcpy(out, c->wf, sizeof(float) * NK);
    out[NK] = (float)(c->aux_coef * c->r.E * aux);
    out[NK + 1] = (float)(c->z_coef * lse_sq);
}
static void route_b32(void *p, float **x, const float *dout, float **dx) {
    RouteCtx *c = p;
    const int NK = c->N * c->r.K, NE = c->N * c->r.E;
    float dz[MAX_N * MAX_E];
    OPS->moe_route_backward(dz, dout, x[0], c->pf, c->lsef, c->idsf, c->wf, c->f, c->aux_coef * dout[NK],
                            c->z_coef * dout[NK + 1], c->N, &c->r);
    for (int i = 0; i < NE; i++) dx[0][i] += dz[i];
}

// How many tokens' expert sets differ between two selections (order within a token ignored).
static int tokens_with_other_experts(const int32_t *a, const int32_t *b, int N, int K) {
    int differ = 0;
    for (int n = 0; n < N; n++) {
        for (int k = 0; k < K; k++) {
            int found = 0;
            for (int j = 0; j < K; j++) found |= a[n * K + k] == b[n * K + j];
            if (!found) {
                differ++;
                break;
            }
        }
    }
    return differ;
}

// One router case: logits of 12 tokens over E experts; f from the forward's own selection.
// *changed: the number of tokens whose selection the bias changed (0 without a bias).
static void route_case(const char *label, CtRouter kind, int E, int K, float scale, float aux_coef, float z_coef,
                       const float *bias, int *changed) {
    CtRng rng;
    ct_rng_seed(&rng, 40 + (uint64_t)kind);
    RouteCtx *c = ct_calloc(1, sizeof(RouteCtx));
    *c = (RouteCtx){.N = 12, .r = {.kind = kind, .E = E, .K = K, .scale = scale}, .bias = bias,
                    .aux_coef = aux_coef, .z_coef = z_coef};
    const size_t NE = (size_t)c->N * E;
    double *logits = gc_random(&rng, NE, 1.5);
    double out[MAX_N * MAX_K + 2];
    c->aux_coef = 0;
    route_f64(c, &logits, out);
    int counts[MAX_E] = {0};
    for (int i = 0; i < c->N * K; i++) counts[c->ids[i]]++;
    for (int e = 0; e < E; e++) c->f[e] = (float)counts[e] / (float)c->N;
    c->aux_coef = aux_coef;
    *changed = 0;
    if (bias) {  // the selection without the bias, to show the bias chose differently
        int32_t biased[MAX_N * MAX_K];
        memcpy(biased, c->ids, sizeof(biased));
        ct_cpu_moe_route_forward_f64(c->ids, c->w, c->p, c->lse, logits, NULL, c->N, &c->r);
        *changed = tokens_with_other_experts(biased, c->ids, c->N, K);
    }
    GradCase g = {.label = label, .n_inputs = 1, .x = {logits}, .n = {NE}, .n_out = (size_t)c->N * K + 2, .ctx = c,
                  .forward64 = route_f64, .backward64 = route_b64, .forward32 = route_f32, .backward32 = route_b32};
    GradResult res = gradcheck_case(&g);
    ct_free(logits);
    ct_free(c);
    CHECK_MSG(res.fd_error < GC_FD_TOL, "%s: double gradient vs finite differences: %.3g", label, res.fd_error);
    CHECK_MSG(res.float_error < GC_FLOAT_TOL, "%s: float gradient vs double: %.3g", label, res.float_error);
    CHECK_MSG(res.forward_error < 1e-4, "%s: float forward vs double: %.3g", label, res.forward_error);
}

// Each kind three ways: the weights alone; scaled, with both losses; and one expert per token.
static void route_kind(const char *name, CtRouter kind) {
    char label[96];
    int changed;
    snprintf(label, sizeof label, "%s (weights only)", name);
    route_case(label, kind, 8, 2, 1.0f, 0, 0, NULL, &changed);
    if (ct_test_failed()) return;
    snprintf(label, sizeof label, "%s (scale 2.5, aux and z losses)", name);
    route_case(label, kind, 8, 3, 2.5f, 0.3f, 0.2f, NULL, &changed);
    if (ct_test_failed()) return;
    snprintf(label, sizeof label, "%s (K=1 of 5, losses)", name);
    route_case(label, kind, 5, 1, 1.0f, 0.5f, 0.1f, NULL, &changed);
}

TEST(ops, moe_route_gradient_softmax) { route_kind("softmax", CT_ROUTER_SOFTMAX); }
TEST(ops, moe_route_gradient_softmax_norm) { route_kind("softmax_norm", CT_ROUTER_SOFTMAX_NORM); }
TEST(ops, moe_route_gradient_topk_softmax) { route_kind("topk_softmax", CT_ROUTER_TOPK_SOFTMAX); }
TEST(ops, moe_route_gradient_sigmoid) { route_kind("sigmoid", CT_ROUTER_SIGMOID); }
TEST(ops, moe_route_gradient_sigmoid_norm) { route_kind("sigmoid_norm", CT_ROUTER_SIGMOID_NORM); }

// The bias chooses (a different set of experts for some tokens) and never weighs: the
// gradient is the same function of the logits, through the experts the bias chose.
static void route_with_bias(const char *name, CtRouter kind) {
    const float bias[8] = {0.9f, -0.6f, 0.0f, 0.4f, -1.0f, 0.7f, -0.2f, 0.3f};
    char label[96];
    snprintf(label, sizeof label, "%s (bias, scale 2.5, aux and z losses)", name);
    int changed;
    route_case(label, kind, 8, 2, 2.5f, 0.3f, 0.2f, bias, &changed);
    if (ct_test_failed()) return;
    CHECK_MSG(changed >= 3, "%s: the bias changed the experts of only %d of 12 tokens", name, changed);
}
TEST(ops, moe_route_gradient_sigmoid_with_bias) { route_with_bias("sigmoid", CT_ROUTER_SIGMOID); }
TEST(ops, moe_route_gradient_sigmoid_norm_with_bias) { route_with_bias("sigmoid_norm", CT_ROUTER_SIGMOID_NORM); }

// ---- grouped products: per-expert weights at a stride, an expert with no rows ----
typedef struct {
    int E, C, OC;
    size_t stride;
    int32_t offsets[MAX_E + 1];
} GroupedCtx;
static void gm_f64(void *p, double **x, double *out) {
    GroupedCtx *g = p;
    ct_cpu_grouped_matmul_forward_f64(out, x[0], x[1], g->stride, g->offsets, g->E, g->C, g->OC);
}
static void gm_b64(void *p, double **x, const double *dout, double **dx) {
    GroupedCtx *g = p;
    ct_cpu_grouped_matmul_backward_f64(dx[0], dx[1], dout, x[0], x[1], g->stride, g->offsets, g->E, g->C, g->OC);
}
static void gm_f32(void *p, float **x, float *out) {
    GroupedCtx *g = p;
    OPS->grouped_matmul_forward(out, x[0], x[1], g->stride, g->offsets, g->E, g->C, g->OC);
}
static void gm_b32(void *p, float **x, const float *dout, float **dx) {
    GroupedCtx *g = p;
    OPS->grouped_matmul_backward(dx[0], dx[1], dout, x[0], x[1], g->stride, g->offsets, g->E, g->C, g->OC);
}

// Experts 1 and 4 own no rows; the weights sit 3·OC·C apart (the gate|up product's stride in
// an MoE layer), so the gaps between them must get no gradient, as the finite differences say.
static void grouped_case(CtMatmulEngine engine) {
    ct_cpu_set_matmul_engine(engine);
    CtRng rng;
    ct_rng_seed(&rng, 50);
    GroupedCtx g = {.E = 5, .C = 11, .OC = 6, .offsets = {0, 4, 4, 5, 12, 12}};
    g.stride = (size_t)3 * g.OC * g.C;
    const size_t R = (size_t)g.offsets[g.E], n_w = (size_t)g.E * g.stride;
    GradCase c = {.label = engine == CT_MATMUL_BLAS ? "grouped_matmul (blas)" : "grouped_matmul (portable)",
                  .n_inputs = 2, .x = {gc_random(&rng, R * g.C, 1), gc_random(&rng, n_w, 1)}, .n = {R * g.C, n_w},
                  .n_out = R * g.OC, .ctx = &g,
                  .forward64 = gm_f64, .backward64 = gm_b64, .forward32 = gm_f32, .backward32 = gm_b32};
    CHECK_GRADS(c);
}
TEST(ops, grouped_matmul_gradient_blas) { grouped_case(CT_MATMUL_BLAS); }
TEST(ops, grouped_matmul_gradient_portable) {
    grouped_case(CT_MATMUL_PORTABLE);
    ct_cpu_set_matmul_engine(CT_MATMUL_BLAS);
}

// ---- gather: each token copied to its K sorted rows ----
typedef struct {
    int N, K, C;
    int32_t offsets[MAX_E + 1], sorted_token[MAX_N * MAX_K], slot_of[MAX_N * MAX_K];
} GatherCtx;
static void gather_f64(void *p, double **x, double *out) {
    GatherCtx *g = p;
    ct_cpu_moe_gather_forward_f64(out, x[0], g->sorted_token, g->N * g->K, g->C);
}
static void gather_b64(void *p, double **x, const double *dout, double **dx) {
    GatherCtx *g = p;
    ct_cpu_moe_gather_backward_f64(dx[0], dout, g->slot_of, g->N, g->K, g->C);
}
static void gather_f32(void *p, float **x, float *out) {
    GatherCtx *g = p;
    OPS->moe_gather_forward(out, x[0], g->sorted_token, g->N * g->K, g->C);
}
static void gather_b32(void *p, float **x, const float *dout, float **dx) {
    GatherCtx *g = p;
    OPS->moe_gather_backward(dx[0], dout, g->slot_of, g->N, g->K, g->C);
}

// Random distinct experts per token (a partial Fisher-Yates over 0..E-1), then the permutation.
static void random_routing(CtRng *rng, int32_t *ids, int N, int E, int K) {
    for (int n = 0; n < N; n++) {
        int32_t pool[MAX_E];
        for (int e = 0; e < E; e++) pool[e] = e;
        for (int k = 0; k < K; k++) {
            int j = k + (int)ct_rng_below(rng, (uint32_t)(E - k));
            int32_t t = pool[k];
            pool[k] = pool[j];
            pool[j] = t;
            ids[n * K + k] = pool[k];
        }
    }
}

TEST(ops, moe_gather_gradient) {
    CtRng rng;
    ct_rng_seed(&rng, 60);
    GatherCtx g = {.N = 9, .K = 3, .C = 7};
    int32_t ids[MAX_N * MAX_K];
    random_routing(&rng, ids, g.N, 6, g.K);
    ct_cpu_moe_permute_f64(g.offsets, g.sorted_token, g.slot_of, ids, g.N, 6, g.K);
    GradCase c = {.label = "moe_gather", .n_inputs = 1, .x = {gc_random(&rng, (size_t)g.N * g.C, 1)},
                  .n = {(size_t)g.N * g.C}, .n_out = (size_t)g.N * g.K * g.C, .ctx = &g,
                  .forward64 = gather_f64, .backward64 = gather_b64, .forward32 = gather_f32, .backward32 = gather_b32};
    CHECK_GRADS(c);
}

// ---- combine: the weighted sum of each token's K expert rows, plus the (gated) shared expert ----
// Inputs: expert_out [N·K,C], weights [N,K], then shared [N,C] and shared_gate [N] where present.
// Backward writes; the harness wants adds, so it goes through scratch.
typedef struct {
    int N, K, C, with_shared, with_gate;
    int32_t slot_of[MAX_N * MAX_K];
} CombineCtx;
static void combine_f64(void *p, double **x, double *out) {
    CombineCtx *c = p;
    ct_cpu_moe_combine_forward_f64(out, x[0], x[1], c->slot_of, c->with_shared ? x[2] : NULL,
                                   c->with_gate ? x[3] : NULL, c->N, c->K, c->C);
}
static void combine_b64(void *p, double **x, const double *dout, double **dx) {
    CombineCtx *c = p;
    const size_t n[4] = {(size_t)c->N * c->K * c->C, (size_t)c->N * c->K, (size_t)c->N * c->C, (size_t)c->N};
    double *d[4];
    for (int i = 0; i < 4; i++) d[i] = ct_calloc(n[i], sizeof(double));
    ct_cpu_moe_combine_backward_f64(d[0], d[1], c->with_shared ? d[2] : NULL, c->with_gate ? d[3] : NULL, dout, x[0],
                                    x[1], c->slot_of, c->with_shared ? x[2] : NULL, c->with_gate ? x[3] : NULL, c->N,
                                    c->K, c->C);
    const int inputs = 2 + c->with_shared + c->with_gate;
    for (int i = 0; i < 4; i++) {
        if (i < inputs)
            for (size_t j = 0; j < n[i]; j++) dx[i][j] += d[i][j];
        ct_free(d[i]);
    }
}
static void combine_f32(void *p, float **x, float *out) {
    CombineCtx *c = p;
    OPS->moe_combine_forward(out, x[0], x[1], c->slot_of, c->with_shared ? x[2] : NULL, c->with_gate ? x[3] : NULL,
                             c->N, c->K, c->C);
}
static void combine_b32(void *p, float **x, const float *dout, float **dx) {
    CombineCtx *c = p;
    const size_t n[4] = {(size_t)c->N * c->K * c->C, (size_t)c->N * c->K, (size_t)c->N * c->C, (size_t)c->N};
    float *d[4];
    for (int i = 0; i < 4; i++) d[i] = ct_calloc(n[i], sizeof(float));
    OPS->moe_combine_backward(d[0], d[1], c->with_shared ? d[2] : NULL, c->with_gate ? d[3] : NULL, dout, x[0], x[1],
                              c->slot_of, c->with_shared ? x[2] : NULL, c->with_gate ? x[3] : NULL, c->N, c->K, c->C);
    const int inputs = 2 + c->with_shared + c->with_gate;
    for (int i = 0; i < 4; i++) {
        if (i < inputs)
            for (size_t j = 0; j < n[i]; j++) dx[i][j] += d[i][j];
        ct_free(d[i]);
    }
}

static void combine_case(const char *label, int with_shared, int with_gate) {
    CtRng rng;
    ct_rng_seed(&rng, 70);
    CombineCtx c = {.N = 8, .K = 2, .C = 9, .with_shared = with_shared, .with_gate = with_gate};
    int32_t ids[MAX_N * MAX_K], offsets[MAX_E + 1], sorted_token[MAX_N * MAX_K];
    random_routing(&rng, ids, c.N, 5, c.K);
    ct_cpu_moe_permute_f64(offsets, sorted_token, c.slot_of, ids, c.N, 5, c.K);
    const size_t n[4] = {(size_t)c.N * c.K * c.C, (size_t)c.N * c.K, (size_t)c.N * c.C, (size_t)c.N};
    GradCase g = {.label = label, .n_inputs = 2 + with_shared + with_gate,
                  .x = {gc_random(&rng, n[0], 1), gc_random(&rng, n[1], 1), gc_random(&rng, n[2], 1),
                        gc_random(&rng, n[3], 1.5)},
                  .n = {n[0], n[1], n[2], n[3]}, .n_out = (size_t)c.N * c.C, .ctx = &c,
                  .forward64 = combine_f64, .backward64 = combine_b64, .forward32 = combine_f32,
                  .backward32 = combine_b32};
    CHECK_GRADS(g);
}
TEST(ops, moe_combine_gradient) { combine_case("moe_combine", 0, 0); }
TEST(ops, moe_combine_gradient_with_shared_expert) { combine_case("moe_combine (shared)", 1, 0); }
TEST(ops, moe_combine_gradient_with_gated_shared_expert) { combine_case("moe_combine (shared, gate)", 1, 1); }
