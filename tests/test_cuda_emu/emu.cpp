// The emulation's runtime (see emu.h): grid launch, barriers, memory, cuBLASLt products,
// and the device functions of kernels/device.h (one emulated device).
#include "emu.h"

#include "cublasLt.h"

#include <ucontext.h>

thread_local dim3 threadIdx, blockIdx;
dim3 blockDim, gridDim;
float *ct_emu_dynamic_smem;

// A block's threads are fibers (ucontext) on the launching thread, run round-robin: each runs
// until it reaches a barrier or ends; a barrier opens when every live thread of its scope (the
// block for __syncthreads, the warp for warp operations) waits at it. Finished threads drop out
// of barriers, as exited GPU threads do. One OS thread, no locks: fast, and the same
// interleaving on every run.
enum FiberState { RUNNABLE, AT_BLOCK_BARRIER, AT_WARP_BARRIER, DONE };
struct Fiber {
    ucontext_t ctx;
    FiberState state;
};
static ucontext_t scheduler;
static std::vector<Fiber> fibers;
static std::vector<char *> stacks;
static const size_t FIBER_STACK = 256 << 10;
static int current;
static const std::function<void()> *block_body;
static std::vector<double> warp_slots;
static std::vector<unsigned char> warp_exchange;  // CT_EMU_EXCHANGE_MAX bytes per thread

static void wait_at(FiberState barrier) {
    fibers[(size_t)current].state = barrier;
    swapcontext(&fibers[(size_t)current].ctx, &scheduler);
}
void ct_emu_syncthreads() { wait_at(AT_BLOCK_BARRIER); }
static int linear_tid() { return (int)(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)); }
int ct_emu_lane() { return linear_tid() & 31; }
void ct_emu_syncwarp() { wait_at(AT_WARP_BARRIER); }
double *ct_emu_warp_slots() { return &warp_slots[(size_t)(linear_tid() >> 5) * 32]; }
void ct_emu_warp_exchange(const void *mine, void *all, size_t bytes) {
    if (bytes > CT_EMU_EXCHANGE_MAX) {
        fprintf(stderr, "emu: a warp exchange of %zu bytes per lane (at most %d)\n", bytes, CT_EMU_EXCHANGE_MAX);
        abort();
    }
    unsigned char *warp = &warp_exchange[(size_t)(linear_tid() >> 5) * 32 * CT_EMU_EXCHANGE_MAX];
    std::memcpy(warp + (size_t)ct_emu_lane() * CT_EMU_EXCHANGE_MAX, mine, bytes);
    ct_emu_syncwarp();
    for (int l = 0; l < 32; l++)
        std::memcpy((unsigned char *)all + (size_t)l * bytes, warp + (size_t)l * CT_EMU_EXCHANGE_MAX, bytes);
    ct_emu_syncwarp();  // nobody overwrites its slot before every lane has read
    std::memset(warp + (size_t)ct_emu_lane() * CT_EMU_EXCHANGE_MAX, 0, bytes);
}

static void fiber_main() {
    (*block_body)();
    fibers[(size_t)current].state = DONE;  // uc_link returns to the scheduler
}

static void set_thread_index(int t) {
    threadIdx = dim3(t % blockDim.x, (t / blockDim.x) % blockDim.y, t / (blockDim.x * blockDim.y));
}

// Runs one block to the end; aborts on a barrier that can never open (threads of one scope
// waiting at different barriers), which would hang or be undefined on a GPU.
// Its own function: getcontext "returns twice", so no loop variable may live across it.
static __attribute__((noinline)) void make_fiber(Fiber *f, char *stack) {
    getcontext(&f->ctx);
    f->ctx.uc_stack.ss_sp = stack;
    f->ctx.uc_stack.ss_size = FIBER_STACK;
    f->ctx.uc_link = &scheduler;
    makecontext(&f->ctx, fiber_main, 0);
    f->state = RUNNABLE;
}

