// Matrix products through cuBLASLt, fp32 in, fp32 out, fp32 accumulation (CUBLAS_COMPUTE_32F:
// no TF32, so results agree with the CPU to float rounding). In bf16 mode (ct_ops_cuda_bf16(),
// --run.precision=bf16) both operands are rounded to bf16 (nearest even) into scratch and the
// product runs on the tensor cores, still accumulating and writing fp32: torch.autocast's
// precision for products, with fp32 weights (the masters) and fp32 activations in memory.
// Weights the model declared (keep_low_precision_weights, bf16_weights.cu) are not converted:
// the product reads their bf16 copy, which AdamW keeps current with stochastic rounding.
//
// Row-major [R, K] is column-major [K, R] with leading dimension K, so with cuBLAS's
// column-major view (X' = X as column-major, the transpose of the row-major matrix):
//   forward  out[N,OC] = inp·Wᵀ + b    ⇔ out'[OC,N] = W'ᵀ[OC,C]·inp'[C,N]   (+ b down the columns:
//            the BIAS epilogue adds bias[m] to row m of the column-major result, fused)
//   dinp     dinp[N,C] += dout·W       ⇔ dinp'[C,N] += W'[C,OC]·dout'[OC,N]
//   dweight  dW[OC,C] += doutᵀ·inp     ⇔ dW'[C,OC] += inp'[C,N]·dout'ᵀ[N,OC]
//   dbias    dbias[OC] += Σ_n dout[n,:] (a deterministic column sum, norm.cu)
#include <cublasLt.h>
#include <cuda_bf16.h>

#include "kernels/cuda/bf16_weights.cuh"
#include "kernels/cuda/cuda_common.cuh"

