// Causal or bidirectional self-attention with grouped-query heads and document masks, flash-attention style:
// tiled over keys with an online softmax, so no T×T matrix ever exists in memory.
// Layout and math in kernels/ops.h; saved state in kernels/cuda/cuda_ops.h (att = [B,NH,T]
// log-sum-exp, then the document ids).
//
// With S = scale·Q·Kᵀ (masked: key j visible to query t iff doc[j] == doc[t] and j <= t, or any
// j when bidirectional),
// P = softmax(S) row-wise, O = P·V, L_t = log Σ_j exp(S_tj):
//   forward   per query row t, over key tiles: m' = max(m, s), l ← l·e^(m-m') + e^(s-m'),
//             o ← o·e^(m-m') + e^(s-m')·v_j; at the end O_t = o/l, L_t = m + log l.
//   backward  P_tj = exp(S_tj - L_t) is recomputed from L, and with dP = dO·Vᵀ,
//             D_t = Σ_j P_tj·dP_tj (= dO_t·O_t), dS = P ⊙ (dP - D):
//             dQ = scale·dS·K, dK = scale·dSᵀ·Q, dV = Pᵀ·dO.
//   options   (kernels/ops.h) S = capped(scale·q·k) = c·tanh(R/c) with a soft cap, so
//             dR = dS·(1 − (S/c)²) before the products with K and Q; a window hides keys with
//             t − j >= window (|t − j| >= window bidirectional): key tiles wholly outside a
//             block's window are never loaded (forward, dQ) and query tiles wholly outside it
//             never visited (dKV). Bidirectional, the key loops run to the block's last visible
//             key (T without a window) instead of the diagonal, and dKV's query loop starts at
//             the first query that sees the block's first key.
//   dropout   (kernels/ops.h) with keep_tj = M_tj/(1-p) from the counter-based mask of index
//             ((b·NH + h)·T + t)·T + j: O = (keep ⊙ P)·V, while l and L sum the undropped P (the
//             CPU's att). Backward: dP = keep ⊙ (dO·Vᵀ), dV = (keep ⊙ P)ᵀ·dO, the rest as above
//             (D = rowsum(P ⊙ dP) is still dO·O).
//
// Work split (FlashAttention-2's, without its atomics): one thread per row, BR = 64 rows per
// block. The row's own vectors sit in shared memory with a padded stride (HD+1: conflict-free
// across the warp), the other side streams through shared memory in tiles of 64 rows that
// every thread reads at the same address (a broadcast); accumulators are in registers.
//   forward      block = 64 queries of one (b, h); streams K, V tiles up to the diagonal
//                (bidirectional: the last visible key).
//   backward dQ  block = 64 queries of one (b, h); computes D (two passes over the keys when
//                the forward's O is not given), then dQ. Writes D for the next kernel.
//   backward dKV block = 64 keys of one (b, kv head); streams Q, dO tiles of every query
//                head of the group, from the diagonal (bidirectional: the first query that
//                sees them) to T. A key row belongs to one thread,
//                a query row to one thread: no atomics, the same bits on every run.
// Head sizes: kernels are compiled for HD <= 32, 64, 128 and 256 (loops unrolled to that bound
// and guarded by the runtime HD), so any HD up to 256 works and 32/64/128/256 waste nothing.
// Above 128 (Gemma 2 and 3: 256) the streamed tiles are 16 rows (stream_rows: shared memory up
// to 161 KiB, opted in per kernel), and the per-thread accumulators (HD floats; 2·HD in dKV) no
// longer fit the 255 registers of a thread: the compiler keeps part of them in local memory
// (L1-cached; dKV most: a 1.5 KB stack frame at sm_90).
// Slower per element than HD <= 128, whose tiles and code are unchanged.
// Activations (qkv, out, dout, dqkv) are of either table's type (kernels/ops.h: CtAct): the
// kernels are templates on act_t, float for the fp32 table and ct_bf16 where the bf16 table's
// tensor-core kernels (attention_bf16.cu) do not apply. Tiles are loaded into float shared
// memory and every sum is in float; outputs round once when stored. L, D, `att` stay float.
#include "kernels/cuda/act_io.cuh"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/attention_state.cuh"
#include "kernels/cuda/dropout.cuh"

#define BR 64  // rows owned by a block (= threads per block)

