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

// The learned prefix of attention_prefix_forward/backward (kernels/ops.h): P rows of `stride`
// numbers, row j holding the NKV key heads then the NKV value heads. Keys are numbered as
// positions: prefix row j is key j, token t2 key P + t2, query t sits at P + t. P = 0: none, and
// every kernel below is plain attention.
template <typename act_t>
struct KeyPrefix {
    const act_t *kv;
    int P;
    size_t stride;
};

// dst[r, i] = head `head_off` (kv head·HD; + NKV·HD for the values) of key k0 + r for r < rows,
// i < HD: a prefix row, or token k0 + r − P's row of qkv (`base`, rows of `row` numbers, the key
// heads after the NH query heads); 0 past the Tk = P + T keys.
template <typename act_t>
__device__ __forceinline__ void load_key_rows(float *dst, int ld, const act_t *base, size_t row, KeyPrefix<act_t> pre,
                                              int NH, int head_off, int k0, int T, int HD, int rows) {
    for (int idx = threadIdx.x; idx < rows * HD; idx += blockDim.x) {
        const int r = idx / HD, i = idx - r * HD, kj = k0 + r;
        float x = 0.0f;
        if (kj < pre.P)
            x = act_load(pre.kv + (size_t)kj * pre.stride + head_off + i);
        else if (kj < pre.P + T)
            x = act_load(base + (size_t)(kj - pre.P) * row + NH * HD + head_off + i);
        dst[r * ld + i] = x;
    }
}

// Key kj's document id for the masks: -1 for a prefix key (every document sees the prefix: see
// key_visible), 0 without documents or past the keys.
__device__ __forceinline__ int key_doc(const int32_t *doc, int kj, int P, int T) {
    if (kj < P) return -1;
    return doc && kj < P + T ? doc[kj - P] : 0;
}
// Whether a query of document my_doc may see a key whose key_doc is kd (the band is checked apart).
__device__ __forceinline__ bool key_visible(const int32_t *doc, int kd, int my_doc, int kj, int P) {
    return !doc || kj < P || kd == my_doc;
}

// The key and value rows k0.. of kv head kvh into shared memory (K and V at row stride HD) and
// their document ids; the block waits for the previous tile to be consumed first.
template <int BK, typename act_t>
__device__ __forceinline__ void load_kv_tile(float *Ks, float *Vs, int *kdoc, const act_t *base, size_t row,
                                             KeyPrefix<act_t> pre, int NH, int NKV, int kvh, int k0, int T, int HD,
                                             const int32_t *doc, int tid) {
    __syncthreads();
    load_key_rows(Ks, HD, base, row, pre, NH, kvh * HD, k0, T, HD, BK);
    load_key_rows(Vs, HD, base, row, pre, NH, (NKV + kvh) * HD, k0, T, HD, BK);
    if (tid < BK) kdoc[tid] = key_doc(doc, k0 + tid, pre.P, T);
    __syncthreads();
}

