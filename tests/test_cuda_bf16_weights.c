// The bf16 copies of the weights (kernels/cuda/bf16_weights.cu, suite "cuda"): declared
// buffers get a copy rounded to nearest that the bf16 products read instead of converting the
// weights (the same bits either way); AdamW rewrites the copy with stochastic rounding
// (each element one of the two bf16 neighbours of its new fp32 master, unbiased, the same bits
// for the same seed, other bits for another step) while the fp32 update stays bit-identical;
// a slice updated on its own (ZeRO) and a resumed run re-create the same copy; freeing a
// buffer forgets its copy; the model, LoRA adapters and DPO's reference declare their weights.
// Every test skips without a usable GPU and runs on the CPU emulation of CUDA.
#include "tests/cuda_fixture.h"
#include "tests/test.h"

#ifdef CTRAIN_CUDA
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/device.h"
#include "kernels/ops.h"
#include "optim/adamw.h"
#include "tests/model_fixture.h"
#include "train/objectives/dpo.h"
#include "train/model/lora.h"

#define BF16 (ct_ops_cuda_bf16())

static void need_gpu(void) {
    char why[256];
    if (ct_cuda_device_count(why, sizeof why) <= 0) SKIP("%s", why);
}

static uint32_t bits_of(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}
static float float_of_bf16(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}
// Round to nearest even, as __float2bfloat16_rn (NaN stays a quiet NaN).
static uint16_t bf16_nearest(float x) {
    uint32_t u = bits_of(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static float *upload_floats(const float *host, size_t n, const char *what) {
    return cuda_fixture_up(host, n * sizeof(float), what);
}

// The bf16 copy of the declared x[0, n), on the host (NULL when there is none).
static uint16_t *download_copy(const float *x, size_t n) {
    const uint16_t *copy = ct_cuda_bf16_weights(x, n);
    if (!copy) return NULL;
    uint16_t *h = ct_alloc(n * sizeof(uint16_t) + 1);
    ct_cuda_download(h, copy, n * sizeof(uint16_t));
    return h;
}
// Two activation arrays of the bf16 table hold the same values (bf16 to float is exact).
static int same_acts(const CtAct *a_dev, const CtAct *b_dev, size_t n) {
    float *a = cuda_fixture_down_act(BF16, a_dev, n), *b = cuda_fixture_down_act(BF16, b_dev, n);
    int same = memcmp(a, b, n * sizeof(float)) == 0;
    ct_free(a);
    ct_free(b);
    return same;
}
// Elements i of the declared x[0, n) whose copy is not round-to-nearest of the master.
static size_t copy_mismatches_nearest(const float *x, size_t n) {
    float *master = cuda_fixture_down(x, n);
    uint16_t *copy = download_copy(x, n);
    size_t bad = copy ? 0 : n;
    for (size_t i = 0; copy && i < n; i++) bad += copy[i] != bf16_nearest(master[i]);
    ct_free(master);
    ct_free(copy);
    return bad;
}

// ---- declared weights feed the products ----

// A weight matrix and LoRA adapters inside one declared buffer, at offsets: the products give
// the same bits through the copy as converting on the fly, and they do read the copy. W sits at
// 128 elements, so its copy is as aligned as the scratch a converted operand goes to (256
// bytes) and cuBLASLt runs the same algorithm: the same bits. A and B sit at odd offsets (a
// 2-byte aligned copy): the heuristic, told so, may pick another algorithm on a GPU that sums in
// another order, so LoRA is held to 1e-6 of the largest value (bitwise on the emulation).
TEST(cuda, bf16_weights_round_to_nearest_and_feed_the_products) {
    need_gpu();
    CtRng rng;
    ct_rng_seed(&rng, 41);
    const int N = 19, C = 48, OC = 40, R = 4;
    const size_t at_w = 128, at_a = at_w + (size_t)OC * C + 3, at_b = at_a + (size_t)R * C, n = at_b + (size_t)OC * R + 5;
    float *host = ct_alloc(n * sizeof(float));
    ct_rng_fill_normal(&rng, host, n, 0, 0.3f);
    // values outside the products that the rounding must get right: specials, a tie, the top
    const float specials[] = {NAN, INFINITY, -INFINITY, -0.0f, 1.00390625f /* a tie: rounds to even, 1 */,
                              3.4e38f /* past half a step above the largest bf16 (3.3895e38): inf */};
    memcpy(host, specials, sizeof specials);
    float *x = ct_alloc((size_t)N * C * sizeof(float)), *dout = ct_alloc((size_t)N * OC * sizeof(float));
    ct_rng_fill_normal(&rng, x, (size_t)N * C, 0, 1);
    ct_rng_fill_normal(&rng, dout, (size_t)N * OC, 0, 1);
    float *d_params = upload_floats(host, n, "declared weights");
    const size_t A_BYTES = BF16->act_bytes;  // the activations are bf16
    CtAct *d_x = cuda_fixture_up_act(BF16, x, (size_t)N * C), *d_dout = cuda_fixture_up_act(BF16, dout, (size_t)N * OC);
    CtAct *out[3], *dx[3], *lora_out[3];
    for (int k = 0; k < 3; k++) {
        out[k] = ct_cuda_malloc((size_t)N * OC * A_BYTES, "out");
        dx[k] = ct_cuda_malloc((size_t)N * C * A_BYTES, "dx");
        lora_out[k] = ct_cuda_malloc((size_t)N * OC * A_BYTES, "lora out");
        ct_cuda_zero(dx[k], (size_t)N * C * A_BYTES);
        ct_cuda_zero(lora_out[k], (size_t)N * OC * A_BYTES);
    }
    CtAct *d_h = ct_cuda_malloc((size_t)N * R * A_BYTES, "h");
    const float *W = d_params + at_w, *A = d_params + at_a, *B = d_params + at_b;
    // k: 0 converting on the fly, 1 through the copy, 2 through the copy after the masters changed
    for (int k = 0; k < 3; k++) {
        if (k == 1) {
            CHECK(ct_cuda_bf16_weights(d_params, n) == NULL);
            size_t declared_at = ct_cuda_bytes_in_use();
            BF16->keep_low_precision_weights(d_params, n, NULL);
            CHECK_EQ_INT(ct_cuda_bytes_in_use() - declared_at, n * sizeof(uint16_t));  // counted
            CHECK_EQ_INT(copy_mismatches_nearest(d_params, n), 0);
            CHECK(ct_cuda_bf16_weights(W, (size_t)OC * C) == ct_cuda_bf16_weights(d_params, n) + at_w);
            CHECK(ct_cuda_bf16_weights(d_params + n - 3, 4) == NULL);  // past the end: not inside
        }
        if (k == 2) {  // new masters uploaded without declaring again: the products still read the old copy
            float *doubled = ct_alloc(n * sizeof(float));
            for (size_t i = 0; i < n; i++) doubled[i] = 2 * host[i];
            ct_cuda_upload(d_params, doubled, n * sizeof(float));
            ct_free(doubled);
        }
        BF16->matmul_forward(out[k], d_x, W, NULL, N, C, OC);
        BF16->matmul_backward(dx[k], NULL, NULL, d_dout, d_x, W, N, C, OC);
        BF16->lora_forward(lora_out[k], d_h, d_x, A, B, 0.5f, N, C, R, OC, OC);
    }
    CHECK_MSG(same_acts(out[0], out[1], (size_t)N * OC), "matmul forward: the copy gave other bits than converting");
    CHECK_MSG(same_acts(dx[0], dx[1], (size_t)N * C), "matmul dinp: the copy gave other bits than converting");
    float *lora_converted = cuda_fixture_down_act(BF16, lora_out[0], (size_t)N * OC);
    float *lora_copy = cuda_fixture_down_act(BF16, lora_out[1], (size_t)N * OC);
    double worst = 0, largest = 0;
    for (size_t i = 0; i < (size_t)N * OC; i++) {
        double d = fabs((double)lora_copy[i] - lora_converted[i]);
        worst = d > worst || isnan(d) ? d : worst;
        largest = fmax(largest, fabs((double)lora_converted[i]));
    }
    CHECK_MSG(worst <= 1e-6 * largest, "LoRA forward through the copy: %.3g off (largest %.3g)", worst, largest);
    ct_free(lora_converted);
    ct_free(lora_copy);
    CHECK_MSG(same_acts(out[1], out[2], (size_t)N * OC), "the product did not read the declared copy");
    // declaring again refreshes the copy: every product doubles exactly (bf16(2w) = 2·bf16(w))
    BF16->keep_low_precision_weights(d_params, n, NULL);
    CHECK_EQ_INT(copy_mismatches_nearest(d_params, n), 0);
    BF16->matmul_forward(out[2], d_x, W, NULL, N, C, OC);
    float *o1 = cuda_fixture_down_act(BF16, out[1], (size_t)N * OC), *o2 = cuda_fixture_down_act(BF16, out[2], (size_t)N * OC);
    size_t not_doubled = 0;
    for (size_t i = 0; i < (size_t)N * OC; i++) not_doubled += o2[i] != 2 * o1[i];
    CHECK_MSG(not_doubled == 0, "%zu outputs are not twice the old ones after declaring again", not_doubled);
    ct_free(o1);
    ct_free(o2);
    // freeing the buffer forgets it and frees the copy
    const size_t in_use = ct_cuda_bytes_in_use();
    ct_cuda_free(d_params);
    CHECK_EQ_INT(in_use - ct_cuda_bytes_in_use(), n * (sizeof(float) + sizeof(uint16_t)));
    CHECK(ct_cuda_bf16_weights(d_params, n) == NULL);
    float *again = ct_cuda_malloc(n * sizeof(float), "a new buffer");  // maybe at the same address
    CHECK(ct_cuda_bf16_weights(again, n) == NULL);
    ct_cuda_free(again);
    for (int k = 0; k < 3; k++) {
        ct_cuda_free(out[k]);
        ct_cuda_free(dx[k]);
        ct_cuda_free(lora_out[k]);
    }
    ct_cuda_free(d_h);
    ct_cuda_free(d_x);
    ct_cuda_free(d_dout);
    ct_free(host);
    ct_free(x);
    ct_free(dout);
}

// ---- AdamW's stochastic rounding ----

enum { EQUAL_COUNT = 1 << 16 };  // elements with one and the same master, for the mean
#define EQUAL_START 0.3008f      // their start; the step moves it to 0.29976994, 0.48 of the way up

// The scalars of AdamW's first step (as ct_adamw_step computes them) with a given rounding seed.
static CtAdamWScalars first_step(uint64_t rounding_seed) {
    const double lr = 1e-3, wd = 0.1, b1 = 0.9, b2 = 0.95;
    return (CtAdamWScalars){.keep = (float)(1 - lr * wd), .one_minus_b1 = (float)(1 - b1), .b2 = (float)b2,
                            .one_minus_b2 = (float)(1 - b2), .eps = 1e-8f, .step_size = (float)(lr / (1 - b1)),
                            .bc2_sqrt = (float)sqrt(1 - b2), .rounding_seed = rounding_seed};
}

typedef struct {
    size_t n;
    float *p0, *g;  // host: the start and the gradients
} Problem;

typedef struct {
    float *master;    // host, after the update
    uint16_t *copy;   // host, NULL when the buffer had none
    float *m, *v;
} Result;

static void result_free(Result *r) {
    ct_free(r->master);
    ct_free(r->copy);
    ct_free(r->m);
    ct_free(r->v);
}

// One AdamW update of a fresh device buffer from the problem's start: declared (bf16 copy) or
// not, through `ops`, in `slices` calls over consecutive parts (ZeRO's slices of one buffer).
static Result update(const CtOps *ops, const Problem *pb, int declare, int slices, uint64_t rounding_seed) {
    const size_t n = pb->n;
    float *p = upload_floats(pb->p0, n, "params"), *g = upload_floats(pb->g, n, "grads");
    float *m = ct_cuda_malloc(n * sizeof(float), "m"), *v = ct_cuda_malloc(n * sizeof(float), "v");
    ct_cuda_zero(m, n * sizeof(float));
    ct_cuda_zero(v, n * sizeof(float));
    if (declare) BF16->keep_low_precision_weights(p, n, NULL);
    const CtAdamWScalars s = first_step(rounding_seed);
    for (int k = 0; k < slices; k++) {
        size_t from = n * (size_t)k / (size_t)slices, to = n * (size_t)(k + 1) / (size_t)slices;
        ops->adamw_update(p + from, g + from, m + from, v + from, to - from, NULL, 0, &s);
    }
    Result r = {cuda_fixture_down(p, n), download_copy(p, n), cuda_fixture_down(m, n), cuda_fixture_down(v, n)};
    ct_cuda_free(p);
    ct_cuda_free(g);
    ct_cuda_free(m);
    ct_cuda_free(v);
    return r;
}

static size_t copies_differ(const Result *a, const Result *b, size_t n) {
    size_t d = 0;
    for (size_t i = 0; i < n; i++) d += a->copy[i] != b->copy[i];
    return d;
}

TEST(cuda, bf16_weights_adamw_rounds_stochastically) {
    need_gpu();
    CtRng rng;
    ct_rng_seed(&rng, 42);
    const size_t n_random = 5003, n_special = 3, n = n_random + EQUAL_COUNT + n_special;
    Problem pb = {n, ct_alloc(n * sizeof(float)), ct_alloc(n * sizeof(float))};
    ct_rng_fill_normal(&rng, pb.p0, n_random, 0, 1);
    ct_rng_fill_normal(&rng, pb.g, n, 0, 0.01f);
    for (size_t i = n_random; i < n_random + EQUAL_COUNT; i++) {
        pb.p0[i] = EQUAL_START;
        pb.g[i] = 0.02f;  // the same update for all of them
    }
    const size_t sp = n_random + EQUAL_COUNT;
    pb.p0[sp] = NAN;
    pb.p0[sp + 1] = INFINITY;
    pb.p0[sp + 2] = -INFINITY;
    const uint64_t seed1 = ct_adamw_rounding_seed(1337, 1), seed2 = ct_adamw_rounding_seed(1337, 2);
    CHECK(seed1 != seed2 && seed1 != ct_adamw_rounding_seed(1338, 1));
    CHECK(seed1 == ct_adamw_rounding_seed(1337, 1));

    Result a = update(BF16, &pb, 1, 1, seed1);
    Result fp32 = update(ct_ops_cuda(), &pb, 0, 1, seed1);  // no copy: today's update
    CHECK(a.copy && !fp32.copy);
    if (ct_test_failed()) return;
    // the fp32 masters and moments are bit-identical to the update without a copy
    CHECK_MSG(memcmp(a.master, fp32.master, n_random * sizeof(float)) == 0 &&
                  memcmp(a.master + n_random, fp32.master + n_random, EQUAL_COUNT * sizeof(float)) == 0,
              "the fp32 masters differ from the update without a bf16 copy");
    CHECK(memcmp(a.m, fp32.m, n * sizeof(float)) == 0 && memcmp(a.v, fp32.v, n * sizeof(float)) == 0);

    // every finite element: one of the two bf16 neighbours of its master, the master when exact
    size_t not_neighbour = 0;
    for (size_t i = 0; i < sp; i++) {
        uint32_t u = bits_of(a.master[i]);
        uint16_t below = (uint16_t)(u >> 16), c = a.copy[i];
        int ok = (u & 0xffffu) == 0 ? c == below : (c == below || c == (uint16_t)(below + 1));
        not_neighbour += !ok;
    }
    CHECK_MSG(not_neighbour == 0, "%zu copies are not a bf16 neighbour of their master", not_neighbour);
    CHECK(isnan(float_of_bf16(a.copy[sp])));
    CHECK(float_of_bf16(a.copy[sp + 1]) == INFINITY && float_of_bf16(a.copy[sp + 2]) == -INFINITY);

    // unbiased: the mean of EQUAL_COUNT copies of one master x is x within 5 standard errors,
    // (hi − lo)·√(f(1−f)/count) where f places x between its neighbours; rounding to nearest
    // would be off by min(f, 1−f)·(hi − lo), far outside that
    const float x = a.master[n_random];
    CHECK(a.master[n_random + EQUAL_COUNT - 1] == x);
    const double lo = float_of_bf16((uint16_t)(bits_of(x) >> 16)), hi = float_of_bf16((uint16_t)((bits_of(x) >> 16) + 1));
    const double f = ((double)x - lo) / (hi - lo);
    CHECK_MSG(f > 0.2 && f < 0.8, "test set-up: the master %.9g sits at %.3f between its neighbours", x, f);
    double sum = 0;
    for (size_t i = n_random; i < sp; i++) sum += float_of_bf16(a.copy[i]);
    const double mean = sum / EQUAL_COUNT, tol = 5 * (hi - lo) * sqrt(f * (1 - f) / EQUAL_COUNT);
    CHECK_MSG(fabs(mean - x) <= tol, "mean of the stochastically rounded copies %.9g, master %.9g (tolerance %.3g)",
              mean, (double)x, tol);
    CHECK(fmin(f, 1 - f) * (hi - lo) > 4 * tol);

    // the same seed: the same bits; another step's seed: other bits (2f(1−f) of the equal block)
    Result b = update(BF16, &pb, 1, 1, seed1), c = update(BF16, &pb, 1, 1, seed2);
    CHECK_MSG(copies_differ(&a, &b, n) == 0, "the same seed gave other bits");
    CHECK(memcmp(a.master, c.master, n_random * sizeof(float)) == 0);
    size_t changed = copies_differ(&a, &c, n);
    CHECK_MSG(changed > EQUAL_COUNT / 10, "another step's seed changed only %zu of %zu copies", changed, n);

    // ZeRO: three slices of the buffer updated on their own round as the whole did
    Result z = update(BF16, &pb, 1, 3, seed1);
    CHECK_MSG(copies_differ(&a, &z, n) == 0, "slices updated on their own rounded differently from the whole");
    CHECK(memcmp(a.master, z.master, n_random * sizeof(float)) == 0);

    // resuming: the copy re-created from the masters with the step's seed is the one the update wrote
    CtAdamW opt;
    ct_adamw_init(&opt, n, 1e-3, 0.9, 0.95, 1e-8, 0.1);
    ct_adamw_move_to(&opt, BF16);
    opt.seed = 1337;
    opt.step = 1;
    float *resumed = upload_floats(a.master, n, "resumed params");
    BF16->keep_low_precision_weights(resumed, n, NULL);
    ct_adamw_resume_weight_copy(&opt, resumed);
    Result r = {NULL, download_copy(resumed, n), NULL, NULL};
    CHECK_MSG(r.copy && copies_differ(&a, &r, n) == 0, "the resumed copy differs from the one the step wrote");
    ct_cuda_free(resumed);
    ct_adamw_free(&opt);

    result_free(&a);
    result_free(&fp32);
    result_free(&b);
    result_free(&c);
    result_free(&z);
    result_free(&r);
    ct_free(pb.p0);
    ct_free(pb.g);
}

// ---- the model declares its weights ----

TEST(cuda, bf16_weights_declared_by_model_lora_and_dpo_reference) {
    need_gpu();
    CtModelConfig c = tiny_config(CT_ARCH_LLAMA);
    CtModel m;
    CHECK_EQ_INT(ct_model_create(&m, &c, ct_ops_cpu(), 2, 8, CT_MODEL_FROZEN), 0);
    tiny_randomize_params(&m, 3);
    ct_model_to_backend(&m, BF16);
    CHECK_EQ_INT(copy_mismatches_nearest(m.dev_params, m.n_params), 0);
    // host edits pushed to the device refresh the copy
    for (size_t i = 0; i < m.n_params; i++) m.params[i] *= 1.5f;
    ct_model_sync_to_device(&m);
    CHECK_EQ_INT(copy_mismatches_nearest(m.dev_params, m.n_params), 0);
    // LoRA adapters attached on the device, and initialised
    CtLoraSpec spec = {.r = 2, .alpha = 4};
    snprintf(spec.targets, sizeof spec.targets, "all-linear");
    CHECK_EQ_INT(ct_lora_attach(&m, &spec), 0);
    ct_lora_init(&m, 5);
    CHECK_EQ_INT(copy_mismatches_nearest(m.lora->dev_params, m.lora->n_params), 0);
    // DPO's frozen reference, a copy of the policy moved to the device
    CtDpo d;
    CHECK_EQ_INT(ct_dpo_init(&d, CT_DPO_SIGMOID, 0.1, 0, &m, NULL, 2, 8), 0);
    CHECK(d.base_as_reference);  // a LoRA policy: the base is the reference; a full model below
    ct_dpo_free(&d);
    const float *adapters = m.lora->dev_params;
    const size_t n_adapters = m.lora->n_params;
    ct_lora_merge(&m);  // folds the adapters in: they are freed, the merged weights declared
    CHECK(ct_cuda_bf16_weights(adapters, n_adapters) == NULL);
    CHECK_EQ_INT(copy_mismatches_nearest(m.dev_params, m.n_params), 0);
    CHECK_EQ_INT(ct_dpo_init(&d, CT_DPO_SIGMOID, 0.1, 0, &m, NULL, 2, 8), 0);
    CHECK(d.have_ref && !d.ref.ops->host_memory);
    CHECK_EQ_INT(copy_mismatches_nearest(d.ref.dev_params, d.ref.n_params), 0);
    const float *ref_params = d.ref.dev_params, *params = m.dev_params;
    ct_dpo_free(&d);
    CHECK(ct_cuda_bf16_weights(ref_params, 1) == NULL);
    ct_model_free(&m);
    CHECK(ct_cuda_bf16_weights(params, 1) == NULL);
}

#else

TEST(cuda, bf16_weights) { SKIP("this ctrain was built without CUDA (make CUDA=1 where nvcc is installed)"); }

#endif