// Rows of a streamed tile: 64, or 16 above HD 128, where the dQ and dKV kernels' shared memory
// at 64 rows (2·64·(HD+1) + 2·64·HD floats: 257 KiB at HD 256) would not fit a block: 16 rows
// keep it at 161 KiB, under the opt-in limits of sm_80 (163 KiB) and sm_90 (227 KiB).
template <int HDMAX>
__host__ __device__ constexpr int stream_rows() {
    return HDMAX > 128 ? 16 : 64;
}

// dst[r, i] = src[(r0 + r)·stride + i] for r < rows, i < HD (0 past T); all threads help.
template <typename act_t>
__device__ __forceinline__ void load_rows(float *dst, int ld, const act_t *src, size_t stride, int r0, int T, int HD,
                                          int rows) {
    for (int idx = threadIdx.x; idx < rows * HD; idx += blockDim.x) {
        const int r = idx / HD, i = idx - r * HD;
        dst[r * ld + i] = r0 + r < T ? act_load(src + (size_t)(r0 + r) * stride + i) : 0.0f;
    }
}

// a·b over HD elements; a and b are float (shared memory) or activations (global)
template <int HDMAX, typename A, typename B>
__device__ __forceinline__ float dot(const A *a, const B *b, int HD) {
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < HDMAX; i++)
        if (i < HD) s += act_load(a + i) * act_load(b + i);
    return s;
}

// The key and value rows k0.. of kv head kvh into shared memory (K and V at row stride HD) and
// their document ids; the block waits for the previous tile to be consumed first.
template <int BK, typename act_t>
__device__ __forceinline__ void load_kv_tile(float *Ks, float *Vs, int *kdoc, const act_t *base, size_t row,
                                             int NH, int NKV, int kvh, int k0, int T, int HD,
                                             const int32_t *doc, int tid) {
    __syncthreads();
    load_rows(Ks, HD, base + (NH + kvh) * HD, row, k0, T, HD, BK);
    load_rows(Vs, HD, base + (NH + NKV + kvh) * HD, row, k0, T, HD, BK);
    if (tid < BK) kdoc[tid] = doc && k0 + tid < T ? doc[k0 + tid] : 0;
    __syncthreads();
}

template <int HDMAX, typename act_t>
__global__ void __launch_bounds__(BR) attention_forward_kernel(act_t *out, float *lse, const act_t *qkv,
                                                               const int32_t *doc_ids, int T, int NH, int NKV, int HD,
                                                               AttentionScores sc, float drop_p, float keep_scale,
                                                               uint64_t seed) {
    constexpr int BK = stream_rows<HDMAX>();
    extern __shared__ float smem[];
    const int P = HD + 1;
    float *Qs = smem, *Ks = Qs + BR * P, *Vs = Ks + BK * HD;
    int *kdoc = (int *)(Vs + BK * HD);
    const int tid = threadIdx.x, q0 = blockIdx.x * BR, t = q0 + tid;
    const int bh = blockIdx.y, b = bh / NH, h = bh % NH, kvh = h / (NH / NKV);
    const size_t row = (size_t)(NH + 2 * NKV) * HD;
    const act_t *base = qkv + (size_t)b * T * row;
    const int32_t *doc = doc_ids ? doc_ids + (size_t)b * T : NULL;
    load_rows(Qs, P, base + h * HD, row, q0, T, HD, BR);
    const int my_doc = doc && t < T ? doc[t] : 0;
    const float *q = Qs + tid * P;

    float o[HDMAX];
#pragma unroll
    for (int i = 0; i < HDMAX; i++) o[i] = 0.0f;
    float m = -INFINITY, l = 0.0f;
    const int k_end = sc.key_end(q0, BR, T);  // this block's queries see keys < k_end
    for (int k0 = sc.first_tile(q0, BK); k0 < k_end; k0 += BK) {
        load_kv_tile<BK>(Ks, Vs, kdoc, base, row, NH, NKV, kvh, k0, T, HD, doc, tid);
        if (t >= T) continue;
        const int jn = min(BK, sc.last_key(t, T) - k0 + 1);
        for (int j = max(0, sc.first_key(t) - k0); j < jn; j++) {
            if (doc && kdoc[j] != my_doc) continue;
            const float s = sc.capped(dot<HDMAX>(q, Ks + j * HD, HD) * sc.scale);
            if (s > m) {  // a new maximum: rescale what was summed against the old one
                const float c = expf(m - s);
                l *= c;
#pragma unroll
                for (int i = 0; i < HDMAX; i++) o[i] *= c;
                m = s;
            }
            const float p = expf(s - m);
            l += p;
            const float w = p * attention_keep_factor(drop_p, keep_scale, seed, ((size_t)bh * T + t) * T, k0 + j);
            const float *v = Vs + j * HD;
#pragma unroll
            for (int i = 0; i < HDMAX; i++)
                if (i < HD) o[i] += w * v[i];
        }
    }
    if (t >= T) return;
    // a query always sees itself, so l >= 1 here
    const float inv = 1.0f / l;
    act_t *dst = out + ((size_t)b * T + t) * NH * HD + h * HD;
#pragma unroll
    for (int i = 0; i < HDMAX; i++)
        if (i < HD) act_store(dst + i, o[i] * inv);
    lse[(size_t)bh * T + t] = m + logf(l);
}

