// Opens one instantiation of a type-generic kernel body (kernels/cpu/*.inc). The including
// file sets CT_REAL_BITS to 32 or 64, includes this, the body, then real_end.h. Every CPU op
// is thus compiled twice from one text: the float version is the backend, the double version
// exists so gradient checks can use finite differences in double precision on the very same
// code (a separate reference implementation could agree with itself and still be wrong).
// kernels/cpu/instantiate.c is the one file that does this for every body.
//
// Names, so that a grep for the name a caller writes finds its definition:
//   F32_OR_F64(ct_cpu_gelu_forward_f32, ct_cpu_gelu_forward_f64)  an op both instantiations
//       export: both full names are spelled out, the macro picks the one of this instantiation
//       (the declarations in ops_decl.inc are written the same way).
//   LOCAL(gemm_nt)  a static helper of one .inc, pasted to gemm_nt_f32 / gemm_nt_f64: nothing
//       outside the .inc calls it, and its callers there spell it the same way.
// REAL is the element type; R_EXP, R_TANH, R_SQRT, R_LOG and R_ERF its math functions (the float
// ones vectorise: fast_math.h). R_TANH_PRECISE keeps a small relative error near 0 (soft caps).
// R_FMA(a, b, c) = a·b + c rounded once (ISO C mode does not fuse a*b + c by itself).
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/cpu/fast_math.h"

#if CT_REAL_BITS == 32
#define REAL float
#define F32_OR_F64(f32_name, f64_name) f32_name
#define LOCAL(x) x##_f32
#define R_EXP(x) ct_fast_expf(x)
#define R_TANH(x) ct_fast_tanhf(x)
#define R_TANH_PRECISE(x) ct_fast_tanhf_precise(x)
#define R_SQRT(x) sqrtf(x)
#define R_LOG(x) logf(x)
#define R_ERF(x) erff(x)
#define R_FMA(a, b, c) fmaf(a, b, c)
#elif CT_REAL_BITS == 64
#define REAL double
#define F32_OR_F64(f32_name, f64_name) f64_name
#define LOCAL(x) x##_f64
#define R_EXP(x) exp(x)
#define R_TANH(x) tanh(x)
#define R_TANH_PRECISE(x) tanh(x)
#define R_SQRT(x) sqrt(x)
#define R_LOG(x) log(x)
#define R_ERF(x) erf(x)
#define R_FMA(a, b, c) fma(a, b, c)
#else
#error "set CT_REAL_BITS to 32 or 64 before including kernels/cpu/real_begin.h"
#endif
