// Forward properties of the Mixture-of-Experts ops: the whole layer as the ops compose it
// against a plain loop over each token's experts, the permutation's stable sort, the router's
// tie rule, and the same bits at any thread count.
#include <math.h>
#include <string.h>

#include <omp.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops.h"
#include "tests/test.h"

static double *random_doubles(CtRng *rng, size_t n, double scale) {
    double *x = ct_alloc(n * sizeof(double) + 8);
    for (size_t i = 0; i < n; i++) x[i] = scale * ct_rng_normal(rng);
    return x;
}

static float *to_floats(const double *x, size_t n) {
    float *f = ct_alloc(n * sizeof(float) + 4);
    for (size_t i = 0; i < n; i++) f[i] = (float)x[i];
    return f;
}

static double max_rel_error(const double *a, const double *b, size_t n) {
    double diff = 0, ref = 1e-300;
    for (size_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs(a[i] - b[i]));
        ref = fmax(ref, fabs(b[i]));
    }
    return diff / ref;
}

// ---- one MoE layer, its weights laid out as train/model/model_params.c lays them ----
typedef struct {
    int N, C, F, E, K, S;  // S: shared experts (hidden S·F), 0 for none
    int gate;               // Qwen2-MoE's sigmoid gate on the shared expert
    CtRouter kind;
    float scale;
    double *h, *router, *bias, *experts, *shared_fc, *shared_out, *shared_gate;
} Layer;

static Layer make_layer(CtRng *rng, int N, int C, int F, int E, int K, int S, int gate, CtRouter kind, float scale,
                        int with_bias) {
    Layer L = {.N = N, .C = C, .F = F, .E = E, .K = K, .S = S, .gate = gate, .kind = kind, .scale = scale};
    L.h = random_doubles(rng, (size_t)N * C, 1);
    L.router = random_doubles(rng, (size_t)E * C, 0.5);
    L.bias = with_bias ? random_doubles(rng, (size_t)E, 0.5) : NULL;
    L.experts = random_doubles(rng, (size_t)E * 3 * F * C, 0.3);
    if (S) {
        L.shared_fc = random_doubles(rng, (size_t)2 * S * F * C, 0.3);
        L.shared_out = random_doubles(rng, (size_t)C * S * F, 0.3);
    }
    if (gate) L.shared_gate = random_doubles(rng, (size_t)C, 0.5);
    return L;
}

static void free_layer(Layer *L) {
    double *all[] = {L->h, L->router, L->bias, L->experts, L->shared_fc, L->shared_out, L->shared_gate};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) ct_free(all[i]);
}

