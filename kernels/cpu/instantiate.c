// Every type-generic CPU kernel (the *.inc files of this folder), compiled once for float
// (_f32: the backend, ct_ops_cpu()) and once for double (_f64: the gradient checks). See
// real_begin.h for how a body names its ops. A new op's .inc is added to both lists below.
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/small_sgemm.h"
#include "kernels/cpu/thread_slice.h"
#include "kernels/ops.h"

#define CT_REAL_BITS 32
#include "kernels/cpu/real_begin.h"
#include "kernels/cpu/embedding.inc"
#include "kernels/cpu/norm.inc"
#include "kernels/cpu/matmul.inc"
#include "kernels/cpu/attention.inc"
#include "kernels/cpu/rope.inc"
#include "kernels/cpu/pointwise.inc"
#include "kernels/cpu/lstm.inc"
#include "kernels/cpu/dropout.inc"
#include "kernels/cpu/xent.inc"
#include "kernels/cpu/grpo.inc"
#include "kernels/cpu/lora.inc"
#include "kernels/cpu/moe.inc"
#include "kernels/cpu/real_end.h"

#define CT_REAL_BITS 64
#include "kernels/cpu/real_begin.h"
#include "kernels/cpu/embedding.inc"
#include "kernels/cpu/norm.inc"
#include "kernels/cpu/matmul.inc"
#include "kernels/cpu/attention.inc"
#include "kernels/cpu/rope.inc"
#include "kernels/cpu/pointwise.inc"
#include "kernels/cpu/lstm.inc"
#include "kernels/cpu/dropout.inc"
#include "kernels/cpu/xent.inc"
#include "kernels/cpu/grpo.inc"
#include "kernels/cpu/lora.inc"
#include "kernels/cpu/moe.inc"
#include "kernels/cpu/real_end.h"
