// The CPU backend: every op of kernels/ops.h in two instantiations from one source, _f32 (what
// ct_ops_cpu() hands out) and _f64 (for double-precision gradient checks in tests), plus the
// CPU-only knobs: matrix-product engine, thread counts, and OpenBLAS core selection.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "kernels/ops.h"

#define CT_REAL_BITS 32
#include "kernels/cpu/real_begin.h"
#include "kernels/cpu/ops_decl.inc"
#include "kernels/cpu/real_end.h"
#define CT_REAL_BITS 64
#include "kernels/cpu/real_begin.h"
#include "kernels/cpu/ops_decl.inc"
#include "kernels/cpu/real_end.h"

// Generation's attention over a key/value cache (float only: no backward, no gradient check).
void ct_cpu_attention_decode_f32(float *out, const float *q, int q_stride, const float *k_cache, const float *v_cache,
                                 int n_ctx, int T, int NH, int NKV, int HD, const CtAttentionOptions *opt);

// Matrix products go through CBLAS (OpenBLAS) by default; CT_MATMUL_PORTABLE is our own
// blocked OpenMP loop, used where no BLAS is wanted and checked against BLAS in tests.
typedef enum { CT_MATMUL_BLAS = 0, CT_MATMUL_PORTABLE = 1 } CtMatmulEngine;
void ct_cpu_set_matmul_engine(CtMatmulEngine engine);
CtMatmulEngine ct_cpu_matmul_engine(void);
// The BLAS engine's products of 1-8 rows (decoding) run our own loops (matmul.inc), in float on a
// CPU with AVX-512 an explicit kernel (matmul_few_avx512.h) with the same numbers: on = 1 makes
// them take the portable loops anyway (the tests compare the two).
void ct_cpu_set_matmul_few_rows_portable_only(int on);
int ct_cpu_matmul_few_rows_portable_only(void);

// Attention uses the BLAS engine (when matrix products do) from this sequence length on; below
// it the loops are as fast (measured: equal at T=32, BLAS 1.4-2x faster from T=64). 1 = always.
void ct_cpu_set_attention_blas_min_seq(int T);
int ct_cpu_attention_blas_min_seq(void);
// The BLAS attention engine takes query rows this many at a time, each tile's products over only
// the keys its rows see (causal: the tiles above the diagonal are skipped). 0 (or at least T):
// one tile, the whole T×T matrix. Default 64.
void ct_cpu_set_attention_tile(int rows);
int ct_cpu_attention_tile(void);

// out[N,OC] = inp[N,C]·Wᵀ (+ bias[OC] when not NULL) with W [OC,C] in bf16 (bit patterns: a
// float's upper 16 bits): the product of ct_ops_cpu_bf16_weights() (kernels/cpu/bf16_weights.h).
void ct_cpu_matmul_forward_bf16w(float *out, const float *inp, const uint16_t *weight, const float *bias, int N, int C,
                                 int OC);

// Threads of the CPU backend (n <= 0: every core); OpenMP's pool does all the work, matrix
// products included (see matmul.inc). Returns the count in use.
int ct_cpu_set_threads(int n);
// Puts OpenBLAS in single-threaded mode (once): our OpenMP threads each call it on a slice.
void ct_cpu_blas_single_threaded(void);

// Memory and optimizer ops of the table (host memory; kernels/cpu/memory.c, optim.c).
void *ct_cpu_alloc(size_t bytes, const char *what);
void ct_cpu_free(void *p);
void ct_cpu_zero(void *p, size_t bytes);
void ct_cpu_copy(void *dst, const void *src, size_t bytes);
size_t ct_cpu_attention_saved_floats(int B, int T, int NH);
void ct_cpu_synchronize(void);
double ct_cpu_sum_squares(const float *x, size_t n);
void ct_cpu_scale(float *x, size_t n, float s);
void ct_cpu_adamw_update(float *params, const float *grads, float *m, float *v, size_t n, const CtParamSpan *spans,
                         int n_spans, const CtAdamWScalars *s);
