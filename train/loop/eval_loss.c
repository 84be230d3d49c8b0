#include "train/loop/eval_loss.h"

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"

int ct_eval_windows(CtModel *m, int B, int T, uint64_t n_windows, CtEvalReadFn read, void *ctx, CtEvalTotals *out) {
    *out = (CtEvalTotals){0, 0, 0};
    CT_CHECK(T >= 2 && B >= 1 && B <= m->max_B && T - 1 <= m->max_T, "eval batch within the model's");
    const int L = T - 1, V = m->config.vocab_size;
    int32_t *window = ct_alloc(sizeof(int32_t) * (size_t)B * (size_t)T);
    int32_t *tokens = ct_alloc(sizeof(int32_t) * (size_t)B * (size_t)L);
    int32_t *targets = ct_alloc(sizeof(int32_t) * (size_t)B * (size_t)L);
    CtProgress progress;
    ct_progress_start(&progress, "eval", n_windows * (uint64_t)L, "tokens");
    int rc = 0;
    for (uint64_t w = 0; w < n_windows && rc == 0; w += (uint64_t)B) {
        const int b = n_windows - w < (uint64_t)B ? (int)(n_windows - w) : B;
        if ((rc = read(ctx, w * (uint64_t)T, (uint64_t)b * (uint64_t)T, window)) != 0) break;
        for (int r = 0; r < b && rc == 0; r++) {
            const int32_t *x = window + (size_t)r * T;
            for (int t = 0; t < T; t++)
                if (x[t] < 0 || x[t] >= V) {
                    rc = ct_error_set("token %llu of the stream is id %d, outside the model's vocabulary of %d",
                                      (unsigned long long)((w + (uint64_t)r) * (uint64_t)T + (uint64_t)t), x[t], V);
                    break;
                }
            for (int t = 0; t < L; t++) {
                tokens[(size_t)r * L + t] = x[t];
                targets[(size_t)r * L + t] = x[t + 1];
            }
        }
        if (rc != 0) break;
        CtBatch batch = {.tokens = tokens, .targets = targets, .B = b, .T = L};
        ct_model_forward(m, &batch);
        // per-token losses summed in double: the mean of many float terms stays exact to ~1e-7
        for (size_t i = 0; i < (size_t)b * L; i++) out->loss_sum += (double)m->losses[i];
        out->predicted += (uint64_t)b * (uint64_t)L;
        out->windows += (uint64_t)b;
        ct_progress_update(&progress, out->predicted);
    }
    if (rc == 0 && progress.drawn) ct_progress_finish(&progress);
    ct_free(window);
    ct_free(tokens);
    ct_free(targets);
    return rc;
}
