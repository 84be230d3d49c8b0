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
// Makes device `index` the one this process's CUDA work runs on (before anything is allocated
// there). Returns 0, or -1 with the reason in why[].
int ct_cuda_use_device(int index, char *why, size_t why_size);

// The op table for a device choice: "cpu"; "cuda" (an error when the build has no CUDA or no
// GPU is usable, with the reason); "auto" (CUDA when built and a GPU is usable, else the CPU).
// NULL + error (core/error.h) when the choice cannot be met.
const CtOps *ct_ops_select(const char *device);
// The table of `ops` for a precision: "fp32" (ops itself), "bf16" (the CUDA table whose matrix
// products take bf16 operands; an error on the CPU), "auto" (bf16 on a GPU, fp32 on the CPU).
const CtOps *ct_ops_with_precision(const CtOps *ops, const char *precision);
int ct_ops_products_bf16(const CtOps *ops);  // 1 for the table of bf16 products
// The table on the same memory as ops whose activations are float (act_bytes 4): ops itself,
// or the fp32 CUDA table for the bf16 one. For small computations whose inputs and outputs are
// float buffers (parameters, a prompt encoder's rows) that the bf16 table would read as bf16.
const CtOps *ct_ops_float_activations(const CtOps *ops);
// The dense peak FLOP/s of device `index`, from its name (A100, H100, H200, L40S, RTX 4090...):
// float32 on CUDA cores, or (bf16 1) bf16 tensor cores accumulating in fp32; 0 when unknown.
// MFU divides by the one the run's products use.
double ct_cuda_peak_flops(int index, int bf16);
