// Mixture of Experts (math in kernels/ops.h, "Mixture of Experts"; kernels/cpu/moe.inc).
//   router   a warp per token over its E ≤ 512 logits: lane l holds experts l, l+32, ... (16 at
//            most, in registers). The top k are K rounds of a warp argmax (larger score first,
//            ties to the lower expert: a total order, so every lane agrees on the winner).
//   stats    per-expert column sums in double: fixed row chunks, then the chunks in order.
//   permute  on the host (below), since the offsets must reach the host anyway.
//   gather / combine   element-wise over (row, channel); the k rows of a token are summed in k
//            order, dot products over C by a warp (fixed butterfly order).
//   grouped products   a cuBLASLt product per expert with rows (matmul.cu's ct_cuda_gemm_ex).
// No float atomics anywhere: every number is summed by one thread or one warp in a fixed order,
// so every run gives the same bits.
#include <limits.h>

#include "kernels/cuda/act_io.cuh"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/gemm.cuh"

extern "C" {
#include "core/alloc.h"
}

#define MOE_SLOTS (CT_MOE_MAX_EXPERTS / 32)  // experts per lane in the per-token kernels
#define MOE_THREADS 128                      // 4 warps per block in the warp-per-item kernels

__device__ __forceinline__ bool router_is_sigmoid(CtRouter kind) {
    return kind == CT_ROUTER_SIGMOID || kind == CT_ROUTER_SIGMOID_NORM;
}
// The kinds whose k weights are divided by their sum (topk_softmax's softmax over the k chosen
// logits is p_k / Σ_j p_j: the common factor of the full softmax cancels).
__device__ __forceinline__ bool router_normalises(CtRouter kind) {
    return kind == CT_ROUTER_SOFTMAX_NORM || kind == CT_ROUTER_TOPK_SOFTMAX || kind == CT_ROUTER_SIGMOID_NORM;
}
// The selection order: a larger score first, ties to the lower expert.
__device__ __forceinline__ bool ranks_before(float s, int e, float s2, int e2) {
    return s > s2 || (s == s2 && e < e2);
}

// Items (tokens, or (token, slot) pairs) handed to whole warps, grid-stride: the loop condition
// is the same for every lane of a warp, so warp reductions inside see all 32 lanes.
#define FOR_EACH_WARP_ITEM(item, count)                                                       \
    for (long item = (long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); item < (count); \
         item += (long)gridDim.x * (blockDim.x >> 5))

static unsigned warp_blocks(long items) {
    const long per_block = MOE_THREADS / 32;
    long b = (items + per_block - 1) / per_block;
    if (b < 1) b = 1;
    return b > 65535L * 16 ? 65535u * 16 : (unsigned)b;
}

// ---- the router ----

