#include "train/objectives/grpo.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "train/dist/dist.h"

int ct_grpo_run_init(CtGrpoRun *g, const CtObjectiveRun *o) {
    const int rows = o->set.batch_size, T = o->set.seq_len, accum = o->set.accum, G = g->set.G;
    const int L = g->set.sample.max_len;
    g->n = rows * accum;
    g->P = g->n / G;
    // the run's setup refused these with the keys to change (train/loop/train_setup_grpo.c)
    CT_CHECK(g->P * G == g->n && L < T, "a GRPO batch of whole groups, each completion after a prompt");
    const size_t n = (size_t)g->n;
    g->completions = ct_alloc(sizeof(int32_t) * n * (size_t)L);
    g->length = ct_alloc(sizeof(int) * n);
    g->truncated = ct_alloc(n);
    g->entropy_sum = ct_alloc(sizeof(double) * n);
    g->rewards_total = ct_alloc(sizeof(double) * n);
    g->per_source = ct_alloc(sizeof(double) * n * CT_REWARDS_MAX);
    g->advantages = ct_alloc(sizeof(double) * n);
    g->logp = ct_alloc(sizeof(double) * (size_t)rows * T);
    g->dlogp = ct_alloc(sizeof(double) * (size_t)rows * T);
    // The sampling policy's log-probabilities: for the ratio when μ > 1, for RLOO's KL in the reward.
    if (g->set.num_iterations > 1 || (g->set.algo == CT_RL_RLOO && g->set.beta != 0))
        g->old_logp = ct_alloc(sizeof(double) * n * (size_t)T);
    if (g->have_ref) g->ref_logp = ct_alloc(sizeof(double) * n * (size_t)T);
    ct_generator_init(&g->gen, o->model, T);
    g->last_eval_reward = g->last_eval_accuracy = NAN;
    return 0;
}

void ct_grpo_run_free(CtGrpoRun *g) {
    if (g->gen.model) ct_generator_free(&g->gen);
    void *buffers[] = {g->completions, g->length, g->truncated, g->entropy_sum, g->rewards_total, g->per_source,
                       g->advantages, g->logp, g->dlogp, g->old_logp, g->ref_logp};
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++) ct_free(buffers[i]);
    if (g->have_ref) ct_dpo_free(&g->ref);
    ct_rewards_free(&g->rewards);
    memset(g, 0, sizeof *g);
}

static CtStepResult grpo_step(CtObjectiveRun *o) {
    CtGrpoRun *g = o->state;
    CtModel *m = o->model;
    CtStepBatches *s = o->batches;
    CtStepResult res = {0};
    // A new batch of completions every num_iterations steps (μ steps on each, as TRL's buffer).
    if (!g->have_batch || *o->step % g->set.num_iterations == 0) {
        if (ct_grpo_generate(g, o) != 0) {
            res.failed = 1;
            return res;
        }
        g->have_batch = 1;
    }
    ct_objective_set_router_losses(o);
    const int rows = s->rows, T = s->T;
    const size_t rowT = (size_t)rows * T;
    const double share = 1.0 / ((double)o->set.accum * o->set.world);  // see grpo.h: the ranks' gradients are summed
    CtGrpoMetrics metrics;
    ct_grpo_metrics_init(&metrics);
    for (int i = 0; i < o->set.accum; i++) {
        float *w = s->weights + i * rowT;
        const uint8_t *mask = s->loss_mask + i * rowT;
        for (size_t k = 0; k < rowT; k++) w[k] = mask[k];  // the forward counts the completion tokens
        CtBatch b = ct_step_batch(s, i, 0);
        ct_model_set_dropout(m, 1, ct_objective_dropout_seed(o->set.seed, (uint64_t)*o->step * 65536 + (uint64_t)i));
        ct_model_forward(m, &b);
        for (size_t k = 0; k < rowT; k++) g->logp[k] = m->logprobs[k];
        const double *old = g->old_logp && g->set.num_iterations > 1 ? g->old_logp + i * rowT : NULL;
        const double *adv = g->advantages + (size_t)i * rows;
        double loss;
        if (g->set.algo == CT_RL_RLOO) {
            double old_seq[rows];  // the sampling policy's sequence log-probabilities
            for (int r = 0; old && r < rows; r++) {
                old_seq[r] = 0;
                for (int t = 0; t < T; t++) old_seq[r] += mask[(size_t)r * T + t] ? old[(size_t)r * T + t] : 0;
            }
            loss = ct_rloo_loss(&g->set.loss, g->dlogp, g->logp, old ? old_seq : NULL, adv, mask, rows, T, &metrics);
        } else {
            const double *ref = g->ref_logp ? g->ref_logp + i * rowT : NULL;
            loss = ct_grpo_loss(&g->set.loss, g->dlogp, g->logp, old, ref, adv, mask, rows, T, g->dapo_tokens, &metrics);
        }
        res.loss += loss * share;
        // The model's loss is Σ w·(−logp)/K: w = −K·∂loss/∂logp makes its backward this loss's.
        const double K = m->loss_count;
        for (size_t k = 0; k < rowT; k++) w[k] = (float)(-K * g->dlogp[k] * share);
        ct_model_set_loss_weights(m, w);
        if (i == o->set.accum - 1) ct_grad_sync_arm(o->sync, m);
        ct_model_backward(m);
    }
    ct_grad_sync_backward_done(o->sync, m);
    ct_grpo_stats_row(&g->stats, &g->rewards, g->set.algo == CT_RL_RLOO, g->set.beta, &metrics, &res);
    return res;
}

