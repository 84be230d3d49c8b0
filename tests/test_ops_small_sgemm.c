// ct_small_sgemm (kernels/cpu/small_sgemm.h), the attention tiles' product on AVX2 CPUs, against
// the sums written out in double: every block shape (1–6 rows, 16 / 8 / masked columns), A
// row-major and transposed through its strides, k = 0, alpha, overwrite and accumulate, and the
// columns beyond n and the rows' padding between ldc left alone.
#include <math.h>
#include <stdlib.h>

#include "kernels/cpu/small_sgemm.h"
#include "tests/test.h"

TEST(ops, small_sgemm_matches_double_sums_for_every_block_shape) {
#if !CT_HAVE_SMALL_SGEMM
    SKIP("this build has no AVX2/FMA: the attention tiles use BLAS");
#else
    enum { A_ROW = 80, A_COL = 90, LDB = 50, LDC = 60, SIZE = 100 * 100 };
    float *a = malloc(sizeof(float) * SIZE), *b = malloc(sizeof(float) * SIZE);
    float *c = malloc(sizeof(float) * SIZE), *before = malloc(sizeof(float) * SIZE);
    unsigned state = 1;
    for (int i = 0; i < SIZE; i++) {
        state = state * 1103515245u + 12345u;
        a[i] = (float)((state >> 8) % 2001) / 1000.0f - 1.0f;
        state = state * 1103515245u + 12345u;
        b[i] = (float)((state >> 8) % 2001) / 1000.0f - 1.0f;
        state = state * 1103515245u + 12345u;
        before[i] = (float)((state >> 8) % 2001) / 1000.0f - 1.0f;
    }
    int cases = 0, bad = 0;
    for (int m = 1; m <= 13; m++)
        for (int n = 1; n <= 41; n += n < 18 ? 1 : 5)
            for (int k = 0; k <= 70; k += 7)
                for (int transposed = 0; transposed < 2; transposed++)
                    for (int accumulate = 0; accumulate < 2; accumulate++) {
                        const ptrdiff_t a_row = transposed ? 1 : A_ROW, a_col = transposed ? A_COL : 1;
                        for (int i = 0; i < m * LDC; i++) c[i] = before[i];
                        ct_small_sgemm(m, n, k, 0.7f, a, a_row, a_col, b, LDB, c, LDC, accumulate);
                        for (int i = 0; i < m; i++)
                            for (int j = 0; j < LDC; j++) {
                                double want = before[i * LDC + j];
                                if (j < n) {
                                    double sum = 0;
                                    for (int p = 0; p < k; p++) sum += (double)a[i * a_row + p * a_col] * b[p * LDB + j];
                                    want = 0.7 * sum + (accumulate ? want : 0);
                                }
                                // k ≤ 70 products of numbers below 1: float's rounding stays far below 1e-5
                                if (fabs(want - c[i * LDC + j]) > 1e-5 && bad++ < 5)
                                    CHECK_MSG(0, "m %d n %d k %d transposed %d accumulate %d: c[%d][%d] = %g, want %g", m,
                                              n, k, transposed, accumulate, i, j, c[i * LDC + j], want);
                            }
                        cases++;
                    }
    CHECK_EQ_INT(bad, 0);
    CHECK(cases > 10000);
    free(a);
    free(b);
    free(c);
    free(before);
#endif
}