template <int HDMAX, typename act_t>
__global__ void __launch_bounds__(BR) attention_backward_dq_kernel(act_t *dqkv, float *Dsave, const act_t *dout,
                                                                   const act_t *out, const act_t *qkv,
                                                                   const float *lse, const int32_t *doc_ids, int T,
                                                                   int NH, int NKV, int HD, AttentionScores sc,
                                                                   float drop_p, float keep_scale, uint64_t seed) {
    constexpr int BK = stream_rows<HDMAX>();
    extern __shared__ float smem[];
    const int P = HD + 1;
    float *Qs = smem, *dOs = Qs + BR * P, *Ks = dOs + BR * P, *Vs = Ks + BK * HD;
    int *kdoc = (int *)(Vs + BK * HD);
    const int tid = threadIdx.x, q0 = blockIdx.x * BR, t = q0 + tid;
    const int bh = blockIdx.y, b = bh / NH, h = bh % NH, kvh = h / (NH / NKV);
    const size_t row = (size_t)(NH + 2 * NKV) * HD, orow = (size_t)NH * HD;
    const act_t *base = qkv + (size_t)b * T * row;
    const int32_t *doc = doc_ids ? doc_ids + (size_t)b * T : NULL;
    load_rows(Qs, P, base + h * HD, row, q0, T, HD, BR);
    load_rows(dOs, P, dout + (size_t)b * T * orow + h * HD, orow, q0, T, HD, BR);
    __syncthreads();
    const int my_doc = doc && t < T ? doc[t] : 0;
    const float *q = Qs + tid * P, *go = dOs + tid * P;
    const float L = t < T ? lse[(size_t)bh * T + t] : 0.0f;

    float D = 0.0f;  // rowsum(P ⊙ dP)
    if (out && t < T) D = dot<HDMAX>(go, out + ((size_t)b * T + t) * orow + h * HD, HD);
    float dq[HDMAX];
#pragma unroll
    for (int i = 0; i < HDMAX; i++) dq[i] = 0.0f;
    const int k_end = sc.key_end(q0, BR, T);
    // pass 0 sums D over the keys (only without O); pass 1 accumulates dQ
    for (int pass = out ? 1 : 0; pass < 2; pass++) {
        for (int k0 = sc.first_tile(q0, BK); k0 < k_end; k0 += BK) {
            load_kv_tile<BK>(Ks, Vs, kdoc, base, row, NH, NKV, kvh, k0, T, HD, doc, tid);
            if (t >= T) continue;
            const int jn = min(BK, sc.last_key(t, T) - k0 + 1);
            for (int j = max(0, sc.first_key(t) - k0); j < jn; j++) {
                if (doc && kdoc[j] != my_doc) continue;
                const float *k = Ks + j * HD;
                const float s = sc.capped(dot<HDMAX>(q, k, HD) * sc.scale), p = expf(s - L);
                const float dp = dot<HDMAX>(go, Vs + j * HD, HD) *
                                 attention_keep_factor(drop_p, keep_scale, seed, ((size_t)bh * T + t) * T, k0 + j);
                if (pass == 0) {
                    D += p * dp;
                } else {
                    const float ds = p * (dp - D) * sc.slope(s);
#pragma unroll
                    for (int i = 0; i < HDMAX; i++)
                        if (i < HD) dq[i] += ds * k[i];
                }
            }
        }
    }
    if (t >= T) return;
    act_t *dst = dqkv + ((size_t)b * T + t) * row + h * HD;
#pragma unroll
    for (int i = 0; i < HDMAX; i++)
        if (i < HD) act_add(dst + i, dq[i] * sc.scale);
    Dsave[(size_t)bh * T + t] = D;
}