// One line of samples.jsonl: a completion with its rewards.
static void write_sample(FILE *f, const CtGrpoRun *g, const char *kind, int64_t step, const CtPrompt *p,
                         const int32_t *c, int len, const CtTokenizer *tok, const double *per_source, int n, int j) {
    uint8_t *text = NULL;
    size_t tlen = 0, cap = 0;
    for (int k = 0; k < g->set.sample.n_stop && len > 0; k++)  // the text the rewards saw: without its stop token
        if (c[len - 1] == g->set.sample.stop[k]) {
            len--;
            break;
        }
    if (ct_decode_text(tok, c, (size_t)len, &text, &tlen, &cap) != 0) tlen = 0;
    text = ct_realloc(text, tlen + 1);
    text[tlen] = 0;
    cJSON *o = cJSON_CreateObject(), *rewards = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", kind);
    cJSON_AddNumberToObject(o, "step", (double)step);
    cJSON_AddNumberToObject(o, "prompt_index", (double)p->index);
    cJSON_AddStringToObject(o, "completion", (const char *)text);
    cJSON *fields = cJSON_ParseWithLength(p->fields, p->fields_len);
    cJSON_AddItemToObject(o, "fields", fields ? fields : cJSON_CreateObject());
    double total = 0;
    for (int i = 0; i < ct_rewards_count(&g->rewards); i++) {
        const double v = per_source[(size_t)i * n + j];
        total += ct_rewards_weight(&g->rewards, i) * v;
        cJSON_AddNumberToObject(rewards, ct_rewards_name(&g->rewards, i), v);
    }
    cJSON_AddItemToObject(o, "rewards", rewards);
    cJSON_AddNumberToObject(o, "reward", total);
    char *line = cJSON_PrintUnformatted(o);
    fprintf(f, "%s\n", line);
    free(line);
    cJSON_Delete(o);
    ct_free(text);
}

