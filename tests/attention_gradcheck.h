// The attention op as tests/gradcheck.h checks it: forward and backward in double (the CPU
// kernels' _f64 instantiation) and in float (the CPU table), the op's arguments in one context.
// Shared by the causal (test_ops_grad.c) and bidirectional (test_ops_attention_bidirectional.c) checks.
#pragma once
#include <stdint.h>

#include "kernels/ops.h"

typedef struct {
    int B, T, NH, NKV, HD;
    float p;        // attention dropout
    uint64_t seed;  // its seed
    const int32_t *doc;
    double *att;  // saved probabilities, B·NH·T·T, for the double pass
    float *attf;  // the same for the float pass
    const CtAttentionOptions *opt;
} AttentionGradCtx;

void attention_grad_f64(void *ctx, double **x, double *out);
void attention_grad_b64(void *ctx, double **x, const double *dout, double **dx);
void attention_grad_f32(void *ctx, float **x, float *out);
void attention_grad_b32(void *ctx, float **x, const float *dout, float **dx);