#define CUBLAS_CHECK(call)                                                                                    \
    do {                                                                                                      \
        cublasStatus_t s_ = (call);                                                                           \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                                      \
            ct_fatal_at(__FILE__, __LINE__,                                                                   \
                        s_ == CUBLAS_STATUS_ALLOC_FAILED                                                      \
                            ? "the GPU is out of memory: use a smaller batch, recompute activations, or ZeRO" \
                            : "a cuBLASLt call was refused: check the shapes and alignment of the operands",  \
                        "cuBLAS call failed: %s: %s (status %d)", #call, cublasGetStatusString(s_), (int)s_); \
    } while (0)

#define WORKSPACE_BYTES ((size_t)32 << 20)  // cuBLASLt's workspace; 32 MiB suits Hopper's kernels

static cublasLtHandle_t lt_handle;
static void *lt_workspace;
static int products_in_bf16;  // set around the bf16 table's product ops (ops are single-threaded)

static void lt_init(void) {
    if (lt_handle) return;
    CUBLAS_CHECK(cublasLtCreate(&lt_handle));
    lt_workspace = ct_cuda_malloc(WORKSPACE_BYTES, "cuBLASLt workspace");
}

// One cuBLASLt product; returns 0 when cuBLASLt has no algorithm for it (so the caller can
// try without the epilogue). C[m,n] (column-major, ldc) = alpha·op(A)·op(B) + beta·C (+ bias[m]
// down the columns when given). A is stored [ta ? k : m, ta ? m : k] with leading dimension
// lda, B likewise with n.
// bf16 copies of the operands, rounded to nearest even.
__global__ void to_bf16_kernel(__nv_bfloat16 *out, const float *in, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = __float2bfloat16_rn(in[i]);
}

// A column-major [rows, cols] operand with leading dimension ld spans ld·(cols−1) + rows floats
// (the gaps of a strided operand are converted too: cheaper than a strided kernel, and harmless).
// Declared weights (keep_low_precision_weights) are in bf16 already: their copy is read instead.
static const void *bf16_operand(CtScratch slot, const float *x, int rows, int cols, int ld) {
    size_t n = (size_t)ld * (size_t)(cols - 1) + (size_t)rows;
    if (const __nv_bfloat16 *kept = ct_cuda_bf16_weights_holding(x, n, NULL)) return kept;
    __nv_bfloat16 *out = (__nv_bfloat16 *)ct_cuda_scratch(slot, n * sizeof(__nv_bfloat16));
    to_bf16_kernel<<<ct_blocks(n, 256), 256>>>(out, x, n);
    LAUNCH_CHECK("to_bf16_kernel");
    return out;
}

// GELU in the epilogue: forward (GELU_AUX[_BIAS]) writes aux = AB + bias and C = gelu(aux);
// backward (DGELU) writes C = AB ⊙ gelu'(aux). aux is column-major [m, n] with leading dimension
// aux_ld, fp32 (the aux type defaults to C's).
struct LtGelu {
    int backward;
    const float *aux;
    int64_t aux_ld;
};

static cublasLtEpilogue_t epilogue_of(const float *bias, const LtGelu *gelu) {
    if (gelu && gelu->backward) return CUBLASLT_EPILOGUE_DGELU;
    if (gelu) return bias ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS : CUBLASLT_EPILOGUE_GELU_AUX;
    return bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
}

// The largest power of two, up to 256, that divides p's address. cuBLASLt's heuristic assumes
// 256-byte aligned matrices unless told less (CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_*_BYTES) and may
// pick an algorithm that needs it; a weight at an offset in its buffer, its bf16 copy at the same
// offset, or a column block of a fused output is less aligned than that.
static uint32_t alignment_of(const void *p) {
    uint32_t align = 256;
    while (align > 1 && (uintptr_t)p % align) align >>= 1;
    return align;
}

static int lt_matmul(int ta, int tb, int m, int n, int k, float alpha, const float *A, int lda, const float *B,
                     int ldb, float *C, int ldc, float beta, const float *bias, const LtGelu *gelu = NULL) {
    lt_init();
    const cudaDataType_t in_type = products_in_bf16 ? CUDA_R_16BF : CUDA_R_32F;
    const void *a_in = A, *b_in = B;
    if (products_in_bf16) {
        a_in = bf16_operand(CT_SCRATCH_BF16_A, A, ta ? k : m, ta ? m : k, lda);
        b_in = bf16_operand(CT_SCRATCH_BF16_B, B, tb ? n : k, tb ? k : n, ldb);
    }
    cublasLtMatmulDesc_t op;
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof(opa)));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof(opb)));
    cublasLtEpilogue_t epi = epilogue_of(bias, gelu);
    if (epi != CUBLASLT_EPILOGUE_DEFAULT)
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
    if (bias) CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    if (gelu) {
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &gelu->aux,
                                                    sizeof(gelu->aux)));
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &gelu->aux_ld,
                                                    sizeof(gelu->aux_ld)));
    }
    cublasLtMatrixLayout_t la, lb, lc;
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&la, in_type, ta ? k : m, ta ? m : k, lda));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lb, in_type, tb ? n : k, tb ? k : n, ldb));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, m, n, ldc));
    cublasLtMatmulPreference_t pref;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    size_t ws = WORKSPACE_BYTES;
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
    const uint32_t align_a = alignment_of(a_in), align_b = alignment_of(b_in), align_c = alignment_of(C);
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align_a,
                                                      sizeof(align_a)));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align_b,
                                                      sizeof(align_b)));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align_c,
                                                      sizeof(align_c)));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align_c,
                                                      sizeof(align_c)));
    cublasLtMatmulHeuristicResult_t heur;
    int found = 0;
    // A refusal here (NOT_SUPPORTED, or INVALID_VALUE for an epilogue this type lacks) is "no
    // algorithm": the caller retries without the epilogue and reports the shape if that fails too.
    cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(lt_handle, op, la, lb, lc, lc, pref, 1, &heur, &found);
    if (st == CUBLAS_STATUS_SUCCESS && found > 0) {
        CUBLAS_CHECK(cublasLtMatmul(lt_handle, op, &alpha, a_in, la, b_in, lb, &beta, C, lc, C, lc, &heur.algo,
                                    lt_workspace, WORKSPACE_BYTES, 0));
    } else {
        found = 0;
    }
    CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(pref));
    CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(la));
    CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(lb));
    CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(lc));
    CUBLAS_CHECK(cublasLtMatmulDescDestroy(op));
    return found > 0;
}

