// The CUDA backend, seen from C: the op table over DEVICE pointers, a small device-memory API
// with a byte counter, and the reductions the optimizer needs. Declared here whether or not the
// build has CUDA; the definitions exist only when it does (make CUDA=1), so C callers guard
// their use with #ifdef CTRAIN_CUDA. See docs/cuda.md.
//
// Every op of ct_ops_cuda() takes device pointers (ints, masks and weights included) and runs
// on the legacy default stream, in order; nothing synchronizes except the download/upload
// calls, ct_cuda_synchronize() and the reductions that return a number to the host.
// Differences from the CPU table, all inside the op contract of kernels/ops.h:
//   - attention_forward keeps no T×T probabilities. `att` is reused as saved state:
//       floats [0, B·NH·T)            the log-sum-exp of each query row's scores, [B,NH,T]
//       floats [B·NH·T, B·NH·T + B·T) the document ids of the batch as int32 bit patterns
//                                     (zeros when doc_ids is NULL), only when T >= 2
//     so a buffer of ct_cuda_attention_saved_floats(B, T, NH) = B·T·(NH+1) floats is enough,
//     and the CPU-sized [B,NH,T,T] buffer always is. attention_backward recomputes the
//     probabilities from it (flash-attention style).
//   - scratch buffers (cuBLASLt workspace, reduction partials, sort space) belong to the
//     backend, grow on demand and count in ct_cuda_bytes_in_use(). Ops are not thread-safe:
//     call them from one host thread.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "kernels/cuda/cuda_decl.h"
#include "kernels/ops.h"

const CtOps *ct_ops_cuda(void);
// The same ops over bf16 activations (act_bytes 2: every CtAct array is bf16 in memory; per-row
// statistics, weights and their gradients stay fp32). Kernels compute in fp32 registers and round
// once when they store. Every matrix product (linear layers, LoRA) and the attention (head sizes
// 64 and 128) run on the tensor cores with fp32 accumulation; products write bf16 activations and
// fp32 weight gradients. Weights declared through keep_low_precision_weights are read from their
// bf16 copy (bf16_weights.cu), which AdamW refreshes with stochastic rounding; an undeclared
// weight (and a bias, read in the output's type) is rounded to nearest into scratch.
const CtOps *ct_ops_cuda_bf16(void);
// How many products the bf16 table's fused GELU ops (matmul_bias_gelu_forward,
// matmul_backward_dgelu) ran unfused so far: the width was not a multiple of 8, or cuBLASLt
// offered no algorithm for the GELU epilogue. 0 means every one ran in the epilogue.
size_t ct_cuda_gelu_epilogue_fallbacks(void);
// The device address of the bf16 copy (bit patterns) of the declared weights x[0, n), or NULL
// when no declared buffer holds all of them (tests read the copy through it).
const uint16_t *ct_cuda_bf16_weights(const float *x, size_t n);

// ---- device memory ----
// cudaMalloc with a byte counter. Running out of memory is fatal, with the size asked, the
// free and total device memory, what ctrain holds, and a hint. `what` names the buffer.
void *ct_cuda_malloc(size_t bytes, const char *what);
void ct_cuda_free(void *p);  // NULL is fine
void ct_cuda_upload(void *dst_device, const void *src_host, size_t bytes);
void ct_cuda_download(void *dst_host, const void *src_device, size_t bytes);
void ct_cuda_copy(void *dst_device, const void *src_device, size_t bytes);
void ct_cuda_zero(void *p_device, size_t bytes);
void *ct_cuda_alloc_zeroed(size_t bytes, const char *what);  // the op table's alloc
void ct_cuda_synchronize(void);  // waits for every queued op; reports a kernel's late error
size_t ct_cuda_bytes_in_use(void);
size_t ct_cuda_bytes_peak(void);

// Floats the CUDA attention needs in `att` (see above).
size_t ct_cuda_attention_saved_floats(int B, int T, int NH);
// Every op of both tables is also callable directly (the tests do): kernels/cuda/cuda_decl.h.
// ct_cuda_attention_backward_with_out(_bf16) there may be given out = NULL (= attention_backward).

// ---- optimizer support (device arrays) ----
// Σ g[i]², accumulated in double in a fixed order (the same bits on every run).
double ct_cuda_sum_squares(const float *g, size_t n);
// x[i] *= s
void ct_cuda_scale(float *x, size_t n, float s);
// A span of the parameter buffer with its weight-decay switch (CtParamSpan as [start, end)).
typedef struct {
    size_t start, end;  // [start, end)
    int decay;
} CtCudaSpan;
// One AdamW step over all n parameters in one kernel, torch's arithmetic (see optim/adamw.h):
// the caller computes the float scalars as ct_adamw_step does. spans_device: n_spans spans
// sorted by start, not overlapping, in device memory; elements no span covers are decayed.
// When params lie in a buffer with a bf16 copy (ct_cuda_bf16_weights), the kernel also writes
// the copy of each updated weight, stochastically rounded with rounding_seed.
void ct_cuda_adamw_update(float *params, const float *grads, float *m, float *v, size_t n,
                          const CtCudaSpan *spans_device, int n_spans, float keep, float one_minus_b1, float b2,
                          float one_minus_b2, float eps, float step_size, float bc2_sqrt, uint64_t rounding_seed);
// The op table's adamw_update (host spans, uploaded when they change; see kernels/ops.h).
void ct_cuda_adamw_update_op(float *params, const float *grads, float *m, float *v, size_t n, const CtParamSpan *spans,
                             int n_spans, const CtAdamWScalars *s);
