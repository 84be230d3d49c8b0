// bf16 copies of chosen weights for CPU products that may read them rounded: a speculative
// decoder's drafts (train/model/speculative_mtp.c: the multi-token-prediction modules and the
// shared head read half the bytes while they draft; the model's own pass that checks the drafts
// reads the fp32 weights through ct_ops_cpu(), so what is emitted does not change).
//
// ct_ops_cpu_bf16_weights() is the CPU table but for matmul_forward, which reads a weight matrix
// from its bf16 copy (kernels/cpu/matmul.inc: ct_cpu_matmul_forward_bf16w) when one declared
// buffer holds all of it, and the fp32 weights otherwise; keep_low_precision_weights declares a
// buffer (its copy rounded to nearest even). The declarations are process-wide, like the CUDA
// bf16 table's (kernels/cuda/bf16_weights.cu): declare and forget from one thread, before and
// after the products that read them.
#pragma once
#include <stddef.h>

#include "kernels/ops.h"

const CtOps *ct_ops_cpu_bf16_weights(void);
// Declares params[0, n) (again: re-copies it after the fp32 weights changed).
void ct_cpu_keep_bf16_weights(const float *params, size_t n);
// Forgets the copy of the buffer declared at params (nothing when none is).
void ct_cpu_forget_bf16_weights(const float *params);
// How many bytes the copies take (what --stats may report).
size_t ct_cpu_bf16_weights_bytes(void);
