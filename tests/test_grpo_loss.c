// GRPO's and RLOO's policy loss (train/objectives/grpo_loss.h, kernels/cpu/grpo.inc) and their
// advantages (grpo_advantages.h) against TRL 1.16's definitions written out here by hand, and
// the gradient against finite differences in double. tests/test_grpo_ref.c runs TRL itself.
#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"
#include "tests/grpo_vectors.h"
#include "tests/test.h"
#include "train/objectives/grpo_advantages.h"
#include "train/objectives/grpo_loss.h"

enum { N = GV_B * GV_T };
static const CtGrpoLossType all_types[] = {CT_GRPO_LOSS_GRPO, CT_GRPO_LOSS_BNPO, CT_GRPO_LOSS_DR_GRPO,
                                           CT_GRPO_LOSS_DAPO};
static const int max_completion_length = 8;
static const double dapo_tokens = 30;  // say the generation batch had 30 loss tokens per window

static CtGrpoLossConfig config(CtGrpoLossType type, double beta) {
    CtGrpoLossConfig c = {type, gv_eps_low, gv_eps_high, beta, max_completion_length};
    return c;
}

static double row_len(int b) {
    double n = 0;
    for (int t = 0; t < GV_T; t++) n += gv_mask[b * GV_T + t];
    return n;
}

// TRL's _compute_loss written out: per_token_loss = −min(ρA, clamp(ρ)A) + β·k3, then the loss_type's sum.
static double trl_loss(CtGrpoLossType type, double beta, const double *old, const double *ref, const double *adv) {
    double rows[GV_B], all = 0, tokens = 0;
    for (int b = 0; b < GV_B; b++) {
        rows[b] = 0;
        for (int t = 0; t < GV_T; t++) {
            int k = b * GV_T + t;
            double c1 = exp(gv_logp[k] - (old ? old[k] : gv_logp[k]));
            double c2 = fmin(fmax(c1, 1 - gv_eps_low), 1 + gv_eps_high);
            double l = -fmin(c1 * adv[b], c2 * adv[b]);
            if (beta != 0) l += beta * (exp(ref[k] - gv_logp[k]) - (ref[k] - gv_logp[k]) - 1);
            rows[b] += l * gv_mask[k];
        }
        all += rows[b];
        tokens += row_len(b);
    }
    double loss = 0;
    switch (type) {
    case CT_GRPO_LOSS_GRPO:
        for (int b = 0; b < GV_B; b++) loss += rows[b] / fmax(row_len(b), 1) / GV_B;
        return loss;
    case CT_GRPO_LOSS_BNPO: return all / fmax(tokens, 1);
    case CT_GRPO_LOSS_DR_GRPO: return all / (GV_B * max_completion_length);
    case CT_GRPO_LOSS_DAPO: return all / dapo_tokens;
    }
    return NAN;
}

static void group_advantages(double *adv) { ct_grpo_advantages(adv, gv_rewards, GV_GROUPS, GV_G, CT_SCALE_REWARDS_GROUP); }

TEST(grpo_advantages, group_scaling_divides_by_each_groups_bessel_std) {
    double adv[GV_B];
    double frac = ct_grpo_advantages(adv, gv_rewards, GV_GROUPS, GV_G, CT_SCALE_REWARDS_GROUP);
    // Group {1,0,0}: mean 1/3, std √((4/9 + 1/9 + 1/9)/2) = √(1/3). Group {0.5,1.5,2.5}: mean 1.5, std 1.
    const double s0 = sqrt(1.0 / 3) + 1e-4, s1 = 1 + 1e-4;
    const double want[GV_B] = {(2.0 / 3) / s0, (-1.0 / 3) / s0, (-1.0 / 3) / s0, -1 / s1, 0, 1 / s1};
    for (int i = 0; i < GV_B; i++) CHECK_NEAR(adv[i], want[i], 1e-14);
    CHECK_NEAR(frac, 0, 0);
}

