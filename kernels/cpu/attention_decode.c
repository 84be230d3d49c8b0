// T new query tokens against a key/value cache: softmax(scores)·V per (token, head), with grouped
// key/value heads (query head h reads kv head h / (NH/NKV)) and the options of attention_forward:
// query t is position p = n_ctx − T + t and sees rows r <= p, with a window of w only rows
// r > p − w; a score is scale·q·k, capped as c·tanh(s/c) with a soft cap (kernels/ops.h).
#include <math.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/fast_math.h"

// q·k over HD numbers in DOT_LANES partial sums, summed by halves: a single running sum makes each
// score wait on HD dependent additions (the scores were 6% of a decoded token's time for 7% of
// its multiply-adds). The same sum for a query whatever T and the thread count.
#define DOT_LANES 16
static float dot_lanes(const float *a, const float *b, int n) {
    float part[DOT_LANES] = {0};
    const int body = n - n % DOT_LANES;
    for (int k = 0; k < body; k += DOT_LANES)
#pragma omp simd
        for (int l = 0; l < DOT_LANES; l++) part[l] += a[k + l] * b[k + l];
    for (int half = DOT_LANES / 2; half >= 1; half /= 2)
#pragma omp simd
        for (int l = 0; l < half; l++) part[l] += part[l + half];
    float sum = part[0];
    for (int k = body; k < n; k++) sum += a[k] * b[k];
    return sum;
}

void ct_cpu_attention_decode_f32(float *out, const float *q, int q_stride, const float *k_cache, const float *v_cache,
                                 int n_ctx, int T, int NH, int NKV, int HD, const CtAttentionOptions *opt) {
    if (opt && opt->bidirectional)
        CT_FATAL("decode with a causal model; an encoder (bidirectional attention) does not decode",
                 "attention_decode: bidirectional attention is not supported");
    const int group = NH / NKV, kv_stride = NKV * HD;
    const float scale = opt && opt->scale != 0 ? opt->scale : 1.0f / sqrtf((float)HD);
    const float cap = opt && opt->softcap > 0 ? opt->softcap : 0.0f;
    float *scores = ct_alloc(sizeof(float) * (size_t)T * NH * (size_t)n_ctx);
#pragma omp parallel for schedule(static) if (n_ctx * NH * T > 4096)
    for (int th = 0; th < T * NH; th++) {
        const int t = th / NH, h = th % NH, last = n_ctx - T + t;  // the query's position
        const int first = opt && opt->window > 0 && last + 1 - opt->window > 0 ? last + 1 - opt->window : 0;
        const float *qh = q + (size_t)t * q_stride + (size_t)h * HD;
        const int kvh = h / group;
        float *s = scores + (size_t)th * n_ctx;
        float max = -INFINITY;
        for (int r = first; r <= last; r++) {
            const float *k = k_cache + (size_t)r * kv_stride + (size_t)kvh * HD;
            s[r] = dot_lanes(qh, k, HD) * scale;
            if (cap > 0) s[r] = cap * tanhf(s[r] / cap);
            if (s[r] > max) max = s[r];
        }
        // the vectorised exp of the training forward's softmax (glibc's expf, one score at a
        // time, took about a tenth of this op's time in a speculative check over 3 rows)
        float sum = 0;
#pragma omp simd reduction(+ : sum)
        for (int r = first; r <= last; r++) sum += (s[r] = ct_fast_expf(s[r] - max));
        const float inv = 1.0f / sum;
        float *o = out + (size_t)t * NH * HD + (size_t)h * HD;
        for (int i = 0; i < HD; i++) o[i] = 0;
        for (int r = first; r <= last; r++) {
            const float *v = v_cache + (size_t)r * kv_stride + (size_t)kvh * HD;
            const float p = s[r] * inv;
            for (int i = 0; i < HD; i++) o[i] += p * v[i];
        }
    }
    ct_free(scores);
}
