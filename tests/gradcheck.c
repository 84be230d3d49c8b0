#include "tests/gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

double *gc_random(CtRng *rng, size_t n, double scale) {
    double *x = ct_alloc(n * sizeof(double) + 8);
    for (size_t i = 0; i < n; i++) x[i] = scale * ct_rng_normal(rng);
    return x;
}

float *gc_to_float(const double *x, size_t n) {
    float *f = ct_alloc(n * sizeof(float) + 4);
    for (size_t i = 0; i < n; i++) f[i] = (float)x[i];
    return f;
}

double gc_max_rel_error(const double *a, const double *b, size_t n) {
    double diff = 0, ref = 1e-12;
    for (size_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs(a[i] - b[i]));
        ref = fmax(ref, fabs(b[i]));
    }
    return diff / ref;
}

double gc_max_rel_error_f(const float *a, const double *b, size_t n) {
    double diff = 0, ref = 1e-12;
    for (size_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)a[i] - b[i]));
        ref = fmax(ref, fabs(b[i]));
    }
    return diff / ref;
}

static double projected(GradCase *c, double *out, const double *dout) {
    c->forward64(c->ctx, c->x, out);
    double l = 0;
    for (size_t i = 0; i < c->n_out; i++) l += out[i] * dout[i];
    return l;
}

GradResult gradcheck_run(GradCase *c, CtRng *rng) {
    GradResult r = {0, 0, 0};
    const double h = 1e-5;
    double *dout = gc_random(rng, c->n_out, 1.0);
    double *out = ct_alloc(c->n_out * sizeof(double));
    double *dx[GRADCHECK_MAX_INPUTS] = {0};
    for (int i = 0; i < c->n_inputs; i++) dx[i] = ct_calloc(c->n[i] + 1, sizeof(double));
    double *ref_out = ct_alloc(c->n_out * sizeof(double));
    c->forward64(c->ctx, c->x, ref_out);  // backward may use what forward saved
    c->backward64(c->ctx, c->x, dout, dx);

    for (int i = 0; i < c->n_inputs; i++) {
        double *fd = ct_alloc(c->n[i] * sizeof(double) + 8);
        for (size_t j = 0; j < c->n[i]; j++) {
            double keep = c->x[i][j];
            c->x[i][j] = keep + h;
            double lp = projected(c, out, dout);
            c->x[i][j] = keep - h;
            double lm = projected(c, out, dout);
            c->x[i][j] = keep;
            fd[j] = (lp - lm) / (2 * h);
        }
        double e = gc_max_rel_error(dx[i], fd, c->n[i]);
        if (e > r.fd_error) r.fd_error = e;
        if (e > GC_FD_TOL) printf("    %s: input %d: double backward vs finite differences: %.3g\n", c->label, i, e);
        ct_free(fd);
    }

    // the float op table on the same numbers
    float *outf = ct_alloc(c->n_out * sizeof(float));
    float *doutf = gc_to_float(dout, c->n_out);
    float *dxf[GRADCHECK_MAX_INPUTS] = {0};
    for (int i = 0; i < c->n_inputs; i++) {
        c->xf[i] = gc_to_float(c->x[i], c->n[i]);
        dxf[i] = ct_calloc(c->n[i] + 1, sizeof(float));
    }
    c->forward32(c->ctx, c->xf, outf);
    r.forward_error = gc_max_rel_error_f(outf, ref_out, c->n_out);
    c->backward32(c->ctx, c->xf, doutf, dxf);
    for (int i = 0; i < c->n_inputs; i++) {
        double e = gc_max_rel_error_f(dxf[i], dx[i], c->n[i]);
        if (e > r.float_error) r.float_error = e;
        if (e > GC_FLOAT_TOL) printf("    %s: input %d: float backward vs double: %.3g\n", c->label, i, e);
        ct_free(dxf[i]);
        ct_free(dx[i]);
    }
    ct_free(outf);
    ct_free(doutf);
    ct_free(out);
    ct_free(ref_out);
    ct_free(dout);
    return r;
}

void gradcheck_free(GradCase *c) {
    for (int i = 0; i < c->n_inputs; i++) {
        ct_free(c->xf[i]);
        c->xf[i] = NULL;
    }
}

GradResult gradcheck_case(GradCase *c) {
    CtRng rng;
    ct_rng_seed(&rng, 1234);
    GradResult r = gradcheck_run(c, &rng);
    gradcheck_free(c);
    return r;
}
