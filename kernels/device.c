#include "kernels/device.h"

#include <stdio.h>

#ifdef CTRAIN_CUDA
int ct_cuda_built(void) { return 1; }
#ifndef CTRAIN_CUDA_ARCHS
#define CTRAIN_CUDA_ARCHS ""
#endif
const char *ct_cuda_archs(void) { return CTRAIN_CUDA_ARCHS; }
// ct_cuda_device_count and ct_cuda_device_describe are in kernels/cuda/device_info.cu.
#else
int ct_cuda_built(void) { return 0; }
const char *ct_cuda_archs(void) { return ""; }
int ct_cuda_device_count(char *why, size_t why_size) {
    snprintf(why, why_size, "this ctrain was built without CUDA (rebuild with make CUDA=1 where nvcc is installed)");
    return 0;
}
int ct_cuda_device_describe(int index, char *name, size_t name_size, size_t *total_bytes) {
    (void)index;
    *total_bytes = 0;
    snprintf(name, name_size, "built without CUDA");
    return -1;
}
#endif
