// Opens one instantiation of a type-generic kernel body (kernels/cpu/*.inc). The including
// file sets CT_REAL_BITS to 32 or 64, includes this, the body, then real_end.h. Every CPU op
// is thus compiled twice from one text: the float version is the backend, the double version
// exists so gradient checks can use finite differences in double precision on the very same
// code (a separate reference implementation could agree with itself and still be wrong).
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/cpu/fast_math.h"

#if CT_REAL_BITS == 32
#define REAL float
#define NAME(x) x##_f32
#define R_EXP(x) ct_fast_expf(x)
#define R_TANH(x) ct_fast_tanhf(x)
#define R_SQRT(x) sqrtf(x)
#define R_LOG(x) logf(x)
#elif CT_REAL_BITS == 64
#define REAL double
#define NAME(x) x##_f64
#define R_EXP(x) exp(x)
#define R_TANH(x) tanh(x)
#define R_SQRT(x) sqrt(x)
#define R_LOG(x) log(x)
#else
#error "set CT_REAL_BITS to 32 or 64 before including kernels/cpu/real_begin.h"
#endif
