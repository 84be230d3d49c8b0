#include "tests/attention_gradcheck.h"

#include "kernels/cpu/cpu_ops.h"

void attention_grad_f64(void *ctx, double **x, double *out) {
    AttentionGradCtx *a = ctx;
    ct_cpu_attention_forward_f64(out, a->att, x[0], a->doc, a->p, a->seed, a->B, a->T, a->NH, a->NKV, a->HD, a->opt);
}

void attention_grad_b64(void *ctx, double **x, const double *dout, double **dx) {
    AttentionGradCtx *a = ctx;
    ct_cpu_attention_backward_f64(dx[0], dout, x[0], a->att, a->p, a->seed, a->B, a->T, a->NH, a->NKV, a->HD, a->opt);
}

void attention_grad_f32(void *ctx, float **x, float *out) {
    AttentionGradCtx *a = ctx;
    ct_ops_cpu()->attention_forward(out, a->attf, x[0], a->doc, a->p, a->seed, a->B, a->T, a->NH, a->NKV, a->HD,
                                    a->opt);
}

void attention_grad_b32(void *ctx, float **x, const float *dout, float **dx) {
    AttentionGradCtx *a = ctx;
    ct_ops_cpu()->attention_backward(dx[0], dout, x[0], a->attf, a->p, a->seed, a->B, a->T, a->NH, a->NKV, a->HD,
                                     a->opt);
}

void attention_prefix_grad_f64(void *ctx, double **x, double *out) {
    AttentionGradCtx *a = ctx;
    ct_cpu_attention_prefix_forward_f64(out, a->att, x[0], x[1], a->P, a->prefix_stride, a->doc, a->p, a->seed, a->B,
                                        a->T, a->NH, a->NKV, a->HD, a->opt);
}

void attention_prefix_grad_b64(void *ctx, double **x, const double *dout, double **dx) {
    AttentionGradCtx *a = ctx;
    ct_cpu_attention_prefix_backward_f64(dx[0], dx[1], dout, x[0], x[1], a->P, a->prefix_stride, a->att, a->p,
                                         a->seed, a->B, a->T, a->NH, a->NKV, a->HD, a->opt);
}

void attention_prefix_grad_f32(void *ctx, float **x, float *out) {
    AttentionGradCtx *a = ctx;
    ct_ops_cpu()->attention_prefix_forward(out, a->attf, x[0], x[1], a->P, a->prefix_stride, a->doc, a->p, a->seed,
                                           a->B, a->T, a->NH, a->NKV, a->HD, a->opt);
}

void attention_prefix_grad_b32(void *ctx, float **x, const float *dout, float **dx) {
    AttentionGradCtx *a = ctx;
    ct_ops_cpu()->attention_prefix_backward(dx[0], dx[1], dout, x[0], x[1], a->P, a->prefix_stride, a->attf, a->p,
                                            a->seed, a->B, a->T, a->NH, a->NKV, a->HD, a->opt);
}
