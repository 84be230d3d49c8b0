// GRPO's generation batch (grpo.h): this rank's prompts, G completions of each, the rows the
// loss reads, the rewards and advantages, and the log-probabilities the loss compares against
// (the sampling policy's when μ > 1 or RLOO's KL needs them, the reference's when β ≠ 0).
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "train/dist/dist.h"
#include "train/objectives/grpo.h"

// Row j: prompt ‖ completion as inputs and shifted targets; the loss mask on the targets that
// are completion tokens (none for a truncated completion with mask_truncated_completions).
static void build_row(CtStepBatches *s, size_t row, const CtPrompt *p, const int32_t *c, int len, int masked) {
    const int T = s->T, np = (int)p->n_ids, n = np + len;
    int32_t *tokens = s->tokens + row * T, *targets = s->targets + row * T;
    uint8_t *mask = s->loss_mask + row * T;
    for (int t = 0; t < T; t++) {
        const int32_t here = t < np ? p->ids[t] : t < n ? c[t - np] : 0;
        tokens[t] = t < n - 1 ? here : 0;
        targets[t] = t < n - 1 ? (t + 1 < np ? p->ids[t + 1] : c[t + 1 - np]) : -1;
        mask[t] = !masked && t >= np - 1 && t < n - 1;
    }
}

// The log-probabilities of micro-batch i's targets under `m` (the policy, or the reference), as doubles.
static void forward_logp(CtModel *m, CtStepBatches *s, int i, double *out) {
    const size_t n = (size_t)s->rows * s->T, at = (size_t)i * n;
    for (size_t k = 0; k < n; k++) s->weights[at + k] = s->loss_mask[at + k];
    CtBatch b = ct_step_batch(s, i, 0);
    ct_model_forward(m, &b);
    for (size_t k = 0; k < n; k++) out[k] = m->logprobs[k];
}

// The text of ids, for the rewards (ct_alloc'd, NUL-terminated). A model whose vocabulary is
// padded past the tokenizer's can sample an id with no text: the completion's text is then "".
static char *decode(const CtTokenizer *tok, const int32_t *ids, size_t n) {
    uint8_t *out = NULL;
    size_t len = 0, cap = 0;
    if (ct_decode_text(tok, ids, n, &out, &len, &cap) != 0 || !out) {
        out = ct_realloc(out, len + 1);
        len = 0;
    }
    out = ct_realloc(out, len + 1);
    out[len] = 0;
    return (char *)out;
}

int ct_grpo_score(CtGrpoRun *g, const CtTokenizer *tok, const CtPrompt *prompts, int n_prompts, int per_prompt,
                  const int32_t *completions, const int *length, int stride, const int32_t *stop, int n_stop,
                  double *per_source, double *total) {
    const int n = n_prompts * per_prompt;
    CtRewardInput *in = ct_alloc(sizeof *in * (size_t)n);
    char **prompt_text = ct_alloc(sizeof(char *) * (size_t)n_prompts), **text = ct_alloc(sizeof(char *) * (size_t)n);
    for (int p = 0; p < n_prompts; p++) prompt_text[p] = decode(tok, prompts[p].ids, prompts[p].n_ids);
    for (int j = 0; j < n; j++) {
        const CtPrompt *p = &prompts[j / per_prompt];
        const int32_t *c = completions + (size_t)j * stride;
        int len = length[j];
        int shown = len;  // the text leaves out the stop token that ended it
        for (int k = 0; k < n_stop && len > 0; k++)
            if (c[len - 1] == stop[k]) shown = len - 1;
        text[j] = decode(tok, c, (size_t)shown);
        in[j] = (CtRewardInput){prompt_text[j / per_prompt], text[j], p->fields, p->ids, c, (int)p->n_ids, len};
    }
    int rc = ct_rewards_score(&g->rewards, in, n, per_source, total);
    for (int j = 0; j < n; j++) ct_free(text[j]);
    for (int p = 0; p < n_prompts; p++) ct_free(prompt_text[p]);
    ct_free(text);
    ct_free(prompt_text);
    ct_free(in);
    return rc;
}