template <typename act_t>
__global__ void moe_route_forward_kernel(int32_t *expert_ids, float *weights, float *probs, float *lse,
                                         const act_t *logits, const float *bias, int N, CtMoeRouting r) {
    const int lane = threadIdx.x & 31, E = r.E, K = r.K;
    const bool sigmoid = router_is_sigmoid(r.kind);
    FOR_EACH_WARP_ITEM(n, N) {
        const act_t *z_row = logits + (size_t)n * E;
        float z[MOE_SLOTS], p[MOE_SLOTS], score[MOE_SLOTS];
        float m = -INFINITY;
#pragma unroll
        for (int i = 0; i < MOE_SLOTS; i++) {
            const int e = lane + 32 * i;
            z[i] = e < E ? act_load(z_row + e) : -INFINITY;
            p[i] = score[i] = 0.0f;
            m = fmaxf(m, z[i]);
        }
        m = warp_max(m);
        float sum = 0.0f;
#pragma unroll
        for (int i = 0; i < MOE_SLOTS; i++)
            if (lane + 32 * i < E) sum += expf(z[i] - m);
        sum = warp_sum(sum);
        if (lane == 0) lse[n] = m + logf(sum);
#pragma unroll
        for (int i = 0; i < MOE_SLOTS; i++) {
            const int e = lane + 32 * i;
            if (e >= E) continue;
            p[i] = sigmoid ? 1.0f / (1.0f + expf(-z[i])) : expf(z[i] - m) / sum;
            probs[(size_t)n * E + e] = p[i];
            if (r.kind == CT_ROUTER_TOPK_SOFTMAX) score[i] = z[i];
            else score[i] = sigmoid && bias ? p[i] + bias[e] : p[i];
        }
        // K rounds of argmax over the experts not yet taken; the winner's prob travels with it
        unsigned taken = 0;  // bit i: expert lane + 32·i is chosen
        float chosen_sum = 0.0f;
        for (int k = 0; k < K; k++) {
            float best = -INFINITY, best_p = 0.0f;
            int best_e = INT_MAX;
#pragma unroll
            for (int i = 0; i < MOE_SLOTS; i++) {
                const int e = lane + 32 * i;
                if (e < E && !((taken >> i) & 1u) && ranks_before(score[i], e, best, best_e)) {
                    best = score[i];
                    best_e = e;
                    best_p = p[i];
                }
            }
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) {
                const float s2 = __shfl_xor_sync(0xffffffffu, best, o), p2 = __shfl_xor_sync(0xffffffffu, best_p, o);
                const int e2 = __shfl_xor_sync(0xffffffffu, best_e, o);
                if (ranks_before(s2, e2, best, best_e)) {
                    best = s2;
                    best_e = e2;
                    best_p = p2;
                }
            }
            if (best_e < E && (best_e & 31) == lane) taken |= 1u << (best_e >> 5);
            chosen_sum += best_p;
            if (lane == 0) {
                expert_ids[(size_t)n * K + k] = best_e;
                weights[(size_t)n * K + k] = best_p;
            }
        }
        if (lane == 0) {  // lane 0 rereads what it wrote: no other lane is involved
            const float div = router_normalises(r.kind) ? chosen_sum : 1.0f;
            for (int k = 0; k < K; k++) {
                float *w = weights + (size_t)n * K + k;
                *w = *w / div * r.scale;
            }
        }
    }
}

// The load-balancing term's gradient with respect to q[n, e], the same for every token:
// a[e] = aux_coef·E·f[e]/N (passed by value: E ≤ 512 floats).
struct MoeAuxGrad {
    float a[CT_MOE_MAX_EXPERTS];
    int on;
};

