// Causal grouped-query attention, in float and double (see real_begin.h).
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops.h"

#define CT_REAL_BITS 32
#include "kernels/cpu/real_begin.h"
#include "kernels/cpu/attention.inc"
#include "kernels/cpu/real_end.h"
#define CT_REAL_BITS 64
#include "kernels/cpu/real_begin.h"
#include "kernels/cpu/attention.inc"
#include "kernels/cpu/real_end.h"