template <int HDMAX, typename act_t>
__global__ void __launch_bounds__(BR) attention_forward_kernel(act_t *out, float *lse, const act_t *qkv,
                                                               KeyPrefix<act_t> pre, const int32_t *doc_ids, int T,
                                                               int NH, int NKV, int HD, AttentionScores sc,
                                                               float drop_p, float keep_scale, uint64_t seed) {
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
    const int np = pre.P, Tk = np + T, qp = np + t;  // keys, and this row's query position

    float o[HDMAX];
#pragma unroll
    for (int i = 0; i < HDMAX; i++) o[i] = 0.0f;
    float m = -INFINITY, l = 0.0f;
    const int k_end = sc.key_end(np + q0, BR, Tk);  // this block's queries see keys < k_end
    for (int k0 = sc.first_tile(np + q0, BK); k0 < k_end; k0 += BK) {
        load_kv_tile<BK>(Ks, Vs, kdoc, base, row, pre, NH, NKV, kvh, k0, T, HD, doc, tid);
        if (t >= T) continue;
        const int jn = min(BK, sc.last_key(qp, Tk) - k0 + 1);
        for (int j = max(0, sc.first_key(qp) - k0); j < jn; j++) {
            if (!key_visible(doc, kdoc[j], my_doc, k0 + j, np)) continue;
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
            const float w = p * attention_keep_factor(drop_p, keep_scale, seed, ((size_t)bh * T + t) * Tk, k0 + j);
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
                                                                   KeyPrefix<act_t> pre, const float *lse,
                                                                   const int32_t *doc_ids, int T,
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
    const int np = pre.P, Tk = np + T, qp = np + t;

    float D = 0.0f;  // rowsum(P ⊙ dP)
    if (out && t < T) D = dot<HDMAX>(go, out + ((size_t)b * T + t) * orow + h * HD, HD);
    float dq[HDMAX];
#pragma unroll
    for (int i = 0; i < HDMAX; i++) dq[i] = 0.0f;
    const int k_end = sc.key_end(np + q0, BR, Tk);
    // pass 0 sums D over the keys (only without O); pass 1 accumulates dQ
    for (int pass = out ? 1 : 0; pass < 2; pass++) {
        for (int k0 = sc.first_tile(np + q0, BK); k0 < k_end; k0 += BK) {
            load_kv_tile<BK>(Ks, Vs, kdoc, base, row, pre, NH, NKV, kvh, k0, T, HD, doc, tid);
            if (t >= T) continue;
            const int jn = min(BK, sc.last_key(qp, Tk) - k0 + 1);
            for (int j = max(0, sc.first_key(qp) - k0); j < jn; j++) {
                if (!key_visible(doc, kdoc[j], my_doc, k0 + j, np)) continue;
                const float *k = Ks + j * HD;
                const float s = sc.capped(dot<HDMAX>(q, k, HD) * sc.scale), p = expf(s - L);
                const float dp = dot<HDMAX>(go, Vs + j * HD, HD) *
                                 attention_keep_factor(drop_p, keep_scale, seed, ((size_t)bh * T + t) * Tk, k0 + j);
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
__global__ void __launch_bounds__(BR) attention_backward_dkv_kernel(act_t *dqkv, float *dprefix, const act_t *dout,
                                                                    const act_t *qkv, KeyPrefix<act_t> pre,
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
    const int np = pre.P, Tk = np + T;  // this block's keys are k0.. of the Tk (prefix first)
    load_key_rows(Ks, P, base, row, pre, NH, kvh * HD, k0, T, HD, BR);
    load_key_rows(Vs, P, base, row, pre, NH, (NKV + kvh) * HD, k0, T, HD, BR);
    const int my_doc = key_doc(doc, j, np, T);
    const float *k = Ks + tid * P, *v = Vs + tid * P;

    float dk[HDMAX], dv[HDMAX];
#pragma unroll
    for (int i = 0; i < HDMAX; i++) dk[i] = dv[i] = 0.0f;
    for (int h = kvh * group; h < (kvh + 1) * group; h++) {
        const size_t bh = (size_t)b * NH + h;
        // queries past q_end see none of these keys (window); queries before query_begin(k0)
        // none either (causal: the diagonal); both as positions, less np as query rows
        const int q_end = min(T, sc.query_end(k0, BR, Tk) - np);
        for (int qt0 = max(0, sc.query_begin(k0) - np) / BK * BK; qt0 < q_end; qt0 += BK) {
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
            if (j >= Tk) continue;
            const int in = min(BK, T - qt0);
            for (int i = 0; i < in; i++) {  // every thread walks the same i: broadcast reads
                const int qp = np + qt0 + i;
                if (sc.last_key(qp, Tk) < j || sc.first_key(qp) > j || !key_visible(doc, my_doc, qdoc[i], j, np))
                    continue;
                const float *qi = Qs + i * HD, *goi = dOs + i * HD;
                const float s = sc.capped(dot<HDMAX>(qi, k, HD) * sc.scale), p = expf(s - Ls[i]);
                const float keep =
                    attention_keep_factor(drop_p, keep_scale, seed, (bh * T + (size_t)(qt0 + i)) * Tk, j);
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
    if (j >= Tk) return;
    if (j < np) {  // a prefix key: sequence b's share, written to dprefix[b, j] (summed over b later)
        float *dst = dprefix + ((size_t)b * np + j) * 2 * NKV * HD;
#pragma unroll
        for (int c = 0; c < HDMAX; c++)
            if (c < HD) {
                dst[kvh * HD + c] = dk[c] * sc.scale;
                dst[(NKV + kvh) * HD + c] = dv[c];
            }
        return;
    }
    act_t *dst_row = dqkv + ((size_t)b * T + j - np) * row, *dk_dst = dst_row + koff, *dv_dst = dst_row + voff;
#pragma unroll
    for (int c = 0; c < HDMAX; c++)
        if (c < HD) {
            act_add(dk_dst + c, dk[c] * sc.scale);
            act_add(dv_dst + c, dv[c]);
        }
}

// dprefix_kv[j, c] += Σ_b part[b, j, c] (b in order) for c < width: the prefix's gradient, whose
// per-sequence shares the dKV kernel wrote (kernels/ops.h: summed over the batch).
template <typename act_t>
__global__ void prefix_grad_sum_kernel(act_t *dprefix_kv, const float *part, int B, int P, size_t stride, int width) {
    const size_t n = (size_t)P * width;
    for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < n; idx += (size_t)gridDim.x * blockDim.x) {
        const size_t j = idx / width, c = idx % width;
        float s = 0.0f;
        for (int b = 0; b < B; b++) s += part[((size_t)b * P + j) * width + c];
        act_add(dprefix_kv + j * stride + c, s);
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
static void forward_hd(act_t *out, float *lse, const act_t *qkv, KeyPrefix<act_t> pre, const int32_t *doc,
                       float drop_p, uint64_t seed, int B, int T, int NH, int NKV, int HD, AttentionScores sc) {
    constexpr size_t BK = stream_rows<HDMAX>();
    const size_t smem = sizeof(float) * ((size_t)BR * (HD + 1) + 2 * BK * HD) + sizeof(int) * BK;
    // (launched through one name: the emulation rewrites a launch of name or name<arg> only)
    constexpr auto kernel = attention_forward_kernel<HDMAX, act_t>;
    allow_smem(kernel, smem);
    dim3 grid((T + BR - 1) / BR, B * NH);
    kernel<<<grid, BR, smem>>>(out, lse, qkv, pre, doc, T, NH, NKV, HD, sc, drop_p, dropout_keep_scale(drop_p), seed);
    LAUNCH_CHECK("attention_forward_kernel");
}

// dprefix: the prefix's per-sequence gradient shares [B, P, 2·NKV·HD] (unused when pre.P is 0)
template <int HDMAX, typename act_t>
static void backward_hd(act_t *dqkv, float *dprefix, float *Dsave, const act_t *dout, const act_t *out,
                        const act_t *qkv, KeyPrefix<act_t> pre, const float *lse, const int32_t *doc, float drop_p,
                        uint64_t seed, int B, int T, int NH, int NKV, int HD, AttentionScores sc) {
    const float keep_scale = dropout_keep_scale(drop_p);
    constexpr size_t BK = stream_rows<HDMAX>();
    const size_t smem_dq = sizeof(float) * (2 * (size_t)BR * (HD + 1) + 2 * BK * HD) + sizeof(int) * BK;
    constexpr auto dq_kernel = attention_backward_dq_kernel<HDMAX, act_t>;
    allow_smem(dq_kernel, smem_dq);
    dim3 grid_q((T + BR - 1) / BR, B * NH);
    dq_kernel<<<grid_q, BR, smem_dq>>>(dqkv, Dsave, dout, out, qkv, pre, lse, doc, T, NH, NKV, HD, sc, drop_p,
                                       keep_scale, seed);
    LAUNCH_CHECK("attention_backward_dq_kernel");
    const size_t smem_kv = sizeof(float) * (2 * (size_t)BR * (HD + 1) + 2 * BK * HD + 2 * BK) + sizeof(int) * BK;
    constexpr auto dkv_kernel = attention_backward_dkv_kernel<HDMAX, act_t>;
    allow_smem(dkv_kernel, smem_kv);
    dim3 grid_kv((pre.P + T + BR - 1) / BR, B * NKV);
    dkv_kernel<<<grid_kv, BR, smem_kv>>>(dqkv, dprefix, dout, qkv, pre, lse, Dsave, doc, T, NH, NKV, HD, sc, drop_p,
                                         keep_scale, seed);
    LAUNCH_CHECK("attention_backward_dkv_kernel");
}

template <typename act_t>
static void forward(act_t *out, float *att, const act_t *qkv, KeyPrefix<act_t> pre, const int32_t *doc_ids,
                    float dropout_p, uint64_t dropout_seed, int B, int T, int NH, int NKV, int HD,
                    const CtAttentionOptions *opt) {
    if (B <= 0 || T <= 0) return;
    check_shape(T, NH, NKV, HD);
    attention_save_docs(att, doc_ids, B, T, NH);
    const AttentionScores sc = attention_scores(opt, HD);
    if (HD <= 32)
        forward_hd<32>(out, att, qkv, pre, doc_ids, dropout_p, dropout_seed, B, T, NH, NKV, HD, sc);
    else if (HD <= 64)
        forward_hd<64>(out, att, qkv, pre, doc_ids, dropout_p, dropout_seed, B, T, NH, NKV, HD, sc);
    else if (HD <= 128)
        forward_hd<128>(out, att, qkv, pre, doc_ids, dropout_p, dropout_seed, B, T, NH, NKV, HD, sc);
    else
        forward_hd<256>(out, att, qkv, pre, doc_ids, dropout_p, dropout_seed, B, T, NH, NKV, HD, sc);
}

// dprefix_kv: the prefix's gradient (added to; NULL when pre.P is 0)
template <typename act_t>
static void backward(act_t *dqkv, act_t *dprefix_kv, const act_t *dout, const act_t *out, const act_t *qkv,
                     KeyPrefix<act_t> pre, const float *att, float dropout_p, uint64_t dropout_seed, int B, int T,
                     int NH, int NKV, int HD, const CtAttentionOptions *opt) {
    if (B <= 0 || T <= 0) return;
    check_shape(T, NH, NKV, HD);
    const int32_t *docs = attention_saved_docs(att, B, T, NH);
    float *Dsave = (float *)ct_cuda_scratch(CT_SCRATCH_ATTN_D, sizeof(float) * (size_t)B * NH * T);
    const int width = 2 * NKV * HD;
    float *dpre = pre.P ? (float *)ct_cuda_scratch(CT_SCRATCH_ATTN_PREFIX, sizeof(float) * (size_t)B * pre.P * width)
                        : NULL;
    const AttentionScores sc = attention_scores(opt, HD);
    if (HD <= 32)
        backward_hd<32>(dqkv, dpre, Dsave, dout, out, qkv, pre, att, docs, dropout_p, dropout_seed, B, T, NH, NKV, HD,
                        sc);
    else if (HD <= 64)
        backward_hd<64>(dqkv, dpre, Dsave, dout, out, qkv, pre, att, docs, dropout_p, dropout_seed, B, T, NH, NKV, HD,
                        sc);
    else if (HD <= 128)
        backward_hd<128>(dqkv, dpre, Dsave, dout, out, qkv, pre, att, docs, dropout_p, dropout_seed, B, T, NH, NKV,
                         HD, sc);
    else
        backward_hd<256>(dqkv, dpre, Dsave, dout, out, qkv, pre, att, docs, dropout_p, dropout_seed, B, T, NH, NKV,
                         HD, sc);
    if (pre.P && dprefix_kv) {
        const size_t n = (size_t)pre.P * width;
        prefix_grad_sum_kernel<act_t><<<ct_blocks(n, 256), 256>>>(dprefix_kv, dpre, B, pre.P, pre.stride, width);
        LAUNCH_CHECK("prefix_grad_sum_kernel");
    }
}

extern "C" size_t ct_cuda_attention_saved_floats(int B, int T, int NH) {
    return (size_t)B * T * NH + (T >= 2 ? (size_t)B * T : 0);
}

// ---- the fp32 table ----

extern "C" void ct_cuda_attention_forward(CtAct *out, float *att, const CtAct *qkv, const int32_t *doc_ids,
                                          float dropout_p, uint64_t dropout_seed, int B, int T, int NH, int NKV,
                                          int HD, const CtAttentionOptions *opt) {
    forward((float *)out, att, (const float *)qkv, KeyPrefix<float>{}, doc_ids, dropout_p, dropout_seed, B, T, NH,
            NKV, HD, opt);
}

extern "C" void ct_cuda_attention_backward_with_out(CtAct *dqkv, const CtAct *dout, const CtAct *out,
                                                    const CtAct *qkv, const float *att, float dropout_p,
                                                    uint64_t dropout_seed, int B, int T, int NH, int NKV, int HD,
                                                    const CtAttentionOptions *opt) {
    backward((float *)dqkv, (float *)NULL, (const float *)dout, (const float *)out, (const float *)qkv,
             KeyPrefix<float>{}, att, dropout_p, dropout_seed, B, T, NH, NKV, HD, opt);
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
    forward(out, att, qkv, KeyPrefix<ct_bf16>{}, doc_ids, dropout_p, dropout_seed, B, T, NH, NKV, HD, opt);
}

void attention_backward_cuda_cores(ct_bf16 *dqkv, const ct_bf16 *dout, const ct_bf16 *out, const ct_bf16 *qkv,
                                   const float *att, float dropout_p, uint64_t dropout_seed, int B, int T, int NH,
                                   int NKV, int HD, const CtAttentionOptions *opt) {
    backward(dqkv, (ct_bf16 *)NULL, dout, out, qkv, KeyPrefix<ct_bf16>{}, att, dropout_p, dropout_seed, B, T, NH, NKV,
             HD, opt);
}

// ---- attention with a learned prefix (kernels/ops.h: attention_prefix_forward/backward) ----
// P > 0 runs the kernels above over the P + T keys on either table's activations (the bf16
// table's tensor-core kernels have no prefix: its prefix attention is the CUDA-core kernels').
// P = 0 is the table's own attention_forward/backward, bit for bit as the contract asks.

// the table's own attention, for P = 0
static void table_attention_forward(float *out, float *att, const float *qkv, const int32_t *doc_ids, float p,
                                    uint64_t seed, int B, int T, int NH, int NKV, int HD,
                                    const CtAttentionOptions *opt) {
    ct_cuda_attention_forward(out, att, qkv, doc_ids, p, seed, B, T, NH, NKV, HD, opt);
}
static void table_attention_forward(ct_bf16 *out, float *att, const ct_bf16 *qkv, const int32_t *doc_ids, float p,
                                    uint64_t seed, int B, int T, int NH, int NKV, int HD,
                                    const CtAttentionOptions *opt) {
    ct_cuda_attention_forward_bf16(out, att, qkv, doc_ids, p, seed, B, T, NH, NKV, HD, opt);
}
static void table_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att, float p,
                                     uint64_t seed, int B, int T, int NH, int NKV, int HD,
                                     const CtAttentionOptions *opt) {
    ct_cuda_attention_backward(dqkv, dout, qkv, att, p, seed, B, T, NH, NKV, HD, opt);
}
static void table_attention_backward(ct_bf16 *dqkv, const ct_bf16 *dout, const ct_bf16 *qkv, const float *att,
                                     float p, uint64_t seed, int B, int T, int NH, int NKV, int HD,
                                     const CtAttentionOptions *opt) {
    ct_cuda_attention_backward_bf16(dqkv, dout, qkv, att, p, seed, B, T, NH, NKV, HD, opt);
}

template <typename act_t>
static void prefix_forward(CtAct *out, float *att, const CtAct *qkv, const CtAct *prefix_kv, int P, int prefix_stride,
                           const int32_t *doc_ids, float dropout_p, uint64_t dropout_seed, int B, int T, int NH,
                           int NKV, int HD, const CtAttentionOptions *opt) {
    if (P <= 0) {
        table_attention_forward((act_t *)out, att, (const act_t *)qkv, doc_ids, dropout_p, dropout_seed, B, T, NH,
                                NKV, HD, opt);
        return;
    }
    const KeyPrefix<act_t> pre = {(const act_t *)prefix_kv, P, (size_t)prefix_stride};
    forward((act_t *)out, att, (const act_t *)qkv, pre, doc_ids, dropout_p, dropout_seed, B, T, NH, NKV, HD, opt);
}

template <typename act_t>
static void prefix_backward(CtAct *dqkv, CtAct *dprefix_kv, const CtAct *dout, const CtAct *qkv,
                            const CtAct *prefix_kv, int P, int prefix_stride, const float *att, float dropout_p,
                            uint64_t dropout_seed, int B, int T, int NH, int NKV, int HD,
                            const CtAttentionOptions *opt) {
    if (P <= 0) {
        table_attention_backward((act_t *)dqkv, (const act_t *)dout, (const act_t *)qkv, att, dropout_p, dropout_seed,
                                 B, T, NH, NKV, HD, opt);
        return;
    }
    const KeyPrefix<act_t> pre = {(const act_t *)prefix_kv, P, (size_t)prefix_stride};
    backward((act_t *)dqkv, (act_t *)dprefix_kv, (const act_t *)dout, (const act_t *)NULL, (const act_t *)qkv, pre,
             att, dropout_p, dropout_seed, B, T, NH, NKV, HD, opt);
}

CT_CUDA_EXPORT_PAIR(ct_cuda_attention_prefix_forward, ct_cuda_attention_prefix_forward_bf16,
                    (CtAct *out, float *att, const CtAct *qkv, const CtAct *prefix_kv, int P, int prefix_stride,
                     const int32_t *doc_ids, float dropout_p, uint64_t dropout_seed, int B, int T, int NH, int NKV,
                     int HD, const CtAttentionOptions *opt),
                    prefix_forward<act_t>(out, att, qkv, prefix_kv, P, prefix_stride, doc_ids, dropout_p,
                                          dropout_seed, B, T, NH, NKV, HD, opt))
CT_CUDA_EXPORT_PAIR(ct_cuda_attention_prefix_backward, ct_cuda_attention_prefix_backward_bf16,
                    (CtAct *dqkv, CtAct *dprefix_kv, const CtAct *dout, const CtAct *qkv, const CtAct *prefix_kv,
                     int P, int prefix_stride, const float *att, float dropout_p, uint64_t dropout_seed, int B, int T,
                     int NH, int NKV, int HD, const CtAttentionOptions *opt),
                    prefix_backward<act_t>(dqkv, dprefix_kv, dout, qkv, prefix_kv, P, prefix_stride, att, dropout_p,
                                           dropout_seed, B, T, NH, NKV, HD, opt))
