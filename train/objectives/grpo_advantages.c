#include "train/objectives/grpo_advantages.h"

#include <math.h>
#include <string.h>

int ct_scale_rewards_parse(const char *name, CtScaleRewards *out) {
    if (!strcmp(name, "group") || !strcmp(name, "true")) *out = CT_SCALE_REWARDS_GROUP;
    else if (!strcmp(name, "batch")) *out = CT_SCALE_REWARDS_BATCH;
    else if (!strcmp(name, "none") || !strcmp(name, "false")) *out = CT_SCALE_REWARDS_NONE;
    else return -1;
    return 0;
}

static double mean_of(const double *x, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i];
    return s / n;
}

// TRL's nanstd: Bessel-corrected; one value has no spread (TRL's callers set 0 there).
static double std_of(const double *x, int n) {
    if (n < 2) return 0;
    const double m = mean_of(x, n);
    double v = 0;
    for (int i = 0; i < n; i++) v += (x[i] - m) * (x[i] - m);
    return sqrt(v / (n - 1));
}

static int std_is_zero(double s) { return fabs(s) <= 1e-8; }  // torch.isclose(s, 0), default tolerances

double ct_grpo_advantages(double *advantages, const double *rewards, int n_groups, int G, CtScaleRewards scale) {
    const int n = n_groups * G;
    const double batch_std = std_of(rewards, n);
    int zero_std = 0;
    for (int p = 0; p < n_groups; p++) {
        const double *r = rewards + (size_t)p * G;
        const double mean = mean_of(r, G), std = scale == CT_SCALE_REWARDS_BATCH ? batch_std : std_of(r, G);
        for (int g = 0; g < G; g++) {
            double a = r[g] - mean;
            if (scale != CT_SCALE_REWARDS_NONE) a /= std + 1e-4;
            advantages[(size_t)p * G + g] = a;
        }
        zero_std += std_is_zero(std) * G;
    }
    return n ? (double)zero_std / n : 0;
}

double ct_rloo_advantages(double *advantages, const double *rewards, int n_groups, int G, int normalize) {
    const int n = n_groups * G;
    int zero_std = 0;
    for (int p = 0; p < n_groups; p++) {
        const double *r = rewards + (size_t)p * G;
        const double sum = mean_of(r, G) * G;
        for (int g = 0; g < G; g++) advantages[(size_t)p * G + g] = G > 1 ? r[g] - (sum - r[g]) / (G - 1) : 0;
        zero_std += std_is_zero(std_of(r, G)) * G;
    }
    if (normalize && n > 0) {
        const double mean = mean_of(advantages, n), std = std_of(advantages, n);
        // TRL: nanstd of one value is NaN, and nan_to_num then zeroes the advantage.
        for (int i = 0; i < n; i++) advantages[i] = n > 1 ? (advantages[i] - mean) / (std + 1e-4) : 0;
    }
    return n ? (double)zero_std / n : 0;
}

void ct_rloo_kl_penalty(double *rewards, const double *old_logp, const double *ref_logp, const uint8_t *mask, int B,
                        int T, double beta, double *kl_sum, double *kl_count) {
    for (int b = 0; b < B; b++) {
        double kl = 0, count = 0;
        for (int t = 0; t < T; t++) {
            const size_t k = (size_t)b * T + t;
            if (!mask[k]) continue;
            kl += old_logp[k] - ref_logp[k];
            count++;
        }
        rewards[b] -= beta * kl;
        *kl_sum += kl;
        *kl_count += count;
    }
}
