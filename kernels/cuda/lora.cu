// LoRA's low-rank update (math in kernels/ops.h and kernels/cpu/lora.inc), as cuBLASLt products
// (ct_cuda_gemm_ex, column-major views of the row-major arrays as in matmul.cu):
//   forward   h[N,R] = x·Aᵀ                ⇔ h'[R,N]  = A'ᵀ[R,C]·x'[C,N]
//             y[N,OC] += s·h·Bᵀ (stride)   ⇔ y'[OC,N] += s·B'ᵀ[OC,R]·h'[R,N]   (ldc = out_stride)
//   backward  dB[OC,R] += s·dyᵀ·h          ⇔ dB'[R,OC] += s·h'[R,N]·dy'ᵀ[N,OC]
//             dh[N,R] = s·dy·B (written)   ⇔ dh'[R,N]  = s·B'[R,OC]·dy'[OC,N]
//             dA[R,C] += dhᵀ·x             ⇔ dA'[C,R] += x'[C,N]·dh'ᵀ[N,R]
//             dx[N,C] += dh·A              ⇔ dx'[C,N] += A'[C,R]·dh'[R,N]
// Activations (x, y, h, dy, dh, dx) are of the table's type; A, B, dA, dB float (in the bf16
// table A and B are read in bf16, as matmul.cu reads weights). Every output has one writer and
// cuBLASLt sums in a fixed order: deterministic.
#include "kernels/cuda/act_io.cuh"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/gemm.cuh"

template <typename act_t>
static void lora_forward(act_t *out, act_t *h, const act_t *inp, const float *A, const float *B, float scale, int N,
                         int C, int R, int OC, int out_stride) {
    ct_cuda_gemm_ex(1, 0, R, N, C, 1.0f, ct_gemm_weight<act_t>(A), C, ct_gemm_act(inp), C, ct_gemm_act(h), R, 0.0f,
                    NULL);
    ct_cuda_gemm_ex(1, 0, OC, N, R, scale, ct_gemm_weight<act_t>(B), R, ct_gemm_act(h), R, ct_gemm_act(out),
                    out_stride, 1.0f, NULL);
}

template <typename act_t>
static void lora_backward(act_t *dinp, float *dA, float *dB, act_t *dh, const act_t *dout, const act_t *inp,
                          const act_t *h, const float *A, const float *B, float scale, int N, int C, int R, int OC,
                          int dout_stride) {
    if (dB)
        ct_cuda_gemm_ex(0, 1, R, OC, N, scale, ct_gemm_act(h), R, ct_gemm_act(dout), dout_stride, ct_gemm_f32(dB), R,
                        1.0f, NULL);
    ct_cuda_gemm_ex(0, 0, R, N, OC, scale, ct_gemm_weight<act_t>(B), R, ct_gemm_act(dout), dout_stride,
                    ct_gemm_act(dh), R, 0.0f, NULL);
    if (dA)
        ct_cuda_gemm_ex(0, 1, C, R, N, 1.0f, ct_gemm_act(inp), C, ct_gemm_act(dh), R, ct_gemm_f32(dA), C, 1.0f, NULL);
    if (dinp)
        ct_cuda_gemm_ex(0, 0, C, N, R, 1.0f, ct_gemm_weight<act_t>(A), C, ct_gemm_act(dh), R, ct_gemm_act(dinp), C,
                        1.0f, NULL);
}

CT_CUDA_EXPORT_PAIR(ct_cuda_lora_forward, ct_cuda_lora_forward_bf16,
                    (CtAct *out, CtAct *h, const CtAct *inp, const float *A, const float *B, float scale, int N, int C,
                     int R, int OC, int out_stride),
                    lora_forward((act_t *)out, (act_t *)h, (const act_t *)inp, A, B, scale, N, C, R, OC, out_stride))

CT_CUDA_EXPORT_PAIR(ct_cuda_lora_backward, ct_cuda_lora_backward_bf16,
                    (CtAct *dinp, float *dA, float *dB, CtAct *dh, const CtAct *dout, const CtAct *inp, const CtAct *h,
                     const float *A, const float *B, float scale, int N, int C, int R, int OC, int dout_stride),
                    lora_backward((act_t *)dinp, dA, dB, (act_t *)dh, (const act_t *)dout, (const act_t *)inp,
                                  (const act_t *)h, A, B, scale, N, C, R, OC, dout_stride))
