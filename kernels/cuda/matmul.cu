// Matrix products through cuBLASLt, accumulating in fp32 (CUBLAS_COMPUTE_32F: no TF32, so the
// fp32 table's results agree with the CPU to float rounding). Each product says how it reads and
// writes its matrices (gemm.cuh: CtGemmMat), so one code path serves both tables:
//   - the fp32 table (ct_ops_cuda()): float activations, float weights, float outputs.
//   - the bf16 table (ct_ops_cuda_bf16(), --run.precision=bf16): activations are bf16 in memory
//     and go to cuBLASLt as they are (CUDA_R_16BF); the float weights are read in bf16, from the
//     copy the model declared (keep_low_precision_weights, bf16_weights.cu: AdamW keeps it current
//     with stochastic rounding) or, undeclared, rounded to nearest even into scratch at each
//     product. Outputs that are activations (out, dinp, pre, dpre, LoRA's h and dh) are bf16,
//     rounded once by cuBLASLt's epilogue (dinp += ... is beta = 1 on the bf16 C); weight
//     gradients stay float (bf16 A and B, fp32 C and D: a combination cuBLASLt supports).
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

#include "kernels/cuda/act_io.cuh"
#include "kernels/cuda/bf16_weights.cuh"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/gemm.cuh"

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

static void lt_init(void) {
    if (lt_handle) return;
    CUBLAS_CHECK(cublasLtCreate(&lt_handle));
    lt_workspace = ct_cuda_malloc(WORKSPACE_BYTES, "cuBLASLt workspace");
}

// bf16 copies of float weights without a declared copy, rounded to nearest even.
__global__ void to_bf16_kernel(__nv_bfloat16 *out, const float *in, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = __float2bfloat16_rn(in[i]);
}

// The next free scratch slot of a product (*slots counts them; a product rounds one weight and
// copies or rounds its bias at most, so two slots do).
static void *lt_scratch(size_t bytes, int *slots) {
    static const CtScratch slot_of[] = {CT_SCRATCH_BF16_A, CT_SCRATCH_BF16_B};
    if (*slots >= 2)
        ct_fatal_at(__FILE__, __LINE__, "a bug in ctrain's matmul.cu: please report it",
                    "a product needs more than two scratch copies of its inputs");
    return ct_cuda_scratch(slot_of[(*slots)++], bytes);
}

// What cuBLASLt reads for the input x of n elements: x itself, or for a float weight read in bf16
// its declared copy, else a copy rounded into scratch. A strided operand spans ld·(cols−1) + rows
// elements: its gaps are converted too (cheaper than a strided kernel, and harmless).
static const void *lt_input(CtGemmMat x, size_t n, int *slots) {
    if (x.type != CT_GEMM_F32_AS_BF16) return x.p;
    const float *w = (const float *)x.p;
    if (const __nv_bfloat16 *kept = ct_cuda_bf16_weights_holding(w, n, NULL)) return kept;
    __nv_bfloat16 *out = (__nv_bfloat16 *)lt_scratch(n * sizeof(__nv_bfloat16), slots);
    to_bf16_kernel<<<ct_blocks(n, 256), 256>>>(out, w, n);
    LAUNCH_CHECK("to_bf16_kernel");
    return out;
}

static cudaDataType_t lt_type(CtGemmType t) { return t == CT_GEMM_F32 ? CUDA_R_32F : CUDA_R_16BF; }
static size_t lt_span(int rows, int cols, int ld) { return (size_t)ld * (size_t)(cols - 1) + (size_t)rows; }