static double dot(const double *a, const double *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
static double sigmoid(double x) { return 1 / (1 + exp(-x)); }

// SwiGLU of one row through a gate|up weight [2H,C] and a down weight [C,H]: y[C] = down·(silu(g)·u).
static void naive_swiglu_mlp(double *y, const double *x, const double *w_gate_up, const double *w_down, int C, int H) {
    double *a = ct_alloc(sizeof(double) * H);
    for (int f = 0; f < H; f++) {
        double g = dot(w_gate_up + (size_t)f * C, x, C), u = dot(w_gate_up + (size_t)(H + f) * C, x, C);
        a[f] = g * sigmoid(g) * u;
    }
    for (int c = 0; c < C; c++) y[c] = dot(w_down + (size_t)c * H, a, H);
    ct_free(a);
}

// The layer token by token, as the model's description says it, with none of the ops.
static void naive_layer(double *out, const Layer *L) {
    const int C = L->C, E = L->E, K = L->K, F = L->F;
    double z[64], p[64], score[64], o[64];
    for (int n = 0; n < L->N; n++) {
        const double *x = L->h + (size_t)n * C;
        double *y = out + (size_t)n * C;
        double zmax = -INFINITY, sum = 0;
        for (int e = 0; e < E; e++) zmax = fmax(zmax, z[e] = dot(L->router + (size_t)e * C, x, C));
        for (int e = 0; e < E; e++) sum += exp(z[e] - zmax);
        int sig = L->kind == CT_ROUTER_SIGMOID || L->kind == CT_ROUTER_SIGMOID_NORM;
        for (int e = 0; e < E; e++) {
            p[e] = sig ? sigmoid(z[e]) : exp(z[e] - zmax) / sum;
            score[e] = L->kind == CT_ROUTER_TOPK_SOFTMAX ? z[e] : p[e] + (L->bias ? L->bias[e] : 0);
        }
        int ids[64], taken[64] = {0};
        double w[64], wsum = 0;
        for (int k = 0; k < K; k++) {  // the largest remaining score; the first (lowest) index wins a tie
            int best = -1;
            for (int e = 0; e < E; e++)
                if (!taken[e] && (best < 0 || score[e] > score[best])) best = e;
            taken[best] = 1;
            ids[k] = best;
            w[k] = L->kind == CT_ROUTER_TOPK_SOFTMAX ? exp(z[best]) : p[best];
            wsum += w[k];
        }
        int normalise = L->kind == CT_ROUTER_SOFTMAX_NORM || L->kind == CT_ROUTER_SIGMOID_NORM ||
                        L->kind == CT_ROUTER_TOPK_SOFTMAX;
        for (int c = 0; c < C; c++) y[c] = 0;
        for (int k = 0; k < K; k++) {
            const double *we = L->experts + (size_t)ids[k] * 3 * F * C;
            naive_swiglu_mlp(o, x, we, we + (size_t)2 * F * C, C, F);
            double weight = L->scale * (normalise ? w[k] / wsum : w[k]);
            for (int c = 0; c < C; c++) y[c] += weight * o[c];
        }
        if (L->S) {
            naive_swiglu_mlp(o, x, L->shared_fc, L->shared_out, C, L->S * F);
            double g = L->gate ? sigmoid(dot(L->shared_gate, x, C)) : 1;
            for (int c = 0; c < C; c++) y[c] += g * o[c];
        }
    }
}

// The same layer through the double instantiation of the ops, in the order model_moe.c runs them.
static void ops_layer_f64(double *out, const Layer *L) {
    const int N = L->N, C = L->C, E = L->E, K = L->K, F = L->F, R = N * K;
    const size_t stride = (size_t)3 * F * C;
    CtMoeRouting r = {.kind = L->kind, .E = E, .K = K, .scale = L->scale};
    double *logits = ct_alloc(sizeof(double) * N * E), *probs = ct_alloc(sizeof(double) * N * E);
    double *weights = ct_alloc(sizeof(double) * R), *lse = ct_alloc(sizeof(double) * N);
    int32_t *ids = ct_alloc(sizeof(int32_t) * R), *sorted = ct_alloc(sizeof(int32_t) * R);
    int32_t *slot_of = ct_alloc(sizeof(int32_t) * R), offsets[65];
    float bias[64];
    for (int e = 0; L->bias && e < E; e++) bias[e] = (float)L->bias[e];
    ct_cpu_matmul_forward_f64(logits, L->h, L->router, NULL, N, C, E);
    ct_cpu_moe_route_forward_f64(ids, weights, probs, lse, logits, L->bias ? bias : NULL, N, &r);
    ct_cpu_moe_permute_f64(offsets, sorted, slot_of, ids, N, E, K);
    double *xs = ct_alloc(sizeof(double) * R * C), *g = ct_alloc(sizeof(double) * R * 2 * F);
    double *a = ct_alloc(sizeof(double) * R * F), *ys = ct_alloc(sizeof(double) * R * C);
    ct_cpu_moe_gather_forward_f64(xs, L->h, sorted, R, C);
    ct_cpu_grouped_matmul_forward_f64(g, xs, L->experts, stride, offsets, E, C, 2 * F);
    ct_cpu_swiglu_forward_f64(a, g, R, F);
    ct_cpu_grouped_matmul_forward_f64(ys, a, L->experts + (size_t)2 * F * C, stride, offsets, E, F, C);
    double *s = NULL, *gate = NULL;
    if (L->S) {
        const int H = L->S * F;
        double *sg = ct_alloc(sizeof(double) * N * 2 * H), *sa = ct_alloc(sizeof(double) * N * H);
        s = ct_alloc(sizeof(double) * N * C);
        ct_cpu_matmul_forward_f64(sg, L->h, L->shared_fc, NULL, N, C, 2 * H);
        ct_cpu_swiglu_forward_f64(sa, sg, N, H);
        ct_cpu_matmul_forward_f64(s, sa, L->shared_out, NULL, N, H, C);
        ct_free(sg);
        ct_free(sa);
    }
    if (L->gate) {
        gate = ct_alloc(sizeof(double) * N);
        ct_cpu_matmul_forward_f64(gate, L->h, L->shared_gate, NULL, N, C, 1);
    }
    ct_cpu_moe_combine_forward_f64(out, ys, weights, slot_of, s, gate, N, K, C);
    void *all[] = {logits, probs, weights, lse, ids, sorted, slot_of, xs, g, a, ys, s, gate};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) ct_free(all[i]);
}

