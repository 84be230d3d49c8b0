// LoRA's low-rank update (math in kernels/ops.h and kernels/cpu/lora.inc), as cuBLASLt products
// (ct_cuda_gemm, column-major views of the row-major arrays as in matmul.cu):
//   forward   h[N,R] = x·Aᵀ                ⇔ h'[R,N]  = A'ᵀ[R,C]·x'[C,N]
//             y[N,OC] += s·h·Bᵀ (stride)   ⇔ y'[OC,N] += s·B'ᵀ[OC,R]·h'[R,N]   (ldc = out_stride)
//   backward  dB[OC,R] += s·dyᵀ·h          ⇔ dB'[R,OC] += s·h'[R,N]·dy'ᵀ[N,OC]
//             dh[N,R] = s·dy·B (written)   ⇔ dh'[R,N]  = s·B'[R,OC]·dy'[OC,N]
//             dA[R,C] += dhᵀ·x             ⇔ dA'[C,R] += x'[C,N]·dh'ᵀ[N,R]
//             dx[N,C] += dh·A              ⇔ dx'[C,N] += A'[C,R]·dh'[R,N]
// Every output has one writer and cuBLASLt sums in a fixed order: deterministic.
#include "kernels/cuda/cuda_common.cuh"

extern "C" void ct_cuda_lora_forward(float *out, float *h, const float *inp, const float *A, const float *B,
                                     float scale, int N, int C, int R, int OC, int out_stride) {
    ct_cuda_gemm(1, 0, R, N, C, 1.0f, A, C, inp, C, h, R, 0.0f, NULL);
    ct_cuda_gemm(1, 0, OC, N, R, scale, B, R, h, R, out, out_stride, 1.0f, NULL);
}

extern "C" void ct_cuda_lora_backward(float *dinp, float *dA, float *dB, float *dh, const float *dout,
                                      const float *inp, const float *h, const float *A, const float *B, float scale,
                                      int N, int C, int R, int OC, int dout_stride) {
    if (dB) ct_cuda_gemm(0, 1, R, OC, N, scale, h, R, dout, dout_stride, dB, R, 1.0f, NULL);
    ct_cuda_gemm(0, 0, R, N, OC, scale, B, R, dout, dout_stride, dh, R, 0.0f, NULL);
    if (dA) ct_cuda_gemm(0, 1, C, R, N, 1.0f, inp, C, dh, R, dA, C, 1.0f, NULL);
    if (dinp) ct_cuda_gemm(0, 0, C, N, R, 1.0f, A, C, dh, R, dinp, C, 1.0f, NULL);
}
