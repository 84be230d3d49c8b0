#include "tests/speculative_mtp_fixture.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "kernels/cpu/cpu_ops.h"
#include "optim/adamw.h"
#include "tests/test.h"
#include "train/model/generate.h"
#include "train/model/model_internal.h"
#include "train/model/speculative_mtp.h"

// The training text: t_{i+1} = (7·t_i + 3) mod V or (5·t_i + 1) mod V, one rule per sequence,
// from a random token. A token alone does not say the rule; the two before it do, which a few
// steps teach the model and its modules in part.
void spec_rule_sequence(int32_t *t, int n, int V, CtRng *rng) {
    const int a = ct_rng_next(rng) % 2 ? 7 : 5, b = a == 7 ? 3 : 1;
    t[0] = (int32_t)(ct_rng_next(rng) % (uint64_t)V);
    for (int i = 1; i < n; i++) t[i] = (a * t[i - 1] + b) % V;
}

// `steps` AdamW steps on the rule, the modules trained beside the model (λ = 1).
void spec_train_briefly(CtModel *m, int steps) {
    const int V = m->config.vocab_size;
    int32_t seq[SPEC_TRAIN_T + 1], tokens[SPEC_TRAIN_B * SPEC_TRAIN_T], targets[SPEC_TRAIN_B * SPEC_TRAIN_T];
    CtRng rng;
    ct_rng_seed(&rng, 3);
    CtAdamW opt;
    ct_adamw_init(&opt, m->n_train, 1e-2, 0.9, 0.95, 1e-8, 0.0);
    m->mtp_weight = 1.0f;
    for (int s = 0; s < steps; s++) {
        for (int b = 0; b < SPEC_TRAIN_B; b++) {
            spec_rule_sequence(seq, SPEC_TRAIN_T + 1, V, &rng);
            memcpy(tokens + b * SPEC_TRAIN_T, seq, sizeof(int32_t) * SPEC_TRAIN_T);
            memcpy(targets + b * SPEC_TRAIN_T, seq + 1, sizeof(int32_t) * SPEC_TRAIN_T);
        }
        const CtBatch batch = {.tokens = tokens, .targets = targets, .B = SPEC_TRAIN_B, .T = SPEC_TRAIN_T};
        ct_model_zero_grad(m);
        ct_model_forward(m, &batch);
        ct_model_backward(m);
        ct_adamw_step(&opt, m->train_params, m->train_grads);
    }
    ct_adamw_free(&opt);
    m->mtp_weight = 0;
}

// Plain greedy decoding: one feed per token.
void spec_plain_greedy(CtModel *m, const int32_t *prompt, int n, int count, int32_t *out) {
    CtGenerator g;
    ct_generator_init(&g, m, m->config.max_seq_len);
    const float *logits = NULL;
    for (int i = 0; i < n; i++) logits = ct_generator_feed(&g, prompt[i]);
    const CtSampling greedy = {.temperature = 0};
    for (int i = 0; i < count; i++) {
        out[i] = ct_sample(logits, m->config.vocab_size, &greedy, NULL);
        if (i + 1 < count) logits = ct_generator_feed(&g, out[i]);
    }
    ct_generator_free(&g);
}

// ‖a − b‖ / ‖b‖ over n numbers (2-norms).
double spec_relative_error(const float *a, const float *b, size_t n) {
    double diff = 0, norm = 0;
    for (size_t i = 0; i < n; i++) {
        diff += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        norm += (double)b[i] * b[i];
    }
    return norm > 0 ? sqrt(diff / norm) : sqrt(diff);
}

static int bf16_drafts;
void spec_draft_in_bf16(int on) { bf16_drafts = on; }

