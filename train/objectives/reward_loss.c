#include "train/objectives/reward_loss.h"

#include <math.h>

// log σ(x) and σ(x) without overflow.
static double log_sigmoid(double x) { return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)); }
static double sigmoid(double x) { return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)); }

CtRewardValue ct_reward_loss(double r_chosen, double r_rejected, double margin, double center_coef) {
    const double z = r_chosen - r_rejected - margin, sum = r_chosen + r_rejected;
    const double d_z = -sigmoid(-z), d_center = 2 * center_coef * sum;
    return (CtRewardValue){-log_sigmoid(z) + center_coef * sum * sum, d_z + d_center, -d_z + d_center};
}

void ct_reward_stats_init(CtRewardStats *s) { *s = (CtRewardStats){0, 0, 0, 0, INFINITY, -INFINITY, 0}; }

void ct_reward_stats_add(CtRewardStats *s, double r_chosen, double r_rejected, double loss) {
    s->loss_sum += loss;
    s->correct += r_chosen > r_rejected;
    s->margin_sum += r_chosen - r_rejected;
    s->reward_sum += r_chosen + r_rejected;
    s->min_reward = fmin(s->min_reward, fmin(r_chosen, r_rejected));
    s->max_reward = fmax(s->max_reward, fmax(r_chosen, r_rejected));
    s->pairs++;
}

CtRewardMetrics ct_reward_stats_means(const CtRewardStats *s) {
    const double n = s->pairs ? (double)s->pairs : NAN;
    return (CtRewardMetrics){s->loss_sum / n, s->correct / n,     s->margin_sum / n, s->reward_sum / (2 * n),
                             s->min_reward,   s->max_reward,      s->pairs};
}
