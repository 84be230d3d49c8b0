// The CUDA tables against the CPU for the Mixture-of-Experts ops (kernels/ops.h, "Mixture of
// Experts"; kernels/cuda/moe.cu): the router of every kind forward and backward (with and without
// the load-balancing and z-loss terms) and its statistics, the permutation (experts with no rows
// first, in the middle and last), gather, the grouped products over strided expert weights, and
// combine with and without the shared expert and its gate. Both tables: float outputs (router
// weights, probabilities, lse, dweights) to TOL, activations to the table's tolerance, the
// grouped products as the dense products (bf16 reads the weights in bf16: 1e-2). Skips without a
// GPU (tests/test_cuda_emu/run.sh runs them on the emulation).
#include "tests/cuda_fixture.h"
#include "tests/test.h"

#ifdef CTRAIN_CUDA
#include "tests/cuda_ops_check.h"

static const CtRouter router_kinds[] = {CT_ROUTER_SOFTMAX, CT_ROUTER_SOFTMAX_NORM, CT_ROUTER_TOPK_SOFTMAX,
                                        CT_ROUTER_SIGMOID, CT_ROUTER_SIGMOID_NORM};

// The index of the first element where the device ints differ from the host ones, or -1.
static long first_int_difference(const int32_t *dev, const int32_t *host, size_t n) {
    int32_t *h = ct_alloc(n * sizeof(int32_t) + 1);
    ct_cuda_download(h, dev, n * sizeof(int32_t));
    long at = -1;
    for (size_t i = 0; i < n && at < 0; i++)
        if (h[i] != host[i]) at = (long)i;
    ct_free(h);
    return at;
}
#define CHECK_INTS_EQUAL(dev, host, n, what)                                                            \
    do {                                                                                                \
        long at_ = first_int_difference((dev), (host), (n));                                            \
        CHECK_MSG(at_ < 0, "%s: cuda and cpu differ first at element %ld (cpu %d)", (what), at_,         \
                  at_ < 0 ? 0 : (int)(host)[at_]);                                                      \
    } while (0)
// Two device arrays of `bytes` bytes hold the same bits (activations of either type).
static int same_bytes(const void *a_dev, const void *b_dev, size_t bytes) {
    char *a = ct_alloc(bytes + 1), *b = ct_alloc(bytes + 1);
    ct_cuda_download(a, a_dev, bytes);
    ct_cuda_download(b, b_dev, bytes);
    int same = memcmp(a, b, bytes) == 0;
    ct_free(a);
    ct_free(b);
    return same;
}
// max |got − want| / max |want| over n doubles.
static double rel_diff_doubles(const double *got, const double *want, int n) {
    double diff = 0, scale = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs(got[i] - want[i]);
        if (!(d <= diff)) diff = isnan(d) ? INFINITY : d;
        if (fabs(want[i]) > scale) scale = fabs(want[i]);
    }
    return diff / (scale > 1e-30 ? scale : 1e-30);
}

// ---- the router ----

