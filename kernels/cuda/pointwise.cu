// Element-wise ops: GELU (tanh form and exact), tanh, ReLU, SwiGLU, GeGLU, soft cap, scaling, residual add, dropout (math in kernels/cpu/pointwise.inc).
// Grid-stride loops over n; every thread owns its elements, so in-place use is safe. Each kernel
// is a template on the activation type act_t (float or bf16, act_io.cuh): loads into float,
// computes in float, rounds once when it stores.
#include "kernels/cuda/act_io.cuh"
#include "kernels/cuda/cuda_common.cuh"

#define GELU_K 0.7978845608028654f  // √(2/π)
#define GELU_C 0.044715f
#define THREADS 256

#define GRID_STRIDE(i, n) \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

template <typename act_t>
__global__ void gelu_forward_kernel(act_t *out, const act_t *inp, size_t n) {
    GRID_STRIDE(i, n) {
        float x = act_load(inp + i);
        act_store(out + i, 0.5f * x * (1.0f + tanhf(GELU_K * (x + GELU_C * x * x * x))));
    }
}

// y = ½x(1 + tanh u), u = k(x + c·x³)  ⇒  dy/dx = ½(1 + tanh u) + ½x(1 - tanh²u)·k(1 + 3c·x²).
__device__ static float gelu_grad(float x) {
    float th = tanhf(GELU_K * (x + GELU_C * x * x * x));
    float du = GELU_K * (1.0f + 3.0f * GELU_C * x * x);
    return 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du;
}

template <typename act_t>
__global__ void gelu_backward_kernel(act_t *dinp, const act_t *inp, const act_t *dout, size_t n) {
    GRID_STRIDE(i, n) act_add(dinp + i, act_load(dout + i) * gelu_grad(act_load(inp + i)));
}

template <typename act_t>
__global__ void gelu_grad_scale_kernel(act_t *d, const act_t *pre, size_t n) {
    GRID_STRIDE(i, n) act_store(d + i, act_load(d + i) * gelu_grad(act_load(pre + i)));
}

// The exact GELU: y = x·Φ(x) = ½x(1 + erf(x/√2)); dy/dx = Φ(x) + x·φ(x), φ(x) = e^(−x²/2)/√(2π).
template <typename act_t>
__global__ void gelu_erf_forward_kernel(act_t *out, const act_t *inp, size_t n) {
    GRID_STRIDE(i, n) {
        float x = act_load(inp + i);
        act_store(out + i, 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)));
    }
}
template <typename act_t>
__global__ void gelu_erf_backward_kernel(act_t *dinp, const act_t *inp, const act_t *dout, size_t n) {
    GRID_STRIDE(i, n) {
        float x = act_load(inp + i);
        float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752f));
        float pdf = 0.39894228040143268f * expf(-0.5f * x * x);
        act_add(dinp + i, act_load(dout + i) * (cdf + x * pdf));
    }
}

// y = tanh(x); backward from the output: dx += dy·(1 − y²).
template <typename act_t>
__global__ void tanh_forward_kernel(act_t *out, const act_t *inp, size_t n) {
    GRID_STRIDE(i, n) act_store(out + i, tanhf(act_load(inp + i)));
}
template <typename act_t>
__global__ void tanh_backward_kernel(act_t *dinp, const act_t *out, const act_t *dout, size_t n) {
    GRID_STRIDE(i, n) {
        float y = act_load(out + i);
        act_add(dinp + i, act_load(dout + i) * (1.0f - y * y));
    }
}

// y = max(x, 0) (torch.nn.ReLU); dx += dy where x > 0 (0 at x = 0, as torch).
template <typename act_t>
__global__ void relu_forward_kernel(act_t *out, const act_t *inp, size_t n) {
    GRID_STRIDE(i, n) act_store(out + i, fmaxf(act_load(inp + i), 0.0f));
}
template <typename act_t>
__global__ void relu_backward_kernel(act_t *dinp, const act_t *inp, const act_t *dout, size_t n) {
    GRID_STRIDE(i, n) {
        if (act_load(inp + i) > 0.0f) act_add(dinp + i, act_load(dout + i));
    }
}