// The same through the float op table (what the model runs on the CPU).
static void ops_layer_f32(double *out, const Layer *L) {
    const CtOps *ops = ct_ops_cpu();
    const int N = L->N, C = L->C, E = L->E, K = L->K, F = L->F, R = N * K;
    const size_t stride = (size_t)3 * F * C;
    CtMoeRouting r = {.kind = L->kind, .E = E, .K = K, .scale = L->scale};
    float *h = to_floats(L->h, (size_t)N * C), *router = to_floats(L->router, (size_t)E * C);
    float *experts = to_floats(L->experts, (size_t)E * stride);
    float *bias = L->bias ? to_floats(L->bias, (size_t)E) : NULL;
    float *logits = ct_alloc(sizeof(float) * N * E), *probs = ct_alloc(sizeof(float) * N * E);
    float *weights = ct_alloc(sizeof(float) * R), *lse = ct_alloc(sizeof(float) * N);
    int32_t *ids = ct_alloc(sizeof(int32_t) * R), *sorted = ct_alloc(sizeof(int32_t) * R);
    int32_t *slot_of = ct_alloc(sizeof(int32_t) * R), offsets[65];
    ops->matmul_forward(logits, h, router, NULL, N, C, E);
    ops->moe_route_forward(ids, weights, probs, lse, logits, bias, N, &r);
    ops->moe_permute(offsets, sorted, slot_of, ids, N, E, K);
    float *xs = ct_alloc(sizeof(float) * R * C), *g = ct_alloc(sizeof(float) * R * 2 * F);
    float *a = ct_alloc(sizeof(float) * R * F), *ys = ct_alloc(sizeof(float) * R * C);
    ops->moe_gather_forward(xs, h, sorted, R, C);
    ops->grouped_matmul_forward(g, xs, experts, stride, offsets, E, C, 2 * F);
    ops->swiglu_forward(a, g, R, F);
    ops->grouped_matmul_forward(ys, a, experts + (size_t)2 * F * C, stride, offsets, E, F, C);
    float *s = NULL, *gate = NULL, *shared_fc = NULL, *shared_out = NULL, *shared_gate = NULL;
    if (L->S) {
        const int H = L->S * F;
        shared_fc = to_floats(L->shared_fc, (size_t)2 * H * C);
        shared_out = to_floats(L->shared_out, (size_t)C * H);
        float *sg = ct_alloc(sizeof(float) * N * 2 * H), *sa = ct_alloc(sizeof(float) * N * H);
        s = ct_alloc(sizeof(float) * N * C);
        ops->matmul_forward(sg, h, shared_fc, NULL, N, C, 2 * H);
        ops->swiglu_forward(sa, sg, N, H);
        ops->matmul_forward(s, sa, shared_out, NULL, N, H, C);
        ct_free(sg);
        ct_free(sa);
    }
    if (L->gate) {
        shared_gate = to_floats(L->shared_gate, (size_t)C);
        gate = ct_alloc(sizeof(float) * N);
        ops->matmul_forward(gate, h, shared_gate, NULL, N, C, 1);
    }
    float *outf = ct_alloc(sizeof(float) * N * C);
    ops->moe_combine_forward(outf, ys, weights, slot_of, s, gate, N, K, C);
    for (size_t i = 0; i < (size_t)N * C; i++) out[i] = outf[i];
    void *all[] = {h,  router, experts, bias, logits, probs, weights,   lse,        ids,         sorted, slot_of,
                   xs, g,      a,       ys,   s,      gate,  shared_fc, shared_out, shared_gate, outf};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) ct_free(all[i]);
}

static void layer_case(const char *label, int N, int C, int F, int E, int K, int S, int gate, CtRouter kind,
                       float scale, int with_bias) {
    CtRng rng;
    ct_rng_seed(&rng, 100 + (uint64_t)(E * 64 + K));
    Layer L = make_layer(&rng, N, C, F, E, K, S, gate, kind, scale, with_bias);
    double *want = ct_alloc(sizeof(double) * N * C), *got = ct_alloc(sizeof(double) * N * C);
    double *gotf = ct_alloc(sizeof(double) * N * C);
    naive_layer(want, &L);
    ops_layer_f64(got, &L);
    ops_layer_f32(gotf, &L);
    double e64 = max_rel_error(got, want, (size_t)N * C), e32 = max_rel_error(gotf, want, (size_t)N * C);
    free_layer(&L);
    ct_free(want);
    ct_free(got);
    ct_free(gotf);
    CHECK_MSG(e64 < 1e-12, "%s: the ops in double vs a loop over each token's experts: %.3g", label, e64);
    CHECK_MSG(e32 < 1e-6, "%s: the float op table vs a loop over each token's experts: %.3g", label, e32);
}

