// Direct Preference Optimization losses on one pair, given the summed log-probabilities of the
// chosen and rejected completions under the policy (pc, pr) and the reference (rc, rr).
// With Δ = (pc − rc) − (pr − rr) and z = β·Δ:
//   sigmoid   −(1−ε)·logσ(z) − ε·logσ(−z)            (ε = label smoothing: conservative DPO; ε = 0: DPO)
//   robust    [−(1−ε)·logσ(z) + ε·logσ(−z)] / (1−2ε)  (Chowdhury et al.)
//   ipo       (Δ − 1/(2β))²                           (Azar et al.; TRL averages the log-probabilities
//                                                      per token for IPO: the caller passes means)
//   hinge     relu(1 − z)                             (SLiC)
// and the gradient with respect to the four inputs: ∂ℓ/∂pc = −∂ℓ/∂rc = ∂ℓ/∂Δ, ∂ℓ/∂pr = −∂ℓ/∂rr = −∂ℓ/∂Δ.
#pragma once

typedef enum { CT_DPO_SIGMOID = 0, CT_DPO_ROBUST = 1, CT_DPO_IPO = 2, CT_DPO_HINGE = 3 } CtDpoLoss;

typedef struct {
    double loss;
    double d_delta;  // ∂ℓ/∂Δ
} CtDpoValue;

CtDpoValue ct_dpo_loss(CtDpoLoss type, double beta, double epsilon, double pc, double pr, double rc, double rr);