// out[n,f] = silu(g)·u with g = gate_up[n,f], u = gate_up[n,F+f].
template <typename act_t>
__global__ void swiglu_forward_kernel(act_t *out, const act_t *gate_up, int F, size_t total) {
    GRID_STRIDE(i, total) {
        size_t n = i / F, f = i % F;
        float g = act_load(gate_up + n * 2 * F + f), u = act_load(gate_up + n * 2 * F + F + f);
        act_store(out + i, g / (1.0f + expf(-g)) * u);
    }
}

// dg = dy·u·σ(g)·(1 + g·(1-σ(g))),  du = dy·silu(g): written, not added (kernels/ops.h).
template <typename act_t>
__global__ void swiglu_backward_kernel(act_t *dgate_up, const act_t *dout, const act_t *gate_up, int F,
                                       size_t total) {
    GRID_STRIDE(i, total) {
        size_t n = i / F, f = i % F, gi = n * 2 * F + f, ui = gi + F;
        float g = act_load(gate_up + gi), u = act_load(gate_up + ui), dy = act_load(dout + i);
        float sig = 1.0f / (1.0f + expf(-g));
        act_store(dgate_up + gi, dy * u * sig * (1.0f + g * (1.0f - sig)));
        act_store(dgate_up + ui, dy * g * sig);
    }
}

// out[n,f] = gelu(g)·u (GeGLU); backward dg = dy·u·gelu'(g), du = dy·gelu(g) (written).
__device__ static float gelu_value(float x) { return 0.5f * x * (1.0f + tanhf(GELU_K * (x + GELU_C * x * x * x))); }

template <typename act_t>
__global__ void geglu_forward_kernel(act_t *out, const act_t *gate_up, int F, size_t total) {
    GRID_STRIDE(i, total) {
        size_t n = i / F, f = i % F;
        float g = act_load(gate_up + n * 2 * F + f), u = act_load(gate_up + n * 2 * F + F + f);
        act_store(out + i, gelu_value(g) * u);
    }
}

template <typename act_t>
__global__ void geglu_backward_kernel(act_t *dgate_up, const act_t *dout, const act_t *gate_up, int F, size_t total) {
    GRID_STRIDE(i, total) {
        size_t n = i / F, f = i % F, gi = n * 2 * F + f, ui = gi + F;
        float g = act_load(gate_up + gi), u = act_load(gate_up + ui), dy = act_load(dout + i);
        act_store(dgate_up + gi, dy * u * gelu_grad(g));
        act_store(dgate_up + ui, dy * gelu_value(g));
    }
}

// x = cap·tanh(x/cap) (its backward is in xent_backward), and x *= s.
template <typename act_t>
__global__ void softcap_kernel(act_t *x, size_t n, float cap) {
    GRID_STRIDE(i, n) act_store(x + i, cap * tanhf(act_load(x + i) / cap));
}
template <typename act_t>
__global__ void act_scale_kernel(act_t *x, size_t n, float s) {
    GRID_STRIDE(i, n) act_store(x + i, act_load(x + i) * s);
}

template <typename act_t>
__global__ void residual_forward_kernel(act_t *out, const act_t *a, const act_t *b, size_t n) {
    GRID_STRIDE(i, n) act_store(out + i, act_load(a + i) + act_load(b + i));
}