// Forward (ids exactly, weights, probs, lse), backward with the aux and z terms, then without
// them, statistics, and the backward's bits on a second run.
static void router_case(const CtOps *gpu, CtRouter kind, int N, int E, int K, float scale, int with_bias) {
    CtRng rng;
    ct_rng_seed(&rng, (uint64_t)(kind * 1000 + N * 7 + E * 3 + K));
    const CtMoeRouting r = {kind, E, K, scale};
    const size_t NE = (size_t)N * E, NK = (size_t)N * K;
    float *logits = rnd(&rng, NE, 2), *bias = with_bias ? rnd(&rng, E, 0.3f) : NULL;
    as_table_holds(gpu, logits, NE);
    int32_t *ids = ct_alloc(NK * sizeof(int32_t) + 1);
    float *w = ct_alloc(NK * sizeof(float) + 1), *probs = ct_alloc(NE * sizeof(float)), *lse = ct_alloc(N * 4 + 4);
    CPU->moe_route_forward(ids, w, probs, lse, logits, bias, N, &r);
    CtAct *d_logits = up_act(gpu, logits, NE);
    float *d_bias = bias ? upf(bias, E) : NULL;
    int32_t *d_ids = ct_cuda_malloc(NK * sizeof(int32_t) + 1, "ids");
    float *d_w = ct_cuda_malloc(NK * 4 + 4, "weights"), *d_probs = ct_cuda_malloc(NE * 4, "probs");
    float *d_lse = ct_cuda_malloc(N * 4 + 4, "lse");
    gpu->moe_route_forward(d_ids, d_w, d_probs, d_lse, d_logits, d_bias, N, &r);
    CHECK_INTS_EQUAL(d_ids, ids, NK, "route forward: expert ids");
    CHECK_CLOSE(d_w, w, NK, "route forward: weights");
    CHECK_CLOSE(d_probs, probs, NE, "route forward: probs");
    CHECK_CLOSE(d_lse, lse, N, "route forward: lse");

    // f: the fraction of tokens that chose each expert (Σ f = K), as the model computes it
    float f[CT_MOE_MAX_EXPERTS] = {0};
    for (size_t i = 0; i < NK; i++) f[ids[i]] += 1.0f / (float)N;
    float *dw = rnd(&rng, NK, 1), *dlogits = ct_alloc(NE * sizeof(float));
    float *d_dw = upf(dw, NK);
    CtAct *d_dlogits = new_act(gpu, NE, "dlogits"), *d_dlogits2 = new_act(gpu, NE, "dlogits again");
    CPU->moe_route_backward(dlogits, dw, logits, probs, lse, ids, w, f, 0.5f, 0.05f, N, &r);
    gpu->moe_route_backward(d_dlogits, d_dw, d_logits, d_probs, d_lse, d_ids, d_w, f, 0.5f, 0.05f, N, &r);
    CHECK_ACT_CLOSE(gpu, d_dlogits, dlogits, NE, "route backward with aux and z terms");
    gpu->moe_route_backward(d_dlogits2, d_dw, d_logits, d_probs, d_lse, d_ids, d_w, f, 0.5f, 0.05f, N, &r);
    CHECK_MSG(same_bytes(d_dlogits, d_dlogits2, NE * gpu->act_bytes), "route backward differs between two runs");
    CPU->moe_route_backward(dlogits, dw, logits, probs, lse, ids, w, NULL, 0.0f, 0.0f, N, &r);
    gpu->moe_route_backward(d_dlogits, d_dw, d_logits, d_probs, d_lse, d_ids, d_w, NULL, 0.0f, 0.0f, N, &r);
    CHECK_ACT_CLOSE(gpu, d_dlogits, dlogits, NE, "route backward, weights' term alone");

    double q_cpu[CT_MOE_MAX_EXPERTS], q_gpu[CT_MOE_MAX_EXPERTS], lsq_cpu, lsq_gpu;
    CPU->moe_router_stats(q_cpu, &lsq_cpu, probs, lse, N, &r);
    gpu->moe_router_stats(q_gpu, &lsq_gpu, d_probs, d_lse, N, &r);
    double e_q = rel_diff_doubles(q_gpu, q_cpu, E), e_l = rel_diff_doubles(&lsq_gpu, &lsq_cpu, 1);
    CHECK_MSG(e_q < TOL && e_l < TOL, "router stats: q_mean differs by %.3g, lse_sq_mean by %.3g", e_q, e_l);

    ct_cuda_free(d_logits), ct_cuda_free(d_bias), ct_cuda_free(d_ids), ct_cuda_free(d_w), ct_cuda_free(d_probs);
    ct_cuda_free(d_lse), ct_cuda_free(d_dw), ct_cuda_free(d_dlogits), ct_cuda_free(d_dlogits2);
    ct_free(logits), ct_free(bias), ct_free(ids), ct_free(w), ct_free(probs), ct_free(lse), ct_free(dw);
    ct_free(dlogits);
}