template <int HDMAX, typename act_t>
__global__ void __launch_bounds__(BR) attention_backward_dkv_kernel(act_t *dqkv, const act_t *dout, const act_t *qkv,
                                                                    const float *lse, const float *Dsave,
                                                                    const int32_t *doc_ids, int T, int NH, int NKV,
                                                                    int HD, AttentionScores sc, float drop_p,
                                                                    float keep_scale, uint64_t seed) {
    constexpr int BK = stream_rows<HDMAX>();
    extern __shared__ float smem[];
    const int P = HD + 1;
    float *Ks = smem, *Vs = Ks + BR * P, *Qs = Vs + BR * P, *dOs = Qs + BK * HD;
    float *Ls = dOs + BK * HD, *Ds = Ls + BK;
    int *qdoc = (int *)(Ds + BK);
    const int tid = threadIdx.x, k0 = blockIdx.x * BR, j = k0 + tid;
    const int bkv = blockIdx.y, b = bkv / NKV, kvh = bkv % NKV, group = NH / NKV;
    const size_t row = (size_t)(NH + 2 * NKV) * HD, orow = (size_t)NH * HD;
    const act_t *base = qkv + (size_t)b * T * row;
    const int32_t *doc = doc_ids ? doc_ids + (size_t)b * T : NULL;
    const int koff = (NH + kvh) * HD, voff = (NH + NKV + kvh) * HD;
    load_rows(Ks, P, base + koff, row, k0, T, HD, BR);
    load_rows(Vs, P, base + voff, row, k0, T, HD, BR);
    const int my_doc = doc && j < T ? doc[j] : 0;
    const float *k = Ks + tid * P, *v = Vs + tid * P;

    float dk[HDMAX], dv[HDMAX];
#pragma unroll
    for (int i = 0; i < HDMAX; i++) dk[i] = dv[i] = 0.0f;
    for (int h = kvh * group; h < (kvh + 1) * group; h++) {
        const size_t bh = (size_t)b * NH + h;
        const int q_end = sc.query_end(k0, BR, T);  // queries past it see none of these keys (window)
        // queries before query_begin(k0) see none of these keys (causal: k0)
        for (int qt0 = sc.query_begin(k0) / BK * BK; qt0 < q_end; qt0 += BK) {
            __syncthreads();
            load_rows(Qs, HD, base + h * HD, row, qt0, T, HD, BK);
            load_rows(dOs, HD, dout + (size_t)b * T * orow + h * HD, orow, qt0, T, HD, BK);
            if (tid < BK) {
                const int t = qt0 + tid;
                Ls[tid] = t < T ? lse[bh * T + t] : 0.0f;
                Ds[tid] = t < T ? Dsave[bh * T + t] : 0.0f;
                qdoc[tid] = doc && t < T ? doc[t] : 0;
            }
            __syncthreads();
            if (j >= T) continue;
            const int in = min(BK, T - qt0);
            for (int i = 0; i < in; i++) {  // every thread walks the same i: broadcast reads
                if (sc.last_key(qt0 + i, T) < j || sc.first_key(qt0 + i) > j || (doc && qdoc[i] != my_doc))
                    continue;
                const float *qi = Qs + i * HD, *goi = dOs + i * HD;
                const float s = sc.capped(dot<HDMAX>(qi, k, HD) * sc.scale), p = expf(s - Ls[i]);
                const float keep = attention_keep_factor(drop_p, keep_scale, seed, (bh * T + (size_t)(qt0 + i)) * T, j);
                const float ds = p * (dot<HDMAX>(goi, v, HD) * keep - Ds[i]) * sc.slope(s), w = p * keep;
#pragma unroll
                for (int c = 0; c < HDMAX; c++)
                    if (c < HD) {
                        dv[c] += w * goi[c];
                        dk[c] += ds * qi[c];
                    }
            }
        }
    }
    if (j >= T) return;
    act_t *dk_dst = dqkv + ((size_t)b * T + j) * row + koff, *dv_dst = dqkv + ((size_t)b * T + j) * row + voff;
#pragma unroll
    for (int c = 0; c < HDMAX; c++)
        if (c < HD) {
            act_add(dk_dst + c, dk[c] * sc.scale);
            act_add(dv_dst + c, dv[c]);
        }
}