// What the drafter kept after a run over seq[0..len) (up to `drafts` per round) against one
// training forward of the whole text (module k's row i reads what the drafter's read): every
// module's final hidden rows and its cached keys and values.
static void check_against_recomputation(CtModel *m, const CtMtpDrafter *md, const CtGenerator *g, int drafts,
                                        const int32_t *seq, int len, const char *what) {
    int32_t targets[SPEC_CTX];
    for (int i = 0; i < len; i++) targets[i] = i + 1 < len ? seq[i + 1] : 0;
    const CtBatch batch = {.tokens = seq, .targets = targets, .B = 1, .T = len};
    m->mtp_weight = 1.0f;
    ct_model_forward(m, &batch);
    m->mtp_weight = 0;
    const CtModelDims d = ct_model_dims(m, 1, len);
    const size_t C = (size_t)d.C, kv = (size_t)d.NKV * d.HD;
    float *kept = ct_alloc(sizeof(float) * (size_t)len * (C > kv ? C : kv));
    float *fresh = ct_alloc(sizeof(float) * (size_t)len * kv);
    // bf16 drafts: the products read weights rounded to 8 bits of mantissa (relative error ~2⁻⁹
    // each), still far below what a row of another position or token would differ by
    const double tolerance = bf16_drafts ? 3e-2 : 1e-5;
    for (int k = 1; k <= md->depth; k++) {
        const int rows = md->rows[k - 1];
        // sequential: module k's row j is final once seq[j+k] is; parallel heads keep rows up to
        // the last trunk row they drafted from, and a head that never drafted ran on nothing
        const int parallel = m->config.mtp_style == CT_MTP_PARALLEL, ran = k <= drafts;
        CHECK_MSG(parallel ? (ran ? rows >= 1 && rows <= md->rows[0] && md->rows[0] <= len - 1 : rows == 0)
                           : rows >= (ran ? 1 : 0) && rows <= len - k,
                  "%s: module %d keeps %d final rows of a text of %d tokens", what, k, rows, len);
        if (rows <= 0) continue;
        const CtMtpModuleActs *a = &m->mtp->module[k - 1];
        m->ops->download_act(kept, ct_mtp_drafter_plane(md, k, 0), (size_t)rows * C);
        const double e = spec_relative_error(kept, (const float *)a->block.out, (size_t)rows * C);
        CHECK_MSG(e < tolerance, "%s: module %d's hidden rows differ from a full recomputation by %.3g", what, k, e);
        // the keys and values of its rows: layer L+k−1 of the cache, from the recomputed q|k|v
        const size_t layer = (size_t)(d.L + k - 1) * (size_t)g->max_ctx * kv;
        for (int half = 0; half < 2; half++) {
            const CtAct *cache = half ? g->v_cache : g->k_cache;
            m->ops->download_act(kept, ct_act_at(m->ops->act_bytes, cache, layer), (size_t)rows * kv);
            const size_t col = (size_t)(d.NH + half * d.NKV) * d.HD;
            const float *qkv = a->block.qkv;  // the CPU's: floats
            for (int j = 0; j < rows; j++) memcpy(fresh + j * kv, qkv + (size_t)j * d.QKV + col, sizeof(float) * kv);
            const double ek = spec_relative_error(kept, fresh, (size_t)rows * kv);
            CHECK_MSG(ek < tolerance, "%s: module %d's cached %s differ from a full recomputation by %.3g", what, k,
                      half ? "values" : "keys", ek);
        }
    }
    ct_free(kept);
    ct_free(fresh);
}

// Self-speculative greedy decoding of `count` tokens, k drafts per round at most; the counts
// per depth add to *c. Checks the drafter's state against a recomputation at the end.
void spec_self_speculative_greedy(CtModel *m, int k, const int32_t *prompt, int n, int count, int32_t *out,
                                    SpecCounts *c, const char *what) {
    CtGenerator g;
    ct_generator_init(&g, m, m->config.max_seq_len);
    CtDrafter drafter;
    CtMtpDrafter md;
    ct_mtp_drafter_init(&md, &drafter, &g);
    if (bf16_drafts) ct_mtp_drafter_read_bf16(&md);
    const CtSampling greedy = {.temperature = 0};
    CtSpeculative sp;
    ct_speculative_init(&sp, &g, &drafter, k, &greedy, NULL, prompt, n);
    int32_t round[CT_MODEL_MAX_MTP_DEPTH + 1];
    for (int done = 0; done < count;) {
        const int got = ct_speculative_round(&sp, round, count - done < k + 1 ? count - done : k + 1);
        CHECK(got >= 1);
        if (got < 1) break;
        memcpy(out + done, round, sizeof(int32_t) * (size_t)got);
        done += got;
    }
    for (int i = 0; i < k && i < 2; i++) {
        c->drafted_at[i] += sp.drafted_at[i];
        c->accepted_at[i] += sp.accepted_at[i];
    }
    if (sp.len <= m->max_T) check_against_recomputation(m, &md, &g, k, sp.seq, sp.len, what);
    ct_speculative_free(&sp);
    ct_mtp_drafter_free(&md);
    ct_generator_free(&g);
}

// Prompts of lengths 1, 2, 4 and 7 (rule-following and random ones), to near the context's end,
// with k = 1..D drafts per round: every output is plain greedy decoding's. The counts of depth
// 1 and 2 go to *c.
void spec_greedy_matches_plain(CtModel *m, const char *what, SpecCounts *c) {
    ct_cpu_set_threads(1);  // a tiny model, a few rows per pass: OpenMP threads would only wait on each other
    const int V = m->config.vocab_size, D = m->config.mtp_depth;
    const int lengths[] = {1, 2, 4, 7};
    int32_t prompt[8], plain[SPEC_CTX], spec[SPEC_CTX];
    CtRng rng;
    ct_rng_seed(&rng, 11);
    memset(c, 0, sizeof *c);
    for (int p = 0; p < 8; p++) {
        const int n = lengths[p % 4];
        if (p < 4) {
            spec_rule_sequence(prompt, n > 1 ? n : 2, V, &rng);
        } else {
            for (int i = 0; i < n; i++) prompt[i] = (int32_t)(ct_rng_next(&rng) % (uint64_t)V);
        }
        const int count = SPEC_CTX - n;
        spec_plain_greedy(m, prompt, n, count, plain);
        for (int k = 1; k <= D; k++) {
            char label[160];
            snprintf(label, sizeof label, "%s, prompt %d, k %d", what, p, k);
            spec_self_speculative_greedy(m, k, prompt, n, count, spec, c, label);
            for (int i = 0; i < count; i++)
                CHECK_MSG(spec[i] == plain[i], "%s: token %d is %d, plain greedy's %d", label, i, spec[i], plain[i]);
            if (ct_test_failed()) return;
        }
    }
}