// ---- the launches, on the table's activation type (CtAct is float or bf16) ----
template <typename act_t>
static void gelu_forward(CtAct *out, const CtAct *inp, size_t n) {
    if (!n) return;
    gelu_forward_kernel<act_t><<<ct_blocks(n, THREADS), THREADS>>>((act_t *)out, (const act_t *)inp, n);
    LAUNCH_CHECK("gelu_forward_kernel");
}
template <typename act_t>
static void gelu_backward(CtAct *dinp, const CtAct *inp, const CtAct *dout, size_t n) {
    if (!n) return;
    gelu_backward_kernel<act_t><<<ct_blocks(n, THREADS), THREADS>>>((act_t *)dinp, (const act_t *)inp,
                                                                     (const act_t *)dout, n);
    LAUNCH_CHECK("gelu_backward_kernel");
}
template <typename act_t>
static void gelu_grad_scale(CtAct *d, const CtAct *pre, size_t n) {
    if (!n) return;
    gelu_grad_scale_kernel<act_t><<<ct_blocks(n, THREADS), THREADS>>>((act_t *)d, (const act_t *)pre, n);
    LAUNCH_CHECK("gelu_grad_scale_kernel");
}
template <typename act_t>
static void swiglu_forward(CtAct *out, const CtAct *gate_up, int N, int F) {
    size_t total = (size_t)N * F;
    if (!total) return;
    swiglu_forward_kernel<act_t><<<ct_blocks(total, THREADS), THREADS>>>((act_t *)out, (const act_t *)gate_up, F,
                                                                          total);
    LAUNCH_CHECK("swiglu_forward_kernel");
}
template <typename act_t>
static void swiglu_backward(CtAct *dgate_up, const CtAct *dout, const CtAct *gate_up, int N, int F) {
    size_t total = (size_t)N * F;
    if (!total) return;
    swiglu_backward_kernel<act_t><<<ct_blocks(total, THREADS), THREADS>>>(
        (act_t *)dgate_up, (const act_t *)dout, (const act_t *)gate_up, F, total);
    LAUNCH_CHECK("swiglu_backward_kernel");
}
template <typename act_t>
static void geglu_forward(CtAct *out, const CtAct *gate_up, int N, int F) {
    size_t total = (size_t)N * F;
    if (!total) return;
    geglu_forward_kernel<act_t><<<ct_blocks(total, THREADS), THREADS>>>((act_t *)out, (const act_t *)gate_up, F,
                                                                         total);
    LAUNCH_CHECK("geglu_forward_kernel");
}
template <typename act_t>
static void geglu_backward(CtAct *dgate_up, const CtAct *dout, const CtAct *gate_up, int N, int F) {
    size_t total = (size_t)N * F;
    if (!total) return;
    geglu_backward_kernel<act_t><<<ct_blocks(total, THREADS), THREADS>>>(
        (act_t *)dgate_up, (const act_t *)dout, (const act_t *)gate_up, F, total);
    LAUNCH_CHECK("geglu_backward_kernel");
}
template <typename act_t>
static void gelu_erf_forward(CtAct *out, const CtAct *inp, size_t n) {
    if (!n) return;
    gelu_erf_forward_kernel<act_t><<<ct_blocks(n, THREADS), THREADS>>>((act_t *)out, (const act_t *)inp, n);
    LAUNCH_CHECK("gelu_erf_forward_kernel");
}
template <typename act_t>
static void gelu_erf_backward(CtAct *dinp, const CtAct *inp, const CtAct *dout, size_t n) {
    if (!n) return;
    gelu_erf_backward_kernel<act_t><<<ct_blocks(n, THREADS), THREADS>>>((act_t *)dinp, (const act_t *)inp,
                                                                         (const act_t *)dout, n);
    LAUNCH_CHECK("gelu_erf_backward_kernel");
}
template <typename act_t>
static void tanh_forward(CtAct *out, const CtAct *inp, size_t n) {
    if (!n) return;
    tanh_forward_kernel<act_t><<<ct_blocks(n, THREADS), THREADS>>>((act_t *)out, (const act_t *)inp, n);
    LAUNCH_CHECK("tanh_forward_kernel");
}
template <typename act_t>
static void tanh_backward(CtAct *dinp, const CtAct *out, const CtAct *dout, size_t n) {
    if (!n) return;
    tanh_backward_kernel<act_t><<<ct_blocks(n, THREADS), THREADS>>>((act_t *)dinp, (const act_t *)out,
                                                                     (const act_t *)dout, n);
    LAUNCH_CHECK("tanh_backward_kernel");
}
template <typename act_t>
static void relu_forward(CtAct *out, const CtAct *inp, size_t n) {
    if (!n) return;
    relu_forward_kernel<act_t><<<ct_blocks(n, THREADS), THREADS>>>((act_t *)out, (const act_t *)inp, n);
    LAUNCH_CHECK("relu_forward_kernel");
}
template <typename act_t>
static void relu_backward(CtAct *dinp, const CtAct *inp, const CtAct *dout, size_t n) {
    if (!n) return;
    relu_backward_kernel<act_t><<<ct_blocks(n, THREADS), THREADS>>>((act_t *)dinp, (const act_t *)inp,
                                                                     (const act_t *)dout, n);
    LAUNCH_CHECK("relu_backward_kernel");
}
template <typename act_t>
static void softcap_forward(CtAct *x, size_t n, float cap) {
    if (!n) return;
    softcap_kernel<act_t><<<ct_blocks(n, THREADS), THREADS>>>((act_t *)x, n, cap);
    LAUNCH_CHECK("softcap_kernel");
}
template <typename act_t>
static void act_scale(CtAct *x, size_t n, float s) {
    if (!n) return;
    act_scale_kernel<act_t><<<ct_blocks(n, THREADS), THREADS>>>((act_t *)x, n, s);
    LAUNCH_CHECK("act_scale_kernel");
}
template <typename act_t>
static void residual_forward(CtAct *out, const CtAct *a, const CtAct *b, size_t n) {
    if (!n) return;
    residual_forward_kernel<act_t><<<ct_blocks(n, THREADS), THREADS>>>((act_t *)out, (const act_t *)a,
                                                                        (const act_t *)b, n);
    LAUNCH_CHECK("residual_forward_kernel");
}