// Per token, with p = probs (softmax, or s = sigmoid for the sigmoid kinds), g the gradient with
// respect to p, and c_k = dweights[n,k] (u_k = p_{e_k} / S, S = Σ_j p_{e_j}, D = Σ_j c_j·u_j):
//   weights scale·p_{e_k}:          g[e_k] += scale·c_k
//   weights scale·u_k (normalised): g[e_k] += (scale/S)·(c_k − D)      (∂u_k/∂p_m = (δ_km − u_k)/S)
//   topk_softmax, directly on z:    dz[e_k] += scale·u_k·(c_k − D)     (softmax over the chosen z)
//   aux, softmax kinds (q = p):     g[e] += a[e]
//   aux, sigmoid kinds (q = s/T):   g[e] += (a[e] − Σ_j a[j]·q_j)/T     (∂q_j/∂s_e = (δ_je − q_j)/T)
//   then dz += p ⊙ (g − Σ_j p_j·g_j) (softmax) or g ⊙ s(1 − s) (sigmoid),
//   and the z-loss z_coef·(1/N)·Σ lse²: dz[e] += z_coef·(2/N)·lse·softmax(z)[e].
template <typename act_t>
__global__ void moe_route_backward_kernel(act_t *dlogits, const float *dweights, const act_t *logits,
                                          const float *probs, const float *lse, const int32_t *expert_ids,
                                          MoeAuxGrad aux, float z_coef, int N, CtMoeRouting r) {
    const int lane = threadIdx.x & 31, E = r.E, K = r.K;
    const bool sigmoid = router_is_sigmoid(r.kind);
    FOR_EACH_WARP_ITEM(n, N) {
        const float *p_row = probs + (size_t)n * E;
        const int32_t *ids = expert_ids + (size_t)n * K;
        const float *c = dweights + (size_t)n * K;
        float p[MOE_SLOTS], g[MOE_SLOTS], dz[MOE_SLOTS];
#pragma unroll
        for (int i = 0; i < MOE_SLOTS; i++) {
            const int e = lane + 32 * i;
            p[i] = e < E ? p_row[e] : 0.0f;
            g[i] = 0.0f;
            dz[i] = 0.0f;
        }
        // the weights' term (every lane computes S and D alike, k in order)
        float S = 1.0f, D = 0.0f;
        if (router_normalises(r.kind)) {
            S = 0.0f;
            for (int k = 0; k < K; k++) S += p_row[ids[k]];
            for (int k = 0; k < K; k++) D += c[k] * (p_row[ids[k]] / S);
        }
        for (int k = 0; k < K; k++) {
            const int e = ids[k];
            float add;
            if (r.kind == CT_ROUTER_TOPK_SOFTMAX) add = r.scale * (p_row[e] / S) * (c[k] - D);
            else if (router_normalises(r.kind)) add = r.scale / S * (c[k] - D);
            else add = r.scale * c[k];
#pragma unroll
            for (int i = 0; i < MOE_SLOTS; i++) {
                if (e != lane + 32 * i) continue;
                if (r.kind == CT_ROUTER_TOPK_SOFTMAX) dz[i] += add;
                else g[i] += add;
            }
        }
        // the load-balancing term
        if (aux.on) {
            if (sigmoid) {
                float T = 0.0f, A = 0.0f;
#pragma unroll
                for (int i = 0; i < MOE_SLOTS; i++) {
                    const int e = lane + 32 * i;
                    if (e >= E) continue;
                    T += p[i];
                    A += aux.a[e] * p[i];
                }
                T = warp_sum(T);
                A = warp_sum(A) / T;
#pragma unroll
                for (int i = 0; i < MOE_SLOTS; i++)
                    if (lane + 32 * i < E) g[i] += (aux.a[lane + 32 * i] - A) / T;
            } else {
#pragma unroll
                for (int i = 0; i < MOE_SLOTS; i++)
                    if (lane + 32 * i < E) g[i] += aux.a[lane + 32 * i];
            }
        }
        // through the softmax or the sigmoids
        if (sigmoid) {
#pragma unroll
            for (int i = 0; i < MOE_SLOTS; i++) dz[i] += g[i] * p[i] * (1.0f - p[i]);
        } else {
            float dot = 0.0f;
#pragma unroll
            for (int i = 0; i < MOE_SLOTS; i++) dot += p[i] * g[i];
            dot = warp_sum(dot);
#pragma unroll
            for (int i = 0; i < MOE_SLOTS; i++) dz[i] += p[i] * (g[i] - dot);
        }
        const float l = lse[n], zk = z_coef * 2.0f / (float)N * l;
#pragma unroll
        for (int i = 0; i < MOE_SLOTS; i++) {
            const int e = lane + 32 * i;
            if (e >= E) continue;
            const size_t at = (size_t)n * E + e;
            float d = dz[i];
            if (z_coef != 0.0f) d += zk * expf(act_load(logits + at) - l);
            act_store(dlogits + at, d);
        }
    }
}

template <typename act_t>
static void moe_route_forward(int32_t *expert_ids, float *weights, float *probs, float *lse, const act_t *logits,
                              const float *bias, int N, const CtMoeRouting *r) {
    // the kernel holds E/32 experts per lane in registers: E past the maximum would be dropped
    if (!(r->E >= 1 && r->E <= CT_MOE_MAX_EXPERTS && r->K >= 1 && r->K <= r->E && r->K <= CT_MOE_MAX_TOP_K))
        ct_fatal_at(__FILE__, __LINE__, "a model config the validation should have refused: please report it",
                    "moe_route_forward: needs 1 <= K <= E <= %d and K <= %d (E=%d, K=%d)", CT_MOE_MAX_EXPERTS,
                    CT_MOE_MAX_TOP_K, r->E, r->K);
    if (N <= 0) return;
    moe_route_forward_kernel<act_t><<<warp_blocks(N), MOE_THREADS>>>(expert_ids, weights, probs, lse, logits, bias, N,
                                                                     *r);
    LAUNCH_CHECK("moe_route_forward_kernel");
}