// GELU in the epilogue: forward (GELU_AUX[_BIAS]) writes aux = AB + bias and C = gelu(aux);
// backward (DGELU) writes C = AB ⊙ gelu'(aux). aux is column-major [m, n] with leading dimension
// aux_ld, of C's type: cublasLt.h, EPILOGUE_AUX_DATA_TYPE, makes the GELU input of the output's
// type by default (only fp8 outputs may have another), which suits: pre is an activation, as out
// and dpre are. Left unset: cublasLtMatmul refuses a type it set for a combination it lacks
// with INVALID_VALUE (fatal here) rather than the heuristic finding no algorithm (a fallback).
struct LtGelu {
    int backward;
    const void *aux;
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

// One cuBLASLt product (see ct_cuda_gemm_ex in gemm.cuh); returns 0 when cuBLASLt has no
// algorithm for it (so the caller can try without the epilogue). D is C, with C's layout.
static int lt_matmul(int ta, int tb, int m, int n, int k, float alpha, CtGemmMat A, int lda, CtGemmMat B, int ldb,
                     CtGemmMat C, int ldc, float beta, const float *bias, const LtGelu *gelu = NULL) {
    lt_init();
    int slots = 0;
    const void *a_in = lt_input(A, lt_span(ta ? k : m, ta ? m : k, lda), &slots);
    const void *b_in = lt_input(B, lt_span(tb ? n : k, tb ? k : n, ldb), &slots);
    void *c_out = (void *)C.p;
    const cudaDataType_t a_type = lt_type(A.type), b_type = lt_type(B.type), c_type = lt_type(C.type);
    // cublasLt.h, BIAS_DATA_TYPE: the bias is of D's type (the exceptions are int8 and fp8
    // kernels), so a bf16 output reads the fp32 bias as bf16: its declared copy, or rounded
    const void *bias_in = bias;
    if (bias && C.type == CT_GEMM_BF16) bias_in = lt_input(CtGemmMat{bias, CT_GEMM_F32_AS_BF16}, (size_t)m, &slots);
    // The bias has no alignment preference to tell the heuristic, and a bias less than 16-byte
    // aligned (one at an offset in the parameter buffer, or its bf16 copy) has been reported to
    // fail in the epilogue (Marian NMT's cuBLASLt code): it is read from an aligned copy, the same bits.
    if (bias && alignment_of(bias_in) < 16) {
        const size_t bytes = (size_t)m * (C.type == CT_GEMM_BF16 ? sizeof(__nv_bfloat16) : sizeof(float));
        void *aligned = lt_scratch(bytes, &slots);
        ct_cuda_copy(aligned, bias_in, bytes);
        bias_in = aligned;
    }
    const int32_t bias_type = c_type;  // D's type: the default, set explicitly
    cublasLtMatmulDesc_t op;
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof(opa)));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof(opb)));
    cublasLtEpilogue_t epi = epilogue_of(bias, gelu);
    if (epi != CUBLASLT_EPILOGUE_DEFAULT)
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
    if (bias) {
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias_in, sizeof(bias_in)));
        CUBLAS_CHECK(
            cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof(bias_type)));
    }
    if (gelu) {
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &gelu->aux,
                                                    sizeof(gelu->aux)));
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &gelu->aux_ld,
                                                    sizeof(gelu->aux_ld)));
    }
    cublasLtMatrixLayout_t la, lb, lc;
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&la, a_type, ta ? k : m, ta ? m : k, lda));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lb, b_type, tb ? n : k, tb ? k : n, ldb));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lc, c_type, m, n, ldc));
    cublasLtMatmulPreference_t pref;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    size_t ws = WORKSPACE_BYTES;
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
    const uint32_t align_a = alignment_of(a_in), align_b = alignment_of(b_in), align_c = alignment_of(c_out);
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
        CUBLAS_CHECK(cublasLtMatmul(lt_handle, op, &alpha, a_in, la, b_in, lb, &beta, c_out, lc, c_out, lc, &heur.algo,
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

// C[r, :] += bias[r] for the m rows of the column-major C[m, n] (ld m), in fp32 (rounded once
// when C is bf16): the bias epilogue's fallback.
template <typename c_t>
__global__ void add_bias_kernel(c_t *C, const float *bias, int m, size_t total) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x)
        act_add(C + i, bias[i % m]);
}

