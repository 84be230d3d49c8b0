// Matrix products with typed operands (matmul.cu, through cuBLASLt), as matmul.cu and lora.cu
// call them. Internal to kernels/cuda/.
#pragma once
#include <cuda_bf16.h>

// How a product reads (or writes) one of its matrices.
enum CtGemmType {
    CT_GEMM_F32,          // float in memory, read as float (the fp32 table)
    CT_GEMM_BF16,         // bf16 in memory (the bf16 table's activations)
    CT_GEMM_F32_AS_BF16,  // a float weight read in bf16: its declared copy (bf16_weights.cuh) when one exists,
                          // else rounded to nearest even into scratch at each product (inputs only)
};
struct CtGemmMat {
    const void *p;  // written through when it is the product's output
    CtGemmType type;
};

// An activation array of either table: float or bf16, as it lies in memory.
static inline CtGemmMat ct_gemm_act(const float *p) { return {p, CT_GEMM_F32}; }
static inline CtGemmMat ct_gemm_act(const __nv_bfloat16 *p) { return {p, CT_GEMM_BF16}; }
// A float array read or written as float (weight gradients, the fp32 table's weights).
static inline CtGemmMat ct_gemm_f32(const float *p) { return {p, CT_GEMM_F32}; }
// A float weight in a product over act_t activations: fp32 products in the fp32 table, bf16 ones
// (tensor cores) in the bf16 table.
template <typename act_t>
static inline CtGemmMat ct_gemm_weight(const float *w) {
    return {w, sizeof(act_t) == sizeof(float) ? CT_GEMM_F32 : CT_GEMM_F32_AS_BF16};
}

// C[m,n] (column-major, ldc) = alpha·op(A)·op(B) + beta·C (+ bias[m] down the columns),
// accumulated in fp32 (no TF32). A is stored [ta ? k : m, ta ? m : k] with leading dimension lda,
// B [tb ? n : k, tb ? k : n] with ldb; row-major X[R, K] is the column-major [K, R] with ld K.
// A and B are both fp32 or both bf16 (cuBLASLt mixes no input types); C is float or bf16 (a bf16
// C is rounded to nearest even once, after beta·C and the bias are added). The fp32 bias is read
// in D's type (cuBLASLt's rule): as bf16 (its declared copy, or rounded) when C is bf16.
void ct_cuda_gemm_ex(int ta, int tb, int m, int n, int k, float alpha, CtGemmMat A, int lda, CtGemmMat B, int ldb,
                     CtGemmMat C, int ldc, float beta, const float *bias);
