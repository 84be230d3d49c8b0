// Matrix products too small for BLAS to pay off: the attention's tiles (a tile of 32 query rows
// against its keys, with the head size, 32–128, as the short side). OpenBLAS packs both operands
// into its blocked layout and makes a separate pass for beta on every call; at these shapes that
// work and the call itself cost as much as the multiply-adds (~65 GFLOP/s against sgemm's ~160 on
// the 2-core Zen 3 host, llama-tiny's HD 48). ct_small_sgemm reads its operands where they lie:
// A with any row and column strides (so Aᵀ needs no copy), B row-major with unit column stride.
#pragma once
#include <stddef.h>

#if defined(__AVX2__) && defined(__FMA__)
#define CT_HAVE_SMALL_SGEMM 1

// c[i·ldc + j] = alpha·Σ_p A(i,p)·B(p,j) (+ c[i·ldc + j] when accumulate) for i < m, j < n, p < k,
// with A(i,p) = a[i·a_row + p·a_col] and B(p,j) = b[p·ldb + j]. Single-threaded.
void ct_small_sgemm(int m, int n, int k, float alpha, const float *a, ptrdiff_t a_row, ptrdiff_t a_col, const float *b,
                    ptrdiff_t ldb, float *c, ptrdiff_t ldc, int accumulate);
#else
#define CT_HAVE_SMALL_SGEMM 0
#endif
