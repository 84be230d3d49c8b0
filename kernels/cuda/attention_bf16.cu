// Causal or bidirectional self-attention on the tensor cores: bf16 operands, fp32 accumulation,
// the bf16 op table's attention (ct_ops_cuda_bf16()). The same op as attention.cu (kernels/ops.h:
// causal or bidirectional, grouped-query heads, document masks, attention dropout with the counter-based mask) and the
// same saved state in `att` (L, then the document ids: attention_state.cuh), so the two
// backends' forward and backward can be mixed. Activations (qkv, out, dout, dqkv) are the bf16
// table's, bf16 in memory (kernels/ops.h: CtAct): tiles are copied into shared memory as they are
// (16-byte loads), out is rounded once to bf16 (nearest even) and the gradients are added into
// dqkv with the sum rounded once (act_io.cuh). L, D and `att` stay float.
//
// Math (the header of attention.cu has the derivation). S = scale·Q·Kᵀ masked (key j visible
// to query t iff doc[j] == doc[t] and j <= t, any j when bidirectional), P = softmax(S), O = (keep ⊙ P)·V, L = log Σ exp S.
// Scores are kept in base 2 (s₂ = S·log₂e, exp2 is one instruction); L is stored in base e.
//   forward   online softmax over key tiles: m' = max(m, rowmax s₂), l ← l·2^(m−m') + Σ 2^(s₂−m'),
//             o ← o·2^(m−m') + (keep ⊙ 2^(s₂−m'))·V; at the end O = o/l, L = (m + log₂ l)·ln 2.
//   backward  P = 2^(s₂ − L·log₂e) recomputed; dP = keep ⊙ (dO·Vᵀ); D = rowsum(P ⊙ dP) (= dO·O);
//             dS = P ⊙ (dP − D); dQ = scale·dS·K, dK = scale·dSᵀ·Q, dV = (keep ⊙ P)ᵀ·dO.
//
// Options (kernels/ops.h: CtAttentionOptions, attention_state.cuh: AttentionScores): S =
// capped(scale·Q·Kᵀ), with a soft cap c·tanh(R/c) and dS scaled by 1 − (S/c)² before the products
// with K and Q; a window adds key j >= t − window + 1 to the mask (and j <= t + window − 1
// bidirectional). Key tiles wholly outside a block's window are never loaded (forward, dQ), query
// tiles wholly outside it never visited (dKV), and a warp skips its 8-column blocks outside its
// rows' windows. Bidirectional, "the diagonal" below is the last key a row sees (forward, dQ:
// T − 1 without a window) and the first query that sees a key (dKV: 0 without a window):
// AttentionScores' last_key, key_end and query_begin (attention_state.cuh).
//
// Work split (FlashAttention-2's, without atomics). A block is 4 warps; every product is a
// sequence of warp-wide mma.m16n8k16 (kernels/cuda/mma.cuh), each warp owning 16 rows of the
// block's 64; accumulators live in registers in the mma C layout, and an accumulator tile is
// turned into the next product's A operand in registers (P·V, dS·K, Pᵀ·dO, dSᵀ·Q).
//   forward      block = 64 queries of one (b, h). Q fragments in registers; 64-key tiles of K
//                (row-major) and V (transposed, so P·V's B fragments are 32-bit loads) stream
//                through shared memory up to the diagonal. Row max and sum are reduced over the
//                4 lanes that share a row (shuffles); l is summed per lane and reduced once.
//   backward dQ  block = 64 queries of one (b, h); streams K, V (and Kᵀ) tiles. With the
//                forward's O, D = dO·O per row in fp32 first; without it, a first pass over
//                the keys sums D = rowsum(P ⊙ dP). Writes D for the next kernel.
//   backward dKV block = 64 keys of one (b, kv head), warp = 16 keys; computes Sᵀ = K·Qᵀ and
//                dPᵀ = V·dOᵀ for tiles of QT queries (64; 32 at HD = 128, for registers) of
//                every query head of the group, from the diagonal to T, accumulating dK, dV.
// Every output element has one writer that sums in a fixed order: the same bits on every run.
// Work past the diagonal is skipped per warp (8-key column blocks of S, 16-key steps of P·V).
// Shared-memory rows are padded by 8 bf16 (16 bytes) so the fragment loads of a warp hit 32
// different banks. Head sizes 64 and 128 only (HD a multiple of 16 and registers sized for it);
// the launchers hand other head sizes, and arrays not 16-byte aligned, to the CUDA-core kernels
// of attention.cu (float math on the same bf16 activations).
#include "kernels/cuda/act_io.cuh"
#include "kernels/cuda/attention_state.cuh"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/dropout.cuh"
#include "kernels/cuda/mma.cuh"

