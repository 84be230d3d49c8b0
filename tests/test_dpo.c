// DPO losses against closed forms and hand-computed values.
#include <math.h>

#include "tests/test.h"
#include "train/objectives/dpo_loss.h"

TEST(dpo, sigmoid_and_hinge_match_the_reference_values) {
    // β = 0.1 and Δ = 0, 10, 20 (the values torchtune tests against)
    const double deltas[3] = {0, 10, 20}, sigmoid_want[3] = {0.693147, 0.313262, 0.126928}, hinge_want[3] = {1, 0, 0};
    for (int i = 0; i < 3; i++) {
        // Δ split over the four inputs: (pc − rc) − (pr − rr)
        CtDpoValue s = ct_dpo_loss(CT_DPO_SIGMOID, 0.1, 0, -5 + deltas[i], -7, -5, -7);
        CHECK_NEAR(s.loss, sigmoid_want[i], 5e-7);
        CtDpoValue h = ct_dpo_loss(CT_DPO_HINGE, 0.1, 0, -3, -3 - deltas[i], -1, -1);
        CHECK_NEAR(h.loss, hinge_want[i], 1e-12);
    }
    // gradients: sigmoid ∂ℓ/∂Δ = −β·σ(−βΔ); hinge −β while βΔ < 1, else 0
    CHECK_NEAR(ct_dpo_loss(CT_DPO_SIGMOID, 0.1, 0, 0, 0, 0, 0).d_delta, -0.05, 1e-12);
    CHECK_NEAR(ct_dpo_loss(CT_DPO_SIGMOID, 0.1, 0, 10, 0, 0, 0).d_delta, -0.1 / (1 + exp(1.0)), 1e-12);
    CHECK_NEAR(ct_dpo_loss(CT_DPO_HINGE, 0.1, 0, 5, 0, 0, 0).d_delta, -0.1, 1e-12);
    CHECK_NEAR(ct_dpo_loss(CT_DPO_HINGE, 0.1, 0, 20, 0, 0, 0).d_delta, 0, 0);
}

TEST(dpo, every_loss_gradient_matches_finite_differences) {
    const CtDpoLoss types[4] = {CT_DPO_SIGMOID, CT_DPO_ROBUST, CT_DPO_IPO, CT_DPO_HINGE};
    const double eps_ls[4] = {0.1, 0.2, 0, 0};
    const double x[4] = {-3.2, -5.1, -3.9, -4.7};  // pc, pr, rc, rr: Δ = 0.7 − (−0.4)... = 1.1
    for (int t = 0; t < 4; t++) {
        CtDpoValue v = ct_dpo_loss(types[t], 0.3, eps_ls[t], x[0], x[1], x[2], x[3]);
        const double sign[4] = {1, -1, -1, 1};  // ∂Δ/∂(pc, pr, rc, rr)
        for (int k = 0; k < 4; k++) {
            double h = 1e-6, up[4], down[4];
            for (int j = 0; j < 4; j++) up[j] = down[j] = x[j];
            up[k] += h;
            down[k] -= h;
            double fd = (ct_dpo_loss(types[t], 0.3, eps_ls[t], up[0], up[1], up[2], up[3]).loss -
                         ct_dpo_loss(types[t], 0.3, eps_ls[t], down[0], down[1], down[2], down[3]).loss) / (2 * h);
            CHECK_MSG(fabs(fd - sign[k] * v.d_delta) < 1e-7, "loss type %d input %d: analytic %.10g finite difference %.10g",
                      t, k, sign[k] * v.d_delta, fd);
        }
    }
    // closed forms at one point: robust and ipo
    double z = 0.3 * 1.1;
    CtDpoValue r = ct_dpo_loss(CT_DPO_ROBUST, 0.3, 0.2, x[0], x[1], x[2], x[3]);
    CHECK_NEAR(r.loss, (0.8 * log1p(exp(-z)) - 0.2 * log1p(exp(z))) / 0.6, 1e-12);
    CtDpoValue i = ct_dpo_loss(CT_DPO_IPO, 0.3, 0, x[0], x[1], x[2], x[3]);
    CHECK_NEAR(i.loss, (1.1 - 1 / 0.6) * (1.1 - 1 / 0.6), 1e-12);
    CHECK_NEAR(ct_dpo_loss(CT_DPO_SIGMOID, 0.1, 0, 1, 2, 1, 2).loss, log(2.0), 1e-15);  // policy = reference: ln 2
}
