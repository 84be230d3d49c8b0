// Loading and storing activations of either type (kernels/ops.h: CtAct). Kernels are templated on
// act_t, float (the fp32 table) or __nv_bfloat16 (the bf16 table): they load into float, compute
// in float and round once when they store (to nearest even: what torch's bf16 tensors hold).
#pragma once
#include <cuda_bf16.h>

__device__ __forceinline__ float act_load(const float *p) { return *p; }
__device__ __forceinline__ float act_load(const __nv_bfloat16 *p) { return __bfloat162float(*p); }
__device__ __forceinline__ void act_store(float *p, float v) { *p = v; }
__device__ __forceinline__ void act_store(__nv_bfloat16 *p, float v) { *p = __float2bfloat16_rn(v); }
// *p += v: a backward op adding into a gradient (in bf16 the sum is rounded once).
template <typename act_t>
__device__ __forceinline__ void act_add(act_t *p, float v) {
    act_store(p, act_load(p) + v);
}

// The bf16 activation type. Each op's pair of entry points (cuda_decl.h) casts its CtAct arrays:
// ct_cuda_NAME runs the template on float, ct_cuda_NAME_bf16 on ct_bf16.
typedef __nv_bfloat16 ct_bf16;

// Defines an op's pair of entry points (declared by CT_CUDA_OP_PAIR in cuda_decl.h): fp32_name
// runs the call (the arguments after params) with act_t = float, bf16_name with act_t = ct_bf16.
// Both names are written out in full, so that a grep for either finds its definition:
//   CT_CUDA_EXPORT_PAIR(ct_cuda_gelu_forward, ct_cuda_gelu_forward_bf16, (CtAct *out, const CtAct *inp, size_t n),
//                       gelu_forward<act_t>(out, inp, n))
#define CT_CUDA_EXPORT_PAIR(fp32_name, bf16_name, params, ...) \
    extern "C" void fp32_name params {                          \
        using act_t = float;                                    \
        __VA_ARGS__;                                            \
    }                                                           \
    extern "C" void bf16_name params {                          \
        using act_t = ct_bf16;                                  \
        __VA_ARGS__;                                            \
    }
