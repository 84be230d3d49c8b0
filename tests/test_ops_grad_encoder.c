// The element-wise ops the encoder models (BERT, RoBERTa; issue #26) add: the exact GELU of
// BERT's MLP and MLM head, and the pooler's tanh. Backward against central finite differences in
// double, the float op table against double (tests/gradcheck.h).
#include <math.h>

#include "core/alloc.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops.h"
#include "tests/gradcheck.h"
#include "tests/test.h"

#define OPS (ct_ops_cpu())

typedef struct {
    size_t n;
} PwCtx;

static void gelu_erf_f64(void *p, double **x, double *out) { ct_cpu_gelu_erf_forward_f64(out, x[0], ((PwCtx *)p)->n); }
static void gelu_erf_b64(void *p, double **x, const double *dout, double **dx) {
    ct_cpu_gelu_erf_backward_f64(dx[0], x[0], dout, ((PwCtx *)p)->n);
}
static void gelu_erf_f32(void *p, float **x, float *out) { OPS->gelu_erf_forward(out, x[0], ((PwCtx *)p)->n); }
static void gelu_erf_b32(void *p, float **x, const float *dout, float **dx) {
    OPS->gelu_erf_backward(dx[0], x[0], dout, ((PwCtx *)p)->n);
}

// tanh's backward reads the forward's output: each callback runs the forward first.
static void tanh_f64(void *p, double **x, double *out) { ct_cpu_tanh_forward_f64(out, x[0], ((PwCtx *)p)->n); }
static void tanh_b64(void *p, double **x, const double *dout, double **dx) {
    const size_t n = ((PwCtx *)p)->n;
    double *y = ct_alloc(n * sizeof(double));
    ct_cpu_tanh_forward_f64(y, x[0], n);
    ct_cpu_tanh_backward_f64(dx[0], y, dout, n);
    ct_free(y);
}
static void tanh_f32(void *p, float **x, float *out) { OPS->tanh_forward(out, x[0], ((PwCtx *)p)->n); }
static void tanh_b32(void *p, float **x, const float *dout, float **dx) {
    const size_t n = ((PwCtx *)p)->n;
    float *y = ct_alloc(n * sizeof(float));
    OPS->tanh_forward(y, x[0], n);
    OPS->tanh_backward(dx[0], y, dout, n);
    ct_free(y);
}

TEST(ops, gelu_erf_gradient) {
    CtRng rng;
    ct_rng_seed(&rng, 261);
    PwCtx p = {.n = 300};
    GradCase c = {.label = "gelu (erf)", .n_inputs = 1, .x = {gc_random(&rng, p.n, 3)}, .n = {p.n}, .n_out = p.n,
                  .ctx = &p, .forward64 = gelu_erf_f64, .backward64 = gelu_erf_b64, .forward32 = gelu_erf_f32,
                  .backward32 = gelu_erf_b32};
    CHECK_GRADS(c);
}

TEST(ops, tanh_gradient) {
    CtRng rng;
    ct_rng_seed(&rng, 262);
    PwCtx p = {.n = 300};
    GradCase c = {.label = "tanh", .n_inputs = 1, .x = {gc_random(&rng, p.n, 2)}, .n = {p.n}, .n_out = p.n, .ctx = &p,
                  .forward64 = tanh_f64, .backward64 = tanh_b64, .forward32 = tanh_f32, .backward32 = tanh_b32};
    CHECK_GRADS(c);
}

// The exact GELU is x·Φ(x): far out it is x (x ≫ 0) or 0 (x ≪ 0), at 0 it is 0, and it differs
// from the tanh form by at most ~5e-4 (the approximation's known error; a tanh form passed off as
// the exact one, or an erf of x instead of x/√2, is off by far more).
TEST(ops, gelu_erf_is_x_times_the_normal_cdf) {
    float x[7] = {-12, -3, -1, 0, 0.5f, 2, 12}, y[7], yt[7];
    OPS->gelu_erf_forward(y, x, 7);
    OPS->gelu_forward(yt, x, 7);
    for (int i = 0; i < 7; i++) {
        const double cdf = 0.5 * erfc(-(double)x[i] / sqrt(2.0));  // Φ through erfc: another route than erf
        CHECK_MSG(fabs(y[i] - x[i] * cdf) < 1e-6 * fmax(1, fabs(x[i])), "gelu_erf(%g) = %.9g, x·Φ(x) = %.9g",
                  (double)x[i], (double)y[i], x[i] * cdf);
        CHECK_MSG(fabs(y[i] - yt[i]) < 1e-3, "gelu_erf(%g) = %g is not near the tanh form's %g", (double)x[i],
                  (double)y[i], (double)yt[i]);
    }
    CHECK(y[0] == 0 || fabsf(y[0]) < 1e-20f);
    CHECK(fabsf(y[6] - 12) < 1e-6f);
    CHECK(fabsf(yt[2] - y[2]) > 1e-5f);  // the two forms do differ (by 1.5e-4 at -1)
}
