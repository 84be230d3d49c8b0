#include "train/objectives/grpo_loss.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "kernels/cpu/cpu_ops.h"

static const char *const loss_type_names[] = {"grpo", "bnpo", "dr_grpo", "dapo"};

const char *ct_grpo_loss_type_name(CtGrpoLossType type) { return loss_type_names[type]; }

int ct_grpo_loss_type_parse(const char *name, CtGrpoLossType *out) {
    const char *const *names = loss_type_names;
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, names[i])) {
            *out = (CtGrpoLossType)i;
            return 0;
        }
    return -1;
}

void ct_grpo_metrics_init(CtGrpoMetrics *m) {
    memset(m, 0, sizeof *m);
    m->low_min = INFINITY;
    m->high_max = -INFINITY;
}

CtGrpoMetricMeans ct_grpo_metrics_means(const CtGrpoMetrics *m) {
    CtGrpoMetricMeans r = {NAN, NAN, NAN, NAN, NAN, NAN};
    if (m->kl_count > 0) r.kl = m->kl_sum / m->kl_count;
    if (m->count > 0) {
        r.low_mean = m->low_sum / m->count;
        r.high_mean = m->high_sum / m->count;
        r.region_mean = m->region_sum / m->count;
    }
    if (isfinite(m->low_min)) r.low_min = m->low_min;
    if (isfinite(m->high_max)) r.high_max = m->high_max;
    return r;
}

void ct_grpo_mask_truncated(uint8_t *mask, const uint8_t *truncated, int B, int T) {
    for (int b = 0; b < B; b++)
        if (truncated[b]) memset(mask + (size_t)b * T, 0, (size_t)T);
}

static double row_tokens(const uint8_t *mask, int b, int T) {
    double n = 0;
    for (int t = 0; t < T; t++) n += mask[(size_t)b * T + t] != 0;
    return n;
}

void ct_grpo_token_weights(double *weights, const uint8_t *mask, int B, int T, CtGrpoLossType type,
                           int max_completion_length, double dapo_tokens) {
    double all = 0;
    for (int b = 0; b < B; b++) all += row_tokens(mask, b, T);
    for (int b = 0; b < B; b++) {
        double norm = 1;  // TRL clamps each count at 1 (an empty row or batch weighs nothing anyway)
        switch (type) {
        case CT_GRPO_LOSS_GRPO: norm = (double)B * fmax(row_tokens(mask, b, T), 1); break;
        case CT_GRPO_LOSS_BNPO: norm = fmax(all, 1); break;
        case CT_GRPO_LOSS_DR_GRPO: norm = (double)B * max_completion_length; break;
        case CT_GRPO_LOSS_DAPO: norm = fmax(dapo_tokens, 1); break;
        }
        for (int t = 0; t < T; t++) {
            const size_t k = (size_t)b * T + t;
            weights[k] = mask[k] ? 1 / norm : 0;
        }
    }
}

// TRL's clip flags: the ratio left the range on the side where the clip binds.
typedef struct {
    int low, high;
} ClipFlags;

static ClipFlags clip_flags(const CtGrpoLossConfig *c, double logp, double old_logp, double advantage) {
    const double rho = exp(logp - old_logp);
    ClipFlags f = {rho < 1 - c->epsilon_low && advantage < 0, rho > 1 + c->epsilon_high && advantage > 0};
    return f;
}

static void add_token_metrics(const CtGrpoLossConfig *c, CtGrpoMetrics *m, const double *logp,
                              const double *old_logp, const double *ref_logp, const double *advantages,
                              const uint8_t *mask, int B, int T) {
    for (int b = 0; b < B; b++) {
        double low = 0, high = 0, n = 0;
        for (int t = 0; t < T; t++) {
            const size_t k = (size_t)b * T + t;
            if (!mask[k]) continue;
            ClipFlags f = clip_flags(c, logp[k], old_logp ? old_logp[k] : logp[k], advantages[b]);
            low += f.low;
            high += f.high;
            m->region_sum += f.low || f.high;
            n++;
            if (c->beta != 0) {
                const double delta = ref_logp[k] - logp[k];
                m->kl_sum += exp(delta) - delta - 1;
                m->kl_count++;
            }
        }
        m->low_sum += low;
        m->high_sum += high;
        m->count += n;
        if (n > 0) {  // TRL's nanmin/nanmax skip a completion without tokens (0/0)
            m->low_min = fmin(m->low_min, low / n);
            m->high_max = fmax(m->high_max, high / n);
        }
    }
}

double ct_grpo_loss(const CtGrpoLossConfig *c, double *dlogp, const double *logp, const double *old_logp,
                    const double *ref_logp, const double *advantages, const uint8_t *mask, int B, int T,
                    double dapo_tokens, CtGrpoMetrics *metrics) {
    const size_t n = (size_t)B * T;
    double *weights = ct_alloc(sizeof(double) * n), *adv = ct_alloc(sizeof(double) * n);
    double *losses = ct_alloc(sizeof(double) * n);
    ct_grpo_token_weights(weights, mask, B, T, c->loss_type, c->max_completion_length, dapo_tokens);
    for (size_t k = 0; k < n; k++) adv[k] = advantages[k / (size_t)T];
    ct_cpu_grpo_loss_f64(losses, dlogp, logp, old_logp, c->beta != 0 ? ref_logp : NULL, adv, weights, (int)n,
                         c->epsilon_low, c->epsilon_high, c->beta);
    double loss = 0;
    for (size_t k = 0; k < n; k++) loss += losses[k];
    if (metrics) add_token_metrics(c, metrics, logp, old_logp, ref_logp, advantages, mask, B, T);
    ct_free(weights);
    ct_free(adv);
    ct_free(losses);
    return loss;
}

double ct_rloo_loss(const CtGrpoLossConfig *c, double *dlogp, const double *logp, const double *old_seq_logp,
                    const double *advantages, const uint8_t *mask, int B, int T, CtGrpoMetrics *metrics) {
    double *seq = ct_alloc(sizeof(double) * (size_t)B), *weights = ct_alloc(sizeof(double) * (size_t)B);
    double *losses = ct_alloc(sizeof(double) * (size_t)B), *dseq = ct_alloc(sizeof(double) * (size_t)B);
    for (int b = 0; b < B; b++) {
        seq[b] = 0;
        for (int t = 0; t < T; t++) seq[b] += mask[(size_t)b * T + t] ? logp[(size_t)b * T + t] : 0;
        weights[b] = 1.0 / B;  // the mean over completions
    }
    ct_cpu_grpo_loss_f64(losses, dseq, seq, old_seq_logp, NULL, advantages, weights, B, c->epsilon_low,
                         c->epsilon_high, 0);
    double loss = 0;
    for (int b = 0; b < B; b++) {
        loss += losses[b];
        // Σ_t mask·logp is the unit: each masked token's log-prob gets the unit's gradient.
        if (dlogp)
            for (int t = 0; t < T; t++) dlogp[(size_t)b * T + t] = mask[(size_t)b * T + t] ? dseq[b] : 0;
        if (metrics) {
            ClipFlags f = clip_flags(c, seq[b], old_seq_logp ? old_seq_logp[b] : seq[b], advantages[b]);
            metrics->low_sum += f.low;
            metrics->high_sum += f.high;
            metrics->region_sum += f.low || f.high;
            metrics->count++;
            metrics->low_min = fmin(metrics->low_min, f.low);
            metrics->high_max = fmax(metrics->high_max, f.high);
        }
    }
    ct_free(seq);
    ct_free(weights);
    ct_free(losses);
    ct_free(dseq);
    return loss;
}