static void router_cases(const CtOps *gpu) {
    for (int i = 0; i < 5 && !ct_test_failed(); i++) {
        const CtRouter kind = router_kinds[i];
        const int sigmoid = kind == CT_ROUTER_SIGMOID || kind == CT_ROUTER_SIGMOID_NORM;
        router_case(gpu, kind, 37, 8, 2, 1.0f, sigmoid);
        if (!ct_test_failed()) router_case(gpu, kind, 70, 60, 6, 2.5f, 0);        // E not a multiple of 32
        if (!ct_test_failed()) router_case(gpu, kind, 5, 512, 64, 1.0f, sigmoid);  // the largest E and K
        if (!ct_test_failed()) router_case(gpu, kind, 9, 3, 3, 1.0f, sigmoid);    // every expert chosen
    }
}

TEST(cuda, moe_router_matches_cpu_for_every_kind) {
    need_gpu();
    router_cases(GPU);
}
TEST(cuda, moe_router_bf16_logits) {
    need_gpu();
    router_cases(ct_ops_cuda_bf16());
}

// Equal logits: the k experts chosen are the lowest indices, on both backends (ties to the lower).
TEST(cuda, moe_router_ties_go_to_the_lower_expert) {
    need_gpu();
    const int N = 4, E = 40, K = 5;
    float logits[4 * 40];
    for (int i = 0; i < N * E; i++) logits[i] = (i / E == 1 && i % E >= 20) ? 1.0f : 0.5f;  // token 1: 20.. tie high
    for (int i = 0; i < 5; i++) {
        const CtMoeRouting r = {router_kinds[i], E, K, 1.0f};
        int32_t ids[20];
        float w[20], probs[160], lse[4];
        CPU->moe_route_forward(ids, w, probs, lse, logits, NULL, N, &r);
        CtAct *d_logits = up_act(GPU, logits, (size_t)N * E);
        int32_t *d_ids = ct_cuda_malloc(sizeof ids, "ids");
        float *d_w = ct_cuda_malloc(sizeof w, "w"), *d_probs = ct_cuda_malloc(sizeof probs, "p");
        float *d_lse = ct_cuda_malloc(sizeof lse, "lse");
        GPU->moe_route_forward(d_ids, d_w, d_probs, d_lse, d_logits, NULL, N, &r);
        for (int k = 0; k < K; k++) {
            CHECK_EQ_INT(ids[0 * K + k], k);
            CHECK_EQ_INT(ids[1 * K + k], 20 + k);
        }
        CHECK_INTS_EQUAL(d_ids, ids, (size_t)N * K, "tied expert ids");
        ct_cuda_free(d_logits), ct_cuda_free(d_ids), ct_cuda_free(d_w), ct_cuda_free(d_probs), ct_cuda_free(d_lse);
    }
}

// ---- permute, gather, grouped products, combine: one routed batch ----

// A routed batch: N tokens, each to K distinct experts drawn from those `used` marks (NULL: all;
// others get no rows), with the CPU's permutation of it.
typedef struct {
    int N, E, K;
    int32_t *ids, *offsets, *sorted_token, *slot_of;  // host
    int32_t *d_ids, *d_sorted_token, *d_slot_of;      // device
} Routed;

static void routed_make(Routed *b, CtRng *rng, int N, int E, int K, const int *used) {
    *b = (Routed){.N = N, .E = E, .K = K};
    const size_t NK = (size_t)N * K;
    b->ids = ct_alloc(NK * sizeof(int32_t) + 1);
    b->offsets = ct_alloc((size_t)(E + 1) * sizeof(int32_t));
    b->sorted_token = ct_alloc(NK * sizeof(int32_t) + 1);
    b->slot_of = ct_alloc(NK * sizeof(int32_t) + 1);
    int pool[CT_MOE_MAX_EXPERTS], n_pool = 0;
    for (int e = 0; e < E; e++)
        if (!used || used[e]) pool[n_pool++] = e;
    for (int n = 0; n < N; n++) {  // K distinct of the pool: a partial Fisher-Yates shuffle
        for (int k = 0; k < K; k++) {
            int j = k + (int)ct_rng_below(rng, (uint32_t)(n_pool - k)), t = pool[k];
            pool[k] = pool[j];
            pool[j] = t;
            b->ids[(size_t)n * K + k] = pool[k];
        }
    }
    CPU->moe_permute(b->offsets, b->sorted_token, b->slot_of, b->ids, N, E, K);
    b->d_ids = up(b->ids, NK * sizeof(int32_t) + 1);
    b->d_sorted_token = ct_cuda_malloc(NK * sizeof(int32_t) + 1, "sorted_token");
    b->d_slot_of = ct_cuda_malloc(NK * sizeof(int32_t) + 1, "slot_of");
}

