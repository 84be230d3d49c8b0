// See emu.h: the part of cuBLASLt that kernels/cuda/matmul.cu uses, as a plain column-major
// product on the host. It checks the layouts matmul.cu describes (rows, cols, leading dims,
// transposes, bias and GELU epilogues, alignment), not cuBLASLt itself, and refuses the type
// combinations cuBLASLt's documentation does not list for CUBLAS_COMPUTE_32F (so code the GPU
// would refuse fails here too): A and B fp32 or bf16 alike; C = D, fp32 or bf16, bf16 only with
// bf16 A and B; the bias and the GELU aux of D's type (cublasLt.h, BIAS_DATA_TYPE and
// EPILOGUE_AUX_DATA_TYPE: other types only for int8 and fp8 kernels). bf16 values are read
// exactly and a bf16 D (or aux) is rounded to nearest even. Its GELU is the tanh form computed
// exactly (in double); the real epilogue uses an approximate tanh.
#pragma once
#include "emu.h"
#include "cuda_bf16.h"

typedef enum {
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_ALLOC_FAILED = 3,
    CUBLAS_STATUS_INVALID_VALUE = 7,
    CUBLAS_STATUS_NOT_SUPPORTED = 15
} cublasStatus_t;
typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 } cublasOperation_t;
typedef enum { CUBLAS_COMPUTE_32F = 68 } cublasComputeType_t;
typedef enum { CUDA_R_32F = 0, CUDA_R_16BF = 14 } cudaDataType_t;
typedef enum {  // cuBLASLt's values
    CUBLASLT_EPILOGUE_DEFAULT = 1,
    CUBLASLT_EPILOGUE_BIAS = 4,
    CUBLASLT_EPILOGUE_GELU_AUX = 32 | 128,
    CUBLASLT_EPILOGUE_GELU_AUX_BIAS = 32 | 128 | 4,
    CUBLASLT_EPILOGUE_DGELU = 64 | 128
} cublasLtEpilogue_t;
typedef enum {
    CUBLASLT_MATMUL_DESC_TRANSA,
    CUBLASLT_MATMUL_DESC_TRANSB,
    CUBLASLT_MATMUL_DESC_EPILOGUE,
    CUBLASLT_MATMUL_DESC_BIAS_POINTER,
    CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER,  // void * (GELU_AUX: written) / const void * (DGELU: read)
    CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD,        // int64_t
    CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_DATA_TYPE,  // int32_t (a cudaDataType_t), default -1: D's type
    CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE           // int32_t (a cudaDataType_t), default -1: D's type
} cublasLtMatmulDescAttributes_t;
typedef enum {
    CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1,
    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES = 5,
    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES = 6,
    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES = 7,
    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES = 8
} cublasLtMatmulPreferenceAttributes_t;

struct EmuLtDesc {
    cublasOperation_t ta = CUBLAS_OP_N, tb = CUBLAS_OP_N;
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_DEFAULT;
    const void *bias = nullptr;
    void *aux = nullptr;  // the GELU input, column-major [rows of D, cols of D], leading dimension aux_ld
    int64_t aux_ld = 0;
    int32_t aux_type = -1, bias_type = -1;  // -1: D's type
};
struct EmuLtLayout {
    uint64_t rows, cols;
    int64_t ld;
    cudaDataType_t type;
};
// The alignment (bytes) the heuristic may assume of A, B, C and D: 256 unless the preference
// says less (cuBLASLt's documented default). The algorithm it returns carries them, and
// cublasLtMatmul refuses pointers less aligned than its algorithm was chosen for.
struct EmuLtPreference {
    uint32_t min_alignment[4] = {256, 256, 256, 256};
};
typedef void *cublasLtHandle_t;
typedef EmuLtDesc *cublasLtMatmulDesc_t;
typedef EmuLtLayout *cublasLtMatrixLayout_t;
typedef EmuLtPreference *cublasLtMatmulPreference_t;
typedef struct {
    int id;
    uint32_t min_alignment[4];  // A, B, C, D
} cublasLtMatmulAlgo_t;
typedef struct {
    cublasLtMatmulAlgo_t algo;
} cublasLtMatmulHeuristicResult_t;

const char *cublasGetStatusString(cublasStatus_t s);
cublasStatus_t cublasLtCreate(cublasLtHandle_t *h);
cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t, cudaDataType_t);
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a, const void *v,
                                              size_t n);
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d);
cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType_t, uint64_t rows, uint64_t cols,
                                          int64_t ld);
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l);
cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p);
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t,
                                                    const void *, size_t);
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p);
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t, cublasLtMatmulDesc_t, cublasLtMatrixLayout_t,
                                              cublasLtMatrixLayout_t, cublasLtMatrixLayout_t, cublasLtMatrixLayout_t,
                                              cublasLtMatmulPreference_t, int, cublasLtMatmulHeuristicResult_t *r,
                                              int *found);
cublasStatus_t cublasLtMatmul(cublasLtHandle_t, cublasLtMatmulDesc_t d, const void *alpha, const void *A,
                              cublasLtMatrixLayout_t la, const void *B, cublasLtMatrixLayout_t lb, const void *beta,
                              const void *C, cublasLtMatrixLayout_t lc, void *D, cublasLtMatrixLayout_t ld,
                              const cublasLtMatmulAlgo_t *, void *, size_t, cudaStream_t);
