// The CPU backend's op table: the float instantiation of every kernel. The CPU's activations are
// float (act_bytes 4), so each op of kernels/ops.h, whose activation arrays are untyped (CtAct),
// forwards to the float kernel.
#include "core/alloc.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops.h"

static void upload_act(CtAct *dst, const float *src, size_t n) { ct_cpu_copy(dst, src, n * sizeof(float)); }
static void download_act(float *dst, const CtAct *src, size_t n) { ct_cpu_copy(dst, src, n * sizeof(float)); }

static void embedding_forward(CtAct *out, const int32_t *ids, const float *table, int N, int C, int accumulate) {
    ct_cpu_embedding_forward_f32(out, ids, table, N, C, accumulate);
}
static void embedding_backward(float *dtable, const CtAct *dout, const int32_t *ids, int N, int C) {
    ct_cpu_embedding_backward_f32(dtable, dout, ids, N, C);
}
static void layernorm_forward(CtAct *out, float *mean, float *rstd, const CtAct *inp, const float *weight,
                              const float *bias, int N, int C, float eps) {
    ct_cpu_layernorm_forward_f32(out, mean, rstd, inp, weight, bias, N, C, eps);
}
static void layernorm_backward(CtAct *dinp, float *dweight, float *dbias, const CtAct *dout, const CtAct *inp,
                               const float *weight, const float *mean, const float *rstd, int N, int C) {
    ct_cpu_layernorm_backward_f32(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
}
static void rmsnorm_forward(CtAct *out, float *rstd, const CtAct *inp, const float *weight, int N, int C,
                            float eps) {
    ct_cpu_rmsnorm_forward_f32(out, rstd, inp, weight, N, C, eps);
}
static void rmsnorm_backward(CtAct *dinp, float *dweight, const CtAct *dout, const CtAct *inp, const float *weight,
                             const float *rstd, int N, int C) {
    ct_cpu_rmsnorm_backward_f32(dinp, dweight, dout, inp, weight, rstd, N, C);
}
static void matmul_forward(CtAct *out, const CtAct *inp, const float *weight, const float *bias, int N, int C,
                           int OC) {
    ct_cpu_matmul_forward_f32(out, inp, weight, bias, N, C, OC);
}
static void matmul_backward(CtAct *dinp, float *dweight, float *dbias, const CtAct *dout, const CtAct *inp,
                            const float *weight, int N, int C, int OC) {
    ct_cpu_matmul_backward_f32(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
}
static void attention_forward(CtAct *out, float *att, const CtAct *qkv, const int32_t *doc_ids, float dropout_p,
                              uint64_t dropout_seed, int B, int T, int NH, int NKV, int HD,
                              const CtAttentionOptions *opt) {
    ct_cpu_attention_forward_f32(out, att, qkv, doc_ids, dropout_p, dropout_seed, B, T, NH, NKV, HD, opt);
}
static void attention_backward(CtAct *dqkv, const CtAct *dout, const CtAct *qkv, const float *att, float dropout_p,
                               uint64_t dropout_seed, int B, int T, int NH, int NKV, int HD,
                               const CtAttentionOptions *opt) {
    ct_cpu_attention_backward_f32(dqkv, dout, qkv, att, dropout_p, dropout_seed, B, T, NH, NKV, HD, opt);
}
static void attention_prefix_forward(CtAct *out, float *att, const CtAct *qkv, const CtAct *prefix_kv, int P,
                                     int prefix_stride, const int32_t *doc_ids, float dropout_p, uint64_t dropout_seed,
                                     int B, int T, int NH, int NKV, int HD, const CtAttentionOptions *opt) {
    ct_cpu_attention_prefix_forward_f32(out, att, qkv, prefix_kv, P, prefix_stride, doc_ids, dropout_p, dropout_seed, B,
                                        T, NH, NKV, HD, opt);
}
static void attention_prefix_backward(CtAct *dqkv, CtAct *dprefix_kv, const CtAct *dout, const CtAct *qkv,
                                      const CtAct *prefix_kv, int P, int prefix_stride, const float *att,
                                      float dropout_p, uint64_t dropout_seed, int B, int T, int NH, int NKV, int HD,
                                      const CtAttentionOptions *opt) {
    ct_cpu_attention_prefix_backward_f32(dqkv, dprefix_kv, dout, qkv, prefix_kv, P, prefix_stride, att, dropout_p,
                                         dropout_seed, B, T, NH, NKV, HD, opt);
}
static void attention_decode(CtAct *out, const CtAct *q, int q_stride, const CtAct *k_cache, const CtAct *v_cache,
                             int n_ctx, int T, int NH, int NKV, int HD, const CtAttentionOptions *opt) {
    ct_cpu_attention_decode_f32(out, q, q_stride, k_cache, v_cache, n_ctx, T, NH, NKV, HD, opt);
}
static void rope_forward(CtAct *out, const CtAct *inp, const int32_t *positions, int B, int T, int n_heads, int HD,
                         int row_stride, const CtRope *rope) {
    ct_cpu_rope_forward_f32(out, inp, positions, B, T, n_heads, HD, row_stride, rope);
}
static void rope_backward(CtAct *dinp, const CtAct *dout, const int32_t *positions, int B, int T, int n_heads,
                          int HD, int row_stride, const CtRope *rope) {
    ct_cpu_rope_backward_f32(dinp, dout, positions, B, T, n_heads, HD, row_stride, rope);
}
static void qk_norm_forward(CtAct *out, float *rstd, const CtAct *inp, const float *q_weight, const float *k_weight,
                            int N, int NH, int NKV, int HD, float eps) {
    ct_cpu_qk_norm_forward_f32(out, rstd, inp, q_weight, k_weight, N, NH, NKV, HD, eps);
}
static void qk_norm_backward(CtAct *dinp, float *dq_weight, float *dk_weight, const CtAct *dout, const CtAct *inp,
                             const float *q_weight, const float *k_weight, const float *rstd, int N, int NH, int NKV,
                             int HD) {
    ct_cpu_qk_norm_backward_f32(dinp, dq_weight, dk_weight, dout, inp, q_weight, k_weight, rstd, N, NH, NKV, HD);
}
static void gelu_forward(CtAct *out, const CtAct *inp, size_t n) {
    ct_cpu_gelu_forward_f32(out, inp, n);
}
static void gelu_backward(CtAct *dinp, const CtAct *inp, const CtAct *dout, size_t n) {
    ct_cpu_gelu_backward_f32(dinp, inp, dout, n);
}
static void gelu_erf_forward(CtAct *out, const CtAct *inp, size_t n) { ct_cpu_gelu_erf_forward_f32(out, inp, n); }
static void gelu_erf_backward(CtAct *dinp, const CtAct *inp, const CtAct *dout, size_t n) {
    ct_cpu_gelu_erf_backward_f32(dinp, inp, dout, n);
}
static void relu_forward(CtAct *out, const CtAct *inp, size_t n) { ct_cpu_relu_forward_f32(out, inp, n); }
static void relu_backward(CtAct *dinp, const CtAct *inp, const CtAct *dout, size_t n) {
    ct_cpu_relu_backward_f32(dinp, inp, dout, n);
}
static void lstm_forward(float *h, float *c, float *gates, const float *xg, const float *w_hh, const float *b_hh, int V,
                         int H, int ldh, int reverse) {
    ct_cpu_lstm_forward_f32(h, c, gates, xg, w_hh, b_hh, V, H, ldh, reverse);
}
static void lstm_backward(float *dxg, float *dw_hh, float *db_hh, float *dh, float *dc, const float *h, const float *c,
                          const float *gates, const float *w_hh, int V, int H, int ldh, int reverse) {
    ct_cpu_lstm_backward_f32(dxg, dw_hh, db_hh, dh, dc, h, c, gates, w_hh, V, H, ldh, reverse);
}
static void tanh_forward(CtAct *out, const CtAct *inp, size_t n) { ct_cpu_tanh_forward_f32(out, inp, n); }
static void tanh_backward(CtAct *dinp, const CtAct *out, const CtAct *dout, size_t n) {
    ct_cpu_tanh_backward_f32(dinp, out, dout, n);
}
static void swiglu_forward(CtAct *out, const CtAct *gate_up, int N, int F) {
    ct_cpu_swiglu_forward_f32(out, gate_up, N, F);
}
static void swiglu_backward(CtAct *dgate_up, const CtAct *dout, const CtAct *gate_up, int N, int F) {
    ct_cpu_swiglu_backward_f32(dgate_up, dout, gate_up, N, F);
}
static void geglu_forward(CtAct *out, const CtAct *gate_up, int N, int F) {
    ct_cpu_geglu_forward_f32(out, gate_up, N, F);
}
static void geglu_backward(CtAct *dgate_up, const CtAct *dout, const CtAct *gate_up, int N, int F) {
    ct_cpu_geglu_backward_f32(dgate_up, dout, gate_up, N, F);
}
static void softcap_forward(CtAct *x, size_t n, float cap) { ct_cpu_softcap_forward_f32(x, n, cap); }
static void act_scale(CtAct *x, size_t n, float s) { ct_cpu_act_scale_f32(x, n, s); }
static void residual_forward(CtAct *out, const CtAct *a, const CtAct *b, size_t n) {
    ct_cpu_residual_forward_f32(out, a, b, n);
}
static void xent_forward(float *losses, float *logprobs, float *lse, const CtAct *logits, const int32_t *targets,
                         const uint8_t *mask, const float *weights, int N, int V) {
    ct_cpu_xent_forward_f32(losses, logprobs, lse, logits, targets, mask, weights, N, V);
}
static void xent_backward(CtAct *logits_to_dlogits, const float *lse, const int32_t *targets, const uint8_t *mask,
                          const float *weights, float scale, int N, int V, float softcap) {
    ct_cpu_xent_backward_f32(logits_to_dlogits, lse, targets, mask, weights, scale, N, V, softcap);
}
static void xent_forward_backward(float *losses, float *logprobs, float *lse, CtAct *logits_to_dlogits,
                                  const int32_t *targets, const uint8_t *mask, const float *weights, float scale, int N,
                                  int V, float softcap) {
    ct_cpu_xent_forward_backward_f32(losses, logprobs, lse, logits_to_dlogits, targets, mask, weights, scale, N, V,
                                     softcap);
}
static void lora_forward(CtAct *out, CtAct *h, const CtAct *inp, const float *A, const float *B, float scale, int N,
                         int C, int R, int OC, int out_stride) {
    ct_cpu_lora_forward_f32(out, h, inp, A, B, scale, N, C, R, OC, out_stride);
}
static void lora_backward(CtAct *dinp, float *dA, float *dB, CtAct *dh, const CtAct *dout, const CtAct *inp,
                          const CtAct *h, const float *A, const float *B, float scale, int N, int C, int R, int OC,
                          int dout_stride) {
    ct_cpu_lora_backward_f32(dinp, dA, dB, dh, dout, inp, h, A, B, scale, N, C, R, OC, dout_stride);
}
static void moe_route_forward(int32_t *expert_ids, float *weights, float *probs, float *lse, const CtAct *logits,
                              const float *bias, int N, const CtMoeRouting *r) {
    ct_cpu_moe_route_forward_f32(expert_ids, weights, probs, lse, logits, bias, N, r);
}
static void moe_route_backward(CtAct *dlogits, const float *dweights, const CtAct *logits, const float *probs,
                               const float *lse, const int32_t *expert_ids, const float *weights, const float *f,
                               float aux_coef, float z_coef, int N, const CtMoeRouting *r) {
    ct_cpu_moe_route_backward_f32(dlogits, dweights, logits, probs, lse, expert_ids, weights, f, aux_coef, z_coef, N,
                                  r);
}
static void moe_gather_forward(CtAct *out, const CtAct *inp, const int32_t *sorted_token, int R, int C) {
    ct_cpu_moe_gather_forward_f32(out, inp, sorted_token, R, C);
}
static void moe_gather_backward(CtAct *dinp, const CtAct *dout, const int32_t *slot_of, int N, int K, int C) {
    ct_cpu_moe_gather_backward_f32(dinp, dout, slot_of, N, K, C);
}
static void grouped_matmul_forward(CtAct *out, const CtAct *inp, const float *weight, size_t expert_stride,
                                   const int32_t *offsets, int E, int C, int OC) {
    ct_cpu_grouped_matmul_forward_f32(out, inp, weight, expert_stride, offsets, E, C, OC);
}
static void grouped_matmul_backward(CtAct *dinp, float *dweight, const CtAct *dout, const CtAct *inp,
                                    const float *weight, size_t expert_stride, const int32_t *offsets, int E, int C,
                                    int OC) {
    ct_cpu_grouped_matmul_backward_f32(dinp, dweight, dout, inp, weight, expert_stride, offsets, E, C, OC);
}
static void moe_combine_forward(CtAct *out, const CtAct *expert_out, const float *weights, const int32_t *slot_of,
                                const CtAct *shared, const CtAct *shared_gate, int N, int K, int C) {
    ct_cpu_moe_combine_forward_f32(out, expert_out, weights, slot_of, shared, shared_gate, N, K, C);
}
static void moe_combine_backward(CtAct *dexpert_out, float *dweights, CtAct *dshared, CtAct *dshared_gate,
                                 const CtAct *dout, const CtAct *expert_out, const float *weights,
                                 const int32_t *slot_of, const CtAct *shared, const CtAct *shared_gate, int N, int K,
                                 int C) {
    ct_cpu_moe_combine_backward_f32(dexpert_out, dweights, dshared, dshared_gate, dout, expert_out, weights, slot_of,
                                    shared, shared_gate, N, K, C);
}
static void dropout_forward(CtAct *out, const CtAct *inp, size_t n, float p, uint64_t seed) {
    ct_cpu_dropout_forward_f32(out, inp, n, p, seed);
}
static void dropout_backward(CtAct *dinp, const CtAct *dout, size_t n, float p, uint64_t seed) {
    ct_cpu_dropout_backward_f32(dinp, dout, n, p, seed);
}

static const CtOps cpu_ops = {
    .name = "cpu",
    .host_memory = 1,
    .act_bytes = sizeof(float),
    .alloc = ct_cpu_alloc,
    .free = ct_cpu_free,
    .zero = ct_cpu_zero,
    .upload = ct_cpu_copy,
    .download = ct_cpu_copy,
    .copy = ct_cpu_copy,
    .upload_act = upload_act,
    .download_act = download_act,
    .memory_peak = ct_mem_peak,
    .synchronize = ct_cpu_synchronize,
    .attention_saved_floats = ct_cpu_attention_saved_floats,
    .sum_squares = ct_cpu_sum_squares,
    .scale = ct_cpu_scale,
    .adamw_update = ct_cpu_adamw_update,
    .embedding_forward = embedding_forward,
    .embedding_backward = embedding_backward,
    .layernorm_forward = layernorm_forward,
    .layernorm_backward = layernorm_backward,
    .rmsnorm_forward = rmsnorm_forward,
    .rmsnorm_backward = rmsnorm_backward,
    .matmul_forward = matmul_forward,
    .matmul_backward = matmul_backward,
    .attention_forward = attention_forward,
    .attention_backward = attention_backward,
    .attention_prefix_forward = attention_prefix_forward,
    .attention_prefix_backward = attention_prefix_backward,
    .attention_decode = attention_decode,
    .rope_forward = rope_forward,
    .rope_backward = rope_backward,
    .qk_norm_forward = qk_norm_forward,
    .qk_norm_backward = qk_norm_backward,
    .gelu_forward = gelu_forward,
    .gelu_backward = gelu_backward,
    .gelu_erf_forward = gelu_erf_forward,
    .gelu_erf_backward = gelu_erf_backward,
    .tanh_forward = tanh_forward,
    .tanh_backward = tanh_backward,
    .relu_forward = relu_forward,
    .relu_backward = relu_backward,
    .lstm_forward = lstm_forward,
    .lstm_backward = lstm_backward,
    .swiglu_forward = swiglu_forward,
    .swiglu_backward = swiglu_backward,
    .geglu_forward = geglu_forward,
    .geglu_backward = geglu_backward,
    .softcap_forward = softcap_forward,
    .act_scale = act_scale,
    .residual_forward = residual_forward,
    .xent_forward = xent_forward,
    .xent_backward = xent_backward,
    .xent_forward_backward = xent_forward_backward,
    .lora_forward = lora_forward,
    .lora_backward = lora_backward,
    .moe_route_forward = moe_route_forward,
    .moe_route_backward = moe_route_backward,
    .moe_router_stats = ct_cpu_moe_router_stats_f32,
    .moe_permute = ct_cpu_moe_permute_f32,
    .moe_gather_forward = moe_gather_forward,
    .moe_gather_backward = moe_gather_backward,
    .grouped_matmul_forward = grouped_matmul_forward,
    .grouped_matmul_backward = grouped_matmul_backward,
    .moe_combine_forward = moe_combine_forward,
    .moe_combine_backward = moe_combine_backward,
    .dropout_forward = dropout_forward,
    .dropout_backward = dropout_backward,
};

const CtOps *ct_ops_cpu(void) { return &cpu_ops; }
