// A Mixture-of-Experts model's routing over one optimizer step, as the run reports it: the router
// losses (means over the step's forwards) and each MoE layer's expert load, summed over the step's
// micro-batches and every rank, so rank 0 reports (and every rank's aux-free bias moves by) the
// load of the whole step. A dense model has none of it (n_layers 0): its metrics stay as they were.
#pragma once
#include "train/model/model.h"

typedef struct {
    int n_layers, E;        // MoE layers, experts per layer (0, 0: a dense model)
    double *counts;         // [n_layers × E] (token, slot) pairs routed to each expert, over the step and ranks
    double *load;           // [n_layers × E] the fractions count_e / (N·K): each layer's row sums to 1
    double *max_over_mean;  // [n_layers] max_e load / mean load (1: perfectly balanced, E: one expert takes all)
    double imbalance;       // the worst layer's max_over_mean
    double aux_loss, router_z_loss;  // means over the step's forwards (and ranks) of the layer-mean losses
} CtMoeStep;

// Sized for the model (nothing allocated for a dense one).
void ct_moe_step_init(CtMoeStep *s, const CtModel *m);
void ct_moe_step_free(CtMoeStep *s);
// Before the step's first forward: the model's statistics start from zero.
void ct_moe_step_begin(CtMoeStep *s, CtModel *m);
// After its micro-batches (every rank, as it all-reduces): the step's statistics from the model's.
void ct_moe_step_end(CtMoeStep *s, const CtModel *m);