void ct_cuda_gemm_ex(int ta, int tb, int m, int n, int k, float alpha, CtGemmMat A, int lda, CtGemmMat B, int ldb,
                     CtGemmMat C, int ldc, float beta, const float *bias) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {  // an empty sum: nothing to add in the backward products (N = 0)
        if (beta == 1.0f && !bias) return;
        ct_fatal_at(__FILE__, __LINE__, "a matrix product needs at least one input channel", "gemm with k=%d", k);
    }
    if (lt_matmul(ta, tb, m, n, k, alpha, A, lda, B, ldb, C, ldc, beta, bias)) return;
    // no algorithm with the fused bias: the plain product, then the bias as its own kernel
    if (bias && ldc == m && lt_matmul(ta, tb, m, n, k, alpha, A, lda, B, ldb, C, ldc, beta, NULL)) {
        size_t total = (size_t)m * n;
        if (C.type == CT_GEMM_BF16)
            add_bias_kernel<<<ct_blocks(total, 256), 256>>>((ct_bf16 *)C.p, bias, m, total);
        else
            add_bias_kernel<<<ct_blocks(total, 256), 256>>>((float *)C.p, bias, m, total);
        LAUNCH_CHECK("add_bias_kernel");
        return;
    }
    ct_fatal_at(__FILE__, __LINE__, "a bug in ctrain's use of cuBLASLt: please report the model shape",
                "cuBLASLt has no algorithm for m=%d n=%d k=%d (ta=%d tb=%d bias=%d, A %s, B %s, C %s)", m, n, k, ta, tb,
                bias != NULL, A.type == CT_GEMM_F32 ? "fp32" : "bf16", B.type == CT_GEMM_F32 ? "fp32" : "bf16",
                C.type == CT_GEMM_F32 ? "fp32" : "bf16");
}

// The ops of the other .cu files these call, for either activation type (templates: the fused
// GELU ops exist for bf16 only, and nvcc warns of unused plain functions).
template <typename act_t>
static void bias_backward(float *dbias, const act_t *dout, int N, int OC) {
    if constexpr (sizeof(act_t) == sizeof(float)) ct_cuda_bias_backward(dbias, dout, N, OC);
    else ct_cuda_bias_backward_bf16(dbias, dout, N, OC);
}
template <typename act_t>
static void gelu_forward(act_t *out, const act_t *inp, size_t n) {
    if constexpr (sizeof(act_t) == sizeof(float)) ct_cuda_gelu_forward(out, inp, n);
    else ct_cuda_gelu_forward_bf16(out, inp, n);
}
template <typename act_t>
static void gelu_grad_scale(act_t *d, const act_t *pre, size_t n) {
    if constexpr (sizeof(act_t) == sizeof(float)) ct_cuda_gelu_grad_scale(d, pre, n);
    else ct_cuda_gelu_grad_scale_bf16(d, pre, n);
}

template <typename act_t>
static void matmul_forward(act_t *out, const act_t *inp, const float *weight, const float *bias, int N, int C,
                           int OC) {
    ct_cuda_gemm_ex(1, 0, OC, N, C, 1.0f, ct_gemm_weight<act_t>(weight), C, ct_gemm_act(inp), C, ct_gemm_act(out), OC,
                    0.0f, bias);
}

template <typename act_t>
static void matmul_backward(act_t *dinp, float *dweight, float *dbias, const act_t *dout, const act_t *inp,
                            const float *weight, int N, int C, int OC) {
    if (dinp)
        ct_cuda_gemm_ex(0, 0, C, N, OC, 1.0f, ct_gemm_weight<act_t>(weight), C, ct_gemm_act(dout), OC,
                        ct_gemm_act(dinp), C, 1.0f, NULL);
    if (dweight)
        ct_cuda_gemm_ex(0, 1, C, OC, N, 1.0f, ct_gemm_act(inp), C, ct_gemm_act(dout), OC, ct_gemm_f32(dweight), C,
                        1.0f, NULL);
    if (dbias) bias_backward(dbias, dout, N, OC);
}

CT_CUDA_EXPORT_PAIR(ct_cuda_matmul_forward, ct_cuda_matmul_forward_bf16,
                    (CtAct *out, const CtAct *inp, const float *weight, const float *bias, int N, int C, int OC),
                    matmul_forward((act_t *)out, (const act_t *)inp, weight, bias, N, C, OC))

