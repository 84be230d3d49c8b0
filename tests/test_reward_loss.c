// The reward model's pair loss and metrics (train/objectives/reward_loss.h) against closed forms.
#include <math.h>

#include "tests/test.h"
#include "train/objectives/reward.h"
#include "train/objectives/reward_loss.h"

TEST(reward_loss, bradley_terry_loss_matches_its_closed_form) {
    // equal scores: −log σ(0) = ln 2, gradient ∓½
    CtRewardValue v = ct_reward_loss(0.7, 0.7, 0, 0);
    CHECK_NEAR(v.loss, log(2.0), 1e-15);
    CHECK_NEAR(v.d_chosen, -0.5, 1e-15);
    CHECK_NEAR(v.d_rejected, 0.5, 1e-15);
    // r_c − r_r = 2: log(1 + e^−2); a margin of 0.5 shifts it to log(1 + e^−1.5)
    CHECK_NEAR(ct_reward_loss(1.5, -0.5, 0, 0).loss, log1p(exp(-2.0)), 1e-15);
    CHECK_NEAR(ct_reward_loss(1.5, -0.5, 0.5, 0).loss, log1p(exp(-1.5)), 1e-15);
    // centering adds c·(r_c + r_r)²: 0.01·(1.5 − 0.5)² = 0.01
    CHECK_NEAR(ct_reward_loss(1.5, -0.5, 0, 0.01).loss, log1p(exp(-2.0)) + 0.01, 1e-15);
    // far apart: no overflow either way
    CHECK_NEAR(ct_reward_loss(800, -800, 0, 0).loss, 0, 1e-300);
    CHECK_NEAR(ct_reward_loss(-800, 800, 0, 0).loss, 1600, 1e-9);
    CHECK_NEAR(ct_reward_loss(-800, 800, 0, 0).d_chosen, -1, 1e-15);
}

TEST(reward_loss, gradients_match_finite_differences) {
    const double margins[3] = {0, 0.5, -1.25}, centers[3] = {0, 0.01, 0.3};
    for (int i = 0; i < 3; i++) {
        const double rc = 0.37 - 0.4 * i, rr = -0.81 + 0.9 * i, m = margins[i], c = centers[i], h = 1e-6;
        CtRewardValue v = ct_reward_loss(rc, rr, m, c);
        double fd_c = (ct_reward_loss(rc + h, rr, m, c).loss - ct_reward_loss(rc - h, rr, m, c).loss) / (2 * h);
        double fd_r = (ct_reward_loss(rc, rr + h, m, c).loss - ct_reward_loss(rc, rr - h, m, c).loss) / (2 * h);
        CHECK_MSG(fabs(fd_c - v.d_chosen) < 1e-8, "case %d: d/dr_c analytic %.10g fd %.10g", i, v.d_chosen, fd_c);
        CHECK_MSG(fabs(fd_r - v.d_rejected) < 1e-8, "case %d: d/dr_r analytic %.10g fd %.10g", i, v.d_rejected, fd_r);
    }
}

TEST(reward_loss, metrics_are_trls_means_over_pairs) {
    // pairs (r_c, r_r): (1, 0) right, (−1, 2) wrong, (0.5, 0.5) a tie counts as wrong
    const double rc[3] = {1, -1, 0.5}, rr[3] = {0, 2, 0.5};
    CtRewardStats s;
    ct_reward_stats_init(&s);
    double loss = 0;
    for (int i = 0; i < 3; i++) {
        double l = ct_reward_loss(rc[i], rr[i], 0, 0).loss;
        loss += l;
        ct_reward_stats_add(&s, rc[i], rr[i], l);
    }
    CtRewardMetrics m = ct_reward_stats_means(&s);
    CHECK(m.pairs == 3);
    CHECK_NEAR(m.loss, loss / 3, 1e-15);
    CHECK_NEAR(m.loss, (log1p(exp(-1.0)) + log1p(exp(3.0)) + log(2.0)) / 3, 1e-15);
    CHECK_NEAR(m.accuracy, 1.0 / 3, 1e-15);
    CHECK_NEAR(m.margin, (1 - 3 + 0) / 3.0, 1e-15);
    CHECK_NEAR(m.mean_reward, 3.0 / 6, 1e-15);
    CHECK_NEAR(m.min_reward, -1, 0);
    CHECK_NEAR(m.max_reward, 2, 0);
}

// A dpo row holds inputs and next-token targets; the reward row is the whole sequence, scored at
// its last token (no padding id here). T = 4: a short row gains its last target; a full one (T+1
// tokens) loses its first.
TEST(reward_rows, dpo_rows_become_whole_sequences_with_their_last_token) {
    enum { R = 3, T = 4 };
    const int32_t tokens[R * T] = {5, 6, 7, 0, /**/ 5, 6, 7, 8, /**/ 9, 0, 0, 0};
    const int32_t targets[R * T] = {6, 7, 2, -1, /**/ 6, 7, 8, 3, /**/ 4, -1, -1, -1};
    int32_t seq[R * T];
    int last[R];
    ct_reward_rows(tokens, targets, R, T, -1, seq, last);
    const int32_t want[R * T] = {5, 6, 7, 2, /**/ 6, 7, 8, 3, /**/ 9, 4, 0, 0};
    for (int i = 0; i < R * T; i++) CHECK_MSG(seq[i] == want[i], "token %d: %d, want %d", i, seq[i], want[i]);
    CHECK(last[0] == 3 && last[1] == 3 && last[2] == 1);
    // with the padding id 2 (the EOS that ends row 0's completion): row 0 is read one token earlier
    ct_reward_rows(tokens, targets, R, T, 2, seq, last);
    CHECK(last[0] == 2 && last[1] == 3 && last[2] == 1);
}

// transformers' rule: the rightmost token that is not the padding id; all padding: index 0.
TEST(reward_rows, the_score_is_read_at_the_last_token_that_is_not_padding) {
    const int32_t seq[6] = {4, 9, 9, 4, 9, 9};
    CHECK_EQ_INT(ct_reward_last_token(seq, 6, 9), 3);
    CHECK_EQ_INT(ct_reward_last_token(seq, 6, -1), 5);
    CHECK_EQ_INT(ct_reward_last_token(seq, 3, 4), 2);
    CHECK_EQ_INT(ct_reward_last_token(seq + 1, 2, 9), 0);
}
