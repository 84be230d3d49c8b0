// Fixed GRPO/RLOO inputs shared by tests/test_grpo_loss.c and tests/test_grpo_ref.c: two prompts
// with G = 3 completions each (B = 6 rows of T = 4 completion tokens, right-padded), chosen so
// that every branch of the clipped surrogate is taken: log-ratios (μ > 1: logp − old_logp) whose
// ratios leave the range [0.8, 1.28] on either side with either sign of advantage, and none near
// a boundary (finite differences stay on one side of every kink). Padding has log-ratio 0.
#pragma once
#include <stdint.h>

enum { GV_GROUPS = 2, GV_G = 3, GV_B = 6, GV_T = 4 };
static const double gv_eps_low = 0.2, gv_eps_high = 0.28;
// Rewards: prompt 0 gets {1, 0, 0} (A +, −, −), prompt 1 {0.5, 1.5, 2.5} (A −, 0, +).
static const double gv_rewards[GV_B] = {1, 0, 0, 0.5, 1.5, 2.5};
static const uint8_t gv_mask[GV_B * GV_T] = {1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 0};
static const double gv_logp[GV_B * GV_T] = {-0.7, -1.2, -0.3, -2.1, -0.5, -1.8, 0, 0, -0.9, -0.4, -1.1, 0,
                                            -1.5, -0.2, -0.6, -0.8, -2.4, 0, 0, 0, -0.35, -1.3, -0.75, 0};
// logp − old_logp when the policy has moved since sampling (num_iterations 2, second pass).
static const double gv_log_ratio[GV_B * GV_T] = {0.5, 0.1, -0.4, 0.3, -0.4, 0.5, 0, 0, 0.1, -0.3, -0.1, 0,
                                                 0, 0, 0.2, -0.05, 0.5, 0, 0, 0, 0.3, -0.1, 0.05, 0};
// ref_logp − logp.
static const double gv_ref_gap[GV_B * GV_T] = {0.2, -0.3, 0.05, 0.4, -0.1, 0.25, 0, 0, -0.45, 0.1, 0.3, 0,
                                               0.15, -0.2, 0.35, -0.05, 0.5, 0, 0, 0, -0.25, 0.2, 0.1, 0};

static inline void gv_old_and_ref(double *old_logp, double *ref_logp) {
    for (int k = 0; k < GV_B * GV_T; k++) {
        old_logp[k] = gv_logp[k] - gv_log_ratio[k];
        ref_logp[k] = gv_logp[k] + gv_ref_gap[k];
    }
}
