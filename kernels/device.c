#include "kernels/device.h"

#include <stdio.h>
#include <string.h>

#include "core/error.h"
#ifdef CTRAIN_CUDA
#include "kernels/cuda/cuda_ops.h"
#endif

#ifdef CTRAIN_CUDA
int ct_cuda_built(void) { return 1; }
#ifndef CTRAIN_CUDA_ARCHS
#define CTRAIN_CUDA_ARCHS ""
#endif
const char *ct_cuda_archs(void) { return CTRAIN_CUDA_ARCHS; }
// ct_cuda_device_count, ct_cuda_device_describe and ct_cuda_use_device are in kernels/cuda/device_info.cu.
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
int ct_cuda_use_device(int index, char *why, size_t why_size) {
    snprintf(why, why_size, "device %d: this ctrain was built without CUDA", index);
    return -1;
}
#endif

const CtOps *ct_ops_select(const char *device) {
    if (strcmp(device, "cpu") == 0) return ct_ops_cpu();
    if (strcmp(device, "cuda") != 0 && strcmp(device, "auto") != 0) {
        ct_error_set("unknown device '%s' (cpu, cuda or auto)", device);
        return NULL;
    }
    char why[256];
    int n = ct_cuda_device_count(why, sizeof why);
    if (n > 0) {
#ifdef CTRAIN_CUDA
        return ct_ops_cuda();
#endif
    }
    if (strcmp(device, "auto") == 0) return ct_ops_cpu();
    ct_error_set("device cuda: no usable GPU: %s", why);
    return NULL;
}

const CtOps *ct_ops_with_precision(const CtOps *ops, const char *precision) {
    int bf16 = strcmp(precision, "bf16") == 0, fp32 = strcmp(precision, "fp32") == 0;
    if (!bf16 && !fp32 && strcmp(precision, "auto") != 0) {
        ct_error_set("unknown precision '%s' (fp32, bf16 or auto)", precision);
        return NULL;
    }
    if (fp32 || (ops->host_memory && !bf16)) return ops;
    if (ops->host_memory) {
        ct_error_set("precision bf16 is for the GPU; the CPU backend computes in fp32 (use fp32 or auto)");
        return NULL;
    }
#ifdef CTRAIN_CUDA
    return ct_ops_cuda_bf16();
#else
    return ops;
#endif
}

int ct_ops_products_bf16(const CtOps *ops) { return strcmp(ops->name, "cuda-bf16") == 0; }

const CtOps *ct_ops_float_activations(const CtOps *ops) {
#ifdef CTRAIN_CUDA
    if (ops->act_bytes != sizeof(float)) return ct_ops_cuda();
#endif
    return ops;
}

double ct_cuda_peak_flops(int index, int bf16) {
    char name[256];
    size_t total;
    if (ct_cuda_device_describe(index, name, sizeof name, &total) != 0) return 0;
    // Published dense peaks in TFLOP/s: FP32 on CUDA cores, BF16 tensor cores with FP32
    // accumulation; the SXM parts where a name does not say. 0: no bf16 tensor cores.
    static const struct {
        const char *key;
        double fp32, bf16;
    } table[] = {{"H200", 67.0, 989.4}, {"H100 PCIe", 51.2, 756.0}, {"H100", 67.0, 989.4}, {"A100", 19.5, 312.0},
                 {"L40S", 91.6, 362.1}, {"L4", 30.3, 121.0},        {"RTX 4090", 82.6, 165.2}, {"A10", 31.2, 125.0},
                 {"V100", 15.7, 0.0}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strstr(name, table[i].key)) return (bf16 ? table[i].bf16 : table[i].fp32) * 1e12;
    return 0;
}
