// Rotary position embedding, rotate-half convention (math in kernels/cpu/rope.inc).
// A thread per (token n, pair i < HD/2) computes the angle once, in double as the CPU does
// (positions reach thousands of radians, where float sin/cos lose digits), and rotates pair
// (i, i+HD/2) of every head. Forward rotates by +angle, backward by -angle (Rᵀ = R(-θ)).
// Each thread reads its pair before writing it, so out may equal inp.
#include "kernels/cuda/cuda_common.cuh"

__global__ void rope_kernel(float *out, const float *inp, const int32_t *positions, int NT, int T, int n_heads,
                            int HD, int row_stride, float theta, float sign) {
    const int half = HD / 2;
    const size_t total = (size_t)NT * half;
    for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < total;
         idx += (size_t)gridDim.x * blockDim.x) {
        const int n = (int)(idx / half), i = (int)(idx % half);
        const double pos = positions ? positions[n] : n % T;
        const double angle = pos * pow((double)theta, -2.0 * i / HD);
        const float c = (float)cos(angle), s = (float)(sign * sin(angle));
        const float *x = inp + (size_t)n * row_stride;
        float *y = out + (size_t)n * row_stride;
        for (int h = 0; h < n_heads; h++) {
            const float x0 = x[h * HD + i], x1 = x[h * HD + i + half];
            y[h * HD + i] = x0 * c - x1 * s;
            y[h * HD + i + half] = x1 * c + x0 * s;
        }
    }
}

static void rope(float *out, const float *inp, const int32_t *positions, int B, int T, int n_heads, int HD,
                 int row_stride, float theta, float sign) {
    size_t total = (size_t)B * T * (HD / 2);
    if (!total) return;
    rope_kernel<<<ct_blocks(total, 256), 256>>>(out, inp, positions, B * T, T, n_heads, HD, row_stride, theta, sign);
    LAUNCH_CHECK("rope_kernel");
}

extern "C" void ct_cuda_rope_forward(float *out, const float *inp, const int32_t *positions, int B, int T, int n_heads,
                                     int HD, int row_stride, float theta) {
    rope(out, inp, positions, B, T, n_heads, HD, row_stride, theta, 1.0f);
}

extern "C" void ct_cuda_rope_backward(float *dinp, const float *dout, const int32_t *positions, int B, int T,
                                      int n_heads, int HD, int row_stride, float theta) {
    rope(dinp, dout, positions, B, T, n_heads, HD, row_stride, theta, -1.0f);
}