template <typename act_t>
static void moe_route_backward(act_t *dlogits, const float *dweights, const act_t *logits, const float *probs,
                               const float *lse, const int32_t *expert_ids, const float *weights, const float *f,
                               float aux_coef, float z_coef, int N, const CtMoeRouting *r) {
    (void)weights;  // the kernel recomputes u_k = p_{e_k}/S from probs (weights may have scale 0)
    if (N <= 0) return;
    MoeAuxGrad aux = {};
    aux.on = aux_coef != 0.0f && f != NULL;
    if (aux.on)
        for (int e = 0; e < r->E; e++) aux.a[e] = aux_coef * (float)r->E * f[e] / (float)N;
    moe_route_backward_kernel<act_t><<<warp_blocks(N), MOE_THREADS>>>(dlogits, dweights, logits, probs, lse,
                                                                      expert_ids, aux, z_coef, N, *r);
    LAUNCH_CHECK("moe_route_backward_kernel");
}

CT_CUDA_EXPORT_PAIR(ct_cuda_moe_route_forward, ct_cuda_moe_route_forward_bf16,
                    (int32_t *expert_ids, float *weights, float *probs, float *lse, const CtAct *logits,
                     const float *bias, int N, const CtMoeRouting *r),
                    moe_route_forward(expert_ids, weights, probs, lse, (const act_t *)logits, bias, N, r))

CT_CUDA_EXPORT_PAIR(ct_cuda_moe_route_backward, ct_cuda_moe_route_backward_bf16,
                    (CtAct *dlogits, const float *dweights, const CtAct *logits, const float *probs, const float *lse,
                     const int32_t *expert_ids, const float *weights, const float *f, float aux_coef, float z_coef,
                     int N, const CtMoeRouting *r),
                    moe_route_backward((act_t *)dlogits, dweights, (const act_t *)logits, probs, lse, expert_ids,
                                       weights, f, aux_coef, z_coef, N, r))

// ---- router statistics (for reporting: host doubles) ----

#define STATS_ROWS 64          // rows per chunk (more when N is huge)
#define STATS_MAX_CHUNKS 4096

// row_sum[n] = Σ_e s[n, e]: the sigmoid kinds' normaliser of q.
__global__ void moe_row_sum_kernel(float *row_sum, const float *probs, int N, int E) {
    const int lane = threadIdx.x & 31;
    FOR_EACH_WARP_ITEM(n, N) {
        float s = 0.0f;
        for (int e = lane; e < E; e += 32) s += probs[(size_t)n * E + e];
        s = warp_sum(s);
        if (lane == 0) row_sum[n] = s;
    }
}

// partial[k][c] = Σ over row chunk k of q[n, c] (c < E) or lse[n]² (c = E), in double.
__global__ void moe_stats_partial(double *partial, const float *probs, const float *lse, const float *row_sum, int N,
                                  int E, int rows) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x, k = blockIdx.y;
    if (c > E) return;
    const int n0 = k * rows, n1 = min(N, n0 + rows);
    double s = 0.0;
    for (int n = n0; n < n1; n++) {
        if (c == E) s += (double)lse[n] * (double)lse[n];
        else s += row_sum ? (double)(probs[(size_t)n * E + c] / row_sum[n]) : (double)probs[(size_t)n * E + c];
    }
    partial[(size_t)k * (E + 1) + c] = s;
}

__global__ void moe_stats_finish(double *total, const double *partial, int chunks, int cols) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    double s = 0.0;
    for (int k = 0; k < chunks; k++) s += partial[(size_t)k * cols + c];
    total[c] = s;
}

static size_t aligned_256(size_t bytes) { return (bytes + 255) & ~(size_t)255; }