TEST(grpo_advantages, batch_scaling_uses_one_std_and_none_only_centres) {
    double adv[GV_B];
    ct_grpo_advantages(adv, gv_rewards, GV_GROUPS, GV_G, CT_SCALE_REWARDS_BATCH);
    // All six rewards: mean 11/12, Σ(r − 11/12)² = Σr² − 6·(11/12)² = 9.75 − 121/24 = 113/24, /5.
    double ss = 0;
    for (int i = 0; i < GV_B; i++) ss += (gv_rewards[i] - 11.0 / 12) * (gv_rewards[i] - 11.0 / 12);
    CHECK_NEAR(ss, 113.0 / 24, 1e-14);
    const double s = sqrt(113.0 / 120) + 1e-4;
    CHECK_NEAR(adv[0], (2.0 / 3) / s, 1e-14);
    CHECK_NEAR(adv[5], 1 / s, 1e-14);
    ct_grpo_advantages(adv, gv_rewards, GV_GROUPS, GV_G, CT_SCALE_REWARDS_NONE);
    CHECK_NEAR(adv[0], 2.0 / 3, 1e-15);
    CHECK_NEAR(adv[3], -1, 1e-15);
    CtScaleRewards s_none;
    CHECK_EQ_INT(ct_scale_rewards_parse("none", &s_none), 0);
    CHECK_EQ_INT(s_none, CT_SCALE_REWARDS_NONE);
    CHECK_EQ_INT(ct_scale_rewards_parse("median", &s_none), -1);
}

TEST(grpo_advantages, a_group_of_equal_rewards_counts_as_zero_std_and_gets_no_advantage) {
    const double r[6] = {1, 1, 1, 0, 2, 0};
    double adv[6];
    CHECK_NEAR(ct_grpo_advantages(adv, r, 2, 3, CT_SCALE_REWARDS_GROUP), 0.5, 0);
    for (int i = 0; i < 3; i++) CHECK_NEAR(adv[i], 0, 0);
    CHECK_NEAR(ct_grpo_advantages(adv, r, 2, 3, CT_SCALE_REWARDS_BATCH), 0, 0);  // the batch's std is not 0
}

TEST(grpo_advantages, rloo_subtracts_the_mean_of_the_other_completions) {
    double adv[GV_B];
    ct_rloo_advantages(adv, gv_rewards, GV_GROUPS, GV_G, 0);
    const double want[GV_B] = {1 - 0, 0 - 0.5, 0 - 0.5, 0.5 - 2, 1.5 - 1.5, 2.5 - 1};
    for (int i = 0; i < GV_B; i++) CHECK_NEAR(adv[i], want[i], 1e-15);
    // normalize_advantages: (A − mean)/(std + 1e-4) over the batch; the mean of these is 0.
    double norm[GV_B], ss = 0;
    ct_rloo_advantages(norm, gv_rewards, GV_GROUPS, GV_G, 1);
    for (int i = 0; i < GV_B; i++) ss += want[i] * want[i];
    for (int i = 0; i < GV_B; i++) CHECK_NEAR(norm[i], want[i] / (sqrt(ss / 5) + 1e-4), 1e-14);
}

TEST(grpo_advantages, rloo_kl_penalty_subtracts_beta_times_the_summed_log_ratio_to_the_reference) {
    double old[N], ref[N], r[GV_B], sum = 0, count = 0;
    gv_old_and_ref(old, ref);
    memcpy(r, gv_rewards, sizeof r);
    ct_rloo_kl_penalty(r, old, ref, gv_mask, GV_B, GV_T, 0.05, &sum, &count);
    // Row 1: tokens 0,1 → (old − ref) = −(log_ratio + ref_gap) = −(−0.4 − 0.1) − (0.5 + 0.25) = −0.25.
    CHECK_NEAR(r[1], 0 - 0.05 * (-0.25), 1e-14);
    CHECK_NEAR(count, 17, 0);
}