// ---- launchers ----

static void check_shape(int T, int NH, int NKV, int HD) {
    if (HD < 1 || HD > 256 || NKV < 1 || NH % NKV != 0)
        ct_fatal_at(__FILE__, __LINE__, "the CUDA attention supports head sizes up to 256 and NH a multiple of NKV",
                    "attention with NH=%d NKV=%d HD=%d (T=%d) is not supported", NH, NKV, HD, T);
}

template <typename K>
static void allow_smem(K kernel, size_t bytes) {
    if (bytes > 48 * 1024) CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
}

template <int HDMAX, typename act_t>
static void forward_hd(act_t *out, float *lse, const act_t *qkv, const int32_t *doc, float drop_p, uint64_t seed,
                       int B, int T, int NH, int NKV, int HD, AttentionScores sc) {
    constexpr size_t BK = stream_rows<HDMAX>();
    const size_t smem = sizeof(float) * ((size_t)BR * (HD + 1) + 2 * BK * HD) + sizeof(int) * BK;
    // (launched through one name: the emulation rewrites a launch of name or name<arg> only)
    constexpr auto kernel = attention_forward_kernel<HDMAX, act_t>;
    allow_smem(kernel, smem);
    dim3 grid((T + BR - 1) / BR, B * NH);
    kernel<<<grid, BR, smem>>>(out, lse, qkv, doc, T, NH, NKV, HD, sc, drop_p, dropout_keep_scale(drop_p), seed);
    LAUNCH_CHECK("attention_forward_kernel");
}

template <int HDMAX, typename act_t>
static void backward_hd(act_t *dqkv, float *Dsave, const act_t *dout, const act_t *out, const act_t *qkv,
                        const float *lse, const int32_t *doc, float drop_p, uint64_t seed, int B, int T, int NH,
                        int NKV, int HD, AttentionScores sc) {
    const float keep_scale = dropout_keep_scale(drop_p);
    constexpr size_t BK = stream_rows<HDMAX>();
    const size_t smem_dq = sizeof(float) * (2 * (size_t)BR * (HD + 1) + 2 * BK * HD) + sizeof(int) * BK;
    constexpr auto dq_kernel = attention_backward_dq_kernel<HDMAX, act_t>;
    allow_smem(dq_kernel, smem_dq);
    dim3 grid_q((T + BR - 1) / BR, B * NH);
    dq_kernel<<<grid_q, BR, smem_dq>>>(dqkv, Dsave, dout, out, qkv, lse, doc, T, NH, NKV, HD, sc, drop_p,
                                       keep_scale, seed);
    LAUNCH_CHECK("attention_backward_dq_kernel");
    const size_t smem_kv = sizeof(float) * (2 * (size_t)BR * (HD + 1) + 2 * BK * HD + 2 * BK) + sizeof(int) * BK;
    constexpr auto dkv_kernel = attention_backward_dkv_kernel<HDMAX, act_t>;
    allow_smem(dkv_kernel, smem_kv);
    dim3 grid_kv((T + BR - 1) / BR, B * NKV);
    dkv_kernel<<<grid_kv, BR, smem_kv>>>(dqkv, dout, qkv, lse, Dsave, doc, T, NH, NKV, HD, sc, drop_p, keep_scale,
                                         seed);
    LAUNCH_CHECK("attention_backward_dkv_kernel");
}

template <typename act_t>
static void forward(act_t *out, float *att, const act_t *qkv, const int32_t *doc_ids, float dropout_p,
                    uint64_t dropout_seed, int B, int T, int NH, int NKV, int HD, const CtAttentionOptions *opt) {
    if (B <= 0 || T <= 0) return;
    check_shape(T, NH, NKV, HD);
    attention_save_docs(att, doc_ids, B, T, NH);
    const AttentionScores sc = attention_scores(opt, HD);
    if (HD <= 32)
        forward_hd<32>(out, att, qkv, doc_ids, dropout_p, dropout_seed, B, T, NH, NKV, HD, sc);
    else if (HD <= 64)
        forward_hd<64>(out, att, qkv, doc_ids, dropout_p, dropout_seed, B, T, NH, NKV, HD, sc);
    else if (HD <= 128)
        forward_hd<128>(out, att, qkv, doc_ids, dropout_p, dropout_seed, B, T, NH, NKV, HD, sc);
    else
        forward_hd<256>(out, att, qkv, doc_ids, dropout_p, dropout_seed, B, T, NH, NKV, HD, sc);
}

