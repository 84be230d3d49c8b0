// Element-wise ops: GELU (tanh form), SwiGLU, residual add (math in kernels/cpu/pointwise.inc).
// Grid-stride loops over n; every thread owns its elements, so in-place use is safe.
#include "kernels/cuda/cuda_common.cuh"

#define GELU_K 0.7978845608028654f  // √(2/π)
#define GELU_C 0.044715f
#define THREADS 256

#define GRID_STRIDE(i, n) \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

__global__ void gelu_forward_kernel(float *out, const float *inp, size_t n) {
    GRID_STRIDE(i, n) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + tanhf(GELU_K * (x + GELU_C * x * x * x)));
    }
}

// y = ½x(1 + tanh u), u = k(x + c·x³)  ⇒  dy/dx = ½(1 + tanh u) + ½x(1 - tanh²u)·k(1 + 3c·x²).
__device__ static float gelu_grad(float x) {
    float th = tanhf(GELU_K * (x + GELU_C * x * x * x));
    float du = GELU_K * (1.0f + 3.0f * GELU_C * x * x);
    return 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du;
}

__global__ void gelu_backward_kernel(float *dinp, const float *inp, const float *dout, size_t n) {
    GRID_STRIDE(i, n) dinp[i] += dout[i] * gelu_grad(inp[i]);
}

__global__ void gelu_grad_scale_kernel(float *d, const float *pre, size_t n) {
    GRID_STRIDE(i, n) d[i] *= gelu_grad(pre[i]);
}

// out[n,f] = silu(g)·u with g = gate_up[n,f], u = gate_up[n,F+f].
__global__ void swiglu_forward_kernel(float *out, const float *gate_up, int F, size_t total) {
    GRID_STRIDE(i, total) {
        size_t n = i / F, f = i % F;
        float g = gate_up[n * 2 * F + f], u = gate_up[n * 2 * F + F + f];
        out[i] = g / (1.0f + expf(-g)) * u;
    }
}

// dg += dy·u·σ(g)·(1 + g·(1-σ(g))),  du += dy·silu(g).
__global__ void swiglu_backward_kernel(float *dgate_up, const float *dout, const float *gate_up, int F, size_t total) {
    GRID_STRIDE(i, total) {
        size_t n = i / F, f = i % F, gi = n * 2 * F + f, ui = gi + F;
        float g = gate_up[gi], u = gate_up[ui], dy = dout[i];
        float sig = 1.0f / (1.0f + expf(-g));
        dgate_up[gi] += dy * u * sig * (1.0f + g * (1.0f - sig));
        dgate_up[ui] += dy * g * sig;
    }
}

__global__ void residual_forward_kernel(float *out, const float *a, const float *b, size_t n) {
    GRID_STRIDE(i, n) out[i] = a[i] + b[i];
}

__global__ void residual_backward_kernel(float *da, float *db, const float *dout, size_t n) {
    GRID_STRIDE(i, n) {
        float g = dout[i];
        da[i] += g;
        db[i] += g;
    }
}

extern "C" void ct_cuda_gelu_forward(float *out, const float *inp, size_t n) {
    if (!n) return;
    gelu_forward_kernel<<<ct_blocks(n, THREADS), THREADS>>>(out, inp, n);
    LAUNCH_CHECK("gelu_forward_kernel");
}
extern "C" void ct_cuda_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    if (!n) return;
    gelu_backward_kernel<<<ct_blocks(n, THREADS), THREADS>>>(dinp, inp, dout, n);
    LAUNCH_CHECK("gelu_backward_kernel");
}
extern "C" void ct_cuda_gelu_grad_scale(float *d, const float *pre, size_t n) {
    if (!n) return;
    gelu_grad_scale_kernel<<<ct_blocks(n, THREADS), THREADS>>>(d, pre, n);
    LAUNCH_CHECK("gelu_grad_scale_kernel");
}
extern "C" void ct_cuda_swiglu_forward(float *out, const float *gate_up, int N, int F) {
    size_t total = (size_t)N * F;
    if (!total) return;
    swiglu_forward_kernel<<<ct_blocks(total, THREADS), THREADS>>>(out, gate_up, F, total);
    LAUNCH_CHECK("swiglu_forward_kernel");
}
extern "C" void ct_cuda_swiglu_backward(float *dgate_up, const float *dout, const float *gate_up, int N, int F) {
    size_t total = (size_t)N * F;
    if (!total) return;
    swiglu_backward_kernel<<<ct_blocks(total, THREADS), THREADS>>>(dgate_up, dout, gate_up, F, total);
    LAUNCH_CHECK("swiglu_backward_kernel");
}
extern "C" void ct_cuda_residual_forward(float *out, const float *a, const float *b, size_t n) {
    if (!n) return;
    residual_forward_kernel<<<ct_blocks(n, THREADS), THREADS>>>(out, a, b, n);
    LAUNCH_CHECK("residual_forward_kernel");
}
extern "C" void ct_cuda_residual_backward(float *da, float *db, const float *dout, size_t n) {
    if (!n) return;
    residual_backward_kernel<<<ct_blocks(n, THREADS), THREADS>>>(da, db, dout, n);
    LAUNCH_CHECK("residual_backward_kernel");
}

// ---- dropout (kernels/ops.h): element i kept when u(seed, i) >= p, then scaled by 1/(1-p) ----
#include "kernels/cuda/dropout.cuh"

// y = m ⊙ x / (1-p); backward dx = m ⊙ dy / (1-p) is the same map (it writes, in place is fine).
__global__ void dropout_kernel(float *out, const float *inp, size_t n, float p, float scale, uint64_t seed) {
    GRID_STRIDE(i, n) out[i] = dropout_uniform(seed, i) >= p ? inp[i] * scale : 0.0f;
}

extern "C" void ct_cuda_dropout_forward(float *out, const float *inp, size_t n, float p, uint64_t seed) {
    if (!n) return;
    dropout_kernel<<<ct_blocks(n, THREADS), THREADS>>>(out, inp, n, p, dropout_keep_scale(p), seed);
    LAUNCH_CHECK("dropout_kernel");
}

extern "C" void ct_cuda_dropout_backward(float *dinp, const float *dout, size_t n, float p, uint64_t seed) {
    if (!n) return;
    dropout_kernel<<<ct_blocks(n, THREADS), THREADS>>>(dinp, dout, n, p, dropout_keep_scale(p), seed);
    LAUNCH_CHECK("dropout_kernel");
}