static void run_block(int threads) {
    for (int t = 0; t < threads; t++) make_fiber(&fibers[(size_t)t], stacks[(size_t)t]);
    const int warps = (threads + 31) / 32;
    for (;;) {
        for (int t = 0; t < threads; t++) {
            if (fibers[(size_t)t].state != RUNNABLE) continue;
            current = t;
            set_thread_index(t);
            swapcontext(&scheduler, &fibers[(size_t)t].ctx);
        }
        int live = 0, at_block = 0, released = 0;
        for (int w = 0; w < warps; w++) {
            int warp_live = 0, warp_waiting = 0;
            for (int t = 32 * w; t < min(threads, 32 * w + 32); t++) {
                FiberState st = fibers[(size_t)t].state;
                warp_live += st != DONE;
                warp_waiting += st == AT_WARP_BARRIER;
                at_block += st == AT_BLOCK_BARRIER;
            }
            live += warp_live;
            if (warp_live > 0 && warp_waiting == warp_live) {
                for (int t = 32 * w; t < min(threads, 32 * w + 32); t++) fibers[(size_t)t].state = RUNNABLE;
                released = 1;
            }
        }
        if (live == 0) return;
        if (!released && at_block == live) {
            for (int t = 0; t < threads; t++)
                if (fibers[(size_t)t].state == AT_BLOCK_BARRIER) fibers[(size_t)t].state = RUNNABLE;
            released = 1;
        }
        if (!released) {
            fprintf(stderr, "emu: block (%u %u %u): threads wait at different barriers and none can open\n", blockIdx.x,
                    blockIdx.y, blockIdx.z);
            abort();
        }
    }
}

void ct_emu_run_grid(const EmuLaunch &cfg, const std::function<void()> &body) {
    const int threads = (int)(cfg.block.x * cfg.block.y * cfg.block.z);
    if (threads <= 0 || threads > 1024 || cfg.grid.y > 65535 || cfg.grid.z > 65535) {
        fprintf(stderr, "emu: bad launch shape (%u %u %u) x (%u %u %u)\n", cfg.grid.x, cfg.grid.y, cfg.grid.z,
                cfg.block.x, cfg.block.y, cfg.block.z);
        abort();
    }
    gridDim = cfg.grid;
    blockDim = cfg.block;
    while ((int)stacks.size() < threads) stacks.push_back((char *)malloc(FIBER_STACK));
    fibers.resize((size_t)max((int)fibers.size(), threads));
    warp_slots.assign((size_t)((threads + 31) / 32) * 32, 0.0);
    warp_exchange.assign((size_t)((threads + 31) / 32) * 32 * CT_EMU_EXCHANGE_MAX, 0);
    std::vector<float> smem(cfg.smem / sizeof(float) + 1);
    ct_emu_dynamic_smem = smem.data();
    block_body = &body;
    for (unsigned bz = 0; bz < cfg.grid.z; bz++)
        for (unsigned by = 0; by < cfg.grid.y; by++)
            for (unsigned bx = 0; bx < cfg.grid.x; bx++) {
                std::memset(smem.data(), 0xff, smem.size() * sizeof(float));  // nan: uninitialised reads show
                blockIdx = dim3(bx, by, bz);
                run_block(threads);
            }
}

// ---- runtime ----
const char *cudaGetErrorString(cudaError_t e) { return e == cudaSuccess ? "no error" : e == cudaErrorMemoryAllocation ? "out of memory" : "emulated error"; }
const char *cudaGetErrorName(cudaError_t e) { return e == cudaErrorMemoryAllocation ? "cudaErrorMemoryAllocation" : "cudaError"; }
cudaError_t cudaGetLastError() { return cudaSuccess; }
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
static const size_t emu_total = (size_t)80 << 30;
cudaError_t cudaMalloc(void **p, size_t bytes) {
    if (bytes > emu_total) return cudaErrorMemoryAllocation;
    *p = aligned_alloc(256, (bytes + 255) / 256 * 256);  // cudaMalloc's alignment: at least 256 bytes
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
    return ct_emu_gpu_count();
}
extern "C" int ct_cuda_use_device(int index, char *why, size_t why_size) {
    if (cudaSetDevice(index) == cudaSuccess) return 0;
    snprintf(why, why_size, "cudaSetDevice(%d) failed: no such emulated device", index);
    return -1;
}
extern "C" int ct_cuda_device_describe(int, char *name, size_t name_size, size_t *total_bytes) {
    snprintf(name, name_size, "CPU emulation");
    *total_bytes = emu_total;
    return 0;
}