extern "C" void ct_cuda_moe_router_stats(double *q_mean, double *lse_sq_mean, const float *probs, const float *lse,
                                         int N, const CtMoeRouting *r) {
    const int E = r->E, cols = E + 1;
    if (N <= 0) {
        for (int e = 0; e < E; e++) q_mean[e] = 0.0;
        *lse_sq_mean = 0.0;
        return;
    }
    int rows = (N + STATS_MAX_CHUNKS - 1) / STATS_MAX_CHUNKS;
    if (rows < STATS_ROWS) rows = STATS_ROWS;
    const int chunks = (N + rows - 1) / rows;
    // scratch: [row sums, N floats | partials, chunks·cols doubles | totals, cols doubles]
    const size_t sums_bytes = aligned_256((size_t)N * sizeof(float));
    const size_t partial_bytes = aligned_256((size_t)chunks * cols * sizeof(double));
    char *scratch = (char *)ct_cuda_scratch(CT_SCRATCH_MOE, sums_bytes + partial_bytes + cols * sizeof(double));
    float *row_sum = NULL;
    double *partial = (double *)(scratch + sums_bytes), *total = (double *)(scratch + sums_bytes + partial_bytes);
    if (r->kind == CT_ROUTER_SIGMOID || r->kind == CT_ROUTER_SIGMOID_NORM) {
        row_sum = (float *)scratch;
        moe_row_sum_kernel<<<warp_blocks(N), MOE_THREADS>>>(row_sum, probs, N, E);
        LAUNCH_CHECK("moe_row_sum_kernel");
    }
    dim3 grid((cols + 127) / 128, chunks);
    moe_stats_partial<<<grid, 128>>>(partial, probs, lse, row_sum, N, E, rows);
    LAUNCH_CHECK("moe_stats_partial");
    moe_stats_finish<<<(cols + 127) / 128, 128>>>(total, partial, chunks, cols);
    LAUNCH_CHECK("moe_stats_finish");
    double host[CT_MOE_MAX_EXPERTS + 1];
    ct_cuda_download(host, total, cols * sizeof(double));
    for (int e = 0; e < E; e++) q_mean[e] = host[e] / N;
    *lse_sq_mean = host[E] / N;
}

// ---- permutation by expert ----

// A stable counting sort on the host: the N·K expert ids come down, sorted_token and slot_of go
// up, and the offsets stay on the host where the grouped products need them. Simple and
// deterministic; the copies synchronise with the device (the offsets force that anyway). A
// device-side scan, with only the E+1 offsets downloaded, is a later speed item.
extern "C" void ct_cuda_moe_permute(int32_t *offsets, int32_t *sorted_token, int32_t *slot_of,
                                    const int32_t *expert_ids, int N, int E, int K) {
    const size_t R = (size_t)N * K;
    for (int e = 0; e <= E; e++) offsets[e] = 0;
    if (R == 0) return;
    int32_t *ids = (int32_t *)ct_alloc(3 * R * sizeof(int32_t));
    int32_t *tokens = ids + R, *slots = ids + 2 * R;
    ct_cuda_download(ids, expert_ids, R * sizeof(int32_t));
    for (size_t j = 0; j < R; j++) {
        if (ids[j] < 0 || ids[j] >= E)
            ct_fatal_at(__FILE__, __LINE__, "a bug in ctrain's router: please report it",
                        "moe_permute: expert id %d of (token %zu, slot %zu) is outside 0..%d", ids[j], j / K, j % K,
                        E - 1);
        offsets[ids[j] + 1]++;
    }
    for (int e = 0; e < E; e++) offsets[e + 1] += offsets[e];
    // cursor[e] is where expert e's next row goes: its offset, then one more per pair placed
    int32_t cursor[CT_MOE_MAX_EXPERTS];
    for (int e = 0; e < E; e++) cursor[e] = offsets[e];
    for (size_t j = 0; j < R; j++) {  // (token, slot) in order: stable
        const int32_t row = cursor[ids[j]]++;
        tokens[row] = (int32_t)(j / K);
        slots[j] = row;
    }
    ct_cuda_upload(sorted_token, tokens, R * sizeof(int32_t));
    ct_cuda_upload(slot_of, slots, R * sizeof(int32_t));
    ct_free(ids);
}

