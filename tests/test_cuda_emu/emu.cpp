// The emulation's runtime (see emu.h): grid launch, barriers, memory, cuBLASLt products,
// and the device functions of kernels/device.h (one emulated device).
#include "emu.h"

#include "cublasLt.h"

thread_local dim3 threadIdx, blockIdx;
dim3 blockDim, gridDim;
float *ct_emu_dynamic_smem;

static EmuBarrier block_barrier;
static std::vector<EmuBarrier *> warp_barriers;
static std::vector<double> warp_slots;

void ct_emu_syncthreads() { block_barrier.wait(); }
static int linear_tid() { return (int)(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)); }
int ct_emu_lane() { return linear_tid() & 31; }
void ct_emu_syncwarp() { warp_barriers[(size_t)(linear_tid() >> 5)]->wait(); }
double *ct_emu_warp_slots() { return &warp_slots[(size_t)(linear_tid() >> 5) * 32]; }

void ct_emu_run_grid(const EmuLaunch &cfg, const std::function<void()> &body) {
    const int threads = (int)(cfg.block.x * cfg.block.y * cfg.block.z);
    if (threads <= 0 || threads > 1024 || cfg.grid.y > 65535 || cfg.grid.z > 65535) {
        fprintf(stderr, "emu: bad launch shape (%u %u %u) x (%u %u %u)\n", cfg.grid.x, cfg.grid.y, cfg.grid.z,
                cfg.block.x, cfg.block.y, cfg.block.z);
        abort();
    }
    gridDim = cfg.grid;
    blockDim = cfg.block;
    const int warps = (threads + 31) / 32;
    while ((int)warp_barriers.size() < warps) warp_barriers.push_back(new EmuBarrier);
    warp_slots.assign((size_t)warps * 32, 0.0);
    std::vector<float> smem(cfg.smem / sizeof(float) + 1);
    // One pool of `threads` threads walks all blocks in order; `outer` separates the blocks.
    EmuBarrier outer;
    outer.reset(threads);
    std::vector<std::thread> pool;
    pool.reserve((size_t)threads);
    for (int t = 0; t < threads; t++)
        pool.emplace_back([&, t] {
            threadIdx = dim3(t % cfg.block.x, (t / cfg.block.x) % cfg.block.y, t / (cfg.block.x * cfg.block.y));
            for (unsigned bz = 0; bz < cfg.grid.z; bz++)
                for (unsigned by = 0; by < cfg.grid.y; by++)
                    for (unsigned bx = 0; bx < cfg.grid.x; bx++) {
                        if (t == 0) {
                            std::memset(smem.data(), 0xff, smem.size() * sizeof(float));  // nan: uninitialised reads show
                            ct_emu_dynamic_smem = smem.data();
                            block_barrier.reset(threads);
                            for (int w = 0; w < warps; w++) warp_barriers[(size_t)w]->reset(min(32, threads - 32 * w));
                        }
                        outer.wait();
                        blockIdx = dim3(bx, by, bz);
                        body();
                        block_barrier.drop();
                        warp_barriers[(size_t)(t >> 5)]->drop();
                        outer.wait();
                    }
        });
    for (auto &th : pool) th.join();
}

// ---- runtime ----
const char *cudaGetErrorString(cudaError_t e) { return e == cudaSuccess ? "no error" : e == cudaErrorMemoryAllocation ? "out of memory" : "emulated error"; }
const char *cudaGetErrorName(cudaError_t e) { return e == cudaErrorMemoryAllocation ? "cudaErrorMemoryAllocation" : "cudaError"; }
cudaError_t cudaGetLastError() { return cudaSuccess; }
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
static const size_t emu_total = (size_t)80 << 30;
cudaError_t cudaMalloc(void **p, size_t bytes) {
    if (bytes > emu_total) return cudaErrorMemoryAllocation;
    *p = malloc(bytes);
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFree(void *p) {
    free(p);
    return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total_b) {
    *free_b = emu_total;
    *total_b = emu_total;
    return cudaSuccess;
}
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind) {
    memmove(dst, src, bytes);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind k, cudaStream_t) {
    return cudaMemcpy(dst, src, bytes, k);
}
cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t) {
    memset(p, value, bytes);
    return cudaSuccess;
}