// μ = 1, β = 0: ρ = 1 everywhere, so each token's loss is −A_b and its gradient −A_b·w_{b,t}.
TEST(grpo_loss, on_policy_without_kl_is_minus_the_token_weighted_advantage) {
    double adv[GV_B], dlogp[N];
    group_advantages(adv);
    double sum_al = 0, tokens = 0;
    for (int b = 0; b < GV_B; b++) sum_al += adv[b] * row_len(b), tokens += row_len(b);
    const double want[4] = {0,  // grpo: −mean_b A_b, and advantages sum to 0 in each group
                            -sum_al / tokens, -sum_al / (GV_B * max_completion_length), -sum_al / dapo_tokens};
    for (int i = 0; i < 4; i++) {
        CtGrpoLossConfig c = config(all_types[i], 0);
        double loss = ct_grpo_loss(&c, dlogp, gv_logp, NULL, NULL, adv, gv_mask, GV_B, GV_T, dapo_tokens, NULL);
        CHECK_NEAR(loss, want[i], 1e-15);
        const double norm[4] = {GV_B * row_len(2), tokens, GV_B * max_completion_length, dapo_tokens};
        CHECK_NEAR(dlogp[2 * GV_T + 1], -adv[2] / norm[i], 1e-15);  // row 2, a real token
        CHECK_NEAR(dlogp[2 * GV_T + 3], 0, 0);                      // row 2's padding
    }
}

// Every loss_type with β 0 and 0.04, μ 1 and 2 (old ≠ current), against TRL's lines above.
TEST(grpo_loss, every_loss_type_beta_and_iteration_count_equal_trls_definition) {
    double adv[GV_B], old[N], ref[N];
    group_advantages(adv);
    gv_old_and_ref(old, ref);
    for (int i = 0; i < 4; i++)
        for (int beta_i = 0; beta_i < 2; beta_i++)
            for (int mu = 1; mu <= 2; mu++) {
                const double beta = beta_i ? 0.04 : 0;
                const double *o = mu == 2 ? old : NULL;
                CtGrpoLossConfig c = config(all_types[i], beta);
                double got = ct_grpo_loss(&c, NULL, gv_logp, o, ref, adv, gv_mask, GV_B, GV_T, dapo_tokens, NULL);
                double want = trl_loss(all_types[i], beta, o, ref, adv);
                CHECK_MSG(fabs(got - want) <= 1e-14, "loss_type %d beta %g mu %d: %.17g, TRL's %.17g", i, beta, mu,
                          got, want);
            }
}

// One clipped token by hand: ρ = e^0.5 > 1.28 with A > 0 → the clipped term 1.28·A wins, flat.
TEST(grpo_loss, a_ratio_above_the_range_with_positive_advantage_is_clipped_and_has_no_gradient) {
    const double logp = -1, old = -1.5, a = 2, w = 1;
    double loss, d;
    ct_cpu_grpo_loss_f64(&loss, &d, &logp, &old, NULL, &a, &w, 1, 0.2, 0.28, 0);
    CHECK_NEAR(loss, -1.28 * 2, 1e-15);
    CHECK_NEAR(d, 0, 0);
    const double neg = -2;  // negative advantage: −min(ρA, 1.28A) = −ρA, gradient −Aρ
    ct_cpu_grpo_loss_f64(&loss, &d, &logp, &old, NULL, &neg, &w, 1, 0.2, 0.28, 0);
    CHECK_NEAR(loss, 2 * exp(0.5), 1e-14);
    CHECK_NEAR(d, 2 * exp(0.5), 1e-14);
    // k3 alone (A = 0): δ = ref − logp = 0.3 → β(e^0.3 − 1.3), d = β(1 − e^0.3).
    const double zero = 0, ref = -0.7;
    ct_cpu_grpo_loss_f64(&loss, &d, &logp, &old, &ref, &zero, &w, 1, 0.2, 0.28, 0.04);
    CHECK_NEAR(loss, 0.04 * (exp(0.3) - 1.3), 1e-16);
    CHECK_NEAR(d, 0.04 * (1 - exp(0.3)), 1e-16);
}

static double loss_at(const CtGrpoLossConfig *c, const double *logp, const double *old, const double *ref,
                      const double *adv, int rloo) {
    if (rloo) return ct_rloo_loss(c, NULL, logp, old, adv, gv_mask, GV_B, GV_T, NULL);
    return ct_grpo_loss(c, NULL, logp, old, ref, adv, gv_mask, GV_B, GV_T, dapo_tokens, NULL);
}

