// Checked CUDA calls, device memory with a byte counter, and the backend's scratch buffers.
#include <stdio.h>
#include <stdlib.h>

#include <unordered_map>

#include "kernels/cuda/act_io.cuh"
#include "kernels/cuda/bf16_weights.cuh"
#include "kernels/cuda/cuda_common.cuh"

static const char *hint_for(cudaError_t err) {
    switch (err) {
    case cudaErrorMemoryAllocation:
        return "the GPU is out of memory: use a smaller batch (or more gradient-accumulation micro-steps), "
               "recompute activations, or shard optimizer state (ZeRO-1)";
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
        return "is there an NVIDIA GPU with a recent driver on this machine (nvidia-smi)?";
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
        return "a kernel read or wrote outside its buffers: rerun with CTRAIN_CUDA_SYNC=1 to name the kernel, "
               "and under compute-sanitizer (make test-cuda-memcheck)";
    case cudaErrorInvalidConfiguration:
    case cudaErrorInvalidValue:
        return "a launch shape or argument is out of range for this GPU: a bug in ctrain, please report it "
               "with the model shape";
    case cudaErrorNoKernelImageForDevice:
        return "this binary has no code for this GPU's architecture: rebuild with make CUDA_ARCHS=<sm> "
               "(e.g. 80 for A100, 90 for H100)";
    default:
        return "CUDA reported an error; rerun with CTRAIN_CUDA_SYNC=1 to name the kernel that caused it";
    }
}

void ct_cuda_fail(cudaError_t err, const char *call, const char *file, int line) {
    ct_fatal_at(file, line, hint_for(err), "CUDA call failed: %s: %s (%s)", call, cudaGetErrorString(err),
                cudaGetErrorName(err));
}

void ct_cuda_after_launch(const char *kernel, const char *file, int line) {
    static int sync_each = -1;
    if (sync_each < 0) {
        const char *s = getenv("CTRAIN_CUDA_SYNC");
        sync_each = s && s[0] == '1';
    }
    cudaError_t err = cudaGetLastError();
    if (err == cudaSuccess && sync_each) err = cudaDeviceSynchronize();
    if (err != cudaSuccess)
        ct_fatal_at(file, line, hint_for(err), "CUDA kernel %s failed: %s (%s)", kernel, cudaGetErrorString(err),
                    cudaGetErrorName(err));
}

// ---- device memory with a byte counter ----
// The counter needs each block's size at free time; a map from pointer to size holds it
// (allocations are few and large: parameters, activations, scratch).
static std::unordered_map<void *, size_t> &live_blocks() {
    static std::unordered_map<void *, size_t> blocks;
    return blocks;
}
static size_t bytes_in_use, bytes_peak;

extern "C" void *ct_cuda_malloc(size_t bytes, const char *what) {
    if (bytes == 0) bytes = 1;
    void *p = NULL;
    cudaError_t err = cudaMalloc(&p, bytes);
    if (err == cudaErrorMemoryAllocation) {
        cudaGetLastError();  // not sticky, but clear it before asking for the free memory
        size_t free_b = 0, total_b = 0;
        cudaMemGetInfo(&free_b, &total_b);
        ct_fatal_at(__FILE__, __LINE__, hint_for(err),
                    "out of GPU memory allocating %s: asked %.1f MiB, %.1f MiB free of %.1f MiB, ctrain holds %.1f MiB",
                    what ? what : "a buffer", bytes / 1048576.0, free_b / 1048576.0, total_b / 1048576.0,
                    bytes_in_use / 1048576.0);
    }
    if (err != cudaSuccess) ct_cuda_fail(err, "cudaMalloc(&p, bytes)", __FILE__, __LINE__);
    live_blocks()[p] = bytes;
    bytes_in_use += bytes;
    if (bytes_in_use > bytes_peak) bytes_peak = bytes_in_use;
    return p;
}

