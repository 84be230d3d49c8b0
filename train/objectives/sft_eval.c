#include "train/objectives/sft_eval.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "train/model/generate.h"

static char *decode(const CtTokenizer *tok, const int32_t *ids, size_t n) {
    uint8_t *out = NULL;
    size_t len = 0, cap = 0;
    ct_decode(tok, ids, n, &out, &len, &cap);
    char *s = ct_alloc(len + 1);
    if (len) memcpy(s, out, len);
    s[len] = '\0';
    for (char *c = s; *c; c++)
        if (*c == '\n') *c = ' ';
    ct_free(out);
    return s;
}

CtExactMatch ct_sft_exact_match(CtModel *m, const CtLoader *l, int max_examples, const CtTokenizer *tok, int show) {
    CtExactMatch r = {0, 0};
    const int ctx = m->config.max_seq_len;
    CtGenerator g;
    ct_generator_init(&g, m, ctx);
    int32_t *answer = ct_alloc(sizeof(int32_t) * (size_t)ctx);
    for (uint64_t e = 0; e < l->n_examples && r.examples < max_examples; e++) {
        const int32_t *x = l->ex_tokens + l->ex_offset[e];
        const uint8_t *mask = l->ex_mask + l->ex_offset[e];
        const uint64_t L = l->ex_offset[e + 1] - l->ex_offset[e];
        uint64_t p = 0;
        while (p < L && !mask[p]) p++;
        uint64_t q = p;
        while (q < L && mask[q]) q++;
        if (p == 0 || p == L || q + 1 > (uint64_t)ctx) continue;  // no prompt, no answer, or too long
        const int32_t end_of_turn = x[q - 1];
        ct_generator_reset(&g);
        const float *logits = NULL;
        logits = ct_generator_feed_prompt(&g, x, (int)p);  // p >= 1 here
        int n = 0;
        while (n < (int)(q - p) + 1 && g.n_ctx < ctx) {
            int32_t best = 0;
            for (int v = 1; v < m->config.vocab_size; v++)
                if (logits[v] > logits[best]) best = v;
            answer[n++] = best;
            if (best == end_of_turn) break;
            logits = ct_generator_feed(&g, best);
        }
        int correct = n == (int)(q - p) && memcmp(answer, x + p, sizeof(int32_t) * (size_t)n) == 0;
        r.examples++;
        r.correct += correct;
        if (tok && r.examples <= show) {
            char *prompt = decode(tok, x, p), *got = decode(tok, answer, (size_t)n), *want = decode(tok, x + p, q - p);
            if (correct)
                ct_log("  ok    %s -> %s", prompt, got);
            else
                ct_log("  miss  %s -> %s  (expected %s)", prompt, got, want);
            ct_free(prompt);
            ct_free(got);
            ct_free(want);
        }
    }
    ct_free(answer);
    ct_generator_free(&g);
    return r;
}