// ---- gather: the sorted rows' inputs ----

template <typename act_t>
__global__ void moe_gather_forward_kernel(act_t *out, const act_t *inp, const int32_t *sorted_token, int C,
                                          size_t total) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const size_t j = i / C, c = i % C;
        out[i] = inp[(size_t)sorted_token[j] * C + c];  // a copy: the same bits in either type
    }
}

// dinp[n, c] += Σ_k dout[slot_of[n·K + k], c], k in order, the sum added once.
template <typename act_t>
__global__ void moe_gather_backward_kernel(act_t *dinp, const act_t *dout, const int32_t *slot_of, int K, int C,
                                           size_t total) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const size_t n = i / C, c = i % C;
        float s = 0.0f;
        for (int k = 0; k < K; k++) s += act_load(dout + (size_t)slot_of[n * K + k] * C + c);
        act_add(dinp + i, s);
    }
}

template <typename act_t>
static void moe_gather_forward(act_t *out, const act_t *inp, const int32_t *sorted_token, int R, int C) {
    const size_t total = (size_t)R * C;
    if (!total) return;
    moe_gather_forward_kernel<act_t><<<ct_blocks(total, 256), 256>>>(out, inp, sorted_token, C, total);
    LAUNCH_CHECK("moe_gather_forward_kernel");
}

template <typename act_t>
static void moe_gather_backward(act_t *dinp, const act_t *dout, const int32_t *slot_of, int N, int K, int C) {
    const size_t total = (size_t)N * C;
    if (!total || K <= 0) return;
    moe_gather_backward_kernel<act_t><<<ct_blocks(total, 256), 256>>>(dinp, dout, slot_of, K, C, total);
    LAUNCH_CHECK("moe_gather_backward_kernel");
}

CT_CUDA_EXPORT_PAIR(ct_cuda_moe_gather_forward, ct_cuda_moe_gather_forward_bf16,
                    (CtAct *out, const CtAct *inp, const int32_t *sorted_token, int R, int C),
                    moe_gather_forward((act_t *)out, (const act_t *)inp, sorted_token, R, C))

CT_CUDA_EXPORT_PAIR(ct_cuda_moe_gather_backward, ct_cuda_moe_gather_backward_bf16,
                    (CtAct *dinp, const CtAct *dout, const int32_t *slot_of, int N, int K, int C),
                    moe_gather_backward((act_t *)dinp, (const act_t *)dout, slot_of, N, K, C))

// ---- the experts' products over their row blocks ----
// Expert e's rows j0 = offsets[e] .. j1 = offsets[e+1]-1 as matmul.cu's products (same column-
// major views, see there), one cuBLASLt call per expert with rows:
//   out[j0:j1]  = inp[j0:j1]·W_eᵀ     ⇔ out'[OC,rows]  = W_e'ᵀ·inp'[C,rows]     (beta 0: written)
//   dinp[j0:j1] += dout[j0:j1]·W_e    ⇔ dinp'[C,rows] += W_e'[C,OC]·dout'[OC,rows]
//   dW_e += dout[j0:j1]ᵀ·inp[j0:j1]   ⇔ dW_e'[C,OC]   += inp'[C,rows]·dout'ᵀ[rows,OC]
// In the bf16 table W_e is read in bf16 (the declared copy holds every expert at its offset).
// A grouped kernel (one launch over all experts) is a later speed item.

template <typename act_t>
static void grouped_matmul_forward(act_t *out, const act_t *inp, const float *weight, size_t expert_stride,
                                   const int32_t *offsets, int E, int C, int OC) {
    for (int e = 0; e < E; e++) {
        const int j0 = offsets[e], rows = offsets[e + 1] - offsets[e];
        if (rows <= 0) continue;
        ct_cuda_gemm_ex(1, 0, OC, rows, C, 1.0f, ct_gemm_weight<act_t>(weight + e * expert_stride), C,
                        ct_gemm_act(inp + (size_t)j0 * C), C, ct_gemm_act(out + (size_t)j0 * OC), OC, 0.0f, NULL);
    }
}

