#include "train/model/speculative.h"

#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

// ---- a separate draft model ----

int32_t ct_drafter_pick(const float *logits, int V, const CtSampling *s, CtRng *rng, float *probs) {
    if (s->temperature <= 0) return ct_sample(logits, V, s, rng);
    ct_sampling_probs(logits, V, s, probs);
    return ct_sample_probs(probs, V, rng);
}

static int model_propose(CtDrafter *d, const int32_t *seq, int len, int k, const CtSampling *s, CtRng *rng,
                         int32_t *draft, float *probs) {
    CtGenerator *g = d->self;
    const int V = g->model->config.vocab_size;
    CT_CHECK(g->n_ctx < len, "the draft cache is ahead of the text (a missing rollback)");
    const int behind = len - g->n_ctx;  // the tokens it has not seen: the last round's, or the prompt
    const float *logits = ct_generator_feed_many(g, seq + g->n_ctx, behind) + (size_t)(behind - 1) * V;
    for (int i = 0; i < k; i++) {
        draft[i] = ct_drafter_pick(logits, V, s, rng, probs ? probs + (size_t)i * V : NULL);
        if (i + 1 < k) logits = ct_generator_feed(g, draft[i]);
    }
    return k;
}

static void model_rollback(CtDrafter *d, int len) {
    CtGenerator *g = d->self;
    if (g->n_ctx > len) ct_generator_rollback(g, len);
}

// It feeds seq[0..len) and k − 1 drafts: len + k − 1 ≤ max_ctx.
static int model_room(const CtDrafter *d, int len) {
    const CtGenerator *g = d->self;
    return len <= g->max_ctx ? g->max_ctx - len + 1 : 0;
}

void ct_model_drafter_init(CtDrafter *d, CtGenerator *draft) {
    *d = (CtDrafter){.self = draft, .propose = model_propose, .rollback = model_rollback, .room = model_room};
}

// ---- the decoder ----
void ct_speculative_init(CtSpeculative *sp, CtGenerator *target, CtDrafter *drafter, int k, const CtSampling *s,
                         CtRng *rng, const int32_t *prompt, int n) {
    CT_CHECK(k >= 0 && n >= 1 && n < target->max_ctx && target->n_ctx == 0,
             "speculative decoding starts from an empty cache and a prompt shorter than the context");
    const size_t V = (size_t)target->model->config.vocab_size;
    *sp = (CtSpeculative){.target = target, .drafter = drafter, .k = k, .sampling = *s, .rng = rng};
    sp->seq = ct_alloc(sizeof(int32_t) * (size_t)target->max_ctx);
    sp->draft = ct_alloc(sizeof(int32_t) * (size_t)(k + 1));
    sp->p = ct_alloc(sizeof(float) * (size_t)(k + 1) * V);
    sp->q = ct_alloc(sizeof(float) * (size_t)(k + 1) * V);
    sp->drafted_at = ct_calloc((size_t)(k + 1), sizeof(long));
    sp->accepted_at = ct_calloc((size_t)(k + 1), sizeof(long));
    memcpy(sp->seq, prompt, sizeof(int32_t) * (size_t)n);
    sp->len = n;
    if (n > 1) ct_generator_feed_many(target, prompt, n - 1);
}

void ct_speculative_free(CtSpeculative *sp) {
    ct_free(sp->seq);
    ct_free(sp->draft);
    ct_free(sp->p);
    ct_free(sp->q);
    ct_free(sp->drafted_at);
    ct_free(sp->accepted_at);
    memset(sp, 0, sizeof *sp);
}

static int min_int(int a, int b) { return a < b ? a : b; }

// Sampling: is draft token x (drawn from q) kept, given the target's p? With probability
// min(1, p(x)/q(x)).
static int accept_sampled(const float *p, const float *q, int32_t x, CtRng *rng) {
    if (p[x] >= q[x]) return 1;
    return ct_rng_uniform(rng) * q[x] < p[x];
}

// After a rejection at a position with distributions p and q: a token from norm(max(0, p − q)),
// which makes the position's token follow p overall. p_rest is overwritten.
static int32_t sample_residual(float *p_rest, const float *q, int V, CtRng *rng) {
    double total = 0;
    for (int v = 0; v < V; v++) total += (p_rest[v] = p_rest[v] > q[v] ? p_rest[v] - q[v] : 0.0f);
    if (total <= 0) return -1;  // p ≤ q everywhere: only when p = q, where nothing is ever rejected
    return ct_sample_probs(p_rest, V, rng);
}

int ct_speculative_round(CtSpeculative *sp, int32_t *out, int max_out) {
    CtGenerator *target = sp->target;
    const int V = target->model->config.vocab_size;
    const int room = target->max_ctx - sp->len;  // tokens seq can still take
    if (room <= 0 || max_out <= 0) return 0;
    const int greedy = sp->sampling.temperature <= 0;
    // k drafts + the target's own token fit in the context and in max_out
    int k = min_int(min_int(sp->k, max_out - 1), room - 1);
    if (k > 0) k = min_int(k, sp->drafter->room(sp->drafter, sp->len));
    if (k > 0)
        k = sp->drafter->propose(sp->drafter, sp->seq, sp->len, k, &sp->sampling, sp->rng, sp->draft + 1,
                                 greedy ? NULL : sp->q);
    // one target pass over the last emitted token and the drafts: row i gives the target's
    // distribution of the token after draft i (row 0: after the text)
    sp->draft[0] = sp->seq[sp->len - 1];
    const float *logits = ct_generator_feed_many(target, sp->draft, k + 1);
    sp->target_passes++;
    int n = 0;
    for (int i = 0; i <= k; i++) {
        const float *row = logits + (size_t)i * V;
        if (greedy) {
            const int32_t best = ct_sample(row, V, &sp->sampling, sp->rng);
            out[n++] = best;
            if (i == k || best != sp->draft[i + 1]) break;
            sp->accepted++;
            sp->accepted_at[i]++;
            continue;
        }
        float *p = sp->p + (size_t)i * V;
        ct_sampling_probs(row, V, &sp->sampling, p);
        if (i == k) {  // every draft accepted: one more token from the target
            out[n++] = ct_sample_probs(p, V, sp->rng);
            break;
        }
        const int32_t x = sp->draft[i + 1];
        if (accept_sampled(p, sp->q + (size_t)i * V, x, sp->rng)) {
            out[n++] = x;
            sp->accepted++;
            sp->accepted_at[i]++;
            continue;
        }
        float *rest = sp->p + (size_t)k * V;  // scratch: row k's distribution is not needed any more
        if (rest != p) memcpy(rest, p, sizeof(float) * (size_t)V);
        int32_t y = sample_residual(rest, sp->q + (size_t)i * V, V, sp->rng);
        out[n++] = y >= 0 ? y : ct_sample_probs(p, V, sp->rng);
        break;
    }
    sp->drafted += k;
    for (int i = 0; i < k; i++) sp->drafted_at[i]++;
    memcpy(sp->seq + sp->len, out, sizeof(int32_t) * (size_t)n);
    sp->len += n;
    // both caches keep the text but its last token (the target's correction or extra token,
    // which neither has fed)
    ct_generator_rollback(target, sp->len - 1);
    if (k > 0) sp->drafter->rollback(sp->drafter, sp->len - 1);
    return n;
}
