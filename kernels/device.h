// Which compute devices this build can use. The CUDA half lives in kernels/cuda/ and is
// compiled only when nvcc is present (make CUDA=1); without it these report "not built".
#pragma once
#include <stddef.h>

#include "kernels/ops.h"

int ct_cuda_built(void);         // 1 when this binary contains the CUDA backend
const char *ct_cuda_archs(void); // the GPU architectures it was compiled for, "sm_80 sm_90"; "" when not built
// The number of usable CUDA devices; 0 with the reason in why[] when there are none.
int ct_cuda_device_count(char *why, size_t why_size);
// Name and memory of device `index`. Returns 0, or -1 with the reason in name[].
int ct_cuda_device_describe(int index, char *name, size_t name_size, size_t *total_bytes);

// The op table for a device choice: "cpu"; "cuda" (an error when the build has no CUDA or no
// GPU is usable, with the reason); "auto" (CUDA when built and a GPU is usable, else the CPU).
// NULL + error (core/error.h) when the choice cannot be met.
const CtOps *ct_ops_select(const char *device);
// The dense peak FLOP/s of device `index` for float32 math without tensor cores, from its
// name (A100, H100, H200, L40S, RTX 4090...); 0 when unknown. MFU divides by this on the GPU.
double ct_cuda_peak_fp32_flops(int index);