extern "C" void ct_cuda_free(void *p) {
    if (!p) return;
    auto it = live_blocks().find(p);
    if (it == live_blocks().end())
        ct_fatal_at(__FILE__, __LINE__, "free only what ct_cuda_malloc returned, once",
                    "ct_cuda_free of %p, which is not a live device block", p);
    const size_t bytes = it->second;
    bytes_in_use -= bytes;
    live_blocks().erase(it);
    ct_cuda_bf16_weights_forget(p, bytes);  // no stale bf16 copy for whatever is allocated here next
    CUDA_CHECK(cudaFree(p));
}

extern "C" void ct_cuda_upload(void *dst, const void *src, size_t bytes) {
    if (bytes) CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}
extern "C" void ct_cuda_download(void *dst, const void *src, size_t bytes) {
    if (bytes) CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}
extern "C" void ct_cuda_copy(void *dst, const void *src, size_t bytes) {
    if (bytes) CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, 0));
}
extern "C" void ct_cuda_zero(void *p, size_t bytes) {
    if (bytes) CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, 0));
}
// The op table's alloc: zeroed, as the CPU backend's ct_calloc.
extern "C" void *ct_cuda_alloc_zeroed(size_t bytes, const char *what) {
    void *p = ct_cuda_malloc(bytes, what);
    ct_cuda_zero(p, bytes ? bytes : 1);
    return p;
}
// ---- activations to and from host floats (the tables' upload_act / download_act) ----

extern "C" void ct_cuda_upload_act(CtAct *dst, const float *src, size_t n) {
    ct_cuda_upload(dst, src, n * sizeof(float));
}
extern "C" void ct_cuda_download_act(float *dst, const CtAct *src, size_t n) {
    ct_cuda_download(dst, src, n * sizeof(float));
}

template <typename to_t, typename from_t>
__global__ void convert_kernel(to_t *out, const from_t *in, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        act_store(out + i, act_load(in + i));
}

// Through a float staging buffer on the device, converted there (one pass each way).
extern "C" void ct_cuda_upload_act_bf16(CtAct *dst, const float *src, size_t n) {
    if (n == 0) return;
    float *staged = (float *)ct_cuda_malloc(n * sizeof(float), "activation upload staging");
    ct_cuda_upload(staged, src, n * sizeof(float));
    convert_kernel<<<ct_blocks(n, 256), 256>>>((ct_bf16 *)dst, (const float *)staged, n);
    LAUNCH_CHECK("convert_kernel");
    ct_cuda_free(staged);
}
extern "C" void ct_cuda_download_act_bf16(float *dst, const CtAct *src, size_t n) {
    if (n == 0) return;
    float *staged = (float *)ct_cuda_malloc(n * sizeof(float), "activation download staging");
    convert_kernel<<<ct_blocks(n, 256), 256>>>(staged, (const ct_bf16 *)src, n);
    LAUNCH_CHECK("convert_kernel");
    ct_cuda_download(dst, staged, n * sizeof(float));
    ct_cuda_free(staged);
}

extern "C" void ct_cuda_synchronize(void) { CUDA_CHECK(cudaDeviceSynchronize()); }
extern "C" size_t ct_cuda_bytes_in_use(void) { return bytes_in_use; }
extern "C" size_t ct_cuda_bytes_peak(void) { return bytes_peak; }

// ---- scratch ----
static void *scratch_ptr[CT_SCRATCH_COUNT];
static size_t scratch_size[CT_SCRATCH_COUNT];
static const char *scratch_name[CT_SCRATCH_COUNT] = {"column-sum scratch", "attention backward scratch",
                                                     "attention decode scratch", "embedding sort scratch",
                                                     "reduction scratch", "AdamW spans",
                                                     "bf16 product operands", "bf16 product operands",
                                                     "MoE router statistics scratch"};

void *ct_cuda_scratch(CtScratch slot, size_t bytes) {
    if (bytes > scratch_size[slot]) {
        // The old buffer may still be read by queued kernels: free is stream-ordered after them
        // only on the default stream, which is where every op runs.
        CUDA_CHECK(cudaDeviceSynchronize());
        ct_cuda_free(scratch_ptr[slot]);
        size_t grown = bytes + bytes / 4;
        scratch_ptr[slot] = ct_cuda_malloc(grown, scratch_name[slot]);
        scratch_size[slot] = grown;
    }
    return scratch_ptr[slot];
}