// Central differences in double on every real token's log-prob.
static double max_fd_error(const CtGrpoLossConfig *c, const double *old, const double *ref, const double *adv,
                           int rloo) {
    double logp[N], dlogp[N], worst = 0;
    memcpy(logp, gv_logp, sizeof logp);
    if (rloo) ct_rloo_loss(c, dlogp, logp, old, adv, gv_mask, GV_B, GV_T, NULL);
    else ct_grpo_loss(c, dlogp, logp, old, ref, adv, gv_mask, GV_B, GV_T, dapo_tokens, NULL);
    const double h = 1e-6;
    for (int k = 0; k < N; k++) {
        if (!gv_mask[k]) continue;
        logp[k] = gv_logp[k] + h;
        double up = loss_at(c, logp, old, ref, adv, rloo);
        logp[k] = gv_logp[k] - h;
        double down = loss_at(c, logp, old, ref, adv, rloo);
        logp[k] = gv_logp[k];
        worst = fmax(worst, fabs((up - down) / (2 * h) - dlogp[k]));
    }
    return worst;
}

TEST(grpo_loss, gradient_matches_finite_differences_for_every_loss_type) {
    double adv[GV_B], old[N], ref[N];
    group_advantages(adv);
    gv_old_and_ref(old, ref);
    // μ = 2 (old fixed): the loss as a function of logp is what is differentiated. μ = 1 is the
    // next test's closed form (its old is logp itself, detached: FD would move both).
    for (int i = 0; i < 4; i++)
        for (int beta_i = 0; beta_i < 2; beta_i++) {
            CtGrpoLossConfig c = config(all_types[i], beta_i ? 0.04 : 0);
            double e = max_fd_error(&c, old, ref, adv, 0);
            CHECK_MSG(e < 1e-8, "loss_type %d beta_i %d: |fd − analytic| = %g", i, beta_i, e);
        }
}

// μ = 1 differentiates through ρ = exp(logp − sg(logp)) = 1 with dρ/dlogp = 1: the closed form: d/dlogp = −A·w + β(1 − e^δ)·w.
TEST(grpo_loss, on_policy_gradient_is_the_policy_gradient_plus_the_kl_term) {
    double adv[GV_B], old[N], ref[N], dlogp[N], w[N];
    group_advantages(adv);
    gv_old_and_ref(old, ref);
    CtGrpoLossConfig c = config(CT_GRPO_LOSS_GRPO, 0.04);
    ct_grpo_loss(&c, dlogp, gv_logp, NULL, ref, adv, gv_mask, GV_B, GV_T, 0, NULL);
    ct_grpo_token_weights(w, gv_mask, GV_B, GV_T, CT_GRPO_LOSS_GRPO, 0, 0);
    for (int k = 0; k < N; k++)
        CHECK_NEAR(dlogp[k], w[k] * (-adv[k / GV_T] + 0.04 * (1 - exp(gv_ref_gap[k]))), 1e-16);
}

TEST(grpo_loss, rloo_gradient_matches_finite_differences) {
    double adv[GV_B], old[N], ref[N], old_seq[GV_B];
    ct_rloo_advantages(adv, gv_rewards, GV_GROUPS, GV_G, 0);
    gv_old_and_ref(old, ref);
    for (int b = 0; b < GV_B; b++) {
        old_seq[b] = 0;  // sequence log-ratios 0.5, 0.1, −0.3, 0.15, 0.5, 0.25 (all real tokens summed)
        for (int t = 0; t < GV_T; t++) old_seq[b] += gv_mask[b * GV_T + t] ? old[b * GV_T + t] : 0;
    }
    CtGrpoLossConfig c = config(CT_GRPO_LOSS_GRPO, 0);
    double e = max_fd_error(&c, old_seq, ref, adv, 1);
    CHECK_MSG(e < 1e-8, "|fd − analytic| = %g", e);
}