template <typename act_t>
static void grouped_matmul_backward(act_t *dinp, float *dweight, const act_t *dout, const act_t *inp,
                                    const float *weight, size_t expert_stride, const int32_t *offsets, int E, int C,
                                    int OC) {
    for (int e = 0; e < E; e++) {
        const int j0 = offsets[e], rows = offsets[e + 1] - offsets[e];
        if (rows <= 0) continue;
        const act_t *dout_e = dout + (size_t)j0 * OC;
        if (dinp)
            ct_cuda_gemm_ex(0, 0, C, rows, OC, 1.0f, ct_gemm_weight<act_t>(weight + e * expert_stride), C,
                            ct_gemm_act(dout_e), OC, ct_gemm_act(dinp + (size_t)j0 * C), C, 1.0f, NULL);
        if (dweight)
            ct_cuda_gemm_ex(0, 1, C, OC, rows, 1.0f, ct_gemm_act(inp + (size_t)j0 * C), C, ct_gemm_act(dout_e), OC,
                            ct_gemm_f32(dweight + e * expert_stride), C, 1.0f, NULL);
    }
}

CT_CUDA_EXPORT_PAIR(ct_cuda_grouped_matmul_forward, ct_cuda_grouped_matmul_forward_bf16,
                    (CtAct *out, const CtAct *inp, const float *weight, size_t expert_stride, const int32_t *offsets,
                     int E, int C, int OC),
                    grouped_matmul_forward((act_t *)out, (const act_t *)inp, weight, expert_stride, offsets, E, C, OC))

CT_CUDA_EXPORT_PAIR(ct_cuda_grouped_matmul_backward, ct_cuda_grouped_matmul_backward_bf16,
                    (CtAct *dinp, float *dweight, const CtAct *dout, const CtAct *inp, const float *weight,
                     size_t expert_stride, const int32_t *offsets, int E, int C, int OC),
                    grouped_matmul_backward((act_t *)dinp, dweight, (const act_t *)dout, (const act_t *)inp, weight,
                                            expert_stride, offsets, E, C, OC))

// ---- combine: the weighted sum of a token's k expert outputs, plus the shared expert ----

__device__ __forceinline__ float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

template <typename act_t>
__global__ void moe_combine_forward_kernel(act_t *out, const act_t *expert_out, const float *weights,
                                           const int32_t *slot_of, const act_t *shared, const act_t *shared_gate,
                                           int K, int C, size_t total) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const size_t n = i / C, c = i % C;
        float s = 0.0f;
        for (int k = 0; k < K; k++)
            s += weights[n * K + k] * act_load(expert_out + (size_t)slot_of[n * K + k] * C + c);
        if (shared) s += (shared_gate ? sigmoidf(act_load(shared_gate + n)) : 1.0f) * act_load(shared + i);
        act_store(out + i, s);
    }
}

// The element-wise half of the backward: dexpert_out's rows and dshared (both written).
template <typename act_t>
__global__ void moe_combine_backward_rows_kernel(act_t *dexpert_out, act_t *dshared, const act_t *dout,
                                                 const float *weights, const int32_t *slot_of,
                                                 const act_t *shared_gate, int K, int C, size_t total) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const size_t n = i / C, c = i % C;
        const float d = act_load(dout + i);
        for (int k = 0; k < K; k++)
            act_store(dexpert_out + (size_t)slot_of[n * K + k] * C + c, weights[n * K + k] * d);
        if (dshared) act_store(dshared + i, (shared_gate ? sigmoidf(act_load(shared_gate + n)) : 1.0f) * d);
    }
}