namespace {
constexpr int WARPS = 4, THREADS = 32 * WARPS;
constexpr int TILE = 64;  // query rows of a forward / dQ block, key rows of a dKV block and of a streamed tile
constexpr float LOG2E = 1.4426950408889634f, LN2 = 0.6931471805599453f;
}  // namespace

// 8 bf16 moved as one 16-byte load or store
struct alignas(16) Bf16x8 {
    uint32_t w[4];
};

// dst[r][c] = src[(r0 + r)·stride + c] for r < rows (zeros past T), c < HD, bits as they are;
// row-major with HD + 8 bf16 per row. src rows are 16-byte aligned (checked by the launchers).
template <int HD>
__device__ __forceinline__ void load_rows_bf16(uint16_t *dst, const ct_bf16 *src, size_t stride, int r0, int T,
                                               int rows) {
    constexpr int LD = HD + 8, C8 = HD / 8;
    for (int idx = threadIdx.x; idx < rows * C8; idx += blockDim.x) {
        const int r = idx / C8, c = (idx - r * C8) * 8;
        Bf16x8 v = {};
        if (r0 + r < T) v = *(const Bf16x8 *)(src + (size_t)(r0 + r) * stride + c);
        *(Bf16x8 *)(dst + r * LD + c) = v;
    }
}

// The transpose: dst[c][r] = src[(r0 + r)·stride + c], rows + 8 bf16 per row of dst (rows
// even; two neighbouring source rows make one 32-bit store).
template <int HD>
__device__ __forceinline__ void load_rows_bf16_transposed(uint16_t *dst, const ct_bf16 *src, size_t stride, int r0,
                                                          int T, int rows) {
    const int ld = rows + 8;
    for (int idx = threadIdx.x; idx < rows / 2 * HD; idx += blockDim.x) {
        const int r = 2 * (idx / HD), c = idx % HD;
        const uint32_t lo = r0 + r < T ? __bfloat16_as_ushort(src[(size_t)(r0 + r) * stride + c]) : 0u;
        const uint32_t hi = r0 + r + 1 < T ? __bfloat16_as_ushort(src[(size_t)(r0 + r + 1) * stride + c]) : 0u;
        *(uint32_t *)(dst + (size_t)c * ld + r) = lo | hi << 16;
    }
}

// ids[i] = doc[r0 + i] for i < n (0 past T or without documents)
__device__ __forceinline__ void load_docs(int *ids, const int32_t *doc, int r0, int T, int n) {
    if ((int)threadIdx.x < n) ids[threadIdx.x] = doc && r0 + (int)threadIdx.x < T ? doc[r0 + threadIdx.x] : 0;
}

