// Helpers of the CUDA op tests (tests/test_cuda_ops*.c): device arrays against the CPU's, on
// either CUDA table (fp32: TOL; bf16 activations: 1e-2). CUDA builds only; include after test.h.
#pragma once
#ifdef CTRAIN_CUDA
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/device.h"
#include "kernels/ops.h"
#include "tests/cuda_fixture.h"
#include "tests/test.h"

#define TOL 1e-5
#define CPU (ct_ops_cpu())
#define GPU (ct_ops_cuda())

static inline void need_gpu(void) {
    char why[256];
    if (ct_cuda_device_count(why, sizeof why) <= 0) SKIP("%s", why);
}

static inline float *rnd(CtRng *rng, size_t n, float scale) {
    float *x = ct_alloc(n * sizeof(float) + 1);
    ct_rng_fill_normal(rng, x, n, 0, scale);
    return x;
}
static inline float *copy_of(const float *x, size_t n) {
    float *y = ct_alloc(n * sizeof(float) + 1);
    memcpy(y, x, n * sizeof(float));
    return y;
}
static inline void *up(const void *host, size_t bytes) { return cuda_fixture_up(host, bytes, "test input"); }
static inline float *upf(const float *host, size_t n) { return up(host, n * sizeof(float)); }
// max |got - want| / max |want|; infinite when anything is nan.
static inline double rel_diff(const float *got, const float *want, size_t n) {
    double diff = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (!(d <= diff)) diff = isnan(d) ? INFINITY : d;
        if (fabs((double)want[i]) > scale) scale = fabs((double)want[i]);
    }
    return diff / (scale > 1e-30 ? scale : 1e-30);
}
static inline double dev_vs_host(const float *dev, const float *host, size_t n) {
    float *h = cuda_fixture_down(dev, n);
    double e = rel_diff(h, host, n);
    ct_free(h);
    return e;
}
// The device array equals the host one to TOL (or the given tolerance).
#define CHECK_CLOSE_TOL(dev, host, n, tol, what)                                                    \
    do {                                                                                            \
        double e_ = dev_vs_host((dev), (host), (n));                                                \
        CHECK_MSG(e_ < (tol), "%s: cuda vs cpu relative difference %.3g (tolerance %.1g)", (what), e_, \
                  (double)(tol));                                                                   \
    } while (0)
#define CHECK_CLOSE(dev, host, n, what) CHECK_CLOSE_TOL(dev, host, n, TOL, what)
// Two device arrays hold the same bits.
static inline int same_bits(const float *a_dev, const float *b_dev, size_t n) {
    float *a = cuda_fixture_down(a_dev, n), *b = cuda_fixture_down(b_dev, n);
    int same = memcmp(a, b, n * sizeof(float)) == 0;
    ct_free(a);
    ct_free(b);
    return same;
}

// ---- activations of either table (the element-wise, norm, rope, embedding tests) ----

// Each of these tests runs on the fp32 table (tolerance TOL against the CPU) and on the bf16 one:
// activations rounded to bf16 in memory, relative error below 1e-2. Float outputs (weight
// gradients, mean, rstd) keep TOL on both: they are computed in float from the same inputs.
static inline int is_bf16(const CtOps *gpu) { return gpu->act_bytes == 2; }
static inline double act_tol(const CtOps *gpu) { return is_bf16(gpu) ? 1e-2 : TOL; }
// The inputs as the bf16 table holds them (to nearest even, as the kernels store), in place; a
// no-op for the fp32 table. Tests give the CPU the rounded inputs too, so the comparison measures
// the kernel (its float math and its one rounding at the store), not the rounding of the inputs.
static inline void as_table_holds(const CtOps *gpu, float *x, size_t n) {
    if (!is_bf16(gpu)) return;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], sizeof u);
        u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
        memcpy(&x[i], &u, sizeof u);
    }
}
static inline CtAct *up_act(const CtOps *gpu, const float *host, size_t n) { return cuda_fixture_up_act(gpu, host, n); }
static inline CtAct *new_act(const CtOps *gpu, size_t n, const char *what) {
    return ct_cuda_malloc(n * gpu->act_bytes + 1, what);
}
static inline double act_vs_host(const CtOps *gpu, const CtAct *dev, const float *host, size_t n) {
    float *h = cuda_fixture_down_act(gpu, dev, n);
    double e = rel_diff(h, host, n);
    ct_free(h);
    return e;
}
// The activation array of table gpu equals the CPU's to `tol`, or to the table's tolerance.
#define CHECK_ACT_CLOSE_TOL(gpu, dev, host, n, tol, what)                                                  \
    do {                                                                                                   \
        double e_ = act_vs_host((gpu), (dev), (host), (n)), t_ = (tol);                                    \
        CHECK_MSG(e_ < t_, "%s (%s): cuda vs cpu relative difference %.3g (tolerance %.1g)", (what),      \
                  (gpu)->name, e_, t_);                                                                    \
    } while (0)
#define CHECK_ACT_CLOSE(gpu, dev, host, n, what) CHECK_ACT_CLOSE_TOL(gpu, dev, host, n, act_tol(gpu), what)
#endif