static void routed_free(Routed *b) {
    ct_free(b->ids), ct_free(b->offsets), ct_free(b->sorted_token), ct_free(b->slot_of);
    ct_cuda_free(b->d_ids), ct_cuda_free(b->d_sorted_token), ct_cuda_free(b->d_slot_of);
}

// The shapes below: E = 7 with experts 0, 3 and 6 unused (no rows first, in the middle, last);
// one expert for all; many experts with one token.
static const int used_7[7] = {0, 1, 1, 0, 1, 1, 0};
#define used_all NULL  // every expert may be chosen

// The GPU's permutation of b equals the CPU's (offsets, sorted_token, slot_of) and is left in
// b's device arrays.
static void permute_check(const Routed *b) {
    const size_t NK = (size_t)b->N * b->K;
    int32_t offsets[CT_MOE_MAX_EXPERTS + 1];
    GPU->moe_permute(offsets, b->d_sorted_token, b->d_slot_of, b->d_ids, b->N, b->E, b->K);
    for (int e = 0; e <= b->E; e++) CHECK_EQ_INT(offsets[e], b->offsets[e]);
    CHECK_INTS_EQUAL(b->d_sorted_token, b->sorted_token, NK, "permute: sorted_token");
    CHECK_INTS_EQUAL(b->d_slot_of, b->slot_of, NK, "permute: slot_of");
}

TEST(cuda, moe_permute_sorts_stably_with_empty_experts) {
    need_gpu();
    CtRng rng;
    ct_rng_seed(&rng, 31);
    Routed b;
    routed_make(&b, &rng, 50, 7, 3, used_7);
    CHECK_EQ_INT(b.offsets[1], 0);  // the case has what it claims: expert 0, 3 and 6 empty
    CHECK_EQ_INT(b.offsets[4], b.offsets[3]);
    CHECK_EQ_INT(b.offsets[7], b.offsets[6]);
    permute_check(&b);
    routed_free(&b);
    if (ct_test_failed()) return;
    routed_make(&b, &rng, 33, 1, 1, used_all);
    permute_check(&b);
    routed_free(&b);
    if (ct_test_failed()) return;
    routed_make(&b, &rng, 3, 64, 8, used_all);
    permute_check(&b);
    routed_free(&b);
}

static void gather_case(const CtOps *gpu, int N, int E, int K, int C, const int *used) {
    CtRng rng;
    ct_rng_seed(&rng, (uint64_t)(N * 11 + E + C));
    Routed b;
    routed_make(&b, &rng, N, E, K, used);
    permute_check(&b);
    const size_t R = (size_t)N * K;
    float *x = rnd(&rng, (size_t)N * C, 1), *xs = ct_alloc(R * C * sizeof(float));
    float *dxs = rnd(&rng, R * C, 1), *dx = rnd(&rng, (size_t)N * C, 1);
    as_table_holds(gpu, x, (size_t)N * C);
    as_table_holds(gpu, dxs, R * C);
    as_table_holds(gpu, dx, (size_t)N * C);
    CtAct *d_x = up_act(gpu, x, (size_t)N * C), *d_xs = new_act(gpu, R * C, "xs");
    CtAct *d_dxs = up_act(gpu, dxs, R * C), *d_dx = up_act(gpu, dx, (size_t)N * C);
    CPU->moe_gather_forward(xs, x, b.sorted_token, (int)R, C);
    gpu->moe_gather_forward(d_xs, d_x, b.d_sorted_token, (int)R, C);
    CHECK_ACT_CLOSE_TOL(gpu, d_xs, xs, R * C, 1e-30, "gather forward (a copy)");
    CPU->moe_gather_backward(dx, dxs, b.slot_of, N, K, C);
    gpu->moe_gather_backward(d_dx, d_dxs, b.d_slot_of, N, K, C);
    CHECK_ACT_CLOSE(gpu, d_dx, dx, (size_t)N * C, "gather backward (adds)");
    ct_cuda_free(d_x), ct_cuda_free(d_xs), ct_cuda_free(d_dxs), ct_cuda_free(d_dx);
    ct_free(x), ct_free(xs), ct_free(dxs), ct_free(dx);
    routed_free(&b);
}

