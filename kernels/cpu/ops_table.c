// The CPU backend's op table: the float instantiation of every kernel.
#include "core/alloc.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops.h"

static const CtOps cpu_ops = {
    .name = "cpu",
    .host_memory = 1,
    .alloc = ct_cpu_alloc,
    .free = ct_cpu_free,
    .zero = ct_cpu_zero,
    .upload = ct_cpu_copy,
    .download = ct_cpu_copy,
    .copy = ct_cpu_copy,
    .memory_peak = ct_mem_peak,
    .synchronize = ct_cpu_synchronize,
    .attention_saved_floats = ct_cpu_attention_saved_floats,
    .sum_squares = ct_cpu_sum_squares,
    .scale = ct_cpu_scale,
    .adamw_update = ct_cpu_adamw_update,
    .embedding_forward = ct_cpu_embedding_forward_f32,
    .embedding_backward = ct_cpu_embedding_backward_f32,
    .layernorm_forward = ct_cpu_layernorm_forward_f32,
    .layernorm_backward = ct_cpu_layernorm_backward_f32,
    .rmsnorm_forward = ct_cpu_rmsnorm_forward_f32,
    .rmsnorm_backward = ct_cpu_rmsnorm_backward_f32,
    .matmul_forward = ct_cpu_matmul_forward_f32,
    .matmul_backward = ct_cpu_matmul_backward_f32,
    .attention_forward = ct_cpu_attention_forward_f32,
    .attention_backward = ct_cpu_attention_backward_f32,
    .attention_decode = ct_cpu_attention_decode_f32,
    .rope_forward = ct_cpu_rope_forward_f32,
    .rope_backward = ct_cpu_rope_backward_f32,
    .gelu_forward = ct_cpu_gelu_forward_f32,
    .gelu_backward = ct_cpu_gelu_backward_f32,
    .swiglu_forward = ct_cpu_swiglu_forward_f32,
    .swiglu_backward = ct_cpu_swiglu_backward_f32,
    .residual_forward = ct_cpu_residual_forward_f32,
    .residual_backward = ct_cpu_residual_backward_f32,
    .xent_forward = ct_cpu_xent_forward_f32,
    .xent_backward = ct_cpu_xent_backward_f32,
    .lora_forward = ct_cpu_lora_forward_f32,
    .lora_backward = ct_cpu_lora_backward_f32,
    .dropout_forward = ct_cpu_dropout_forward_f32,
    .dropout_backward = ct_cpu_dropout_backward_f32,
};

const CtOps *ct_ops_cpu(void) { return &cpu_ops; }
