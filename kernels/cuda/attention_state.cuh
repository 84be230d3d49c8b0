// The CUDA attention's saved state in `att` (docs/cuda.md "Attention saved state"), shared by
// the fp32 kernels (attention.cu) and the bf16 tensor-core kernels (attention_bf16.cu):
//   floats [0, B·NH·T)            L, the log-sum-exp of each query row's scores, [B,NH,T]
//   floats [B·NH·T, B·NH·T + B·T) the batch's document ids as int32 bit patterns (zeros without
//                                 doc_ids), only when T >= 2: backward has no doc_ids argument.
#pragma once
#include "kernels/cuda/act_io.cuh"
#include "kernels/cuda/cuda_common.cuh"

// attention's options (kernels/ops.h: CtAttentionOptions) resolved for the kernels: the score of
// query t and key j is capped(scale·q·k), visible when first_key(t) <= j <= last_key(t) and the
// documents match: causal j <= t and t − j < window (window > 0); bidirectional |t − j| < window
// (any j < T without a window). Passed to the kernels by value.
struct AttentionScores {
    float scale, cap;   // cap 0: no soft cap
    int window;         // 0: no window
    int bidirectional;  // 0: causal
    // S = c·tanh(R/c) for the raw score R = scale·q·k (R without a cap)
    __device__ __forceinline__ float capped(float r) const { return cap > 0.0f ? cap * tanhf(r / cap) : r; }
    // dR = dS·slope(S): tanh' = 1 − tanh², so 1 − (S/c)² (1 without a cap)
    __device__ __forceinline__ float slope(float s) const { return cap > 0.0f ? 1.0f - (s / cap) * (s / cap) : 1.0f; }
    // the first key that query t sees, window included (0 without a window); the same rule
    // causal and bidirectional
    __host__ __device__ __forceinline__ int first_key(int t) const {
        return window > 0 && t - window + 1 > 0 ? t - window + 1 : 0;
    }
    // the last key that query t sees: t when causal; bidirectional t + window − 1 with a window,
    // at most T − 1
    __host__ __device__ __forceinline__ int last_key(int t, int T) const {
        if (!bidirectional) return t;
        return window > 0 && t + window - 1 < T - 1 ? t + window - 1 : T - 1;
    }
    // one past the last key that any of the queries q0 .. q0 + rows − 1 sees: tiles from it on are
    // wholly outside every row's mask and skipped (causal: the diagonal)
    __host__ __device__ __forceinline__ int key_end(int q0, int rows, int T) const {
        const int end = last_key(q0 + rows - 1, T) + 1;
        return end < T ? end : T;
    }
    // the first query that sees key j: j when causal (the diagonal), else first_key(j) (the
    // window is symmetric): queries before it see none of the keys j..
    __host__ __device__ __forceinline__ int query_begin(int j) const { return bidirectional ? first_key(j) : j; }
    // the first key tile (of `tile` rows) that any of the queries q0.. sees: tiles before it are
    // wholly outside the window and skipped
    __host__ __device__ __forceinline__ int first_tile(int q0, int tile) const { return first_key(q0) / tile * tile; }
    // one past the last query that sees any of the keys k0 .. k0 + rows − 1 (T without a window;
    // the same rule causal and bidirectional)
    __host__ __device__ __forceinline__ int query_end(int k0, int rows, int T) const {
        return window > 0 && k0 + rows - 1 + window < T ? k0 + rows - 1 + window : T;
    }
};

static inline AttentionScores attention_scores(const CtAttentionOptions *opt, int HD) {
    AttentionScores s = {1.0f / sqrtf((float)HD), 0.0f, 0, 0};
    if (opt && opt->bidirectional) s.bidirectional = 1;
    if (opt && opt->scale != 0.0f) s.scale = opt->scale;
    if (opt && opt->softcap > 0.0f) s.cap = opt->softcap;
    if (opt && opt->window > 0) s.window = opt->window;
    return s;
}

// The document ids saved after the log-sum-exp (NULL when T < 2: one token needs no mask).
static inline int32_t *attention_saved_docs(const float *att, int B, int T, int NH) {
    return T >= 2 ? (int32_t *)(att + (size_t)B * NH * T) : NULL;
}

// Forward's part of the saved state that is not L: the document ids, all zeros (one document,
// the plain causal mask) when doc_ids is NULL.
static inline void attention_save_docs(float *att, const int32_t *doc_ids, int B, int T, int NH) {
    int32_t *docs = attention_saved_docs(att, B, T, NH);
    if (!docs) return;
    if (doc_ids)
        ct_cuda_copy(docs, doc_ids, sizeof(int32_t) * (size_t)B * T);
    else
        ct_cuda_zero(docs, sizeof(int32_t) * (size_t)B * T);
}

// The CUDA-core kernels of attention.cu on bf16 activations (float math, bf16 loads and
// stores): the bf16 table's attention where the tensor-core kernels do not apply (head sizes
// other than 64 and 128, arrays not 16-byte aligned). attention_bf16.cu dispatches to them.
void attention_forward_cuda_cores(ct_bf16 *out, float *att, const ct_bf16 *qkv, const int32_t *doc_ids,
                                  float dropout_p, uint64_t dropout_seed, int B, int T, int NH, int NKV, int HD,
                                  const CtAttentionOptions *opt);
void attention_backward_cuda_cores(ct_bf16 *dqkv, const ct_bf16 *dout, const ct_bf16 *out, const ct_bf16 *qkv,
                                   const float *att, float dropout_p, uint64_t dropout_seed, int B, int T, int NH,
                                   int NKV, int HD, const CtAttentionOptions *opt);
