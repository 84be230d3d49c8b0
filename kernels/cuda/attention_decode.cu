// Attention of T new tokens over the key/value cache (generation; a speculative decoder's check
// of T drafts), per query t (position n_ctx − T + t) and head h with kv head h / (NH/NKV):
// out_th = softmax(q_th·Kᵀ·scale)·V over the cached rows it sees, with the options of
// attention_forward (kernels/ops.h): the scores capped as c·tanh(s/c) with a soft cap, causal
// among the new tokens, and with a window only the rows r > position − window: the kernels then
// run on the cache from the first query's first visible row on, the rows before it never read.
// Two kernels: scores (a warp per (query, head, row): lanes split HD, a shuffle sums; rows a
// query does not see are scored and never read), then per (query, head) a block finds max and
// Σ exp over its visible rows, turns them into probabilities, and sums P·V with a thread per
// output channel (reads of V rows are coalesced across the channels).
// q, the caches and out are activations of either table's type (act_t: float or ct_bf16); the
// scores and every sum are float.
#include "kernels/cuda/act_io.cuh"
#include "kernels/cuda/cuda_common.cuh"

template <typename act_t>
__global__ void decode_scores_kernel(float *scores, const act_t *q, int q_stride, const act_t *k_cache, int n_keys,
                                     int T, int NH, int NKV, int HD, float scale, float cap) {
    const int warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5, lane = threadIdx.x & 31;
    if (warp >= T * NH * n_keys) return;  // whole warps leave together
    const int th = warp / n_keys, r = warp % n_keys, t = th / NH, h = th % NH, kvh = h / (NH / NKV);
    const act_t *qh = q + (size_t)t * q_stride + (size_t)h * HD, *k = k_cache + (size_t)r * NKV * HD + (size_t)kvh * HD;
    float s = 0.0f;
    for (int i = lane; i < HD; i += 32) s += act_load(qh + i) * act_load(k + i);
    s = warp_sum(s);
    if (lane == 0) scores[warp] = cap > 0.0f ? cap * tanhf(s * scale / cap) : s * scale;
}

// Block (t, h): the keys query t sees are [first, last] of the n_keys scored ones.
template <typename act_t>
__global__ void decode_softmax_pv_kernel(act_t *out, float *scores, const act_t *v_cache, int n_keys, int T, int NH,
                                         int NKV, int HD, int window) {
    const int th = blockIdx.x, t = th / NH, h = th % NH, kvh = h / (NH / NKV);
    const int last = n_keys - T + t, first = window > 0 && last + 1 - window > 0 ? last + 1 - window : 0;
    float *s = scores + (size_t)th * n_keys;
    float m = -INFINITY;
    for (int r = first + threadIdx.x; r <= last; r += blockDim.x) m = fmaxf(m, s[r]);
    m = block_max(m);
    float sum = 0.0f;
    for (int r = first + threadIdx.x; r <= last; r += blockDim.x) {
        float e = expf(s[r] - m);
        s[r] = e;
        sum += e;
    }
    sum = block_sum(sum);  // its barriers also publish the s[r] written above
    const float inv = 1.0f / sum;
    for (int i = threadIdx.x; i < HD; i += blockDim.x) {
        float o = 0.0f;
        for (int r = first; r <= last; r++) o += s[r] * act_load(v_cache + (size_t)r * NKV * HD + (size_t)kvh * HD + i);
        act_store(out + (size_t)th * HD + i, o * inv);
    }
}

template <typename act_t>
static void decode(act_t *out, const act_t *q, int q_stride, const act_t *k_cache, const act_t *v_cache, int n_ctx,
                   int T, int NH, int NKV, int HD, const CtAttentionOptions *opt) {
    if (opt && opt->bidirectional)  // kernels/ops.h: decoding is causal; an encoder does not decode
        ct_fatal_at(__FILE__, __LINE__, "decode with a causal model; an encoder (bidirectional attention) does not decode",
                    "attention_decode: bidirectional attention is not supported");
    if (n_ctx <= 0 || NH <= 0 || T <= 0) return;
    const int window = opt && opt->window > 0 ? opt->window : 0;
    // the rows no query sees (before the first query's window) are skipped
    const int skip_rows = window > 0 && n_ctx - T + 1 - window > 0 ? n_ctx - T + 1 - window : 0;
    const size_t skip = (size_t)skip_rows * NKV * HD;
    k_cache += skip;
    v_cache += skip;
    const int n_keys = n_ctx - skip_rows;
    float *scores = (float *)ct_cuda_scratch(CT_SCRATCH_DECODE, sizeof(float) * (size_t)T * NH * n_keys);
    const float scale = opt && opt->scale != 0.0f ? opt->scale : 1.0f / sqrtf((float)HD);
    const float cap = opt && opt->softcap > 0.0f ? opt->softcap : 0.0f;
    const size_t threads = (size_t)T * NH * n_keys * 32;
    decode_scores_kernel<act_t><<<(unsigned)((threads + 255) / 256), 256>>>(scores, q, q_stride, k_cache, n_keys, T,
                                                                            NH, NKV, HD, scale, cap);
    LAUNCH_CHECK("decode_scores_kernel");
    decode_softmax_pv_kernel<act_t><<<T * NH, 256>>>(out, scores, v_cache, n_keys, T, NH, NKV, HD, window);
    LAUNCH_CHECK("decode_softmax_pv_kernel");
}

CT_CUDA_EXPORT_PAIR(ct_cuda_attention_decode, ct_cuda_attention_decode_bf16,
                    (CtAct *out, const CtAct *q, int q_stride, const CtAct *k_cache, const CtAct *v_cache, int n_ctx,
                     int T, int NH, int NKV, int HD, const CtAttentionOptions *opt),
                    decode((act_t *)out, (const act_t *)q, q_stride, (const act_t *)k_cache, (const act_t *)v_cache,
                           n_ctx, T, NH, NKV, HD, opt))