// C[r, :] += bias[r] for the m rows of the column-major C[m, n] (ld m): the bias epilogue's
// fallback.
__global__ void add_bias_kernel(float *C, const float *bias, int m, size_t total) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x)
        C[i] += bias[i % m];
}

void ct_cuda_gemm(int ta, int tb, int m, int n, int k, float alpha, const float *A, int lda, const float *B, int ldb,
                  float *C, int ldc, float beta, const float *bias) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {  // an empty sum: nothing to add in the backward products (N = 0)
        if (beta == 1.0f && !bias) return;
        ct_fatal_at(__FILE__, __LINE__, "a matrix product needs at least one input channel", "gemm with k=%d", k);
    }
    if (lt_matmul(ta, tb, m, n, k, alpha, A, lda, B, ldb, C, ldc, beta, bias)) return;
    // no algorithm with the fused bias: the plain product, then the bias as its own kernel
    if (bias && ldc == m && lt_matmul(ta, tb, m, n, k, alpha, A, lda, B, ldb, C, ldc, beta, NULL)) {
        size_t total = (size_t)m * n;
        add_bias_kernel<<<ct_blocks(total, 256), 256>>>(C, bias, m, total);
        LAUNCH_CHECK("add_bias_kernel");
        return;
    }
    ct_fatal_at(__FILE__, __LINE__, "a bug in ctrain's use of cuBLASLt: please report the model shape",
                "cuBLASLt has no algorithm for m=%d n=%d k=%d (ta=%d tb=%d bias=%d)", m, n, k, ta, tb, bias != NULL);
}

extern "C" void ct_cuda_matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int N,
                                       int C, int OC) {
    ct_cuda_gemm(1, 0, OC, N, C, 1.0f, weight, C, inp, C, out, OC, 0.0f, bias);
}

extern "C" void ct_cuda_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                        const float *inp, const float *weight, int N, int C, int OC) {
    if (dinp) ct_cuda_gemm(0, 0, C, N, OC, 1.0f, weight, C, dout, OC, dinp, C, 1.0f, NULL);
    if (dweight) ct_cuda_gemm(0, 1, C, OC, N, 1.0f, inp, C, dout, OC, dweight, C, 1.0f, NULL);
    if (dbias) ct_cuda_bias_backward(dbias, dout, N, OC);
}

// ---- GPT-2's MLP with GELU in the product's epilogue (the bf16 table's fused ops) ----
// cuBLASLt's GELU is the tanh form, but not to fp32 rounding (public tests of its fp32 epilogue
// allow 2e-4: an approximate tanh), outside fp32's 1e-5 of the CPU op, so only the bf16 table
// offers these. cublasLt.h: the aux leading dimension must be a multiple of 8; other widths,
// and shapes cuBLASLt has no algorithm for, run the unfused kernels.

static size_t gelu_epilogue_fallbacks;
extern "C" size_t ct_cuda_gelu_epilogue_fallbacks(void) { return gelu_epilogue_fallbacks; }

// pre'[OC,N] = W'ᵀ·inp' + b into the aux, out' = gelu(pre') into C, both with leading dimension OC.
static void matmul_bias_gelu_forward(float *out, float *pre, const float *inp, const float *weight, const float *bias,
                                     int N, int C, int OC) {
    if (N <= 0 || OC <= 0) return;
    const LtGelu gelu = {0, pre, OC};
    if (OC % 8 == 0 && C > 0 && lt_matmul(1, 0, OC, N, C, 1.0f, weight, C, inp, C, out, OC, 0.0f, bias, &gelu)) return;
    gelu_epilogue_fallbacks++;
    ct_cuda_matmul_forward(pre, inp, weight, bias, N, C, OC);
    ct_cuda_gelu_forward(out, pre, (size_t)N * OC);
}

