// Device discovery for the CUDA backend (see kernels/device.h).
#include <cuda_runtime.h>
#include <stdio.h>

extern "C" {
#include "kernels/device.h"
}

extern "C" int ct_cuda_device_count(char *why, size_t why_size) {
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
        const char *hint = err == cudaErrorInsufficientDriver || err == cudaErrorNoDevice
                               ? "; is there an NVIDIA GPU with a recent driver on this machine?"
                               : "";
        snprintf(why, why_size, "no usable CUDA device (%s%s)", cudaGetErrorString(err), hint);
        cudaGetLastError();  // clear the sticky error so later calls start clean
        return 0;
    }
    if (n == 0) snprintf(why, why_size, "no CUDA device is visible (check CUDA_VISIBLE_DEVICES and the driver)");
    return n;
}

extern "C" int ct_cuda_device_describe(int index, char *name, size_t name_size, size_t *total_bytes) {
    cudaDeviceProp prop;
    cudaError_t err = cudaGetDeviceProperties(&prop, index);
    if (err != cudaSuccess) {
        snprintf(name, name_size, "%s", cudaGetErrorString(err));
        *total_bytes = 0;
        return -1;
    }
    snprintf(name, name_size, "%s (sm_%d%d)", prop.name, prop.major, prop.minor);
    *total_bytes = prop.totalGlobalMem;
    return 0;
}

extern "C" int ct_cuda_use_device(int index, char *why, size_t why_size) {
    cudaError_t err = cudaSetDevice(index);
    if (err == cudaSuccess) return 0;
    snprintf(why, why_size, "cudaSetDevice(%d) failed: %s", index, cudaGetErrorString(err));
    cudaGetLastError();
    return -1;
}