// ---- kernels/device.h ----
// (ct_cuda_built and ct_cuda_archs come from kernels/device.c, built with CTRAIN_CUDA)
extern "C" int ct_cuda_device_count(char *why, size_t why_size) {
    (void)why;
    (void)why_size;
    return 1;
}
extern "C" int ct_cuda_device_describe(int, char *name, size_t name_size, size_t *total_bytes) {
    snprintf(name, name_size, "CPU emulation");
    *total_bytes = emu_total;
    return 0;
}

// ---- cuBLASLt ----
const char *cublasGetStatusString(cublasStatus_t s) { return s == CUBLAS_STATUS_SUCCESS ? "success" : "emulated failure"; }
cublasStatus_t cublasLtCreate(cublasLtHandle_t *h) {
    *h = (void *)1;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t, cudaDataType_t) {
    *d = new EmuLtDesc;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a, const void *v,
                                              size_t) {
    switch (a) {
    case CUBLASLT_MATMUL_DESC_TRANSA: d->ta = *(const cublasOperation_t *)v; break;
    case CUBLASLT_MATMUL_DESC_TRANSB: d->tb = *(const cublasOperation_t *)v; break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE: d->epi = *(const cublasLtEpilogue_t *)v; break;
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: d->bias = *(const float *const *)v; break;
    }
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) {
    delete d;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType_t, uint64_t rows, uint64_t cols,
                                          int64_t ld) {
    if ((int64_t)rows > ld) return CUBLAS_STATUS_NOT_SUPPORTED;  // cuBLAS requires ld >= rows
    *l = new EmuLtLayout{rows, cols, ld};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) {
    delete l;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p) {
    *p = new int(0);
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t, cublasLtMatmulPreferenceAttributes_t,
                                                    const void *, size_t) {
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) {
    delete p;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t, cublasLtMatmulDesc_t d, cublasLtMatrixLayout_t la,
                                              cublasLtMatrixLayout_t lb, cublasLtMatrixLayout_t lc,
                                              cublasLtMatrixLayout_t, cublasLtMatmulPreference_t, int,
                                              cublasLtMatmulHeuristicResult_t *r, int *found) {
    // shapes must agree: op(A) is m×k, op(B) k×n, C m×n
    uint64_t am = d->ta ? la->cols : la->rows, ak = d->ta ? la->rows : la->cols;
    uint64_t bk = d->tb ? lb->cols : lb->rows, bn = d->tb ? lb->rows : lb->cols;
    if (am != lc->rows || bn != lc->cols || ak != bk) {
        fprintf(stderr, "emu: cuBLASLt shapes disagree: op(A) %llux%llu, op(B) %llux%llu, C %llux%llu\n",
                (unsigned long long)am, (unsigned long long)ak, (unsigned long long)bk, (unsigned long long)bn,
                (unsigned long long)lc->rows, (unsigned long long)lc->cols);
        abort();
    }
    r->algo.id = 1;
    *found = 1;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmul(cublasLtHandle_t, cublasLtMatmulDesc_t d, const void *alpha_p, const void *A_p,
                              cublasLtMatrixLayout_t la, const void *B_p, cublasLtMatrixLayout_t lb,
                              const void *beta_p, const void *, cublasLtMatrixLayout_t lc, void *D_p,
                              cublasLtMatrixLayout_t, const cublasLtMatmulAlgo_t *, void *, size_t, cudaStream_t) {
    const float *A = (const float *)A_p, *B = (const float *)B_p;
    float *D = (float *)D_p;
    const float alpha = *(const float *)alpha_p, beta = *(const float *)beta_p;
    const int64_t m = (int64_t)lc->rows, n = (int64_t)lc->cols, k = d->ta ? (int64_t)la->rows : (int64_t)la->cols;
    for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i < m; i++) {
            double s = 0;
            for (int64_t p = 0; p < k; p++) {
                double a = d->ta ? A[p + i * la->ld] : A[i + p * la->ld];
                double b = d->tb ? B[j + p * lb->ld] : B[p + j * lb->ld];
                s += a * b;
            }
            float &out = D[i + j * lc->ld];
            float v = alpha * (float)s + (beta != 0.0f ? beta * out : 0.0f);
            if (d->epi == CUBLASLT_EPILOGUE_BIAS) v += d->bias[i];
            out = v;
        }
    return CUBLAS_STATUS_SUCCESS;
}