CT_CUDA_EXPORT_PAIR(ct_cuda_gelu_forward, ct_cuda_gelu_forward_bf16, (CtAct *out, const CtAct *inp, size_t n),
                    gelu_forward<act_t>(out, inp, n))
CT_CUDA_EXPORT_PAIR(ct_cuda_gelu_backward, ct_cuda_gelu_backward_bf16,
                    (CtAct *dinp, const CtAct *inp, const CtAct *dout, size_t n),
                    gelu_backward<act_t>(dinp, inp, dout, n))
CT_CUDA_EXPORT_PAIR(ct_cuda_gelu_grad_scale, ct_cuda_gelu_grad_scale_bf16, (CtAct *d, const CtAct *pre, size_t n),
                    gelu_grad_scale<act_t>(d, pre, n))
CT_CUDA_EXPORT_PAIR(ct_cuda_gelu_erf_forward, ct_cuda_gelu_erf_forward_bf16, (CtAct *out, const CtAct *inp, size_t n),
                    gelu_erf_forward<act_t>(out, inp, n))
CT_CUDA_EXPORT_PAIR(ct_cuda_gelu_erf_backward, ct_cuda_gelu_erf_backward_bf16,
                    (CtAct *dinp, const CtAct *inp, const CtAct *dout, size_t n),
                    gelu_erf_backward<act_t>(dinp, inp, dout, n))
CT_CUDA_EXPORT_PAIR(ct_cuda_tanh_forward, ct_cuda_tanh_forward_bf16, (CtAct *out, const CtAct *inp, size_t n),
                    tanh_forward<act_t>(out, inp, n))
CT_CUDA_EXPORT_PAIR(ct_cuda_relu_forward, ct_cuda_relu_forward_bf16, (CtAct *out, const CtAct *inp, size_t n),
                    relu_forward<act_t>(out, inp, n))
