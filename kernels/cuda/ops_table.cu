// The CUDA backend's op table (kernels/ops.h over device pointers; see cuda_ops.h).
#include "kernels/cuda/cuda_common.cuh"

static CtOps make_table(void) {
    CtOps t = {};
    t.name = "cuda";
    t.host_memory = 0;
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
    t.embedding_forward = ct_cuda_embedding_forward;
    t.embedding_backward = ct_cuda_embedding_backward;
    t.layernorm_forward = ct_cuda_layernorm_forward;
    t.layernorm_backward = ct_cuda_layernorm_backward;
    t.rmsnorm_forward = ct_cuda_rmsnorm_forward;
    t.rmsnorm_backward = ct_cuda_rmsnorm_backward;
    t.matmul_forward = ct_cuda_matmul_forward;
    t.matmul_backward = ct_cuda_matmul_backward;
    t.attention_forward = ct_cuda_attention_forward;
    t.attention_backward = ct_cuda_attention_backward;
    t.attention_backward_with_out = ct_cuda_attention_backward_with_out;
    t.attention_decode = ct_cuda_attention_decode;
    t.rope_forward = ct_cuda_rope_forward;
    t.rope_backward = ct_cuda_rope_backward;
    t.gelu_forward = ct_cuda_gelu_forward;
    t.gelu_backward = ct_cuda_gelu_backward;
    t.swiglu_forward = ct_cuda_swiglu_forward;
    t.swiglu_backward = ct_cuda_swiglu_backward;
    t.residual_forward = ct_cuda_residual_forward;
    t.residual_backward = ct_cuda_residual_backward;
    t.xent_forward = ct_cuda_xent_forward;
    t.xent_backward = ct_cuda_xent_backward;
    t.lora_forward = ct_cuda_lora_forward;
    t.lora_backward = ct_cuda_lora_backward;
    t.dropout_forward = ct_cuda_dropout_forward;
    t.dropout_backward = ct_cuda_dropout_backward;
    return t;
}

// The same table with its products (linear layers and LoRA) and its attention (head sizes 64 and
// 128; others run the fp32 kernels) in bf16 on the tensor cores, reading declared weights from
// their bf16 copies (AdamW, the same op, refreshes them), and GELU fused into the MLP's products
// (cuBLASLt's approximate tanh is within bf16's tolerance, not fp32's 1e-5: the fp32 table runs
// them unfused).
static CtOps make_bf16_table(void) {
    CtOps t = make_table();
    t.name = "cuda-bf16";
    t.matmul_forward = ct_cuda_matmul_forward_bf16;
    t.matmul_backward = ct_cuda_matmul_backward_bf16;
    t.matmul_bias_gelu_forward = ct_cuda_matmul_bias_gelu_forward_bf16;
    t.matmul_backward_dgelu = ct_cuda_matmul_backward_dgelu_bf16;
    t.lora_forward = ct_cuda_lora_forward_bf16;
    t.lora_backward = ct_cuda_lora_backward_bf16;
    t.attention_forward = ct_cuda_attention_forward_bf16;
    t.attention_backward = ct_cuda_attention_backward_bf16;
    t.attention_backward_with_out = ct_cuda_attention_backward_with_out_bf16;
    t.keep_low_precision_weights = ct_cuda_keep_bf16_weights;
    return t;
}

static const CtOps cuda_ops = make_table();
static const CtOps cuda_bf16_ops = make_bf16_table();

extern "C" const CtOps *ct_ops_cuda(void) { return &cuda_ops; }
extern "C" const CtOps *ct_ops_cuda_bf16(void) { return &cuda_bf16_ops; }
