// The attention op as tests/gradcheck.h checks it: forward and backward in double (the CPU
// kernels' _f64 instantiation) and in float (the CPU table), the op's arguments in one context.
// Shared by the causal (test_ops_grad.c), bidirectional (test_ops_attention_bidirectional.c) and
// prefix (test_ops_attention_prefix.c) checks.
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
    int P, prefix_stride;  // the prefix op (attention_prefix_grad_*): x[1] is prefix_kv[P, prefix_stride];
                           // att and attf then hold B·NH·T·(P+T)
} AttentionGradCtx;

void attention_grad_f64(void *ctx, double **x, double *out);
void attention_grad_b64(void *ctx, double **x, const double *dout, double **dx);
void attention_grad_f32(void *ctx, float **x, float *out);
void attention_grad_b32(void *ctx, float **x, const float *dout, float **dx);

// attention_prefix_forward/backward: x[0] = qkv, x[1] = prefix_kv.
void attention_prefix_grad_f64(void *ctx, double **x, double *out);
void attention_prefix_grad_b64(void *ctx, double **x, const double *dout, double **dx);
void attention_prefix_grad_f32(void *ctx, float **x, float *out);
void attention_prefix_grad_b32(void *ctx, float **x, const float *dout, float **dx);
