// ct_small_sgemm (small_sgemm.h): blocks of up to 6 rows × 16 columns of the result, each held in
// twelve AVX registers while the k products stream past: per k, two loads of B's row, and per
// row one broadcast of A(i,p) and two fused multiply-adds (12 FMAs to 8 loads, so the two FMA
// pipes stay busy). Nothing is packed: a 16-column strip of B (k rows) stays in L1 while the row
// blocks go by, and A's rows are read in place through their strides.
#include "kernels/cpu/small_sgemm.h"

#if CT_HAVE_SMALL_SGEMM
#include <immintrin.h>

#define SG_ROWS 6   // rows of the result per block
#define SG_VECS 2   // 8-float vectors of the result per block row (16 columns)

// One block of MR rows and NV vectors: the last vector's lanes limited to `mask` when `masked`.
// Called with constant MR, NV and masked (the wrappers below), so that the branches fold away.
// The sums are named variables, not an array: GCC kept an array's copy on the stack and stored
// all twelve registers to it on every k (half the speed).
#define SG_SUMS(X) X(0) X(1) X(2) X(3) X(4) X(5)
static inline __attribute__((always_inline)) void block(const int MR, const int NV, const int masked, __m256i mask,
                                                        int k, float alpha, const float *a, ptrdiff_t a_row,
                                                        ptrdiff_t a_col, const float *b, ptrdiff_t ldb, float *c,
                                                        ptrdiff_t ldc, int accumulate) {
#define SG_ZERO(r) __m256 s##r##0 = _mm256_setzero_ps(), s##r##1 = _mm256_setzero_ps();
    SG_SUMS(SG_ZERO)
    for (int p = 0; p < k; p++) {
        const __m256 b0 = NV == 1 && masked ? _mm256_maskload_ps(b, mask) : _mm256_loadu_ps(b);
        const __m256 b1 = NV == 1 ? b0 : masked ? _mm256_maskload_ps(b + 8, mask) : _mm256_loadu_ps(b + 8);
        const float *ap = a + p * a_col;
#define SG_FMA(r)                                                                                                  \
    if (MR > r) {                                                                                                  \
        const __m256 av = _mm256_broadcast_ss(ap + r * a_row);                                                     \
        s##r##0 = _mm256_fmadd_ps(av, b0, s##r##0);                                                                \
        if (NV == 2) s##r##1 = _mm256_fmadd_ps(av, b1, s##r##1);                                                   \
    }
        SG_SUMS(SG_FMA)
        b += ldb;
    }
    const __m256 scale = _mm256_set1_ps(alpha);
#define SG_STORE_VEC(dst, x, last)                                                                                 \
    do {                                                                                                           \
        __m256 y_ = _mm256_mul_ps(x, scale);                                                                       \
        if (masked && (last)) {                                                                                    \
            if (accumulate) y_ = _mm256_add_ps(y_, _mm256_maskload_ps(dst, mask));                                 \
            _mm256_maskstore_ps(dst, mask, y_);                                                                    \
        } else {                                                                                                   \
            if (accumulate) y_ = _mm256_add_ps(y_, _mm256_loadu_ps(dst));                                          \
            _mm256_storeu_ps(dst, y_);                                                                             \
        }                                                                                                          \
    } while (0);
#define SG_STORE(r)                                                                                                \
    if (MR > r) {                                                                                                  \
        SG_STORE_VEC(c + r * ldc, s##r##0, NV == 1)                                                                \
        if (NV == 2) SG_STORE_VEC(c + r * ldc + 8, s##r##1, 1)                                                     \
    }
    SG_SUMS(SG_STORE)
}

typedef void (*BlockFn)(__m256i mask, int k, float alpha, const float *a, ptrdiff_t a_row, ptrdiff_t a_col,
                        const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc, int accumulate);

// The shapes of a block: MR rows (1..6) × {two full vectors, one, two with the second masked, one masked}.
#define SG_BLOCK(MR, NV, MASKED)                                                                                   \
    static void block_##MR##_##NV##_##MASKED(__m256i mask, int k, float alpha, const float *a, ptrdiff_t a_row,  \
                                             ptrdiff_t a_col, const float *b, ptrdiff_t ldb, float *c,            \
                                             ptrdiff_t ldc, int accumulate) {                                     \
        block(MR, NV, MASKED, mask, k, alpha, a, a_row, a_col, b, ldb, c, ldc, accumulate);                       \
    }
#define SG_BLOCKS(MR) SG_BLOCK(MR, 2, 0) SG_BLOCK(MR, 1, 0) SG_BLOCK(MR, 2, 1) SG_BLOCK(MR, 1, 1)
SG_BLOCKS(1)
SG_BLOCKS(2)
SG_BLOCKS(3)
SG_BLOCKS(4)
SG_BLOCKS(5)
SG_BLOCKS(6)
#define SG_ROW(MR) {block_##MR##_2_0, block_##MR##_1_0, block_##MR##_2_1, block_##MR##_1_1}
static const BlockFn blocks[SG_ROWS][4] = {SG_ROW(1), SG_ROW(2), SG_ROW(3), SG_ROW(4), SG_ROW(5), SG_ROW(6)};

void ct_small_sgemm(int m, int n, int k, float alpha, const float *a, ptrdiff_t a_row, ptrdiff_t a_col, const float *b,
                    ptrdiff_t ldb, float *c, ptrdiff_t ldc, int accumulate) {
    for (int j0 = 0; j0 < n; j0 += 8 * SG_VECS) {
        // this strip's shape: 16 columns, 8, or a remainder whose last vector is masked
        const int cols = n - j0 < 8 * SG_VECS ? n - j0 : 8 * SG_VECS;
        const int nv = (cols + 7) / 8, tail = cols - 8 * (nv - 1);
        const int shape = (nv == 2 ? 0 : 1) + (tail < 8 ? 2 : 0);
        const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(tail), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        for (int i0 = 0; i0 < m; i0 += SG_ROWS) {
            const int rows = m - i0 < SG_ROWS ? m - i0 : SG_ROWS;
            blocks[rows - 1][shape](mask, k, alpha, a + i0 * a_row, a_row, a_col, b + j0, ldb, c + i0 * ldc + j0, ldc,
                                    accumulate);
        }
    }
}
#endif