template <typename act_t>
static void backward(act_t *dqkv, const act_t *dout, const act_t *out, const act_t *qkv, const float *att,
                     float dropout_p, uint64_t dropout_seed, int B, int T, int NH, int NKV, int HD,
                     const CtAttentionOptions *opt) {
    if (B <= 0 || T <= 0) return;
    check_shape(T, NH, NKV, HD);
    const int32_t *docs = attention_saved_docs(att, B, T, NH);
    float *Dsave = (float *)ct_cuda_scratch(CT_SCRATCH_ATTN_D, sizeof(float) * (size_t)B * NH * T);
    const AttentionScores sc = attention_scores(opt, HD);
    if (HD <= 32)
        backward_hd<32>(dqkv, Dsave, dout, out, qkv, att, docs, dropout_p, dropout_seed, B, T, NH, NKV, HD, sc);
    else if (HD <= 64)
        backward_hd<64>(dqkv, Dsave, dout, out, qkv, att, docs, dropout_p, dropout_seed, B, T, NH, NKV, HD, sc);
    else if (HD <= 128)
        backward_hd<128>(dqkv, Dsave, dout, out, qkv, att, docs, dropout_p, dropout_seed, B, T, NH, NKV, HD, sc);
    else
        backward_hd<256>(dqkv, Dsave, dout, out, qkv, att, docs, dropout_p, dropout_seed, B, T, NH, NKV, HD, sc);
}

extern "C" size_t ct_cuda_attention_saved_floats(int B, int T, int NH) {
    return (size_t)B * T * NH + (T >= 2 ? (size_t)B * T : 0);
}

// ---- the fp32 table ----

extern "C" void ct_cuda_attention_forward(CtAct *out, float *att, const CtAct *qkv, const int32_t *doc_ids,
                                          float dropout_p, uint64_t dropout_seed, int B, int T, int NH, int NKV,
                                          int HD, const CtAttentionOptions *opt) {
    forward((float *)out, att, (const float *)qkv, doc_ids, dropout_p, dropout_seed, B, T, NH, NKV, HD, opt);
}

extern "C" void ct_cuda_attention_backward_with_out(CtAct *dqkv, const CtAct *dout, const CtAct *out,
                                                    const CtAct *qkv, const float *att, float dropout_p,
                                                    uint64_t dropout_seed, int B, int T, int NH, int NKV, int HD,
                                                    const CtAttentionOptions *opt) {
    backward((float *)dqkv, (const float *)dout, (const float *)out, (const float *)qkv, att, dropout_p, dropout_seed,
             B, T, NH, NKV, HD, opt);
}

extern "C" void ct_cuda_attention_backward(CtAct *dqkv, const CtAct *dout, const CtAct *qkv, const float *att,
                                           float dropout_p, uint64_t dropout_seed, int B, int T, int NH, int NKV,
                                           int HD, const CtAttentionOptions *opt) {
    ct_cuda_attention_backward_with_out(dqkv, dout, NULL, qkv, att, dropout_p, dropout_seed, B, T, NH, NKV, HD, opt);
}

// ---- the bf16 table's fallback (attention_state.cuh; entry points in attention_bf16.cu) ----

void attention_forward_cuda_cores(ct_bf16 *out, float *att, const ct_bf16 *qkv, const int32_t *doc_ids,
                                  float dropout_p, uint64_t dropout_seed, int B, int T, int NH, int NKV, int HD,
                                  const CtAttentionOptions *opt) {
    forward(out, att, qkv, doc_ids, dropout_p, dropout_seed, B, T, NH, NKV, HD, opt);
}

void attention_backward_cuda_cores(ct_bf16 *dqkv, const ct_bf16 *dout, const ct_bf16 *out, const ct_bf16 *qkv,
                                   const float *att, float dropout_p, uint64_t dropout_seed, int B, int T, int NH,
                                   int NKV, int HD, const CtAttentionOptions *opt) {
    backward(dqkv, dout, out, qkv, att, dropout_p, dropout_seed, B, T, NH, NKV, HD, opt);
}
