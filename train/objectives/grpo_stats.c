#include "train/objectives/grpo_stats.h"

#include <math.h>
#include <stdio.h>

#include "train/dist/dist.h"

enum { N_COUNT, R_SUM, R_SQ, ZERO_STD, LEN_SUM, TRUNCATED, ENT_SUM, ENT_TOKENS, KL_SUM, KL_COUNT, LEN_NEG_MIN, LEN_MAX,
       SOURCES = 16 };

static double unbiased_std(double sum, double sq, double n) {
    if (n < 2) return NAN;  // torch's std of one value
    double var = (sq - sum * sum / n) / (n - 1);
    return sqrt(var > 0 ? var : 0);
}

void ct_grpo_stats_generation(CtGrpoStats *st, const CtRewards *rewards, const CtGrpoBatchView *b, double zero_std,
                              const double kl[2]) {
    double *s = st->sums;
    const int n_src = ct_rewards_count(rewards);
    for (int k = 0; k < 16 + 2 * n_src; k++) s[k] = 0;
    s[LEN_NEG_MIN] = -INFINITY, s[LEN_MAX] = -INFINITY;
    s[N_COUNT] = b->n;
    s[ZERO_STD] = zero_std;
    s[KL_SUM] = kl[0], s[KL_COUNT] = kl[1];
    for (int j = 0; j < b->n; j++) {
        const double r = b->rewards[j], len = b->length[j];
        s[R_SUM] += r, s[R_SQ] += r * r;
        s[LEN_SUM] += len;
        s[TRUNCATED] += b->truncated[j];
        s[ENT_SUM] += b->entropy_sum[j], s[ENT_TOKENS] += len;
        s[LEN_NEG_MIN] = fmax(s[LEN_NEG_MIN], -len), s[LEN_MAX] = fmax(s[LEN_MAX], len);
        for (int i = 0; i < n_src; i++) {
            const double v = b->per_source[(size_t)i * b->n + j];
            s[SOURCES + 2 * i] += v, s[SOURCES + 2 * i + 1] += v * v;
        }
    }
    ct_dist_allreduce_sum_f64(s, LEN_NEG_MIN);
    ct_dist_allreduce_max_f64(s + LEN_NEG_MIN, 2);
    ct_dist_allreduce_sum_f64(s + SOURCES, (size_t)2 * n_src);
}

static void add(CtMetricRow *row, const char *name, double value) {
    if (row->n < CT_METRIC_ROW_MAX && isfinite(value)) {
        row->names[row->n] = name;
        row->values[row->n++] = value;
    }
}

void ct_grpo_stats_row(CtGrpoStats *st, const CtRewards *rewards, int rloo, double beta,
                       const CtGrpoMetrics *loss_metrics, CtStepResult *res) {
    const double *s = st->sums;
    CtGrpoMetrics lm = *loss_metrics;
    double sums[6] = {lm.kl_sum, lm.kl_count, lm.low_sum, lm.high_sum, lm.region_sum, lm.count};
    ct_dist_allreduce_sum_f64(sums, 6);
    double extremes[2] = {-lm.low_min, lm.high_max};
    ct_dist_allreduce_max_f64(extremes, 2);
    lm.kl_sum = sums[0], lm.kl_count = sums[1], lm.low_sum = sums[2], lm.high_sum = sums[3], lm.region_sum = sums[4],
    lm.count = sums[5], lm.low_min = -extremes[0], lm.high_max = extremes[1];
    const CtGrpoMetricMeans means = ct_grpo_metrics_means(&lm);
    const double n = s[N_COUNT], reward = s[R_SUM] / n;
    CtMetricRow *row = &res->row;
    row->kind = "train";
    row->n = 0;
    add(row, "reward", reward);
    add(row, "reward_std", unbiased_std(s[R_SUM], s[R_SQ], n));
    for (int i = 0; i < ct_rewards_count(rewards); i++) {
        snprintf(st->names[2 * i], sizeof st->names[0], "rewards/%s/mean", ct_rewards_name(rewards, i));
        snprintf(st->names[2 * i + 1], sizeof st->names[0], "rewards/%s/std", ct_rewards_name(rewards, i));
        add(row, st->names[2 * i], s[SOURCES + 2 * i] / n);
        add(row, st->names[2 * i + 1], unbiased_std(s[SOURCES + 2 * i], s[SOURCES + 2 * i + 1], n));
    }
    add(row, "frac_reward_zero_std", s[ZERO_STD] / n);
    add(row, "completions/mean_length", s[LEN_SUM] / n);
    add(row, "completions/min_length", -s[LEN_NEG_MIN]);
    add(row, "completions/max_length", s[LEN_MAX]);
    add(row, "completions/clipped_ratio", s[TRUNCATED] / n);
    add(row, "entropy", s[ENT_TOKENS] > 0 ? s[ENT_SUM] / s[ENT_TOKENS] : NAN);
    // GRPO's KL is the loss's (masked mean of k3); RLOO's the reward's (masked mean of old − ref).
    const double kl = rloo ? (s[KL_COUNT] > 0 ? s[KL_SUM] / s[KL_COUNT] : NAN) : means.kl;
    if (beta != 0) add(row, "kl", kl);
    add(row, "clip_ratio/low_mean", means.low_mean);
    add(row, "clip_ratio/low_min", means.low_min);
    add(row, "clip_ratio/high_mean", means.high_mean);
    add(row, "clip_ratio/high_max", means.high_max);
    add(row, "clip_ratio/region_mean", means.region_mean);
    int k = snprintf(res->progress, sizeof res->progress, " | reward %.3f | len %.0f", reward, s[LEN_SUM] / n);
    if (beta != 0 && isfinite(kl) && k > 0 && (size_t)k < sizeof res->progress)
        snprintf(res->progress + k, sizeof res->progress - (size_t)k, " | kl %.4f", kl);
}