static void gather_cases(const CtOps *gpu) {
    gather_case(gpu, 50, 7, 3, 40, used_7);
    if (!ct_test_failed()) gather_case(gpu, 21, 1, 1, 33, used_all);
    if (!ct_test_failed()) gather_case(gpu, 6, 64, 8, 96, used_all);
}

TEST(cuda, moe_gather_forward_and_backward) {
    need_gpu();
    gather_cases(GPU);
}
TEST(cuda, moe_gather_bf16_activations) {
    need_gpu();
    gather_cases(ct_ops_cuda_bf16());
}

// Activations uploaded and then read back, so the CPU starts from what the table holds (as
// test_cuda_ops.c's mm_up).
static CtAct *up_as_held(const CtOps *gpu, float *host, size_t n) {
    CtAct *d = cuda_fixture_up_act(gpu, host, n);
    gpu->download_act(host, d, n);
    return d;
}

// The experts' weights [OC, C] lie expert_stride apart (more than OC·C: other matrices between
// them, as gate|up and down interleave in the parameter buffer). dweight starts random and the
// gaps must stay as they were; then dinp alone and dweight alone.
static void grouped_case(const CtOps *gpu, double tol, int N, int E, int K, int C, int OC, const int *used) {
    CtRng rng;
    ct_rng_seed(&rng, (uint64_t)(N * 5 + E * 3 + C + OC));
    Routed b;
    routed_make(&b, &rng, N, E, K, used);
    const int R = N * K;
    const size_t stride = (size_t)OC * C + 13, nw = stride * E;
    float *x = rnd(&rng, (size_t)R * C, 1), *w = rnd(&rng, nw, 0.2f), *y = ct_alloc((size_t)R * OC * 4 + 4);
    float *dy = rnd(&rng, (size_t)R * OC, 1), *dx = rnd(&rng, (size_t)R * C, 1), *dw = rnd(&rng, nw, 1);
    CtAct *d_x = up_as_held(gpu, x, (size_t)R * C), *d_dy = up_as_held(gpu, dy, (size_t)R * OC);
    CtAct *d_dx = up_as_held(gpu, dx, (size_t)R * C), *d_y = new_act(gpu, (size_t)R * OC, "y");
    float *d_w = upf(w, nw), *d_dw = upf(dw, nw);
    CPU->grouped_matmul_forward(y, x, w, stride, b.offsets, E, C, OC);
    gpu->grouped_matmul_forward(d_y, d_x, d_w, stride, b.offsets, E, C, OC);
    CHECK_ACT_CLOSE_TOL(gpu, d_y, y, (size_t)R * OC, tol, "grouped forward");
    CPU->grouped_matmul_backward(dx, dw, dy, x, w, stride, b.offsets, E, C, OC);
    gpu->grouped_matmul_backward(d_dx, d_dw, d_dy, d_x, d_w, stride, b.offsets, E, C, OC);
    CHECK_ACT_CLOSE_TOL(gpu, d_dx, dx, (size_t)R * C, tol, "grouped backward: dinp");
    CHECK_CLOSE_TOL(d_dw, dw, nw, tol, "grouped backward: dweight (gaps and unused experts untouched)");
    CPU->grouped_matmul_backward(dx, NULL, dy, x, w, stride, b.offsets, E, C, OC);
    gpu->grouped_matmul_backward(d_dx, NULL, d_dy, d_x, d_w, stride, b.offsets, E, C, OC);
    CHECK_ACT_CLOSE_TOL(gpu, d_dx, dx, (size_t)R * C, tol, "grouped backward: dinp alone");
    CPU->grouped_matmul_backward(NULL, dw, dy, x, w, stride, b.offsets, E, C, OC);
    gpu->grouped_matmul_backward(NULL, d_dw, d_dy, d_x, d_w, stride, b.offsets, E, C, OC);
    CHECK_CLOSE_TOL(d_dw, dw, nw, tol, "grouped backward: dweight alone");
    ct_cuda_free(d_x), ct_cuda_free(d_dy), ct_cuda_free(d_dx), ct_cuda_free(d_y), ct_cuda_free(d_w);
    ct_cuda_free(d_dw);
    ct_free(x), ct_free(w), ct_free(y), ct_free(dy), ct_free(dx), ct_free(dw);
    routed_free(&b);
}