// The max and the sum over the 4 lanes of a quad (the lanes that hold one row of an mma tile).
__device__ __forceinline__ float quad_max(float x) {
    x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
    return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ __forceinline__ float quad_sum(float x) {
    x += __shfl_xor_sync(0xffffffffu, x, 1);
    return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

// ---- forward ----

// acc += X·Y for this warp's 16 rows, where X (16 × TILE, keys from k0) is held in the score
// accumulators x and Y's B fragments come from Yᵀ in shared memory (row stride LDT): forward's
// o += P·V and backward's dQ += dS·K. Key blocks past the last key the warp's rows see
// (w_last_key; causal: its last query) are zero.
template <int ND, int NK>
__device__ __forceinline__ void accumulate_times(float (&acc)[ND][4], float (&x)[NK][4], const uint16_t *Yt, int LDT,
                                                 int k0, int w_last_key, int lane) {
#pragma unroll
    for (int kk = 0; kk < NK / 2; kk++) {
        if (k0 + 16 * kk > w_last_key) continue;
        uint32_t af[4];
        pack_a_from_acc(af, x[2 * kk], x[2 * kk + 1]);
#pragma unroll
        for (int nd = 0; nd < ND; nd++) {
            uint32_t bf[2];
            load_frag_b(bf, Yt, LDT, 8 * nd, 16 * kk, lane);
            mma_bf16_16816(acc[nd], af, bf);
        }
    }
}

template <int HD>
__global__ void __launch_bounds__(THREADS) attention_forward_bf16_kernel(ct_bf16 *out, float *lse, const ct_bf16 *qkv,
                                                                         const int32_t *doc_ids, int T, int NH,
                                                                         int NKV, AttentionScores sc, float drop_p,
                                                                         float keep_scale, uint64_t seed) {
    constexpr int LD = HD + 8, LDT = TILE + 8, KS = HD / 16, NK = TILE / 8, ND = HD / 8;
    extern __shared__ float smem[];
    uint16_t *Qs = (uint16_t *)smem, *Ks = Qs + TILE * LD, *Vt = Ks + TILE * LD;
    int *kdoc = (int *)(Vt + HD * LDT);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, tq = lane & 3;
    const int q0 = blockIdx.x * TILE, bh = blockIdx.y, b = bh / NH, h = bh % NH, kvh = h / (NH / NKV);
    const size_t row = (size_t)(NH + 2 * NKV) * HD;
    const ct_bf16 *base = qkv + (size_t)b * T * row;
    const int32_t *doc = doc_ids ? doc_ids + (size_t)b * T : NULL;
    const int w0 = q0 + 16 * warp;                    // this warp's rows w0 .. w0 + 15
    const int w_first_key = sc.first_key(w0);         // keys before it are outside every row's window
    const int w_last_key = sc.last_key(w0 + 15, T);  // and keys after it (causal: the diagonal)
    const int rows[2] = {w0 + (lane >> 2), w0 + (lane >> 2) + 8};  // the rows of accumulator halves 0-1, 2-3
    int rdoc[2], rfirst[2], rlast[2];
    for (int r = 0; r < 2; r++) {
        rdoc[r] = doc && rows[r] < T ? doc[rows[r]] : 0;
        rfirst[r] = sc.first_key(rows[r]);
        rlast[r] = sc.last_key(rows[r], T);
    }
    const float scale_log2 = sc.scale * LOG2E;

    load_rows_bf16<HD>(Qs, base + h * HD, row, q0, T, TILE);
    __syncthreads();
    uint32_t qf[KS][4];
#pragma unroll
    for (int ks = 0; ks < KS; ks++) load_frag_a(qf[ks], Qs, LD, 16 * warp, 16 * ks, lane);

    float o[ND][4], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
#pragma unroll
    for (int nd = 0; nd < ND; nd++) o[nd][0] = o[nd][1] = o[nd][2] = o[nd][3] = 0.0f;
    const int k_end = sc.key_end(q0, TILE, T);  // this block's queries see keys < k_end
    for (int k0 = sc.first_tile(q0, TILE); k0 < k_end; k0 += TILE) {
        __syncthreads();  // every warp is done with the previous tile
        load_rows_bf16<HD>(Ks, base + (NH + kvh) * HD, row, k0, T, TILE);
        load_rows_bf16_transposed<HD>(Vt, base + (NH + NKV + kvh) * HD, row, k0, T, TILE);
        load_docs(kdoc, doc, k0, T, TILE);
        __syncthreads();

        float s[NK][4];
#pragma unroll
        for (int nb = 0; nb < NK; nb++) {
            s[nb][0] = s[nb][1] = s[nb][2] = s[nb][3] = 0.0f;
            if (k0 + 8 * nb > w_last_key || k0 + 8 * nb + 7 < w_first_key) continue;  // keys no row of this warp sees
#pragma unroll
            for (int ks = 0; ks < KS; ks++) {
                uint32_t kf[2];
                load_frag_b(kf, Ks, LD, 8 * nb, 16 * ks, lane);
                mma_bf16_16816(s[nb], qf[ks], kf);
            }
        }
        // mask and scale to base 2; the new row maxima
        float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int nb = 0; nb < NK; nb++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const int r = i >> 1, key = k0 + 8 * nb + 2 * tq + (i & 1);
                const bool vis = key <= rlast[r] && key >= rfirst[r] && (!doc || kdoc[key - k0] == rdoc[r]);
                const float s2 = sc.cap > 0.0f ? sc.capped(s[nb][i] * sc.scale) * LOG2E : s[nb][i] * scale_log2;
                s[nb][i] = vis ? s2 : -INFINITY;
                mx[r] = fmaxf(mx[r], s[nb][i]);
            }
        float m_use[2];
#pragma unroll
        for (int r = 0; r < 2; r++) {
            const float m_new = fmaxf(m[r], quad_max(mx[r]));
            m_use[r] = m_new == -INFINITY ? 0.0f : m_new;  // a row with nothing visible yet stays at zero
            const float c = exp2f(m[r] - m_use[r]);        // rescales what was summed against the old max
            m[r] = m_new;
            l[r] *= c;
#pragma unroll
            for (int nd = 0; nd < ND; nd++) {
                o[nd][2 * r] *= c;
                o[nd][2 * r + 1] *= c;
            }
        }
        // probabilities: l sums P, the output sums keep ⊙ P
#pragma unroll
        for (int nb = 0; nb < NK; nb++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const int r = i >> 1;
                float p = exp2f(s[nb][i] - m_use[r]);
                l[r] += p;
                if (drop_p > 0.0f)
                    p *= attention_keep_factor(drop_p, keep_scale, seed, ((size_t)bh * T + rows[r]) * T,
                                               k0 + 8 * nb + 2 * tq + (i & 1));
                s[nb][i] = p;
            }
        accumulate_times<ND, NK>(o, s, Vt, LDT, k0, w_last_key, lane);  // o += P·V
    }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const float lr = quad_sum(l[r]);  // a query always sees itself, so lr >= 1
        if (rows[r] >= T) continue;
        const float inv = 1.0f / lr;
        ct_bf16 *dst = out + ((size_t)b * T + rows[r]) * NH * HD + h * HD + 2 * tq;
#pragma unroll
        for (int nd = 0; nd < ND; nd++) {
            act_store(dst + 8 * nd, o[nd][2 * r] * inv);
            act_store(dst + 8 * nd + 1, o[nd][2 * r + 1] * inv);
        }
        if (tq == 0) lse[(size_t)bh * T + rows[r]] = (m[r] + log2f(lr)) * LN2;
    }
}