TEST(grpo_loss, rloo_loss_is_the_mean_over_completions_of_the_clipped_sequence_surrogate) {
    double adv[GV_B], old[N], ref[N], old_seq[GV_B], seq_ratio[GV_B];
    ct_rloo_advantages(adv, gv_rewards, GV_GROUPS, GV_G, 0);
    gv_old_and_ref(old, ref);
    double want = 0;
    for (int b = 0; b < GV_B; b++) {
        old_seq[b] = seq_ratio[b] = 0;
        for (int t = 0; t < GV_T; t++)
            if (gv_mask[b * GV_T + t]) old_seq[b] += old[b * GV_T + t], seq_ratio[b] += gv_log_ratio[b * GV_T + t];
        double c1 = exp(seq_ratio[b]), c2 = fmin(fmax(c1, 0.8), 1.28);
        want += -fmin(c1 * adv[b], c2 * adv[b]) / GV_B;
    }
    CtGrpoLossConfig c = config(CT_GRPO_LOSS_GRPO, 0);
    CtGrpoMetrics m;
    ct_grpo_metrics_init(&m);
    CHECK_NEAR(ct_rloo_loss(&c, NULL, gv_logp, old_seq, adv, gv_mask, GV_B, GV_T, &m), want, 1e-14);
    // Sequence ratios e^{0.5, 0.1, −0.3, 0.15, 0.5, 0.25} with A {1, −0.5, −0.5, −1.5, 0, 1.5}: row 0 high,
    // row 2 low (0.74 < 0.8, A < 0), row 5's e^0.25 = 1.284 > 1.28 high: low 1/6, high 2/6.
    CtGrpoMetricMeans mm = ct_grpo_metrics_means(&m);
    CHECK_NEAR(mm.low_mean, 1.0 / 6, 1e-15);
    CHECK_NEAR(mm.high_mean, 2.0 / 6, 1e-15);
    CHECK_NEAR(mm.region_mean, 3.0 / 6, 1e-15);
    CHECK_NEAR(mm.high_max, 1, 0);
}

TEST(grpo_loss, clip_metrics_count_the_tokens_where_the_clip_binds) {
    double adv[GV_B], old[N], ref[N];
    group_advantages(adv);
    gv_old_and_ref(old, ref);
    CtGrpoLossConfig c = config(CT_GRPO_LOSS_DAPO, 0.04);
    CtGrpoMetrics m;
    ct_grpo_metrics_init(&m);
    ct_grpo_loss(&c, NULL, gv_logp, old, ref, adv, gv_mask, GV_B, GV_T, dapo_tokens, &m);
    // By hand from grpo_vectors.h (17 tokens): low (ρ < 0.8, A < 0): row 1's e^−0.4, row 2's e^−0.3;
    // high (ρ > 1.28, A > 0): row 0's e^0.5 and e^0.3, row 5's e^0.3. Row 0 is half high.
    CtGrpoMetricMeans mm = ct_grpo_metrics_means(&m);
    CHECK_NEAR(mm.low_mean, 2.0 / 17, 1e-15);
    CHECK_NEAR(mm.high_mean, 3.0 / 17, 1e-15);
    CHECK_NEAR(mm.region_mean, 5.0 / 17, 1e-15);
    CHECK_NEAR(mm.low_min, 0, 0);
    CHECK_NEAR(mm.high_max, 0.5, 0);
    double kl = 0;
    for (int k = 0; k < N; k++)
        if (gv_mask[k]) kl += exp(gv_ref_gap[k]) - gv_ref_gap[k] - 1;
    CHECK_NEAR(mm.kl, kl / 17, 1e-15);
    CtGrpoMetrics none;  // β = 0: no kl, as TRL logs none
    ct_grpo_metrics_init(&none);
    c.beta = 0;
    ct_grpo_loss(&c, NULL, gv_logp, old, ref, adv, gv_mask, GV_B, GV_T, dapo_tokens, &none);
    CHECK(isnan(ct_grpo_metrics_means(&none).kl));
}