TEST(ops, moe_layer_equals_a_loop_over_each_tokens_experts) {
    // measured: ~5e-16 in double, ~3e-7 for the float table
    layer_case("E=8 K=2 softmax_norm, 2 shared experts", 37, 24, 16, 8, 2, 2, 0, CT_ROUTER_SOFTMAX_NORM, 1, 0);
    if (ct_test_failed()) return;
    layer_case("E=4 K=4 softmax, gated shared expert", 21, 16, 12, 4, 4, 1, 1, CT_ROUTER_SOFTMAX, 1, 0);
    if (ct_test_failed()) return;
    layer_case("E=16 K=1 sigmoid_norm with bias, scale 2.5", 40, 20, 8, 16, 1, 0, 0, CT_ROUTER_SIGMOID_NORM, 2.5f, 1);
    if (ct_test_failed()) return;
    layer_case("E=8 K=3 topk_softmax, gated shared expert", 33, 24, 16, 8, 3, 1, 1, CT_ROUTER_TOPK_SOFTMAX, 1, 0);
    if (ct_test_failed()) return;
    layer_case("E=6 K=2 sigmoid with bias, scale 1.5", 25, 16, 10, 6, 2, 0, 0, CT_ROUTER_SIGMOID, 1.5f, 1);
}

// ---- the permutation ----
TEST(ops, moe_permute_sorts_pairs_by_expert_stably) {
    CtRng rng;
    ct_rng_seed(&rng, 120);
    const int N = 50, E = 7, K = 3, R = N * K;
    int32_t ids[150], offsets[8], sorted[150], slot_of[150], source[150], counts[7] = {0};
    for (int i = 0; i < R; i++) {  // expert 6 never chosen; repeats within a token allowed here
        ids[i] = (int32_t)ct_rng_below(&rng, (uint32_t)(E - 1));
        counts[ids[i]]++;
    }
    ct_ops_cpu()->moe_permute(offsets, sorted, slot_of, ids, N, E, K);
    CHECK_EQ_INT(offsets[0], 0);
    CHECK_EQ_INT(offsets[E], R);
    for (int e = 0; e < E; e++) CHECK_EQ_INT(offsets[e + 1] - offsets[e], counts[e]);
    for (int j = 0; j < R; j++) source[j] = -1;
    for (int i = 0; i < R; i++) {  // slot_of is a permutation of the sorted rows
        CHECK(slot_of[i] >= 0 && slot_of[i] < R && source[slot_of[i]] == -1);
        source[slot_of[i]] = i;
    }
    for (int e = 0; e < E; e++) {
        for (int j = offsets[e]; j < offsets[e + 1]; j++) {
            CHECK_EQ_INT(ids[source[j]], e);
            CHECK_EQ_INT(sorted[j], source[j] / K);
            if (j > offsets[e]) CHECK(source[j] > source[j - 1]);  // stable: (token, slot) order kept
        }
    }
}

// ---- the router's tie rule and the equal routers ----
TEST(ops, moe_route_ties_go_to_the_lower_index) {
    const CtOps *ops = ct_ops_cpu();
    const int E = 6, K = 3;
    // token 0: all equal; token 1: experts 1, 2, 4 tie for first, 5 next; token 2: 3 and 5 tie for third
    float logits[18] = {0, 0, 0, 0, 0, 0, 1, 3, 3, 0, 3, 2, 5, 4, -1, 1, 0, 1};
    const int32_t want[9] = {0, 1, 2, 1, 2, 4, 0, 1, 3};
    for (CtRouter kind = CT_ROUTER_SOFTMAX; kind <= CT_ROUTER_SIGMOID_NORM; kind++) {
        CtMoeRouting r = {.kind = kind, .E = E, .K = K, .scale = 1};
        int32_t ids[9];
        float w[9], p[18], lse[3];
        ops->moe_route_forward(ids, w, p, lse, logits, NULL, 3, &r);
        for (int i = 0; i < 9; i++) CHECK_MSG(ids[i] == want[i], "router %d: slot %d chose %d, not %d", kind, i, ids[i], want[i]);
    }
}