// The dot products, a warp each: item n·KP + k is dweights[n, k] = dout[n]·expert_out[slot] for
// k < K; with a shared gate (KP = K + 1) item n·KP + K is dshared_gate[n] = g(1−g)·dout[n]·shared[n].
template <typename act_t>
__global__ void moe_combine_backward_dots_kernel(float *dweights, act_t *dshared_gate, const act_t *dout,
                                                 const act_t *expert_out, const int32_t *slot_of,
                                                 const act_t *shared, const act_t *shared_gate, int N, int K, int KP,
                                                 int C) {
    const int lane = threadIdx.x & 31;
    FOR_EACH_WARP_ITEM(item, (long)N * KP) {
        const long n = item / KP;
        const int k = (int)(item % KP);
        const act_t *a = dout + (size_t)n * C;
        const act_t *b = k < K ? expert_out + (size_t)slot_of[n * K + k] * C : shared + (size_t)n * C;
        float s = 0.0f;
        for (int c = lane; c < C; c += 32) s += act_load(a + c) * act_load(b + c);
        s = warp_sum(s);
        if (lane == 0 && k < K) dweights[n * K + k] = s;
        if (lane == 0 && k == K) {
            const float g = sigmoidf(act_load(shared_gate + n));
            act_store(dshared_gate + n, g * (1.0f - g) * s);
        }
    }
}

template <typename act_t>
static void moe_combine_forward(act_t *out, const act_t *expert_out, const float *weights, const int32_t *slot_of,
                                const act_t *shared, const act_t *shared_gate, int N, int K, int C) {
    const size_t total = (size_t)N * C;
    if (!total) return;
    moe_combine_forward_kernel<act_t><<<ct_blocks(total, 256), 256>>>(out, expert_out, weights, slot_of, shared,
                                                                       shared_gate, K, C, total);
    LAUNCH_CHECK("moe_combine_forward_kernel");
}

template <typename act_t>
static void moe_combine_backward(act_t *dexpert_out, float *dweights, act_t *dshared, act_t *dshared_gate,
                                 const act_t *dout, const act_t *expert_out, const float *weights,
                                 const int32_t *slot_of, const act_t *shared, const act_t *shared_gate, int N, int K,
                                 int C) {
    const size_t total = (size_t)N * C;
    if (!total) return;
    if (!shared) dshared = NULL;
    if (!shared || !shared_gate) dshared_gate = NULL;
    moe_combine_backward_rows_kernel<act_t><<<ct_blocks(total, 256), 256>>>(dexpert_out, dshared, dout, weights,
                                                                             slot_of, shared_gate, K, C, total);
    LAUNCH_CHECK("moe_combine_backward_rows_kernel");
    const int KP = K + (dshared_gate ? 1 : 0);
    moe_combine_backward_dots_kernel<act_t><<<warp_blocks((long)N * KP), MOE_THREADS>>>(
        dweights, dshared_gate, dout, expert_out, slot_of, shared, shared_gate, N, K, KP, C);
    LAUNCH_CHECK("moe_combine_backward_dots_kernel");
}

CT_CUDA_EXPORT_PAIR(ct_cuda_moe_combine_forward, ct_cuda_moe_combine_forward_bf16,
                    (CtAct *out, const CtAct *expert_out, const float *weights, const int32_t *slot_of,
                     const CtAct *shared, const CtAct *shared_gate, int N, int K, int C),
                    moe_combine_forward((act_t *)out, (const act_t *)expert_out, weights, slot_of,
                                        (const act_t *)shared, (const act_t *)shared_gate, N, K, C))

CT_CUDA_EXPORT_PAIR(ct_cuda_moe_combine_backward, ct_cuda_moe_combine_backward_bf16,
                    (CtAct *dexpert_out, float *dweights, CtAct *dshared, CtAct *dshared_gate, const CtAct *dout,
                     const CtAct *expert_out, const float *weights, const int32_t *slot_of, const CtAct *shared,
                     const CtAct *shared_gate, int N, int K, int C),
                    moe_combine_backward((act_t *)dexpert_out, dweights, (act_t *)dshared, (act_t *)dshared_gate,
                                         (const act_t *)dout, (const act_t *)expert_out, weights, slot_of,
                                         (const act_t *)shared, (const act_t *)shared_gate, N, K, C))
