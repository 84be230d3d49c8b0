// The CUDA op functions behind ct_ops_cuda() (kernels/cuda/ops_table.cu), one per op of
// kernels/ops.h with the same signature; each .cu includes this so a mismatch fails to compile.
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif
void ct_cuda_embedding_forward(float *out, const int32_t *ids, const float *table, int N, int C, int accumulate);
void ct_cuda_embedding_backward(float *dtable, const float *dout, const int32_t *ids, int N, int C);
void ct_cuda_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                               const float *bias, int N, int C, float eps);
void ct_cuda_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                                const float *weight, const float *mean, const float *rstd, int N, int C);
void ct_cuda_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, int N, int C, float eps);
void ct_cuda_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                              const float *rstd, int N, int C);
void ct_cuda_bias_backward(float *dbias, const float *dout, int N, int OC);
void ct_cuda_matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int C, int OC);
void ct_cuda_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                             const float *weight, int N, int C, int OC);
void ct_cuda_attention_forward(float *out, float *att, const float *qkv, const int32_t *doc_ids, float dropout_p,
                               uint64_t dropout_seed, int B, int T, int NH, int NKV, int HD);
void ct_cuda_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att, float dropout_p,
                                uint64_t dropout_seed, int B, int T, int NH, int NKV, int HD);
void ct_cuda_attention_decode(float *out, const float *q, const float *k_cache, const float *v_cache, int n_ctx, int NH,
                              int NKV, int HD);
void ct_cuda_rope_forward(float *out, const float *inp, const int32_t *positions, int B, int T, int n_heads, int HD,
                          int row_stride, float theta);
void ct_cuda_rope_backward(float *dinp, const float *dout, const int32_t *positions, int B, int T, int n_heads, int HD,
                           int row_stride, float theta);
void ct_cuda_gelu_forward(float *out, const float *inp, size_t n);
void ct_cuda_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n);
void ct_cuda_swiglu_forward(float *out, const float *gate_up, int N, int F);
void ct_cuda_swiglu_backward(float *dgate_up, const float *dout, const float *gate_up, int N, int F);
void ct_cuda_residual_forward(float *out, const float *a, const float *b, size_t n);
void ct_cuda_residual_backward(float *da, float *db, const float *dout, size_t n);
void ct_cuda_xent_forward(float *losses, float *logprobs, float *lse, const float *logits, const int32_t *targets,
                          const uint8_t *mask, const float *weights, int N, int V);
void ct_cuda_xent_backward(float *logits_to_dlogits, const float *lse, const int32_t *targets, const uint8_t *mask,
                           const float *weights, float scale, int N, int V);
void ct_cuda_lora_forward(float *out, float *h, const float *inp, const float *A, const float *B, float scale, int N,
                          int C, int R, int OC, int out_stride);
void ct_cuda_lora_backward(float *dinp, float *dA, float *dB, float *dh, const float *dout, const float *inp,
                           const float *h, const float *A, const float *B, float scale, int N, int C, int R, int OC,
                           int dout_stride);
void ct_cuda_dropout_forward(float *out, const float *inp, size_t n, float p, uint64_t seed);
void ct_cuda_dropout_backward(float *dinp, const float *dout, size_t n, float p, uint64_t seed);
void ct_cuda_matmul_forward_bf16(float *out, const float *inp, const float *weight, const float *bias, int N, int C,
                                 int OC);
void ct_cuda_matmul_backward_bf16(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                                  const float *weight, int N, int C, int OC);
void ct_cuda_lora_forward_bf16(float *out, float *h, const float *inp, const float *A, const float *B, float scale, int N,
                               int C, int R, int OC, int out_stride);
void ct_cuda_lora_backward_bf16(float *dinp, float *dA, float *dB, float *dh, const float *dout, const float *inp,
                                const float *h, const float *A, const float *B, float scale, int N, int C, int R, int OC,
                                int dout_stride);
void ct_cuda_matmul_bias_gelu_forward_bf16(float *out, float *pre, const float *inp, const float *weight,
                                           const float *bias, int N, int C, int OC);
void ct_cuda_matmul_backward_dgelu_bf16(float *dpre, float *dweight, float *dbias, const float *dout,
                                        const float *inp, const float *pre, const float *weight, int N, int C, int OC);
// d ← gelu'(pre) ⊙ d in place (the fused backward's fallback)
void ct_cuda_gelu_grad_scale(float *d, const float *pre, size_t n);
void ct_cuda_attention_forward_bf16(float *out, float *att, const float *qkv, const int32_t *doc_ids, float dropout_p,
                                    uint64_t dropout_seed, int B, int T, int NH, int NKV, int HD);
void ct_cuda_attention_backward_bf16(float *dqkv, const float *dout, const float *qkv, const float *att,
                                     float dropout_p, uint64_t dropout_seed, int B, int T, int NH, int NKV, int HD);
void ct_cuda_keep_bf16_weights(const float *params, size_t n, const uint64_t *rounding_seed);
#ifdef __cplusplus
}
#endif