CT_CUDA_EXPORT_PAIR(ct_cuda_relu_backward, ct_cuda_relu_backward_bf16,
                    (CtAct *dinp, const CtAct *inp, const CtAct *dout, size_t n),
                    relu_backward<act_t>(dinp, inp, dout, n))
CT_CUDA_EXPORT_PAIR(ct_cuda_tanh_backward, ct_cuda_tanh_backward_bf16,
                    (CtAct *dinp, const CtAct *out, const CtAct *dout, size_t n),
                    tanh_backward<act_t>(dinp, out, dout, n))
CT_CUDA_EXPORT_PAIR(ct_cuda_swiglu_forward, ct_cuda_swiglu_forward_bf16,
                    (CtAct *out, const CtAct *gate_up, int N, int F), swiglu_forward<act_t>(out, gate_up, N, F))
CT_CUDA_EXPORT_PAIR(ct_cuda_swiglu_backward, ct_cuda_swiglu_backward_bf16,
                    (CtAct *dgate_up, const CtAct *dout, const CtAct *gate_up, int N, int F),
                    swiglu_backward<act_t>(dgate_up, dout, gate_up, N, F))
CT_CUDA_EXPORT_PAIR(ct_cuda_geglu_forward, ct_cuda_geglu_forward_bf16,
                    (CtAct *out, const CtAct *gate_up, int N, int F), geglu_forward<act_t>(out, gate_up, N, F))
CT_CUDA_EXPORT_PAIR(ct_cuda_geglu_backward, ct_cuda_geglu_backward_bf16,
                    (CtAct *dgate_up, const CtAct *dout, const CtAct *gate_up, int N, int F),
                    geglu_backward<act_t>(dgate_up, dout, gate_up, N, F))
CT_CUDA_EXPORT_PAIR(ct_cuda_softcap_forward, ct_cuda_softcap_forward_bf16, (CtAct *x, size_t n, float cap),
                    softcap_forward<act_t>(x, n, cap))
CT_CUDA_EXPORT_PAIR(ct_cuda_act_scale, ct_cuda_act_scale_bf16, (CtAct *x, size_t n, float s),
                    act_scale<act_t>(x, n, s))
CT_CUDA_EXPORT_PAIR(ct_cuda_residual_forward, ct_cuda_residual_forward_bf16,
                    (CtAct *out, const CtAct *a, const CtAct *b, size_t n), residual_forward<act_t>(out, a, b, n))

// ---- dropout (kernels/ops.h): element i kept when u(seed, i) >= p, then scaled by 1/(1-p) ----
#include "kernels/cuda/dropout.cuh"

// y = m ⊙ x / (1-p); backward dx = m ⊙ dy / (1-p) is the same map (it writes, in place is fine).
template <typename act_t>
__global__ void dropout_kernel(act_t *out, const act_t *inp, size_t n, float p, float scale, uint64_t seed) {
    GRID_STRIDE(i, n) act_store(out + i, dropout_uniform(seed, i) >= p ? act_load(inp + i) * scale : 0.0f);
}

template <typename act_t>
static void dropout(CtAct *out, const CtAct *inp, size_t n, float p, uint64_t seed) {
    if (!n) return;
    dropout_kernel<act_t><<<ct_blocks(n, THREADS), THREADS>>>((act_t *)out, (const act_t *)inp, n, p,
                                                               dropout_keep_scale(p), seed);
    LAUNCH_CHECK("dropout_kernel");
}

CT_CUDA_EXPORT_PAIR(ct_cuda_dropout_forward, ct_cuda_dropout_forward_bf16,
                    (CtAct *out, const CtAct *inp, size_t n, float p, uint64_t seed),
                    dropout<act_t>(out, inp, n, p, seed))
CT_CUDA_EXPORT_PAIR(ct_cuda_dropout_backward, ct_cuda_dropout_backward_bf16,
                    (CtAct *dinp, const CtAct *dout, size_t n, float p, uint64_t seed),
                    dropout<act_t>(dinp, dout, n, p, seed))