TEST(ops, moe_route_topk_softmax_weights_equal_softmax_norm) {
    CtRng rng;
    ct_rng_seed(&rng, 130);
    const int N = 20, E = 8, K = 3;
    float *logits = ct_alloc(sizeof(float) * N * E);
    ct_rng_fill_normal(&rng, logits, (size_t)N * E, 0, 2);
    int32_t ids_a[60], ids_b[60];
    float wa[60], wb[60], p[160], lse[20];
    CtMoeRouting a = {.kind = CT_ROUTER_TOPK_SOFTMAX, .E = E, .K = K, .scale = 1};
    CtMoeRouting b = {.kind = CT_ROUTER_SOFTMAX_NORM, .E = E, .K = K, .scale = 1};
    ct_ops_cpu()->moe_route_forward(ids_a, wa, p, lse, logits, NULL, N, &a);
    ct_ops_cpu()->moe_route_forward(ids_b, wb, p, lse, logits, NULL, N, &b);
    ct_free(logits);
    for (int i = 0; i < N * K; i++) {
        CHECK_EQ_INT(ids_a[i], ids_b[i]);
        CHECK_NEAR(wa[i], wb[i], 1e-6);
    }
}

// ---- determinism: the router, gather and combine give the same bits on 1 and 2 threads ----
// Large enough that every one of them runs its parallel loop (their thresholds: moe.inc).
#define DET_N 2048
#define DET_E 16
#define DET_K 4
#define DET_C 16
typedef struct {
    int32_t ids[DET_N * DET_K], sorted[DET_N * DET_K], slot_of[DET_N * DET_K], offsets[DET_E + 1];
    float w[DET_N * DET_K], p[DET_N * DET_E], lse[DET_N], dlogits[DET_N * DET_E], dw[DET_N * DET_K],
        dh[DET_N * DET_C], y[DET_N * DET_C], dys[DET_N * DET_K * DET_C], ds[DET_N * DET_C], dgate[DET_N];
} MoeRun;

static void moe_run(MoeRun *m, const float *logits, const float *ys, const float *s, const float *gate,
                    const float *dy, int N, int E, int K, int C) {
    const CtOps *ops = ct_ops_cpu();
    CtMoeRouting r = {.kind = CT_ROUTER_SIGMOID_NORM, .E = E, .K = K, .scale = 2};
    float f[64];
    ops->moe_route_forward(m->ids, m->w, m->p, m->lse, logits, NULL, N, &r);
    ops->moe_permute(m->offsets, m->sorted, m->slot_of, m->ids, N, E, K);
    for (int e = 0; e < E; e++) f[e] = (float)(m->offsets[e + 1] - m->offsets[e]) / (float)N;
    ops->moe_combine_forward(m->y, ys, m->w, m->slot_of, s, gate, N, K, C);
    ops->moe_combine_backward(m->dys, m->dw, m->ds, m->dgate, dy, ys, m->w, m->slot_of, s, gate, N, K, C);
    memset(m->dh, 0, sizeof m->dh);
    ops->moe_gather_backward(m->dh, m->dys, m->slot_of, N, K, C);
    ops->moe_route_backward(m->dlogits, m->dw, logits, m->p, m->lse, m->ids, m->w, f, 0.01f, 0.001f, N, &r);
}

TEST(ops, moe_ops_give_the_same_bits_on_any_thread_count) {
    CtRng rng;
    ct_rng_seed(&rng, 140);
    const int N = DET_N, E = DET_E, K = DET_K, C = DET_C;
    float *logits = ct_alloc(sizeof(float) * N * E);
    float *ys = ct_alloc(sizeof(float) * N * K * C), *s = ct_alloc(sizeof(float) * N * C);
    float *gate = ct_alloc(sizeof(float) * N), *dy = ct_alloc(sizeof(float) * N * C);
    ct_rng_fill_normal(&rng, logits, (size_t)N * E, 0, 1);
    ct_rng_fill_normal(&rng, ys, (size_t)N * K * C, 0, 1);
    ct_rng_fill_normal(&rng, s, (size_t)N * C, 0, 1);
    ct_rng_fill_normal(&rng, gate, (size_t)N, 0, 1);
    ct_rng_fill_normal(&rng, dy, (size_t)N * C, 0, 1);
    MoeRun *one = ct_calloc(1, sizeof(MoeRun)), *two = ct_calloc(1, sizeof(MoeRun));
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    moe_run(one, logits, ys, s, gate, dy, N, E, K, C);
    omp_set_num_threads(threads > 1 ? threads : 2);
    moe_run(two, logits, ys, s, gate, dy, N, E, K, C);
    omp_set_num_threads(threads);
    int same = memcmp(one, two, sizeof(MoeRun)) == 0;
    void *all[] = {logits, ys, s, gate, dy, one, two};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) ct_free(all[i]);
    CHECK_MSG(same, "the MoE ops' results differ between 1 and 2 threads");
}