// The two products of a backward tile, on the tensor cores: s = A·Bᵀ and dp = G·Hᵀ for this
// warp's 16 rows of A and G (row stride LD) against N column blocks of 8 rows of B and H, over
// KS·16 channels; skip(nb) leaves block nb at zero (it is masked out by causality).
template <int N, int KS, typename Skip>
__device__ __forceinline__ void two_products(float (&s)[N][4], float (&dp)[N][4], const uint16_t *A,
                                             const uint16_t *G, const uint16_t *B, const uint16_t *H, int LD,
                                             int warp, int lane, Skip skip) {
#pragma unroll
    for (int nb = 0; nb < N; nb++) {
        s[nb][0] = s[nb][1] = s[nb][2] = s[nb][3] = 0.0f;
        dp[nb][0] = dp[nb][1] = dp[nb][2] = dp[nb][3] = 0.0f;
    }
#pragma unroll
    for (int ks = 0; ks < KS; ks++) {
        uint32_t af[4], gf[4];
        load_frag_a(af, A, LD, 16 * warp, 16 * ks, lane);
        load_frag_a(gf, G, LD, 16 * warp, 16 * ks, lane);
#pragma unroll
        for (int nb = 0; nb < N; nb++) {
            if (skip(nb)) continue;
            uint32_t bf[2], hf[2];
            load_frag_b(bf, B, LD, 8 * nb, 16 * ks, lane);
            load_frag_b(hf, H, LD, 8 * nb, 16 * ks, lane);
            mma_bf16_16816(s[nb], af, bf);
            mma_bf16_16816(dp[nb], gf, hf);
        }
    }
}

// ---- backward: dQ (and D) per query tile ----

