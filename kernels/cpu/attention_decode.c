// One query token against a key/value cache: softmax(scores)·V per head, with grouped key/value
// heads (query head h reads kv head h / (NH/NKV)) and the options of attention_forward: the
// query is the last row (n_ctx − 1), so a window of w keeps rows r >= n_ctx − w; a score is
// scale·q·k, capped as c·tanh(s/c) with a soft cap (kernels/ops.h).
#include <math.h>

#include "core/alloc.h"
#include "kernels/cpu/cpu_ops.h"

void ct_cpu_attention_decode_f32(float *out, const float *q, const float *k_cache, const float *v_cache, int n_ctx,
                                 int NH, int NKV, int HD, const CtAttentionOptions *opt) {
    const int group = NH / NKV, kv_stride = NKV * HD;
    const float scale = opt && opt->scale != 0 ? opt->scale : 1.0f / sqrtf((float)HD);
    const float cap = opt && opt->softcap > 0 ? opt->softcap : 0.0f;
    const int first = opt && opt->window > 0 && n_ctx - opt->window > 0 ? n_ctx - opt->window : 0;
    float *scores = ct_alloc(sizeof(float) * (size_t)NH * (size_t)n_ctx);
#pragma omp parallel for schedule(static) if (n_ctx * NH > 4096)
    for (int h = 0; h < NH; h++) {
        const float *qh = q + (size_t)h * HD;
        const int kvh = h / group;
        float *s = scores + (size_t)h * n_ctx;
        float max = -INFINITY;
        for (int t = first; t < n_ctx; t++) {
            const float *k = k_cache + (size_t)t * kv_stride + (size_t)kvh * HD;
            float dot = 0;
            for (int i = 0; i < HD; i++) dot += qh[i] * k[i];
            s[t] = dot * scale;
            if (cap > 0) s[t] = cap * tanhf(s[t] / cap);
            if (s[t] > max) max = s[t];
        }
        float sum = 0;
        for (int t = first; t < n_ctx; t++) sum += (s[t] = expf(s[t] - max));
        const float inv = 1.0f / sum;
        float *o = out + (size_t)h * HD;
        for (int i = 0; i < HD; i++) o[i] = 0;
        for (int t = first; t < n_ctx; t++) {
            const float *v = v_cache + (size_t)t * kv_stride + (size_t)kvh * HD;
            const float p = s[t] * inv;
            for (int i = 0; i < HD; i++) o[i] += p * v[i];
        }
    }
    ct_free(scores);
}