int ct_grpo_generate(CtGrpoRun *g, CtObjectiveRun *o) {
    const CtGrpoSettings *set = &g->set;
    CtModel *m = o->model;
    CtStepBatches *s = o->batches;
    const int G = set->G, P = g->P, n = g->n, L = set->sample.max_len, world = o->set.world;
    if (ct_prompt_loader_next(o->prompts, &g->prompts) != 0) return ct_error_prefix("grpo: prompts: ");
    // Completion numbers: the same completion whichever rank or layout samples it (grpo_sampler.h).
    const uint64_t round = (uint64_t)*o->step / (uint64_t)set->num_iterations;
    const uint64_t first = (round * (uint64_t)world + (uint64_t)ct_dist_rank()) * (uint64_t)n;
    ct_model_set_dropout(m, 0, 0);
    for (int p = 0; p < P; p++) {
        const CtGrpoCompletions out = {g->completions + (size_t)p * G * L, g->length + p * G, g->truncated + p * G,
                                       g->entropy_sum + p * G};
        ct_grpo_sample_group(&g->gen, g->prompts[p].ids, (int)g->prompts[p].n_ids, G, &set->sample, o->set.seed,
                             first + (uint64_t)p * G, &out);
    }
    for (int j = 0; j < n; j++)
        build_row(s, (size_t)j, &g->prompts[j / G], g->completions + (size_t)j * L, g->length[j],
                  set->mask_truncated && g->truncated[j]);
    const int scored = ct_grpo_score(g, o->tokenizer, g->prompts, P, G, g->completions, g->length, L,
                                     set->sample.stop, set->sample.n_stop, g->per_source, g->rewards_total);
    if (ct_dist_any(scored != 0)) {  // every rank stops together
        if (scored == 0) ct_error_set("rank %d: stopped with another rank whose rewards failed", ct_dist_rank());
        return ct_error_prefix("grpo: step %lld: ", (long long)*o->step + 1);
    }
    // The sampling policy's and the reference's log-probabilities, once per batch of completions.
    const size_t rowT = (size_t)s->rows * s->T;
    for (int i = 0; i < o->set.accum; i++) {
        if (g->old_logp) forward_logp(m, s, i, g->old_logp + i * rowT);
        if (g->have_ref) {
            for (size_t k = 0; k < rowT; k++) s->weights[i * rowT + k] = s->loss_mask[i * rowT + k];
            CtBatch b = ct_step_batch(s, i, 0);
            CtModel *ref = ct_dpo_reference_forward(&g->ref, m, &b);
            for (size_t k = 0; k < rowT; k++) g->ref_logp[i * rowT + k] = ref->logprobs[k];
        }
    }
    // Rewards → advantages (RLOO: the KL to the reference first folded into the rewards).
    double *rewards = g->rewards_total, kl[2] = {0, 0};
    double frac_zero;
    if (set->algo == CT_RL_RLOO) {
        double *penalised = ct_alloc(sizeof(double) * (size_t)n);
        memcpy(penalised, rewards, sizeof(double) * (size_t)n);
        if (g->have_ref)
            ct_rloo_kl_penalty(penalised, g->old_logp, g->ref_logp, s->loss_mask, n, s->T, set->beta, &kl[0], &kl[1]);
        frac_zero = ct_rloo_advantages(g->advantages, penalised, P, G, set->normalize_advantages);
        ct_free(penalised);
    } else {
        frac_zero = ct_grpo_advantages(g->advantages, rewards, P, G, set->scale_rewards);
    }
    // dapo: the loss tokens of the whole generation batch, over every rank.
    double tokens = 0;
    for (size_t k = 0; k < (size_t)n * s->T; k++) tokens += s->loss_mask[k];
    ct_dist_allreduce_sum_f64(&tokens, 1);
    g->dapo_tokens = (tokens > 1 ? tokens : 1) / ((double)o->set.accum * world);
    const CtGrpoBatchView view = {n, g->rewards_total, g->per_source, g->entropy_sum, g->length, g->truncated};
    ct_grpo_stats_generation(&g->stats, &g->rewards, &view, frac_zero * n, kl);
    return 0;
}
