#include "train/objectives/dpo_objective.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "train/dist/dist.h"

// TRL's metrics of a step or an evaluation, as a metrics.jsonl line.
static CtMetricRow stats_row(const char *kind, const CtDpoStats *st) {
    return (CtMetricRow){kind,
                         6,
                         {"rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen",
                          "logps/rejected"},
                         {st->reward_chosen, st->reward_rejected, st->accuracy, st->reward_chosen - st->reward_rejected,
                          st->logp_chosen, st->logp_rejected}};
}

// Data parallel: the sums of a step's DPO metrics over every rank's pairs (TRL gathers them).
static void stats_allreduce(CtDpoStats *st) {
    double sums[6] = {st->reward_chosen, st->reward_rejected, st->accuracy, st->logp_chosen, st->logp_rejected,
                      (double)st->pairs};
    ct_dist_allreduce_sum_f64(sums, 6);
    st->reward_chosen = sums[0], st->reward_rejected = sums[1], st->accuracy = sums[2];
    st->logp_chosen = sums[3], st->logp_rejected = sums[4], st->pairs = (int64_t)sums[5];
}

static CtStepResult step(CtObjectiveRun *o) {
    CtDpoRun *d = o->state;
    // Dropout masks (model.dropout > 0): a stream per step, so a resumed run draws the same ones.
    ct_model_set_dropout(o->model, 1, ct_objective_dropout_seed(o->set.seed, (uint64_t)*o->step * 65536));
    ct_objective_set_router_losses(o);  // Mixture of Experts: the policy's router losses (the reference has none)
    CtDpoStats st;
    memset(&st, 0, sizeof st);
    for (int a = 0; a < o->set.accum; a++)
        ct_dpo_micro_step(&d->dpo, o->model, o->batches, a, (int64_t)o->set.world * o->set.accum * o->set.batch_size,
                          CT_SPLIT_TRAIN, 1, &st);
    CtStepResult res = {.loss = st.loss};
    if (o->set.world > 1) stats_allreduce(&st);
    ct_dpo_stats_finish(&st);
    res.row = stats_row("train", &st);  // logged with this step's number, as its loss is (TRL's rows)
    return res;
}

// The greedy answers to the first validation prompts against the chosen completions: rank 0 alone.
static void chosen_match(CtObjectiveRun *o, CtDpoRun *d) {
    double match = ct_dpo_chosen_match(o->model, o->val, o->set.eval_exact_match, d->stop_token);
    CtMetricRow row = {"eval", 1, {"exact_match"}, {match}};
    o->metrics.write(o->metrics.ctx, &row);
    ct_log("step %6lld | dpo val: greedy answers equal to the chosen completion: %.1f%%", (long long)*o->step,
           100 * match);
    d->last_match = match;
}

// DPO on the fixed validation pairs: the loss, and TRL's reward metrics (logged).
static double evaluate(CtObjectiveRun *o, int *failed) {
    CtDpoRun *d = o->state;
    uint64_t n = ct_objective_val_start(o);
    CtStepBatches s;
    ct_step_batches_init(&s, 1, o->val->batch.rows, o->set.seq_len);
    CtDpoStats st;
    memset(&st, 0, sizeof st);
    for (uint64_t i = 0; i < n; i++) {
        if (ct_step_batches_fetch(&s, o->val) != 0) {
            ct_step_batches_free(&s);
            *failed = 1;
            ct_error_prefix("validation: ");
            return NAN;
        }
        ct_dpo_micro_step(&d->dpo, o->model, &s, 0, (int64_t)n * o->set.batch_size * o->set.world, CT_SPLIT_VAL, 0,
                          &st);
    }
    ct_step_batches_free(&s);
    // Data parallel: the sums over every rank's pairs.
    double sums[6] = {st.loss, st.reward_chosen, st.reward_rejected, st.accuracy, st.logp_chosen, st.logp_rejected};
    ct_dist_allreduce_sum_f64(sums, 6);
    ct_dist_allreduce_sum_i64(&st.pairs, 1);
    st = (CtDpoStats){sums[0], sums[1], sums[2], sums[3], sums[4], sums[5], st.pairs};
    ct_dpo_stats_finish(&st);
    if (o->metrics.write) {  // data parallel: ranks other than 0 write no metrics
        CtMetricRow row = stats_row("eval", &st);
        o->metrics.write(o->metrics.ctx, &row);
    }
    ct_log("step %6lld | dpo val: rewards/accuracies %.3f  rewards/margins %.4f  rewards/chosen %.4f  rewards/rejected "
           "%.4f  logps/chosen %.2f  logps/rejected %.2f", (long long)*o->step, st.accuracy,
           st.reward_chosen - st.reward_rejected, st.reward_chosen, st.reward_rejected, st.logp_chosen, st.logp_rejected);
    d->last_accuracy = st.accuracy;
    if (o->set.eval_exact_match > 0 && o->metrics.write) chosen_match(o, d);
    return st.loss;
}

static void report_done(CtObjectiveRun *o) {
    const CtDpoRun *d = o->state;
    if (isfinite(d->last_match))
        ct_log("done: exact match %.1f%% on held-out examples (greedy answer = chosen completion)", 100 * d->last_match);
    if (isfinite(d->last_accuracy)) ct_log("done: held-out rewards/accuracies %.3f", d->last_accuracy);
}

static void free_run(CtObjectiveRun *o) {
    CtDpoRun *d = o->state;
    if (d && d->have_dpo) ct_dpo_free(&d->dpo);
}

const CtObjective ct_objective_dpo = {
    .name = "dpo", .data_kind = CT_SHARD_DPO,  // its loss is no cross-entropy
    .step = step, .evaluate = evaluate, .report_done = report_done, .free = free_run,
};