static void grouped_cases(const CtOps *gpu, double tol) {
    grouped_case(gpu, tol, 50, 7, 3, 24, 40, used_7);
    if (!ct_test_failed()) grouped_case(gpu, tol, 17, 1, 1, 33, 20, used_all);
    if (!ct_test_failed()) grouped_case(gpu, tol, 5, 64, 8, 16, 48, used_all);
}

TEST(cuda, moe_grouped_matmul_forward_and_backward) {
    need_gpu();
    grouped_cases(GPU, TOL);
}
TEST(cuda, moe_grouped_matmul_bf16_within_1e_2) {
    need_gpu();
    grouped_cases(ct_ops_cuda_bf16(), 1e-2);
}

// The bf16 table reads each expert's weight from the declared bf16 copy of the buffer, at the
// expert's offset: after declaring, the products agree with the converted ones (bitwise on the
// emulation; a GPU may pick another algorithm for the less aligned copy, hence 1e-6), and new
// masters uploaded without declaring again leave them as they were.
TEST(cuda, moe_grouped_matmul_bf16_reads_the_declared_copy) {
    need_gpu();
    const CtOps *bf16 = ct_ops_cuda_bf16();
    CtRng rng;
    ct_rng_seed(&rng, 77);
    Routed b;
    routed_make(&b, &rng, 30, 7, 2, used_7);
    const int R = 30 * 2, C = 32, OC = 24;
    const size_t stride = 3 * (size_t)OC * C, nw = stride * 7, ny = (size_t)R * OC;
    float *x = rnd(&rng, (size_t)R * C, 1), *w = rnd(&rng, nw, 0.2f);
    CtAct *d_x = cuda_fixture_up_act(bf16, x, (size_t)R * C), *d_y[3];
    float *d_w = upf(w, nw);
    for (int k = 0; k < 3; k++) {
        d_y[k] = new_act(bf16, ny, "y");
        if (k == 1) bf16->keep_low_precision_weights(d_w, nw, NULL);
        if (k == 2) {
            for (size_t i = 0; i < nw; i++) w[i] *= 2;
            ct_cuda_upload(d_w, w, nw * sizeof(float));
        }
        bf16->grouped_matmul_forward(d_y[k], d_x, d_w, stride, b.offsets, 7, C, OC);
    }
    float *y0 = cuda_fixture_down_act(bf16, d_y[0], ny);
    CHECK_ACT_CLOSE_TOL(bf16, d_y[1], y0, ny, 1e-6, "grouped forward through the declared copy");
    CHECK_ACT_CLOSE_TOL(bf16, d_y[2], y0, ny, 1e-6, "grouped forward after undeclared new masters");
    ct_cuda_free(d_x), ct_cuda_free(d_w);
    for (int k = 0; k < 3; k++) ct_cuda_free(d_y[k]);
    ct_free(x), ct_free(w), ct_free(y0);
    routed_free(&b);
}