// dpre'[C,N] = (W'[C,OC]·dout'[OC,N]) ⊙ gelu'(pre'), beta 0: written (DGELU, aux = pre, ld C).
// dweight and dbias as matmul_backward's (dbias stays our deterministic column sum).
static void matmul_backward_dgelu(float *dpre, float *dweight, float *dbias, const float *dout, const float *inp,
                                  const float *pre, const float *weight, int N, int C, int OC) {
    if (N <= 0 || C <= 0) return;
    const LtGelu gelu = {1, pre, C};
    if (!(C % 8 == 0 && OC > 0 && lt_matmul(0, 0, C, N, OC, 1.0f, weight, C, dout, OC, dpre, C, 0.0f, NULL, &gelu))) {
        gelu_epilogue_fallbacks++;
        ct_cuda_gemm(0, 0, C, N, OC, 1.0f, weight, C, dout, OC, dpre, C, 0.0f, NULL);  // dpre = dout·W
        ct_cuda_gelu_grad_scale(dpre, pre, (size_t)N * C);                            // dpre ⊙= gelu'(pre)
    }
    ct_cuda_matmul_backward(NULL, dweight, dbias, dout, inp, weight, N, C, OC);
}

extern "C" void ct_cuda_matmul_bias_gelu_forward_bf16(float *out, float *pre, const float *inp, const float *weight,
                                                      const float *bias, int N, int C, int OC) {
    products_in_bf16 = 1;
    matmul_bias_gelu_forward(out, pre, inp, weight, bias, N, C, OC);
    products_in_bf16 = 0;
}

extern "C" void ct_cuda_matmul_backward_dgelu_bf16(float *dpre, float *dweight, float *dbias, const float *dout,
                                                   const float *inp, const float *pre, const float *weight, int N,
                                                   int C, int OC) {
    products_in_bf16 = 1;
    matmul_backward_dgelu(dpre, dweight, dbias, dout, inp, pre, weight, N, C, OC);
    products_in_bf16 = 0;
}

// The bf16 table's product ops: the same calls with bf16 operands.
extern "C" void ct_cuda_matmul_forward_bf16(float *out, const float *inp, const float *weight, const float *bias, int N,
                                            int C, int OC) {
    products_in_bf16 = 1;
    ct_cuda_matmul_forward(out, inp, weight, bias, N, C, OC);
    products_in_bf16 = 0;
}

extern "C" void ct_cuda_matmul_backward_bf16(float *dinp, float *dweight, float *dbias, const float *dout,
                                             const float *inp, const float *weight, int N, int C, int OC) {
    products_in_bf16 = 1;
    ct_cuda_matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
    products_in_bf16 = 0;
}

extern "C" void ct_cuda_lora_forward_bf16(float *out, float *h, const float *inp, const float *A, const float *B,
                                          float scale, int N, int C, int R, int OC, int out_stride) {
    products_in_bf16 = 1;
    ct_cuda_lora_forward(out, h, inp, A, B, scale, N, C, R, OC, out_stride);
    products_in_bf16 = 0;
}

extern "C" void ct_cuda_lora_backward_bf16(float *dinp, float *dA, float *dB, float *dh, const float *dout,
                                           const float *inp, const float *h, const float *A, const float *B, float scale,
                                           int N, int C, int R, int OC, int dout_stride) {
    products_in_bf16 = 1;
    ct_cuda_lora_backward(dinp, dA, dB, dh, dout, inp, h, A, B, scale, N, C, R, OC, dout_stride);
    products_in_bf16 = 0;
}
