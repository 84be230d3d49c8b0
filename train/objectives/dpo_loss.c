#include "train/objectives/dpo_loss.h"

#include <math.h>

// log σ(x) without overflow: −log(1 + e^{−x}).
static double log_sigmoid(double x) { return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)); }
static double sigmoid(double x) { return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)); }

CtDpoValue ct_dpo_loss(CtDpoLoss type, double beta, double epsilon, double pc, double pr, double rc, double rr) {
    const double delta = (pc - rc) - (pr - rr), z = beta * delta;
    CtDpoValue v = {0, 0};
    switch (type) {
    case CT_DPO_SIGMOID:  // d/dz −logσ(z) = −σ(−z);  d/dz −logσ(−z) = σ(z)
        v.loss = -(1 - epsilon) * log_sigmoid(z) - epsilon * log_sigmoid(-z);
        v.d_delta = beta * (-(1 - epsilon) * sigmoid(-z) + epsilon * sigmoid(z));
        break;
    case CT_DPO_ROBUST:
        v.loss = (-(1 - epsilon) * log_sigmoid(z) + epsilon * log_sigmoid(-z)) / (1 - 2 * epsilon);
        v.d_delta = beta * (-(1 - epsilon) * sigmoid(-z) - epsilon * sigmoid(z)) / (1 - 2 * epsilon);
        break;
    case CT_DPO_IPO: {
        const double gap = delta - 1 / (2 * beta);
        v.loss = gap * gap;
        v.d_delta = 2 * gap;
        break;
    }
    case CT_DPO_HINGE:
        v.loss = z < 1 ? 1 - z : 0;
        v.d_delta = z < 1 ? -beta : 0;
        break;
    }
    return v;
}
