// A CPU emulation of the small part of CUDA that kernels/cuda/*.cu uses, so the kernels' logic
// (index arithmetic, tiling, masks, reductions, cuBLASLt layouts) can run against the CPU ops on
// a machine without a GPU (tests/test_cuda_emu/run.sh). Blocks run one after another; the
// threads of a block run as fibers (ucontext) on one OS thread, each until it reaches a barrier
// (__syncthreads, or a warp operation for its warp) or ends, and a barrier opens when every live
// thread of its scope waits there (emu.cpp). Shared memory starts filled with NaN bits, so reading a shared number before
// writing it shows up as nan in the results. What this cannot see: data races between
// threads, the GPU memory model, occupancy and register limits, launch-shape limits, speed.
// It is a development aid, not a substitute for running on a GPU.
#pragma once
#include "emu_runtime.h"
// Kernels that need a different body under the emulation (inline PTX: kernels/cuda/mma.cuh) test this.
#define CT_CUDA_EMU 1
#ifdef __cplusplus
#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <functional>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <numeric>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

struct alignas(16) float4 {
    float x, y, z, w;
};

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
extern thread_local dim3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;
extern float *ct_emu_dynamic_smem;

using std::max;
using std::min;

// ---- barriers that let finished threads drop out (as exited GPU threads do) ----
struct EmuBarrier {
    std::mutex mu;
    std::condition_variable cv;
    int count = 0, waiting = 0;
    long generation = 0;
    void reset(int n) {
        count = n;
        waiting = 0;
    }
    void wait() {
        std::unique_lock<std::mutex> lock(mu);
        long gen = generation;
        if (++waiting >= count) {
            waiting = 0;
            generation++;
            cv.notify_all();
            return;
        }
        cv.wait(lock, [&] { return generation != gen; });
    }
    void drop() {
        std::unique_lock<std::mutex> lock(mu);
        count--;
        if (waiting > 0 && waiting >= count) {
            waiting = 0;
            generation++;
            cv.notify_all();
        }
    }
};
void ct_emu_syncthreads();
void ct_emu_syncwarp();
double *ct_emu_warp_slots();  // 32 slots of this thread's warp
int ct_emu_lane();
// A warp-wide exchange (the emulated form of a warp-collective instruction): every live lane of
// the warp hands in `bytes` (at most CT_EMU_EXCHANGE_MAX) of its own, and after the warp barrier
// each finds all 32 lanes' bytes in all[lane * bytes ...]. Lanes that did not take part read zeros.
#define CT_EMU_EXCHANGE_MAX 64
void ct_emu_warp_exchange(const void *mine, void *all, size_t bytes);
#define __syncthreads() ct_emu_syncthreads()

template <typename T>
T __shfl_xor_sync(unsigned, T v, int offset) {
    double *slots = ct_emu_warp_slots();
    const int lane = ct_emu_lane();
    std::memcpy(&slots[lane], &v, sizeof(T));
    ct_emu_syncwarp();
    T r;
    std::memcpy(&r, &slots[lane ^ offset], sizeof(T));
    ct_emu_syncwarp();
    return r;
}

inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
inline unsigned int __float_as_uint(float x) {  // reinterprets the bits
    unsigned int u;
    std::memcpy(&u, &x, sizeof u);
    return u;
}

// ---- the runtime API, over host memory (emu_runtime.h) ----
template <typename K>
cudaError_t cudaFuncSetAttribute(K, cudaFuncAttribute, int bytes) {
    return bytes <= 227 * 1024 ? cudaSuccess : cudaErrorInvalidValue;  // H100's opt-in limit
}

struct EmuLaunch {
    dim3 grid, block;
    size_t smem = 0;
};
void ct_emu_run_grid(const EmuLaunch &cfg, const std::function<void()> &body);
template <typename K, typename... A>
void ct_emu_launch(EmuLaunch cfg, K kernel, A... args) {
    ct_emu_run_grid(cfg, [&] { kernel(args...); });
}
#endif