// ---- cuBLASLt ----
static bool uses_gelu_aux(cublasLtEpilogue_t e) {
    return e == CUBLASLT_EPILOGUE_GELU_AUX || e == CUBLASLT_EPILOGUE_GELU_AUX_BIAS || e == CUBLASLT_EPILOGUE_DGELU;
}
static bool uses_bias(cublasLtEpilogue_t e) { return e == CUBLASLT_EPILOGUE_BIAS || e == CUBLASLT_EPILOGUE_GELU_AUX_BIAS; }
static const char *type_name(int32_t t) { return t == CUDA_R_32F ? "CUDA_R_32F" : t == CUDA_R_16BF ? "CUDA_R_16BF" : "?"; }
// The bias's and the aux's types: D's unless set.
static int32_t bias_type_of(const EmuLtDesc *d, const EmuLtLayout *ld) { return d->bias_type < 0 ? ld->type : d->bias_type; }
static int32_t aux_type_of(const EmuLtDesc *d, const EmuLtLayout *ld) { return d->aux_type < 0 ? ld->type : d->aux_type; }
// The type combinations cuBLASLt lists for CUBLAS_COMPUTE_32F with CUDA_R_32F scaling (among the
// types this emulation knows): A, B, C = D in {fp32 fp32 fp32, bf16 bf16 bf16, bf16 bf16 fp32}, the
// bias and the aux of D's type. Other combinations get no algorithm, as on the GPU; the reason is
// printed, since matmul.cu's fallbacks may take over silently.
static bool types_supported(const EmuLtDesc *d, const EmuLtLayout *la, const EmuLtLayout *lb, const EmuLtLayout *lc,
                            const EmuLtLayout *ld) {
    const char *why = nullptr;
    if (la->type != lb->type) why = "A and B of different types";
    else if (lc->type != ld->type) why = "C and D of different types";
    else if (la->type == CUDA_R_32F && lc->type != CUDA_R_32F) why = "fp32 A and B with a bf16 C/D";
    else if (uses_bias(d->epi) && bias_type_of(d, ld) != ld->type) why = "a bias not of D's type";
    else if (uses_gelu_aux(d->epi) && aux_type_of(d, ld) != ld->type) why = "a GELU aux not of D's type";
    if (!why) return true;
    fprintf(stderr, "emu: cuBLASLt has no algorithm for %s (A %s, B %s, C %s, D %s, bias %s, aux %s)\n", why,
            type_name(la->type), type_name(lb->type), type_name(lc->type), type_name(ld->type),
            type_name(bias_type_of(d, ld)), type_name(aux_type_of(d, ld)));
    return false;
}
// Element `at` of an fp32 or bf16 array, as float (bf16 exactly); storing rounds a bf16 to nearest even.
static float load_as(int32_t type, const void *base, int64_t at) {
    if (type == CUDA_R_16BF) return __bfloat162float(((const __nv_bfloat16 *)base)[at]);
    return ((const float *)base)[at];
}
static void store_as(int32_t type, void *base, int64_t at, float v) {
    if (type == CUDA_R_16BF) ((__nv_bfloat16 *)base)[at] = __float2bfloat16_rn(v);
    else ((float *)base)[at] = v;
}
// cuBLASLt's GELU: the tanh form, 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), and its derivative.
static double gelu_tanh(double x) { return 0.5 * x * (1 + std::tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }
static double gelu_tanh_grad(double x) {
    const double k = 0.7978845608028654, c = 0.044715, t = std::tanh(k * (x + c * x * x * x));
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * c * x * x);
}
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
                                              size_t n) {
    // each attribute has its own type; cuBLASLt refuses a buffer of another size
    const bool is_int32 = a == CUBLASLT_MATMUL_DESC_TRANSA || a == CUBLASLT_MATMUL_DESC_TRANSB ||
                          a == CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_DATA_TYPE || a == CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE;
    const size_t want = is_int32                                     ? sizeof(int32_t)
                        : a == CUBLASLT_MATMUL_DESC_EPILOGUE         ? sizeof(uint32_t)
                        : a == CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD ? sizeof(int64_t)
                                                                     : sizeof(void *);
    if (n != want) return CUBLAS_STATUS_INVALID_VALUE;
    switch (a) {
    case CUBLASLT_MATMUL_DESC_TRANSA: d->ta = *(const cublasOperation_t *)v; break;
    case CUBLASLT_MATMUL_DESC_TRANSB: d->tb = *(const cublasOperation_t *)v; break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE: d->epi = *(const cublasLtEpilogue_t *)v; break;
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: d->bias = *(const void *const *)v; break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER: d->aux = *(void *const *)v; break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD: d->aux_ld = *(const int64_t *)v; break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_DATA_TYPE: d->aux_type = *(const int32_t *)v; break;
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE: d->bias_type = *(const int32_t *)v; break;
    }
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) {
    delete d;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType_t type, uint64_t rows,
                                          uint64_t cols, int64_t ld) {
    if ((int64_t)rows > ld) return CUBLAS_STATUS_NOT_SUPPORTED;  // cuBLAS requires ld >= rows
    *l = new EmuLtLayout{rows, cols, ld, type};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) {
    delete l;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p) {
    *p = new EmuLtPreference;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t a,
                                                    const void *v, size_t) {
    if (a >= CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES && a <= CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES)
        p->min_alignment[a - CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES] = *(const uint32_t *)v;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) {
    delete p;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t, cublasLtMatmulDesc_t d, cublasLtMatrixLayout_t la,
                                              cublasLtMatrixLayout_t lb, cublasLtMatrixLayout_t lc,
                                              cublasLtMatrixLayout_t ld, cublasLtMatmulPreference_t pref, int,
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
    if (lc->rows != ld->rows || lc->cols != ld->cols) {
        fprintf(stderr, "emu: cuBLASLt C and D of different shapes\n");
        abort();
    }
    if (!types_supported(d, la, lb, lc, ld)) return CUBLAS_STATUS_NOT_SUPPORTED;
    // cublasLt.h, EPILOGUE_AUX_LD: the GELU input's leading dimension must be divisible by 8 and
    // at least the rows of D
    if (uses_gelu_aux(d->epi) && (d->aux_ld < (int64_t)lc->rows || d->aux_ld % 8 != 0))
        return CUBLAS_STATUS_INVALID_VALUE;
    r->algo.id = 1;
    std::memcpy(r->algo.min_alignment, pref->min_alignment, sizeof pref->min_alignment);
    *found = 1;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmul(cublasLtHandle_t, cublasLtMatmulDesc_t d, const void *alpha_p, const void *A_p,
                              cublasLtMatrixLayout_t la, const void *B_p, cublasLtMatrixLayout_t lb,
                              const void *beta_p, const void *C_p, cublasLtMatrixLayout_t lc, void *D_p,
                              cublasLtMatrixLayout_t ld, const cublasLtMatmulAlgo_t *algo, void *, size_t,
                              cudaStream_t) {
    if (!types_supported(d, la, lb, lc, ld)) return CUBLAS_STATUS_NOT_SUPPORTED;
    // an algorithm chosen for 256-byte aligned matrices may use loads that need it
    const void *pointers[4] = {A_p, B_p, C_p, D_p};
    for (int i = 0; i < 4; i++)
        if ((uintptr_t)pointers[i] % algo->min_alignment[i]) {
            fprintf(stderr, "emu: cuBLASLt matrix %c at %p is less aligned than the %u bytes the heuristic was told "
                    "(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_%c_BYTES)\n", "ABCD"[i], pointers[i],
                    algo->min_alignment[i], "ABCD"[i]);
            return CUBLAS_STATUS_INVALID_VALUE;
        }
    const float alpha = *(const float *)alpha_p, beta = *(const float *)beta_p;
    if (uses_gelu_aux(d->epi) && !d->aux) return CUBLAS_STATUS_NOT_SUPPORTED;  // the aux pointer is required
    if (d->epi == CUBLASLT_EPILOGUE_DGELU && beta != 0.0f) {
        // whether DGELU's derivative applies to beta·C too is not documented: nothing may rely on it
        fprintf(stderr, "emu: cuBLASLt DGELU with beta != 0 (undocumented semantics)\n");
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    const int64_t m = (int64_t)lc->rows, n = (int64_t)lc->cols, k = d->ta ? (int64_t)la->rows : (int64_t)la->cols;
    for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i < m; i++) {
            double s = 0;
            for (int64_t p = 0; p < k; p++) {
                double a = load_as(la->type, A_p, d->ta ? p + i * la->ld : i + p * la->ld);
                double b = load_as(lb->type, B_p, d->tb ? j + p * lb->ld : p + j * lb->ld);
                s += a * b;
            }
            float v = alpha * (float)s + (beta != 0.0f ? beta * load_as(lc->type, C_p, i + j * lc->ld) : 0.0f);
            if (uses_bias(d->epi)) v += load_as(bias_type_of(d, ld), d->bias, i);
            const int64_t at_aux = i + j * d->aux_ld;
            if (d->epi == CUBLASLT_EPILOGUE_GELU_AUX || d->epi == CUBLASLT_EPILOGUE_GELU_AUX_BIAS) {
                store_as(aux_type_of(d, ld), d->aux, at_aux, v);  // GELU's input, then GELU
                v = (float)gelu_tanh(v);
            } else if (d->epi == CUBLASLT_EPILOGUE_DGELU) {
                v = (float)(v * gelu_tanh_grad(load_as(aux_type_of(d, ld), d->aux, at_aux)));
            }
            store_as(ld->type, D_p, i + j * ld->ld, v);
        }
    return CUBLAS_STATUS_SUCCESS;
}
