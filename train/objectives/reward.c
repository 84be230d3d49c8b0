#include "train/objectives/reward.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "train/dist/dist.h"
#include "train/objectives/reward_loss.h"

int ct_reward_last_token(const int32_t *seq, int n, int32_t pad_id) {
    for (int t = n - 1; t >= 0; t--)
        if (seq[t] != pad_id) return t;
    return 0;
}

void ct_reward_rows(const int32_t *tokens, const int32_t *targets, int rows, int T, int32_t pad_id, int32_t *seq,
                    int *last) {
    for (int r = 0; r < rows; r++) {
        const int32_t *tok = tokens + (size_t)r * T, *tgt = targets + (size_t)r * T;
        int32_t *out = seq + (size_t)r * T;
        int n = 0;  // inputs with a target: the sequence is tok[0], tgt[0..n-1]
        while (n < T && tgt[n] >= 0) n++;
        memset(out, 0, sizeof(int32_t) * (size_t)T);
        int len;
        if (n == 0) {  // an empty sequence: its one input token
            out[0] = tok[0];
            len = 1;
        } else if (n < T) {
            out[0] = tok[0];
            memcpy(out + 1, tgt, sizeof(int32_t) * (size_t)n);
            len = n + 1;
        } else {  // T+1 tokens: the first goes
            memcpy(out, tgt, sizeof(int32_t) * (size_t)T);
            len = T;
        }
        last[r] = ct_reward_last_token(out, len, pad_id);
    }
}

void ct_reward_micro_step(CtModel *m, const CtStepBatches *s, int i, double center, int64_t global_pairs,
                          int backward, CtRewardStats *stats) {
    const int rows = s->rows, T = s->T;
    const size_t at = (size_t)i * rows * T;
    int32_t *seq = ct_alloc(sizeof(int32_t) * (size_t)rows * T);
    int *last = ct_alloc(sizeof(int) * (size_t)rows);
    float *scores = ct_alloc(sizeof(float) * (size_t)rows), *d_scores = ct_alloc(sizeof(float) * (size_t)rows);
    ct_reward_rows(s->tokens + at, s->targets + at, rows, T, m->config.reward_pad_id, seq, last);
    CtBatch b = {.tokens = seq, .B = rows, .T = T};
    ct_model_reward_forward(m, &b, last, scores);
    const double *margins = s->margins + (size_t)i * rows;  // the pair's, on both its rows (0 without)
    for (int r = 0; r + 1 < rows; r += 2) {
        CtRewardValue v = ct_reward_loss(scores[r], scores[r + 1], margins[r], center);
        ct_reward_stats_add(stats, scores[r], scores[r + 1], v.loss / (double)global_pairs);
        d_scores[r] = (float)(v.d_chosen / (double)global_pairs);
        d_scores[r + 1] = (float)(v.d_rejected / (double)global_pairs);
    }
    if (backward) ct_model_reward_backward(m, last, d_scores);
    ct_free(seq);
    ct_free(last);
    ct_free(scores);
    ct_free(d_scores);
}

// Data parallel: the sums over every rank's pairs. min and max are this rank's (the collectives
// sum only): the metrics leave them out when world > 1.
static void stats_allreduce(CtRewardStats *st) {
    double sums[5] = {st->loss_sum, st->correct, st->margin_sum, st->reward_sum, (double)st->pairs};
    ct_dist_allreduce_sum_f64(sums, 5);
    st->loss_sum = sums[0], st->correct = sums[1], st->margin_sum = sums[2], st->reward_sum = sums[3];
    st->pairs = (int64_t)sums[4];
}

// TRL's names (reward_trainer.py's _metrics).
static CtMetricRow stats_row(const char *kind, const CtRewardMetrics *m, int world) {
    return (CtMetricRow){kind,
                         world > 1 ? 3 : 5,
                         {"accuracy", "margin", "mean_reward", "min_reward", "max_reward"},
                         {m->accuracy, m->margin, m->mean_reward, m->min_reward, m->max_reward}};
}

static CtStepResult step(CtObjectiveRun *o) {
    CtRewardRun *rw = o->state;
    ct_model_set_dropout(o->model, 1, ct_objective_dropout_seed(o->set.seed, (uint64_t)*o->step * 65536));
    ct_objective_set_router_losses(o);
    CtRewardStats st;
    ct_reward_stats_init(&st);
    const int64_t global_pairs = (int64_t)o->set.world * o->set.accum * o->set.batch_size;
    for (int a = 0; a < o->set.accum; a++) ct_reward_micro_step(o->model, o->batches, a, rw->center_coef, global_pairs, 1, &st);
    CtStepResult res = {.loss = st.loss_sum};  // this rank's share of the step's mean
    if (o->set.world > 1) stats_allreduce(&st);
    CtRewardMetrics m = ct_reward_stats_means(&st);
    res.row = stats_row("train", &m, o->set.world);
    return res;
}

static double evaluate(CtObjectiveRun *o, int *failed) {
    CtRewardRun *rw = o->state;
    ct_model_set_dropout(o->model, 0, 0);
    uint64_t n = ct_objective_val_start(o);
    CtStepBatches s;
    ct_step_batches_init(&s, 1, o->val->batch.rows, o->set.seq_len);
    CtRewardStats st;
    ct_reward_stats_init(&st);
    for (uint64_t i = 0; i < n; i++) {
        if (ct_step_batches_fetch(&s, o->val) != 0) {
            ct_step_batches_free(&s);
            *failed = 1;
            ct_error_prefix("validation: ");
            return NAN;
        }
        ct_reward_micro_step(o->model, &s, 0, rw->center_coef, 1, 0, &st);  // loss summed per pair: the mean follows
    }
    ct_step_batches_free(&s);
    stats_allreduce(&st);
    CtRewardMetrics m = ct_reward_stats_means(&st);
    if (o->metrics.write) {
        CtMetricRow row = stats_row("eval", &m, o->set.world);
        o->metrics.write(o->metrics.ctx, &row);
    }
    ct_log("step %6lld | reward val: accuracy %.3f  margin %.4f  mean_reward %.4f", (long long)*o->step, m.accuracy,
           m.margin, m.mean_reward);
    rw->last_accuracy = m.accuracy;
    return m.loss;
}

static void report_done(CtObjectiveRun *o) {
    const CtRewardRun *rw = o->state;
    if (isfinite(rw->last_accuracy)) ct_log("done: held-out accuracy %.3f (chosen scored above rejected)", rw->last_accuracy);
}

const CtObjective ct_objective_reward = {
    .name = "reward", .data_kind = CT_SHARD_DPO,  // its loss is no cross-entropy
    .step = step, .evaluate = evaluate, .report_done = report_done,
};
