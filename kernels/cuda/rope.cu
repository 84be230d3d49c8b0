// Rotary position embedding, rotate-half convention (math in kernels/cpu/rope.inc).
// A thread per (token n, pair i < HD/2) computes the angle once as transformers does (and the
// CPU's float ops): (float)pos·inv_freq[i] rounded to float, then cos and sin of that float in
// double, rounded to float, times the table's attention_factor; and rotates pair (i, i+HD/2) of
// every head. Forward rotates by +angle, backward by -angle (Rᵀ = R(-θ)). The CtRope table is
// passed by value (a kernel parameter, in constant memory). Each thread reads its pair before
// writing it, so out may equal inp. Templated on the activation type (act_io.cuh): the pair is
// loaded into float and each result rounded once.
#include "kernels/cuda/act_io.cuh"
#include "kernels/cuda/cuda_common.cuh"

template <typename act_t>
__global__ void rope_kernel(act_t *out, const act_t *inp, const int32_t *positions, int NT, int T, int n_heads,
                            int HD, int row_stride, const CtRope rope, float sign) {
    const int half = HD / 2;
    const size_t total = (size_t)NT * half;
    for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < total;
         idx += (size_t)gridDim.x * blockDim.x) {
        const int n = (int)(idx / half), i = (int)(idx % half);
        const int32_t pos = positions ? positions[n] : n % T;
        const float angle = (float)pos * rope.inv_freq[i];
        const float c = (float)cos((double)angle) * rope.attention_factor;
        const float s = (float)(sign * sin((double)angle)) * rope.attention_factor;
        const act_t *x = inp + (size_t)n * row_stride;
        act_t *y = out + (size_t)n * row_stride;
        for (int h = 0; h < n_heads; h++) {
            const float x0 = act_load(x + h * HD + i), x1 = act_load(x + h * HD + i + half);
            act_store(y + h * HD + i, x0 * c - x1 * s);
            act_store(y + h * HD + i + half, x1 * c + x0 * s);
        }
    }
}

template <typename act_t>
static void rope_rotate(CtAct *out, const CtAct *inp, const int32_t *positions, int B, int T, int n_heads, int HD,
                 int row_stride, const CtRope *table, float sign) {
    if (table->n_pairs != HD / 2)
        ct_fatal_at(__FILE__, __LINE__, "the CtRope must be made for this head size (ct_rope_default)",
                    "RoPE table of %d pairs used with head size %d", table->n_pairs, HD);
    size_t total = (size_t)B * T * (HD / 2);
    if (!total) return;
    rope_kernel<act_t><<<ct_blocks(total, 256), 256>>>((act_t *)out, (const act_t *)inp, positions, B * T, T, n_heads,
                                                       HD, row_stride, *table, sign);
    LAUNCH_CHECK("rope_kernel");
}

CT_CUDA_EXPORT_PAIR(ct_cuda_rope_forward, ct_cuda_rope_forward_bf16,
                    (CtAct *out, const CtAct *inp, const int32_t *positions, int B, int T, int n_heads, int HD,
                     int row_stride, const CtRope *rope),
                    rope_rotate<act_t>(out, inp, positions, B, T, n_heads, HD, row_stride, rope, 1.0f))

CT_CUDA_EXPORT_PAIR(ct_cuda_rope_backward, ct_cuda_rope_backward_bf16,
                    (CtAct *dinp, const CtAct *dout, const int32_t *positions, int B, int T, int n_heads, int HD,
                     int row_stride, const CtRope *rope),
                    rope_rotate<act_t>(dinp, dout, positions, B, T, n_heads, HD, row_stride, rope, -1.0f))