template <int HD>
__global__ void __launch_bounds__(THREADS)
    attention_backward_dq_bf16_kernel(ct_bf16 *dqkv, float *Dsave, const ct_bf16 *dout, const ct_bf16 *out,
                                      const ct_bf16 *qkv, const float *lse, const int32_t *doc_ids, int T, int NH,
                                      int NKV, AttentionScores sc, float drop_p, float keep_scale, uint64_t seed) {
    constexpr int LD = HD + 8, LDT = TILE + 8, KS = HD / 16, NK = TILE / 8, ND = HD / 8;
    extern __shared__ float smem[];
    uint16_t *Qs = (uint16_t *)smem, *dOs = Qs + TILE * LD, *Ks = dOs + TILE * LD, *Vs = Ks + TILE * LD;
    uint16_t *Kt = Vs + TILE * LD;
    int *kdoc = (int *)(Kt + HD * LDT);
    float *Ds = (float *)(kdoc + TILE);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, tq = lane & 3;
    const int q0 = blockIdx.x * TILE, bh = blockIdx.y, b = bh / NH, h = bh % NH, kvh = h / (NH / NKV);
    const size_t row = (size_t)(NH + 2 * NKV) * HD, orow = (size_t)NH * HD;
    const ct_bf16 *base = qkv + (size_t)b * T * row;
    const int32_t *doc = doc_ids ? doc_ids + (size_t)b * T : NULL;
    const int w0 = q0 + 16 * warp, w_first_key = sc.first_key(w0), w_last_key = sc.last_key(w0 + 15, T);
    const int rows[2] = {w0 + (lane >> 2), w0 + (lane >> 2) + 8};
    int rdoc[2], rfirst[2], rlast[2];
    float Lr[2], D[2];
    for (int r = 0; r < 2; r++) {
        rdoc[r] = doc && rows[r] < T ? doc[rows[r]] : 0;
        rfirst[r] = sc.first_key(rows[r]);
        rlast[r] = sc.last_key(rows[r], T);
        Lr[r] = rows[r] < T ? lse[(size_t)bh * T + rows[r]] * LOG2E : 0.0f;
    }
    load_rows_bf16<HD>(Qs, base + h * HD, row, q0, T, TILE);
    load_rows_bf16<HD>(dOs, dout + (size_t)b * T * orow + h * HD, orow, q0, T, TILE);
    if (out) {  // D = dO·O in fp32, a warp per row
        for (int rr = 0; rr < 16; rr++) {
            const int t = w0 + rr;
            float d = 0.0f;
            if (t < T) {
                const size_t at = ((size_t)b * T + t) * orow + h * HD;
                const ct_bf16 *go = dout + at, *o = out + at;
                for (int c = lane; c < HD; c += 32) d += act_load(go + c) * act_load(o + c);
            }
            d = warp_sum(d);
            if (lane == 0) Ds[16 * warp + rr] = d;
        }
    }
    __syncthreads();
    for (int r = 0; r < 2; r++) D[r] = out ? Ds[rows[r] - q0] : 0.0f;

    float dq[ND][4];
#pragma unroll
    for (int nd = 0; nd < ND; nd++) dq[nd][0] = dq[nd][1] = dq[nd][2] = dq[nd][3] = 0.0f;
    const int k_end = sc.key_end(q0, TILE, T);
    // pass 0 sums D over the keys (only without O); pass 1 accumulates dQ
    for (int pass = out ? 1 : 0; pass < 2; pass++) {
        float Dpart[2] = {0.0f, 0.0f};
        for (int k0 = sc.first_tile(q0, TILE); k0 < k_end; k0 += TILE) {
            __syncthreads();
            load_rows_bf16<HD>(Ks, base + (NH + kvh) * HD, row, k0, T, TILE);
            load_rows_bf16<HD>(Vs, base + (NH + NKV + kvh) * HD, row, k0, T, TILE);
            if (pass == 1) load_rows_bf16_transposed<HD>(Kt, base + (NH + kvh) * HD, row, k0, T, TILE);
            load_docs(kdoc, doc, k0, T, TILE);
            __syncthreads();

            // S = Q·Kᵀ and dP = dO·Vᵀ for this warp's 16 queries; keys none of them sees are skipped
            float s[NK][4], dp[NK][4];
            two_products<NK, KS>(s, dp, Qs, dOs, Ks, Vs, LD, warp, lane,
                                 [&](int nb) { return k0 + 8 * nb > w_last_key || k0 + 8 * nb + 7 < w_first_key; });
#pragma unroll
            for (int nb = 0; nb < NK; nb++)
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    const int r = i >> 1, key = k0 + 8 * nb + 2 * tq + (i & 1);
                    const bool vis = key <= rlast[r] && key >= rfirst[r] && (!doc || kdoc[key - k0] == rdoc[r]);
                    const float S = sc.capped(s[nb][i] * sc.scale);  // the score, natural units
                    const float p = vis ? exp2f(S * LOG2E - Lr[r]) : 0.0f;
                    float dpk = dp[nb][i];
                    if (drop_p > 0.0f)
                        dpk *= attention_keep_factor(drop_p, keep_scale, seed, ((size_t)bh * T + rows[r]) * T, key);
                    if (pass == 0)
                        Dpart[r] += p * dpk;
                    else
                        s[nb][i] = p * (dpk - D[r]) * sc.slope(S);  // dS, through the cap
                }
            if (pass == 0) continue;
            accumulate_times<ND, NK>(dq, s, Kt, LDT, k0, w_last_key, lane);  // dQ += dS·K
        }
        if (pass == 0)
            for (int r = 0; r < 2; r++) D[r] = quad_sum(Dpart[r]);
    }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        if (rows[r] >= T) continue;
        ct_bf16 *dst = dqkv + ((size_t)b * T + rows[r]) * row + h * HD + 2 * tq;
#pragma unroll
        for (int nd = 0; nd < ND; nd++) {
            act_add(dst + 8 * nd, dq[nd][2 * r] * sc.scale);
            act_add(dst + 8 * nd + 1, dq[nd][2 * r + 1] * sc.scale);
        }
        if (tq == 0) Dsave[(size_t)bh * T + rows[r]] = D[r];
    }
}

// ---- backward: dK, dV per key tile of a kv head ----

// Query rows per streamed tile of the dKV kernel: 64, or 32 at HD = 128 (fewer score registers
// next to the 2·HD/2 accumulator registers of dK and dV).
template <int HD>
__host__ __device__ constexpr int dkv_query_tile() {
    return HD >= 128 ? 32 : 64;
}