// with_shared: 0 none, 1 shared expert, 2 shared expert with Qwen2-MoE's sigmoid gate.
static void combine_case(const CtOps *gpu, int N, int E, int K, int C, const int *used, int with_shared) {
    CtRng rng;
    ct_rng_seed(&rng, (uint64_t)(N * 13 + K * 5 + C + with_shared));
    Routed b;
    routed_make(&b, &rng, N, E, K, used);
    permute_check(&b);
    const size_t R = (size_t)N * K, NC = (size_t)N * C;
    float *ys = rnd(&rng, R * C, 1), *w = rnd(&rng, R, 0.5f), *s = rnd(&rng, NC, 1), *gate = rnd(&rng, N, 2);
    float *dout = rnd(&rng, NC, 1), *out = ct_alloc(NC * 4), *dys = ct_alloc(R * C * 4 + 4);
    float *dw = ct_alloc(R * 4 + 4), *ds = ct_alloc(NC * 4), *dgate = ct_alloc((size_t)N * 4);
    as_table_holds(gpu, ys, R * C);
    as_table_holds(gpu, s, NC);
    as_table_holds(gpu, gate, N);
    as_table_holds(gpu, dout, NC);
    CtAct *d_ys = up_act(gpu, ys, R * C), *d_s = up_act(gpu, s, NC), *d_gate = up_act(gpu, gate, N);
    CtAct *d_dout = up_act(gpu, dout, NC), *d_out = new_act(gpu, NC, "out"), *d_dys = new_act(gpu, R * C, "dys");
    CtAct *d_ds = new_act(gpu, NC, "dshared"), *d_dgate = new_act(gpu, N, "dshared_gate");
    float *d_w = upf(w, R), *d_dw = ct_cuda_malloc(R * 4 + 4, "dweights");
    const float *sh = with_shared ? s : NULL, *gt = with_shared == 2 ? gate : NULL;
    const CtAct *d_sh = with_shared ? d_s : NULL, *d_gt = with_shared == 2 ? d_gate : NULL;
    CPU->moe_combine_forward(out, ys, w, b.slot_of, sh, gt, N, K, C);
    gpu->moe_combine_forward(d_out, d_ys, d_w, b.d_slot_of, d_sh, d_gt, N, K, C);
    CHECK_ACT_CLOSE(gpu, d_out, out, NC, "combine forward");
    CPU->moe_combine_backward(dys, dw, with_shared ? ds : NULL, gt ? dgate : NULL, dout, ys, w, b.slot_of, sh, gt, N,
                              K, C);
    gpu->moe_combine_backward(d_dys, d_dw, with_shared ? d_ds : NULL, d_gt ? d_dgate : NULL, d_dout, d_ys, d_w,
                              b.d_slot_of, d_sh, d_gt, N, K, C);
    CHECK_ACT_CLOSE(gpu, d_dys, dys, R * C, "combine backward: dexpert_out");
    CHECK_CLOSE(d_dw, dw, R, "combine backward: dweights");
    if (with_shared) CHECK_ACT_CLOSE(gpu, d_ds, ds, NC, "combine backward: dshared");
    if (with_shared == 2) CHECK_ACT_CLOSE(gpu, d_dgate, dgate, N, "combine backward: dshared_gate");
    ct_cuda_free(d_ys), ct_cuda_free(d_s), ct_cuda_free(d_gate), ct_cuda_free(d_dout), ct_cuda_free(d_out);
    ct_cuda_free(d_dys), ct_cuda_free(d_ds), ct_cuda_free(d_dgate), ct_cuda_free(d_w), ct_cuda_free(d_dw);
    ct_free(ys), ct_free(w), ct_free(s), ct_free(gate), ct_free(dout), ct_free(out), ct_free(dys), ct_free(dw);
    ct_free(ds), ct_free(dgate);
    routed_free(&b);
}

static void combine_cases(const CtOps *gpu) {
    for (int shared = 0; shared <= 2 && !ct_test_failed(); shared++) {
        combine_case(gpu, 50, 7, 3, 40, used_7, shared);
        if (!ct_test_failed()) combine_case(gpu, 21, 1, 1, 70, used_all, shared);
        if (!ct_test_failed()) combine_case(gpu, 6, 64, 8, 96, used_all, shared);
    }
}

TEST(cuda, moe_combine_with_and_without_shared_expert) {
    need_gpu();
    combine_cases(GPU);
}
TEST(cuda, moe_combine_bf16_activations) {
    need_gpu();
    combine_cases(ct_ops_cuda_bf16());
}

#else
TEST(cuda, moe_ops_need_a_cuda_build) { SKIP("built without CUDA"); }
#endif