TEST(grpo_loss, masked_tokens_and_truncated_completions_contribute_nothing) {
    double adv[GV_B], old[N], ref[N], logp[N], dlogp[N];
    group_advantages(adv);
    gv_old_and_ref(old, ref);
    memcpy(logp, gv_logp, sizeof logp);
    for (int k = 0; k < N; k++)
        if (!gv_mask[k]) logp[k] = 1e4;  // garbage under the padding must not reach the loss
    CtGrpoLossConfig c = config(CT_GRPO_LOSS_BNPO, 0.04);
    double clean = ct_grpo_loss(&c, NULL, gv_logp, old, ref, adv, gv_mask, GV_B, GV_T, 0, NULL);
    CHECK_NEAR(ct_grpo_loss(&c, NULL, logp, old, ref, adv, gv_mask, GV_B, GV_T, 0, NULL), clean, 0);
    uint8_t mask[N];
    memcpy(mask, gv_mask, sizeof mask);
    const uint8_t truncated[GV_B] = {1, 0, 0, 0, 0, 0};
    ct_grpo_mask_truncated(mask, truncated, GV_B, GV_T);
    ct_grpo_loss(&c, dlogp, gv_logp, old, ref, adv, mask, GV_B, GV_T, 0, NULL);
    for (int t = 0; t < GV_T; t++) CHECK_NEAR(dlogp[t], 0, 0);
    CHECK(dlogp[GV_T] != 0);
}

TEST(grpo_loss, dr_grpo_divides_by_the_constant_max_completion_length) {
    double adv[GV_B], old[N], ref[N];
    group_advantages(adv);
    gv_old_and_ref(old, ref);
    CtGrpoLossConfig c4 = config(CT_GRPO_LOSS_DR_GRPO, 0.04), c16 = c4;
    c4.max_completion_length = 4;
    c16.max_completion_length = 16;
    double l4 = ct_grpo_loss(&c4, NULL, gv_logp, old, ref, adv, gv_mask, GV_B, GV_T, 0, NULL);
    double l16 = ct_grpo_loss(&c16, NULL, gv_logp, old, ref, adv, gv_mask, GV_B, GV_T, 0, NULL);
    CHECK(l4 != 0);
    CHECK_NEAR(l4 * 4, l16 * 16, 1e-14);
}

TEST(grpo_loss, float_kernel_agrees_with_the_double_one) {
    double adv[GV_B], old[N], ref[N], w[N], adv_tok[N], loss64[N], d64[N];
    float f_logp[N], f_old[N], f_ref[N], f_adv[N], f_w[N], loss32[N], d32[N];
    group_advantages(adv);
    gv_old_and_ref(old, ref);
    ct_grpo_token_weights(w, gv_mask, GV_B, GV_T, CT_GRPO_LOSS_GRPO, 0, 0);
    for (int k = 0; k < N; k++) {
        adv_tok[k] = adv[k / GV_T];
        f_logp[k] = (float)gv_logp[k], f_old[k] = (float)old[k], f_ref[k] = (float)ref[k];
        f_adv[k] = (float)adv_tok[k], f_w[k] = (float)w[k];
    }
    ct_cpu_grpo_loss_f64(loss64, d64, gv_logp, old, ref, adv_tok, w, N, 0.2, 0.28, 0.04);
    ct_cpu_grpo_loss_f32(loss32, d32, f_logp, f_old, f_ref, f_adv, f_w, N, 0.2, 0.28, 0.04);
    for (int k = 0; k < N; k++) {
        CHECK_NEAR(loss32[k], loss64[k], 1e-6 * (fabs(loss64[k]) + 1e-3));
        CHECK_NEAR(d32[k], d64[k], 1e-6 * (fabs(d64[k]) + 1e-3));
    }
    CtGrpoLossType t;
    CHECK_EQ_INT(ct_grpo_loss_type_parse("dr_grpo", &t), 0);
    CHECK_EQ_INT(t, CT_GRPO_LOSS_DR_GRPO);
    CHECK_EQ_INT(ct_grpo_loss_type_parse("ppo", &t), -1);
}
