// The CUDA backend's op tables (kernels/ops.h over device pointers; see cuda_ops.h): fp32 and bf16
// activations, one set of kernels instantiated for each (cuda_decl.h).
#include "kernels/cuda/cuda_common.cuh"

// One op's slot: the fp32 table takes fp32_fn, the bf16 table bf16_fn (a pair of cuda_decl.h).
#define OP(field, fp32_fn, bf16_fn) t.field = bf16 ? bf16_fn : fp32_fn

static CtOps make_table(int bf16) {
    CtOps t = {};
    t.name = bf16 ? "cuda-bf16" : "cuda";
    t.host_memory = 0;
    t.act_bytes = bf16 ? 2 : 4;
    t.alloc = ct_cuda_alloc_zeroed;
    t.free = ct_cuda_free;
    t.zero = ct_cuda_zero;
    t.upload = ct_cuda_upload;
    t.download = ct_cuda_download;
    t.copy = ct_cuda_copy;
    t.memory_peak = ct_cuda_bytes_peak;
    t.synchronize = ct_cuda_synchronize;
    t.attention_saved_floats = ct_cuda_attention_saved_floats;
    t.sum_squares = ct_cuda_sum_squares;
    t.scale = ct_cuda_scale;
    t.adamw_update = ct_cuda_adamw_update_op;
    OP(embedding_forward, ct_cuda_embedding_forward, ct_cuda_embedding_forward_bf16);
    OP(embedding_backward, ct_cuda_embedding_backward, ct_cuda_embedding_backward_bf16);
    OP(layernorm_forward, ct_cuda_layernorm_forward, ct_cuda_layernorm_forward_bf16);
    OP(layernorm_backward, ct_cuda_layernorm_backward, ct_cuda_layernorm_backward_bf16);
    OP(rmsnorm_forward, ct_cuda_rmsnorm_forward, ct_cuda_rmsnorm_forward_bf16);
    OP(rmsnorm_backward, ct_cuda_rmsnorm_backward, ct_cuda_rmsnorm_backward_bf16);
    OP(matmul_forward, ct_cuda_matmul_forward, ct_cuda_matmul_forward_bf16);
    OP(matmul_backward, ct_cuda_matmul_backward, ct_cuda_matmul_backward_bf16);
    OP(attention_forward, ct_cuda_attention_forward, ct_cuda_attention_forward_bf16);
    OP(attention_backward, ct_cuda_attention_backward, ct_cuda_attention_backward_bf16);
    OP(attention_backward_with_out, ct_cuda_attention_backward_with_out, ct_cuda_attention_backward_with_out_bf16);
    OP(attention_prefix_forward, ct_cuda_attention_prefix_forward, ct_cuda_attention_prefix_forward_bf16);
    OP(attention_prefix_backward, ct_cuda_attention_prefix_backward, ct_cuda_attention_prefix_backward_bf16);
    OP(attention_decode, ct_cuda_attention_decode, ct_cuda_attention_decode_bf16);
    OP(rope_forward, ct_cuda_rope_forward, ct_cuda_rope_forward_bf16);
    OP(rope_backward, ct_cuda_rope_backward, ct_cuda_rope_backward_bf16);
    OP(qk_norm_forward, ct_cuda_qk_norm_forward, ct_cuda_qk_norm_forward_bf16);
    OP(qk_norm_backward, ct_cuda_qk_norm_backward, ct_cuda_qk_norm_backward_bf16);
    OP(gelu_forward, ct_cuda_gelu_forward, ct_cuda_gelu_forward_bf16);
    OP(gelu_backward, ct_cuda_gelu_backward, ct_cuda_gelu_backward_bf16);
    OP(gelu_erf_forward, ct_cuda_gelu_erf_forward, ct_cuda_gelu_erf_forward_bf16);
    OP(gelu_erf_backward, ct_cuda_gelu_erf_backward, ct_cuda_gelu_erf_backward_bf16);
    OP(tanh_forward, ct_cuda_tanh_forward, ct_cuda_tanh_forward_bf16);
    OP(tanh_backward, ct_cuda_tanh_backward, ct_cuda_tanh_backward_bf16);
    OP(relu_forward, ct_cuda_relu_forward, ct_cuda_relu_forward_bf16);
    OP(relu_backward, ct_cuda_relu_backward, ct_cuda_relu_backward_bf16);
    OP(swiglu_forward, ct_cuda_swiglu_forward, ct_cuda_swiglu_forward_bf16);
    OP(swiglu_backward, ct_cuda_swiglu_backward, ct_cuda_swiglu_backward_bf16);
    OP(geglu_forward, ct_cuda_geglu_forward, ct_cuda_geglu_forward_bf16);
    OP(geglu_backward, ct_cuda_geglu_backward, ct_cuda_geglu_backward_bf16);
    OP(softcap_forward, ct_cuda_softcap_forward, ct_cuda_softcap_forward_bf16);
    OP(act_scale, ct_cuda_act_scale, ct_cuda_act_scale_bf16);
    OP(residual_forward, ct_cuda_residual_forward, ct_cuda_residual_forward_bf16);
    OP(xent_forward, ct_cuda_xent_forward, ct_cuda_xent_forward_bf16);
    OP(xent_backward, ct_cuda_xent_backward, ct_cuda_xent_backward_bf16);
    OP(lora_forward, ct_cuda_lora_forward, ct_cuda_lora_forward_bf16);
    OP(lora_backward, ct_cuda_lora_backward, ct_cuda_lora_backward_bf16);
    OP(moe_route_forward, ct_cuda_moe_route_forward, ct_cuda_moe_route_forward_bf16);
    OP(moe_route_backward, ct_cuda_moe_route_backward, ct_cuda_moe_route_backward_bf16);
    t.moe_router_stats = ct_cuda_moe_router_stats;
    t.moe_permute = ct_cuda_moe_permute;
    OP(moe_gather_forward, ct_cuda_moe_gather_forward, ct_cuda_moe_gather_forward_bf16);
    OP(moe_gather_backward, ct_cuda_moe_gather_backward, ct_cuda_moe_gather_backward_bf16);
    OP(grouped_matmul_forward, ct_cuda_grouped_matmul_forward, ct_cuda_grouped_matmul_forward_bf16);
    OP(grouped_matmul_backward, ct_cuda_grouped_matmul_backward, ct_cuda_grouped_matmul_backward_bf16);
    OP(moe_combine_forward, ct_cuda_moe_combine_forward, ct_cuda_moe_combine_forward_bf16);
    OP(moe_combine_backward, ct_cuda_moe_combine_backward, ct_cuda_moe_combine_backward_bf16);
    OP(dropout_forward, ct_cuda_dropout_forward, ct_cuda_dropout_forward_bf16);
    OP(dropout_backward, ct_cuda_dropout_backward, ct_cuda_dropout_backward_bf16);
    OP(upload_act, ct_cuda_upload_act, ct_cuda_upload_act_bf16);
    OP(download_act, ct_cuda_download_act, ct_cuda_download_act_bf16);
    if (bf16) {
        // products read declared weights from their bf16 copies (AdamW, the same op, refreshes
        // them), and GELU runs in the MLP's product epilogues (cuBLASLt's approximate tanh is
        // within bf16's tolerance, not fp32's 1e-5: the fp32 table runs them unfused)
        t.keep_low_precision_weights = ct_cuda_keep_bf16_weights;
        t.matmul_bias_gelu_forward = ct_cuda_matmul_bias_gelu_forward_bf16;
        t.matmul_backward_dgelu = ct_cuda_matmul_backward_dgelu_bf16;
    }
    return t;
}

static const CtOps cuda_ops = make_table(0);
static const CtOps cuda_bf16_ops = make_table(1);

extern "C" const CtOps *ct_ops_cuda(void) { return &cuda_ops; }
extern "C" const CtOps *ct_ops_cuda_bf16(void) { return &cuda_bf16_ops; }
