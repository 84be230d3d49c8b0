// The CUDA op functions behind ct_ops_cuda() and ct_ops_cuda_bf16() (kernels/cuda/ops_table.cu),
// one pair per op of kernels/ops.h with the same signature; each .cu includes this so a mismatch
// fails to compile. ct_cuda_X is the fp32 table's op (CtAct = float); ct_cuda_X_bf16 the bf16
// table's (CtAct = __nv_bfloat16). The kernels are written once, templated on the activation type
// (see act_io.cuh), and instantiated for both; CT_CUDA_EXPORT_PAIR (act_io.cuh) defines a pair.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "kernels/ops.h"

#ifdef __cplusplus
extern "C" {
#endif
// Declares fp32_name (the fp32 table's op) and bf16_name (the bf16 table's), both taking params.
#define CT_CUDA_OP_PAIR(fp32_name, bf16_name, params) \
    void fp32_name params;                            \
    void bf16_name params

CT_CUDA_OP_PAIR(ct_cuda_embedding_forward, ct_cuda_embedding_forward_bf16,
                (CtAct *out, const int32_t *ids, const float *table, int N, int C, int accumulate));
CT_CUDA_OP_PAIR(ct_cuda_embedding_backward, ct_cuda_embedding_backward_bf16,
                (float *dtable, const CtAct *dout, const int32_t *ids, int N, int C));
CT_CUDA_OP_PAIR(ct_cuda_layernorm_forward, ct_cuda_layernorm_forward_bf16,
                (CtAct *out, float *mean, float *rstd, const CtAct *inp, const float *weight, const float *bias, int N,
                 int C, float eps));
CT_CUDA_OP_PAIR(ct_cuda_layernorm_backward, ct_cuda_layernorm_backward_bf16,
                (CtAct *dinp, float *dweight, float *dbias, const CtAct *dout, const CtAct *inp, const float *weight,
                 const float *mean, const float *rstd, int N, int C));
CT_CUDA_OP_PAIR(ct_cuda_rmsnorm_forward, ct_cuda_rmsnorm_forward_bf16,
                (CtAct *out, float *rstd, const CtAct *inp, const float *weight, int N, int C, float eps));
CT_CUDA_OP_PAIR(ct_cuda_rmsnorm_backward, ct_cuda_rmsnorm_backward_bf16,
                (CtAct *dinp, float *dweight, const CtAct *dout, const CtAct *inp, const float *weight,
                 const float *rstd, int N, int C));
CT_CUDA_OP_PAIR(ct_cuda_bias_backward, ct_cuda_bias_backward_bf16, (float *dbias, const CtAct *dout, int N, int OC));
CT_CUDA_OP_PAIR(ct_cuda_matmul_forward, ct_cuda_matmul_forward_bf16,
                (CtAct *out, const CtAct *inp, const float *weight, const float *bias, int N, int C, int OC));
CT_CUDA_OP_PAIR(ct_cuda_matmul_backward, ct_cuda_matmul_backward_bf16,
                (CtAct *dinp, float *dweight, float *dbias, const CtAct *dout, const CtAct *inp, const float *weight,
                 int N, int C, int OC));
CT_CUDA_OP_PAIR(ct_cuda_attention_forward, ct_cuda_attention_forward_bf16,
                (CtAct *out, float *att, const CtAct *qkv, const int32_t *doc_ids, float dropout_p,
                 uint64_t dropout_seed, int B, int T, int NH, int NKV, int HD, const CtAttentionOptions *opt));
CT_CUDA_OP_PAIR(ct_cuda_attention_backward, ct_cuda_attention_backward_bf16,
                (CtAct *dqkv, const CtAct *dout, const CtAct *qkv, const float *att, float dropout_p,
                 uint64_t dropout_seed, int B, int T, int NH, int NKV, int HD, const CtAttentionOptions *opt));
CT_CUDA_OP_PAIR(ct_cuda_attention_backward_with_out, ct_cuda_attention_backward_with_out_bf16,
                (CtAct *dqkv, const CtAct *dout, const CtAct *out, const CtAct *qkv, const float *att, float dropout_p,
                 uint64_t dropout_seed, int B, int T, int NH, int NKV, int HD, const CtAttentionOptions *opt));
CT_CUDA_OP_PAIR(ct_cuda_attention_prefix_forward, ct_cuda_attention_prefix_forward_bf16,
                (CtAct *out, float *att, const CtAct *qkv, const CtAct *prefix_kv, int P, int prefix_stride,
                 const int32_t *doc_ids, float dropout_p, uint64_t dropout_seed, int B, int T, int NH, int NKV, int HD,
                 const CtAttentionOptions *opt));
CT_CUDA_OP_PAIR(ct_cuda_attention_prefix_backward, ct_cuda_attention_prefix_backward_bf16,
                (CtAct *dqkv, CtAct *dprefix_kv, const CtAct *dout, const CtAct *qkv, const CtAct *prefix_kv, int P,
                 int prefix_stride, const float *att, float dropout_p, uint64_t dropout_seed, int B, int T, int NH,
                 int NKV, int HD, const CtAttentionOptions *opt));
CT_CUDA_OP_PAIR(ct_cuda_attention_decode, ct_cuda_attention_decode_bf16,
                (CtAct *out, const CtAct *q, int q_stride, const CtAct *k_cache, const CtAct *v_cache, int n_ctx,
                 int T, int NH, int NKV, int HD, const CtAttentionOptions *opt));
CT_CUDA_OP_PAIR(ct_cuda_rope_forward, ct_cuda_rope_forward_bf16,
                (CtAct *out, const CtAct *inp, const int32_t *positions, int B, int T, int n_heads, int HD,
                 int row_stride, const CtRope *rope));
CT_CUDA_OP_PAIR(ct_cuda_rope_backward, ct_cuda_rope_backward_bf16,
                (CtAct *dinp, const CtAct *dout, const int32_t *positions, int B, int T, int n_heads, int HD,
                 int row_stride, const CtRope *rope));
CT_CUDA_OP_PAIR(ct_cuda_qk_norm_forward, ct_cuda_qk_norm_forward_bf16,
                (CtAct *out, float *rstd, const CtAct *inp, const float *q_weight, const float *k_weight, int N, int NH,
                 int NKV, int HD, float eps));
CT_CUDA_OP_PAIR(ct_cuda_qk_norm_backward, ct_cuda_qk_norm_backward_bf16,
                (CtAct *dinp, float *dq_weight, float *dk_weight, const CtAct *dout, const CtAct *inp,
                 const float *q_weight, const float *k_weight, const float *rstd, int N, int NH, int NKV, int HD));
CT_CUDA_OP_PAIR(ct_cuda_gelu_forward, ct_cuda_gelu_forward_bf16, (CtAct *out, const CtAct *inp, size_t n));
CT_CUDA_OP_PAIR(ct_cuda_gelu_backward, ct_cuda_gelu_backward_bf16,
                (CtAct *dinp, const CtAct *inp, const CtAct *dout, size_t n));
CT_CUDA_OP_PAIR(ct_cuda_gelu_grad_scale, ct_cuda_gelu_grad_scale_bf16, (CtAct *d, const CtAct *pre, size_t n));
CT_CUDA_OP_PAIR(ct_cuda_gelu_erf_forward, ct_cuda_gelu_erf_forward_bf16, (CtAct *out, const CtAct *inp, size_t n));
CT_CUDA_OP_PAIR(ct_cuda_gelu_erf_backward, ct_cuda_gelu_erf_backward_bf16,
                (CtAct *dinp, const CtAct *inp, const CtAct *dout, size_t n));
CT_CUDA_OP_PAIR(ct_cuda_tanh_forward, ct_cuda_tanh_forward_bf16, (CtAct *out, const CtAct *inp, size_t n));
CT_CUDA_OP_PAIR(ct_cuda_relu_forward, ct_cuda_relu_forward_bf16, (CtAct *out, const CtAct *inp, size_t n));
CT_CUDA_OP_PAIR(ct_cuda_relu_backward, ct_cuda_relu_backward_bf16,
                (CtAct *dinp, const CtAct *inp, const CtAct *dout, size_t n));
CT_CUDA_OP_PAIR(ct_cuda_tanh_backward, ct_cuda_tanh_backward_bf16,
                (CtAct *dinp, const CtAct *out, const CtAct *dout, size_t n));
CT_CUDA_OP_PAIR(ct_cuda_swiglu_forward, ct_cuda_swiglu_forward_bf16, (CtAct *out, const CtAct *gate_up, int N, int F));
CT_CUDA_OP_PAIR(ct_cuda_swiglu_backward, ct_cuda_swiglu_backward_bf16,
                (CtAct *dgate_up, const CtAct *dout, const CtAct *gate_up, int N, int F));
CT_CUDA_OP_PAIR(ct_cuda_geglu_forward, ct_cuda_geglu_forward_bf16, (CtAct *out, const CtAct *gate_up, int N, int F));
CT_CUDA_OP_PAIR(ct_cuda_geglu_backward, ct_cuda_geglu_backward_bf16,
                (CtAct *dgate_up, const CtAct *dout, const CtAct *gate_up, int N, int F));
CT_CUDA_OP_PAIR(ct_cuda_softcap_forward, ct_cuda_softcap_forward_bf16, (CtAct *x, size_t n, float cap));
CT_CUDA_OP_PAIR(ct_cuda_act_scale, ct_cuda_act_scale_bf16, (CtAct *x, size_t n, float s));
CT_CUDA_OP_PAIR(ct_cuda_residual_forward, ct_cuda_residual_forward_bf16,
                (CtAct *out, const CtAct *a, const CtAct *b, size_t n));
CT_CUDA_OP_PAIR(ct_cuda_xent_forward, ct_cuda_xent_forward_bf16,
                (float *losses, float *logprobs, float *lse, const CtAct *logits, const int32_t *targets,
                 const uint8_t *mask, const float *weights, int N, int V));
CT_CUDA_OP_PAIR(ct_cuda_xent_backward, ct_cuda_xent_backward_bf16,
                (CtAct *logits_to_dlogits, const float *lse, const int32_t *targets, const uint8_t *mask,
                 const float *weights, float scale, int N, int V, float softcap));
CT_CUDA_OP_PAIR(ct_cuda_lora_forward, ct_cuda_lora_forward_bf16,
                (CtAct *out, CtAct *h, const CtAct *inp, const float *A, const float *B, float scale, int N, int C,
                 int R, int OC, int out_stride));
CT_CUDA_OP_PAIR(ct_cuda_lora_backward, ct_cuda_lora_backward_bf16,
                (CtAct *dinp, float *dA, float *dB, CtAct *dh, const CtAct *dout, const CtAct *inp, const CtAct *h,
                 const float *A, const float *B, float scale, int N, int C, int R, int OC, int dout_stride));
CT_CUDA_OP_PAIR(ct_cuda_moe_route_forward, ct_cuda_moe_route_forward_bf16,
                (int32_t *expert_ids, float *weights, float *probs, float *lse, const CtAct *logits,
                 const float *bias, int N, const CtMoeRouting *r));
CT_CUDA_OP_PAIR(ct_cuda_moe_route_backward, ct_cuda_moe_route_backward_bf16,
                (CtAct *dlogits, const float *dweights, const CtAct *logits, const float *probs, const float *lse,
                 const int32_t *expert_ids, const float *weights, const float *f, float aux_coef, float z_coef, int N,
                 const CtMoeRouting *r));
CT_CUDA_OP_PAIR(ct_cuda_moe_gather_forward, ct_cuda_moe_gather_forward_bf16,
                (CtAct *out, const CtAct *inp, const int32_t *sorted_token, int R, int C));
CT_CUDA_OP_PAIR(ct_cuda_moe_gather_backward, ct_cuda_moe_gather_backward_bf16,
                (CtAct *dinp, const CtAct *dout, const int32_t *slot_of, int N, int K, int C));
CT_CUDA_OP_PAIR(ct_cuda_grouped_matmul_forward, ct_cuda_grouped_matmul_forward_bf16,
                (CtAct *out, const CtAct *inp, const float *weight, size_t expert_stride, const int32_t *offsets, int E,
                 int C, int OC));
CT_CUDA_OP_PAIR(ct_cuda_grouped_matmul_backward, ct_cuda_grouped_matmul_backward_bf16,
                (CtAct *dinp, float *dweight, const CtAct *dout, const CtAct *inp, const float *weight,
                 size_t expert_stride, const int32_t *offsets, int E, int C, int OC));
CT_CUDA_OP_PAIR(ct_cuda_moe_combine_forward, ct_cuda_moe_combine_forward_bf16,
                (CtAct *out, const CtAct *expert_out, const float *weights, const int32_t *slot_of,
                 const CtAct *shared, const CtAct *shared_gate, int N, int K, int C));
CT_CUDA_OP_PAIR(ct_cuda_moe_combine_backward, ct_cuda_moe_combine_backward_bf16,
                (CtAct *dexpert_out, float *dweights, CtAct *dshared, CtAct *dshared_gate, const CtAct *dout,
                 const CtAct *expert_out, const float *weights, const int32_t *slot_of, const CtAct *shared,
                 const CtAct *shared_gate, int N, int K, int C));
CT_CUDA_OP_PAIR(ct_cuda_dropout_forward, ct_cuda_dropout_forward_bf16,
                (CtAct *out, const CtAct *inp, size_t n, float p, uint64_t seed));
CT_CUDA_OP_PAIR(ct_cuda_dropout_backward, ct_cuda_dropout_backward_bf16,
                (CtAct *dinp, const CtAct *dout, size_t n, float p, uint64_t seed));
CT_CUDA_OP_PAIR(ct_cuda_upload_act, ct_cuda_upload_act_bf16, (CtAct *dst, const float *src_host, size_t n));
CT_CUDA_OP_PAIR(ct_cuda_download_act, ct_cuda_download_act_bf16, (float *dst_host, const CtAct *src, size_t n));

// ---- both tables, one function (no activations among their arguments: kernels/cuda/moe.cu) ----
void ct_cuda_moe_router_stats(double *q_mean, double *lse_sq_mean, const float *probs, const float *lse, int N,
                              const CtMoeRouting *r);
void ct_cuda_moe_permute(int32_t *offsets, int32_t *sorted_token, int32_t *slot_of, const int32_t *expert_ids, int N,
                         int E, int K);

// ---- the bf16 table only (products and attention on the tensor cores) ----
void ct_cuda_matmul_bias_gelu_forward_bf16(CtAct *out, CtAct *pre, const CtAct *inp, const float *weight,
                                           const float *bias, int N, int C, int OC);
void ct_cuda_matmul_backward_dgelu_bf16(CtAct *dpre, float *dweight, float *dbias, const CtAct *dout,
                                        const CtAct *inp, const CtAct *pre, const float *weight, int N, int C,
                                        int OC);
// d ← gelu'(pre) ⊙ d in place is ct_cuda_gelu_grad_scale(_bf16) above (the fused backward's fallback).
void ct_cuda_keep_bf16_weights(const float *params, size_t n, const uint64_t *rounding_seed);
#ifdef __cplusplus
}
#endif
