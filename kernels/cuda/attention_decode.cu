// Attention of one new token over the key/value cache (generation), per query head h with kv
// head h / (NH/NKV):  out_h = softmax(q_h·Kᵀ·scale)·V over the n_ctx cached rows, with the
// options of attention_forward (kernels/ops.h): the scores capped as c·tanh(s/c) with a soft cap,
// and with a window only the last `window` rows (the query is row n_ctx − 1): the kernels then
// run on the cache from row n_ctx − window on, the rows before it never read.
// Two kernels: scores (a warp per (head, row): lanes split HD, a shuffle sums), then per head a
// block finds max and Σ exp, turns the scores into probabilities, and sums P·V with a thread
// per output channel (reads of V rows are coalesced across the channels).
// q, the caches and out are activations of either table's type (act_t: float or ct_bf16); the
// scores and every sum are float.
#include "kernels/cuda/act_io.cuh"
#include "kernels/cuda/cuda_common.cuh"

template <typename act_t>
__global__ void decode_scores_kernel(float *scores, const act_t *q, const act_t *k_cache, int n_ctx, int NH, int NKV,
                                     int HD, float scale, float cap) {
    const int warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5, lane = threadIdx.x & 31;
    if (warp >= NH * n_ctx) return;  // whole warps leave together
    const int h = warp / n_ctx, t = warp % n_ctx, kvh = h / (NH / NKV);
    const act_t *qh = q + (size_t)h * HD, *k = k_cache + (size_t)t * NKV * HD + (size_t)kvh * HD;
    float s = 0.0f;
    for (int i = lane; i < HD; i += 32) s += act_load(qh + i) * act_load(k + i);
    s = warp_sum(s);
    if (lane == 0) scores[warp] = cap > 0.0f ? cap * tanhf(s * scale / cap) : s * scale;
}

template <typename act_t>
__global__ void decode_softmax_pv_kernel(act_t *out, float *scores, const act_t *v_cache, int n_ctx, int NH, int NKV,
                                         int HD) {
    const int h = blockIdx.x, kvh = h / (NH / NKV);
    float *s = scores + (size_t)h * n_ctx;
    float m = -INFINITY;
    for (int t = threadIdx.x; t < n_ctx; t += blockDim.x) m = fmaxf(m, s[t]);
    m = block_max(m);
    float sum = 0.0f;
    for (int t = threadIdx.x; t < n_ctx; t += blockDim.x) {
        float e = expf(s[t] - m);
        s[t] = e;
        sum += e;
    }
    sum = block_sum(sum);  // its barriers also publish the s[t] written above
    const float inv = 1.0f / sum;
    for (int i = threadIdx.x; i < HD; i += blockDim.x) {
        float o = 0.0f;
        for (int t = 0; t < n_ctx; t++) o += s[t] * act_load(v_cache + (size_t)t * NKV * HD + (size_t)kvh * HD + i);
        act_store(out + (size_t)h * HD + i, o * inv);
    }
}

template <typename act_t>
static void decode(act_t *out, const act_t *q, const act_t *k_cache, const act_t *v_cache, int n_ctx, int NH, int NKV,
                   int HD, const CtAttentionOptions *opt) {
    if (n_ctx <= 0 || NH <= 0) return;
    if (opt && opt->window > 0 && n_ctx > opt->window) {  // the visible rows only
        const size_t skip = (size_t)(n_ctx - opt->window) * NKV * HD;
        k_cache += skip;
        v_cache += skip;
        n_ctx = opt->window;
    }
    float *scores = (float *)ct_cuda_scratch(CT_SCRATCH_DECODE, sizeof(float) * (size_t)NH * n_ctx);
    const float scale = opt && opt->scale != 0.0f ? opt->scale : 1.0f / sqrtf((float)HD);
    const float cap = opt && opt->softcap > 0.0f ? opt->softcap : 0.0f;
    const size_t threads = (size_t)NH * n_ctx * 32;
    decode_scores_kernel<act_t><<<(unsigned)((threads + 255) / 256), 256>>>(scores, q, k_cache, n_ctx, NH, NKV, HD,
                                                                            scale, cap);
    LAUNCH_CHECK("decode_scores_kernel");
    decode_softmax_pv_kernel<act_t><<<NH, 256>>>(out, scores, v_cache, n_ctx, NH, NKV, HD);
    LAUNCH_CHECK("decode_softmax_pv_kernel");
}

CT_CUDA_EXPORT_PAIR(ct_cuda_attention_decode, ct_cuda_attention_decode_bf16,
                    (CtAct *out, const CtAct *q, const CtAct *k_cache, const CtAct *v_cache, int n_ctx, int NH,
                     int NKV, int HD, const CtAttentionOptions *opt),
                    decode((act_t *)out, (const act_t *)q, (const act_t *)k_cache, (const act_t *)v_cache, n_ctx, NH,
                           NKV, HD, opt))