// Held-out evaluation: greedy completions of the first train.eval_exact_match validation prompts
// (ranks take every world-th), their rewards (each source's mean and the weighted total, as
// metrics of kind "eval"), a few written to samples.jsonl with the latest training completions.
// Returns the exact_match source's mean (the held-out accuracy), NAN without that source.
static double grpo_evaluate(CtObjectiveRun *o, int show) {
    CtGrpoRun *g = o->state;
    const CtPromptLoader *val = o->val_prompts;
    const int64_t step = *o->step;
    const int n_src = ct_rewards_count(&g->rewards), L = g->set.sample.max_len;
    const uint64_t n_eval = val ? (o->set.eval_exact_match < (int)val->n_prompts ? (uint64_t)o->set.eval_exact_match
                                                                                  : val->n_prompts)
                                : 0;
    if (n_eval == 0) return NAN;
    const int rank = ct_dist_rank(), world = o->set.world;
    const int mine = (int)((n_eval - (uint64_t)rank + (uint64_t)world - 1) / (uint64_t)world);
    CtPrompt *prompts = ct_alloc(sizeof(CtPrompt) * (size_t)(mine > 0 ? mine : 1));
    int32_t *tokens = ct_alloc(sizeof(int32_t) * (size_t)(mine > 0 ? mine : 1) * L);
    int *length = ct_alloc(sizeof(int) * (size_t)(mine > 0 ? mine : 1));
    double *per_source = ct_alloc(sizeof(double) * (size_t)(mine > 0 ? mine : 1) * CT_REWARDS_MAX);
    double *total = ct_alloc(sizeof(double) * (size_t)(mine > 0 ? mine : 1));
    CtGrpoSampleOptions greedy = g->set.sample;
    greedy.sampling = (CtSampling){.temperature = 0.0f, .top_k = 0, .top_p = 1.0f};
    ct_model_set_dropout(o->model, 0, 0);
    double sums[3 + CT_REWARDS_MAX] = {0};  // completions, length, total reward, each source's
    for (int k = 0; k < mine; k++) {
        prompts[k] = ct_prompt_loader_get(val, (uint64_t)rank + (uint64_t)k * world);
        uint8_t truncated;
        double entropy;
        const CtGrpoCompletions out = {tokens + (size_t)k * L, length + k, &truncated, &entropy};
        ct_grpo_sample_group(&g->gen, prompts[k].ids, (int)prompts[k].n_ids, 1, &greedy, 0, 0, &out);
        sums[0] += 1, sums[1] += length[k];
    }
    int failed = mine > 0 && ct_grpo_score(g, o->tokenizer, prompts, mine, 1, tokens, length, L, g->set.sample.stop,
                                           g->set.sample.n_stop, per_source, total) != 0;
    if (ct_dist_any(failed)) {
        if (!failed) ct_error_set("rank %d: stopped with another rank whose rewards failed", rank);
        ct_error_prefix("grpo: evaluation at step %lld: ", (long long)step);
        g->eval_failed = 1;
    } else {
        for (int k = 0; k < mine; k++) {
            sums[2] += total[k];
            for (int i = 0; i < n_src; i++) sums[3 + i] += per_source[(size_t)i * mine + k];
        }
    }
    ct_dist_allreduce_sum_f64(sums, 3 + (size_t)n_src);
    double accuracy = NAN;
    if (!g->eval_failed && o->metrics.write) {
        CtMetricRow row = {.kind = "eval"};
        char names[CT_REWARDS_MAX][96];
        row.names[row.n] = "reward", row.values[row.n++] = sums[2] / sums[0];
        for (int i = 0; i < n_src; i++) {
            snprintf(names[i], sizeof names[i], "rewards/%s/mean", ct_rewards_name(&g->rewards, i));
            row.names[row.n] = names[i], row.values[row.n++] = sums[3 + i] / sums[0];
        }
        row.names[row.n] = "completions/mean_length", row.values[row.n++] = sums[1] / sums[0];
        o->metrics.write(o->metrics.ctx, &row);
        char line[512];
        int at = snprintf(line, sizeof line, "step %6lld | held-out reward %.3f over %.0f prompts (greedy)",
                          (long long)step, sums[2] / sums[0], sums[0]);
        for (int i = 0; i < n_src && at > 0 && (size_t)at < sizeof line; i++)
            at += snprintf(line + at, sizeof line - (size_t)at, "%s%s %.3f", i ? ", " : ": ",
                           ct_rewards_name(&g->rewards, i), sums[3 + i] / sums[0]);
        ct_log("%s", line);
        // samples.jsonl: the first held-out answers, and the latest training completions
        FILE *f = g->set.samples_path[0] && g->set.log_completions > 0 ? fopen(g->set.samples_path, "a") : NULL;
        for (int k = 0; f && k < mine && k < g->set.log_completions; k++)
            write_sample(f, g, "eval", step, &prompts[k], tokens + (size_t)k * L, length[k], o->tokenizer, per_source,
                         mine, k);
        for (int j = 0; f && g->have_batch && j < g->n && j < g->set.log_completions; j++)
            write_sample(f, g, "train", step, &g->prompts[j / g->set.G], g->completions + (size_t)j * L, g->length[j],
                         o->tokenizer, g->per_source, g->n, j);
        if (f && fclose(f) != 0) ct_warn("grpo: could not write %s", g->set.samples_path);
        (void)show;
    }
    for (int i = 0; i < n_src; i++)
        if (strcmp(ct_rewards_name(&g->rewards, i), "exact_match") == 0) accuracy = sums[3 + i] / sums[0];
    g->last_eval_reward = sums[2] / sums[0];
    g->last_eval_accuracy = accuracy;
    ct_free(prompts);
    ct_free(tokens);
    ct_free(length);
    ct_free(per_source);
    ct_free(total);
    return g->eval_failed ? NAN : accuracy;
}

static void grpo_report_done(CtObjectiveRun *o) {
    const CtGrpoRun *g = o->state;
    if (isfinite(g->last_eval_reward)) ct_log("done: held-out reward %.3f (greedy)", g->last_eval_reward);
}

static void grpo_free(CtObjectiveRun *o) {
    if (o->state) ct_grpo_run_free(o->state);
}

const CtObjective ct_objective_grpo = {
    .name = "grpo", .data_kind = CT_SHARD_PROMPTS, .reads_prompts = 1,
    .step = grpo_step, .exact_match = grpo_evaluate, .report_done = grpo_report_done, .free = grpo_free,
};
