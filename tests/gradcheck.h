// Finite-difference gradient checks for the ops (used by tests/test_ops_*.c).
//
// A case describes an op through four callbacks over its context: forward and backward in
// double (the _f64 instantiation of the CPU kernels) and in float (the op table under test).
// The scalar checked is L = Σ out·dout for a fixed random dout, so backward(dout) must equal
// dL/dx. gradcheck_run:
//   1. compares the double backward with central differences of L in double (step 1e-5);
//   2. runs the float forward and backward on the same numbers, rounded to float, and
//      compares them with the double results.
// Errors are relative to the tensor: max |a - b| / max(max |b|, 1e-12), per input.
#pragma once
#include <stddef.h>

#include "core/rng.h"

#define GRADCHECK_MAX_INPUTS 6

typedef struct {
    const char *label;
    int n_inputs;
    double *x[GRADCHECK_MAX_INPUTS];  // the differentiable inputs, in double
    float *xf[GRADCHECK_MAX_INPUTS];  // float copies, filled by gradcheck_run
    size_t n[GRADCHECK_MAX_INPUTS];
    size_t n_out;
    void *ctx;
    void (*forward64)(void *ctx, double **x, double *out);
    // adds dL/dx into dx[i] (zeroed by the harness); dx[i] may be NULL for no gradient.
    void (*backward64)(void *ctx, double **x, const double *dout, double **dx);
    void (*forward32)(void *ctx, float **x, float *out);
    void (*backward32)(void *ctx, float **x, const float *dout, float **dx);
} GradCase;

typedef struct {
    double fd_error;      // worst input: double backward vs finite differences
    double float_error;   // worst input: float backward vs double backward
    double forward_error; // float forward vs double forward
} GradResult;

GradResult gradcheck_run(GradCase *c, CtRng *rng);
// Frees what gradcheck_run allocated in c (the float copies).
void gradcheck_free(GradCase *c);

// Helpers for building cases.
double *gc_random(CtRng *rng, size_t n, double scale);  // normal(0, scale), ct_alloc'ed
float *gc_to_float(const double *x, size_t n);          // ct_alloc'ed copy
double gc_max_rel_error(const double *a, const double *b, size_t n);
double gc_max_rel_error_f(const float *a, const double *b, size_t n);

// The test's tolerances (the acceptance bar).
#define GC_FD_TOL 1e-6
#define GC_FLOAT_TOL 1e-3

// gradcheck_run with the fixed seed 1234 for dout, then gradcheck_free.
GradResult gradcheck_case(GradCase *c);

// The three checks of a case against the tolerances, in a test (tests/test.h's CHECK_MSG).
#define CHECK_GRADS(c)                                                                                          \
    do {                                                                                                        \
        GradResult r_ = gradcheck_case(&(c));                                                                   \
        CHECK_MSG(r_.fd_error < GC_FD_TOL, "%s: double gradient vs finite differences: %.3g", (c).label,       \
                  r_.fd_error);                                                                                 \
        CHECK_MSG(r_.float_error < GC_FLOAT_TOL, "%s: float gradient vs double: %.3g", (c).label, r_.float_error); \
        CHECK_MSG(r_.forward_error < 1e-4, "%s: float forward vs double: %.3g", (c).label, r_.forward_error);   \
    } while (0)