CT_CUDA_EXPORT_PAIR(ct_cuda_matmul_backward, ct_cuda_matmul_backward_bf16,
                    (CtAct *dinp, float *dweight, float *dbias, const CtAct *dout, const CtAct *inp,
                     const float *weight, int N, int C, int OC),
                    matmul_backward((act_t *)dinp, dweight, dbias, (const act_t *)dout, (const act_t *)inp, weight, N,
                                    C, OC))

// ---- GPT-2's MLP with GELU in the product's epilogue (the bf16 table's fused ops) ----
// cuBLASLt's GELU is the tanh form, but not to fp32 rounding (public tests of its fp32 epilogue
// allow 2e-4: an approximate tanh), outside fp32's 1e-5 of the CPU op, so only the bf16 table
// offers these. cublasLt.h: the aux leading dimension must be a multiple of 8; other widths,
// and shapes cuBLASLt has no algorithm for, run the unfused kernels.

static size_t gelu_epilogue_fallbacks;
extern "C" size_t ct_cuda_gelu_epilogue_fallbacks(void) { return gelu_epilogue_fallbacks; }

// pre'[OC,N] = W'ᵀ·inp' + b into the aux, out' = gelu(pre') into C, both with leading dimension OC.
template <typename act_t>
static void matmul_bias_gelu_forward(act_t *out, act_t *pre, const act_t *inp, const float *weight,
                                     const float *bias, int N, int C, int OC) {
    if (N <= 0 || OC <= 0) return;
    const LtGelu gelu = {0, pre, OC};
    if (OC % 8 == 0 && C > 0 &&
        lt_matmul(1, 0, OC, N, C, 1.0f, ct_gemm_weight<act_t>(weight), C, ct_gemm_act(inp), C, ct_gemm_act(out), OC,
                  0.0f, bias, &gelu))
        return;
    gelu_epilogue_fallbacks++;
    matmul_forward(pre, inp, weight, bias, N, C, OC);
    gelu_forward(out, pre, (size_t)N * OC);
}

// dpre'[C,N] = (W'[C,OC]·dout'[OC,N]) ⊙ gelu'(pre'), beta 0: written (DGELU, aux = pre, ld C).
// dweight and dbias as matmul_backward's (dbias stays our deterministic column sum).
template <typename act_t>
static void matmul_backward_dgelu(act_t *dpre, float *dweight, float *dbias, const act_t *dout, const act_t *inp,
                                  const act_t *pre, const float *weight, int N, int C, int OC) {
    if (N <= 0 || C <= 0) return;
    const LtGelu gelu = {1, pre, C};
    const CtGemmMat w = ct_gemm_weight<act_t>(weight);
    if (!(C % 8 == 0 && OC > 0 &&
          lt_matmul(0, 0, C, N, OC, 1.0f, w, C, ct_gemm_act(dout), OC, ct_gemm_act(dpre), C, 0.0f, NULL, &gelu))) {
        gelu_epilogue_fallbacks++;
        // dpre = dout·W, then dpre ⊙= gelu'(pre) (in bf16: the product rounded, then the scaling)
        ct_cuda_gemm_ex(0, 0, C, N, OC, 1.0f, w, C, ct_gemm_act(dout), OC, ct_gemm_act(dpre), C, 0.0f, NULL);
        gelu_grad_scale(dpre, pre, (size_t)N * C);
    }
    matmul_backward((act_t *)NULL, dweight, dbias, dout, inp, weight, N, C, OC);
}

extern "C" void ct_cuda_matmul_bias_gelu_forward_bf16(CtAct *out, CtAct *pre, const CtAct *inp, const float *weight,
                                                      const float *bias, int N, int C, int OC) {
    matmul_bias_gelu_forward((ct_bf16 *)out, (ct_bf16 *)pre, (const ct_bf16 *)inp, weight, bias, N, C, OC);
}

extern "C" void ct_cuda_matmul_backward_dgelu_bf16(CtAct *dpre, float *dweight, float *dbias, const CtAct *dout,
                                                   const CtAct *inp, const CtAct *pre, const float *weight, int N,
                                                   int C, int OC) {
    matmul_backward_dgelu((ct_bf16 *)dpre, dweight, dbias, (const ct_bf16 *)dout, (const ct_bf16 *)inp,
                          (const ct_bf16 *)pre, weight, N, C, OC);
}