template <int HD>
__global__ void __launch_bounds__(THREADS)
    attention_backward_dkv_bf16_kernel(ct_bf16 *dqkv, const ct_bf16 *dout, const ct_bf16 *qkv, const float *lse,
                                       const float *Dsave, const int32_t *doc_ids, int T, int NH, int NKV,
                                       AttentionScores sc, float drop_p, float keep_scale, uint64_t seed) {
    constexpr int QT = dkv_query_tile<HD>(), LD = HD + 8, LDQ = QT + 8, KS = HD / 16, NQ = QT / 8, ND = HD / 8;
    extern __shared__ float smem[];
    uint16_t *Ks = (uint16_t *)smem, *Vs = Ks + TILE * LD, *Qs = Vs + TILE * LD, *dOs = Qs + QT * LD;
    uint16_t *Qt = dOs + QT * LD, *dOt = Qt + HD * LDQ;
    float *Ls = (float *)(dOt + HD * LDQ), *Ds = Ls + QT;
    int *qdoc = (int *)(Ds + QT);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, tq = lane & 3;
    const int k0 = blockIdx.x * TILE, bkv = blockIdx.y, b = bkv / NKV, kvh = bkv % NKV, group = NH / NKV;
    const size_t row = (size_t)(NH + 2 * NKV) * HD, orow = (size_t)NH * HD;
    const ct_bf16 *base = qkv + (size_t)b * T * row;
    const int32_t *doc = doc_ids ? doc_ids + (size_t)b * T : NULL;
    const int koff = (NH + kvh) * HD, voff = (NH + NKV + kvh) * HD;
    const int w0 = k0 + 16 * warp;                 // this warp's keys
    const int w_q_begin = sc.query_begin(w0);  // queries before it see none of them (causal: w0)
    const int keys[2] = {w0 + (lane >> 2), w0 + (lane >> 2) + 8};
    int kdoc[2];
    for (int r = 0; r < 2; r++) kdoc[r] = doc && keys[r] < T ? doc[keys[r]] : 0;
    load_rows_bf16<HD>(Ks, base + koff, row, k0, T, TILE);
    load_rows_bf16<HD>(Vs, base + voff, row, k0, T, TILE);

    float dk[ND][4], dv[ND][4];
#pragma unroll
    for (int nd = 0; nd < ND; nd++)
        for (int i = 0; i < 4; i++) dk[nd][i] = dv[nd][i] = 0.0f;
    for (int h = kvh * group; h < (kvh + 1) * group; h++) {
        const size_t bh = (size_t)b * NH + h;
        const ct_bf16 *qbase = base + h * HD, *gbase = dout + (size_t)b * T * orow + h * HD;
        const int q_end = sc.query_end(k0, TILE, T);  // queries past it see none of these keys (window)
        // queries before query_begin(k0) see none of these keys (causal: k0)
        for (int qt0 = sc.query_begin(k0) / QT * QT; qt0 < q_end; qt0 += QT) {
            __syncthreads();
            load_rows_bf16<HD>(Qs, qbase, row, qt0, T, QT);
            load_rows_bf16<HD>(dOs, gbase, orow, qt0, T, QT);
            load_rows_bf16_transposed<HD>(Qt, qbase, row, qt0, T, QT);
            load_rows_bf16_transposed<HD>(dOt, gbase, orow, qt0, T, QT);
            if ((int)threadIdx.x < QT) {
                const int t = qt0 + threadIdx.x;
                Ls[threadIdx.x] = t < T ? lse[bh * T + t] * LOG2E : 0.0f;
                Ds[threadIdx.x] = t < T ? Dsave[bh * T + t] : 0.0f;
            }
            load_docs(qdoc, doc, qt0, T, QT);
            __syncthreads();
            const int w_q_end = sc.query_end(w0, 16, T);  // queries from here on see none of this warp's keys
            if (qt0 + QT - 1 < w_q_begin || w_q_end <= qt0) continue;  // every query of the tile before, or past, them

            // Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ for this warp's 16 keys × QT queries
            float s[NQ][4], dp[NQ][4];  // queries before every key of this warp, or past its window, are skipped
            two_products<NQ, KS>(s, dp, Ks, Vs, Qs, dOs, LD, warp, lane,
                                 [&](int nb) { return qt0 + 8 * nb + 7 < w_q_begin || qt0 + 8 * nb >= w_q_end; });
            // s ← keep ⊙ Pᵀ (dV's weights), dp ← dSᵀ = Pᵀ ⊙ (dPᵀ − D)
#pragma unroll
            for (int nb = 0; nb < NQ; nb++)
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    const int r = i >> 1, qi = 8 * nb + 2 * tq + (i & 1), t = qt0 + qi;
                    const bool vis =
                        t < T && keys[r] <= sc.last_key(t, T) && keys[r] >= sc.first_key(t) && (!doc || qdoc[qi] == kdoc[r]);
                    const float S = sc.capped(s[nb][i] * sc.scale);  // the score, natural units
                    const float p = vis ? exp2f(S * LOG2E - Ls[qi]) : 0.0f;
                    const float keep = drop_p > 0.0f ? attention_keep_factor(drop_p, keep_scale, seed,
                                                                             (bh * T + (size_t)t) * T, keys[r])
                                                     : 1.0f;
                    s[nb][i] = p * keep;
                    dp[nb][i] = p * (dp[nb][i] * keep - Ds[qi]) * sc.slope(S);
                }
            // dV += (keep ⊙ P)ᵀ·dO, dK += dSᵀ·Q: B fragments from the transposed tiles
#pragma unroll
            for (int kk = 0; kk < QT / 16; kk++) {
                if (qt0 + 16 * kk + 15 < w_q_begin) continue;
                uint32_t pf[4], sf[4];
                pack_a_from_acc(pf, s[2 * kk], s[2 * kk + 1]);
                pack_a_from_acc(sf, dp[2 * kk], dp[2 * kk + 1]);
#pragma unroll
                for (int nd = 0; nd < ND; nd++) {
                    uint32_t gf[2], qf[2];
                    load_frag_b(gf, dOt, LDQ, 8 * nd, 16 * kk, lane);
                    load_frag_b(qf, Qt, LDQ, 8 * nd, 16 * kk, lane);
                    mma_bf16_16816(dv[nd], pf, gf);
                    mma_bf16_16816(dk[nd], sf, qf);
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        if (keys[r] >= T) continue;
        ct_bf16 *dk_dst = dqkv + ((size_t)b * T + keys[r]) * row + koff + 2 * tq;
        ct_bf16 *dv_dst = dqkv + ((size_t)b * T + keys[r]) * row + voff + 2 * tq;
#pragma unroll
        for (int nd = 0; nd < ND; nd++) {
            act_add(dk_dst + 8 * nd, dk[nd][2 * r] * sc.scale);
            act_add(dk_dst + 8 * nd + 1, dk[nd][2 * r + 1] * sc.scale);
            act_add(dv_dst + 8 * nd, dv[nd][2 * r]);
            act_add(dv_dst + 8 * nd + 1, dv[nd][2 * r + 1]);
        }
    }
}

// ---- launchers ----

// The tensor-core kernels take HD 64 and 128 and read rows with 16-byte loads; anything else
// goes to the CUDA-core kernels of attention.cu (same op, same saved state, bf16 activations).
static bool tensor_core_shape(int NH, int NKV, int HD, const void *a, const void *b, const void *c) {
    const uintptr_t bits = (uintptr_t)a | (uintptr_t)b | (uintptr_t)c;
    return (HD == 64 || HD == 128) && NKV >= 1 && NH % NKV == 0 && (bits & 15) == 0;
}

template <typename K>
static void allow_smem(K kernel, size_t bytes) {
    if (bytes > 48 * 1024)
        CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
}

template <int HD>
static void forward_bf16(ct_bf16 *out, float *lse, const ct_bf16 *qkv, const int32_t *doc, float drop_p, uint64_t seed,
                         int B, int T, int NH, int NKV, AttentionScores sc) {
    const size_t smem = sizeof(uint16_t) * (2 * (size_t)TILE * (HD + 8) + (size_t)HD * (TILE + 8)) + sizeof(int) * TILE;
    allow_smem(attention_forward_bf16_kernel<HD>, smem);
    dim3 grid((T + TILE - 1) / TILE, B * NH);
    attention_forward_bf16_kernel<HD><<<grid, THREADS, smem>>>(out, lse, qkv, doc, T, NH, NKV, sc, drop_p,
                                                               dropout_keep_scale(drop_p), seed);
    LAUNCH_CHECK("attention_forward_bf16_kernel");
}

template <int HD>
static void backward_bf16(ct_bf16 *dqkv, float *Dsave, const ct_bf16 *dout, const ct_bf16 *out, const ct_bf16 *qkv,
                          const float *lse, const int32_t *doc, float drop_p, uint64_t seed, int B, int T, int NH,
                          int NKV, AttentionScores sc) {
    const float keep_scale = dropout_keep_scale(drop_p);
    const size_t smem_dq = sizeof(uint16_t) * (4 * (size_t)TILE * (HD + 8) + (size_t)HD * (TILE + 8)) +
                           (sizeof(int) + sizeof(float)) * TILE;
    allow_smem(attention_backward_dq_bf16_kernel<HD>, smem_dq);
    dim3 grid_q((T + TILE - 1) / TILE, B * NH);
    attention_backward_dq_bf16_kernel<HD><<<grid_q, THREADS, smem_dq>>>(dqkv, Dsave, dout, out, qkv, lse, doc, T, NH,
                                                                        NKV, sc, drop_p, keep_scale, seed);
    LAUNCH_CHECK("attention_backward_dq_bf16_kernel");
    constexpr int QT = dkv_query_tile<HD>();
    const size_t smem_kv = sizeof(uint16_t) * ((2 * (size_t)TILE + 2 * QT) * (HD + 8) + 2 * (size_t)HD * (QT + 8)) +
                           (2 * sizeof(float) + sizeof(int)) * QT;
    allow_smem(attention_backward_dkv_bf16_kernel<HD>, smem_kv);
    dim3 grid_kv((T + TILE - 1) / TILE, B * NKV);
    attention_backward_dkv_bf16_kernel<HD><<<grid_kv, THREADS, smem_kv>>>(dqkv, dout, qkv, lse, Dsave, doc, T, NH, NKV,
                                                                          sc, drop_p, keep_scale, seed);
    LAUNCH_CHECK("attention_backward_dkv_bf16_kernel");
}

extern "C" void ct_cuda_attention_forward_bf16(CtAct *out_act, float *att, const CtAct *qkv_act,
                                               const int32_t *doc_ids, float dropout_p, uint64_t dropout_seed, int B,
                                               int T, int NH, int NKV, int HD, const CtAttentionOptions *opt) {
    ct_bf16 *out = (ct_bf16 *)out_act;
    const ct_bf16 *qkv = (const ct_bf16 *)qkv_act;
    if (B <= 0 || T <= 0) return;
    if (!tensor_core_shape(NH, NKV, HD, qkv, out, NULL)) {
        attention_forward_cuda_cores(out, att, qkv, doc_ids, dropout_p, dropout_seed, B, T, NH, NKV, HD, opt);
        return;
    }
    attention_save_docs(att, doc_ids, B, T, NH);
    const AttentionScores sc = attention_scores(opt, HD);
    if (HD == 64)
        forward_bf16<64>(out, att, qkv, doc_ids, dropout_p, dropout_seed, B, T, NH, NKV, sc);
    else
        forward_bf16<128>(out, att, qkv, doc_ids, dropout_p, dropout_seed, B, T, NH, NKV, sc);
}

extern "C" void ct_cuda_attention_backward_with_out_bf16(CtAct *dqkv_act, const CtAct *dout_act,
                                                         const CtAct *out_act, const CtAct *qkv_act, const float *att,
                                                         float dropout_p, uint64_t dropout_seed, int B, int T, int NH,
                                                         int NKV, int HD, const CtAttentionOptions *opt) {
    ct_bf16 *dqkv = (ct_bf16 *)dqkv_act;
    const ct_bf16 *dout = (const ct_bf16 *)dout_act, *out = (const ct_bf16 *)out_act, *qkv = (const ct_bf16 *)qkv_act;
    if (B <= 0 || T <= 0) return;
    if (!tensor_core_shape(NH, NKV, HD, qkv, dout, out)) {
        attention_backward_cuda_cores(dqkv, dout, out, qkv, att, dropout_p, dropout_seed, B, T, NH, NKV, HD, opt);
        return;
    }
    const int32_t *docs = attention_saved_docs(att, B, T, NH);
    float *Dsave = (float *)ct_cuda_scratch(CT_SCRATCH_ATTN_D, sizeof(float) * (size_t)B * NH * T);
    const AttentionScores sc = attention_scores(opt, HD);
    if (HD == 64)
        backward_bf16<64>(dqkv, Dsave, dout, out, qkv, att, docs, dropout_p, dropout_seed, B, T, NH, NKV, sc);
    else
        backward_bf16<128>(dqkv, Dsave, dout, out, qkv, att, docs, dropout_p, dropout_seed, B, T, NH, NKV, sc);
}

extern "C" void ct_cuda_attention_backward_bf16(CtAct *dqkv, const CtAct *dout, const CtAct *qkv, const float *att,
                                                float dropout_p, uint64_t dropout_seed, int B, int T, int NH, int NKV,
                                                int HD, const CtAttentionOptions *opt) {
    ct_cuda_attention_backward_with_out_bf16(dqkv, dout, NULL, qkv, att, dropout_p, dropout_seed, B, T, NH, NKV, HD,
                                             opt);
}
