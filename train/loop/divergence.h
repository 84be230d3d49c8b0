// Spotting a run that diverges: one warning, at the first step whose loss or gradient norm has
// exploded, naming the step and what in the config likely caused it. The rule (docs/training.md):
//   loss  (cross-entropy objectives): above twice the larger of ln V (a uniform guess) and the
//         first loss this run measured; a model that is learning never gets there;
//   norm: above 10^4 times the first step's gradient norm (clipping is applied after it is
//         measured, so the number is the raw one).
// A loss or norm that is no longer finite stops the run; its message carries the same causes.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "train/loop/run_config.h"

typedef struct {
    double loss_floor;  // ln V: what a uniform guess scores (0: the loss rule is off, as for DPO)
    double first_loss, first_norm;  // of the first step this run took (NAN until then)
    int warned;
} CtDivergence;

// vocab_size 0 turns the loss rule off (an objective whose loss is no cross-entropy).
void ct_divergence_init(CtDivergence *d, int vocab_size);
// After each step (its 1-based number): prints the warning the first time the rule holds.
// Returns 1 when it warned at this step. on_new_line: end a progress line redrawn in place first.
int ct_divergence_check(CtDivergence *d, const CtRunConfig *cfg, int64_t step, double loss, double norm,
                        int on_new_line);
// "the learning rate optim.lr 10 is too high, with no warmup (optim.warmup_steps 0) ..." : what
// the config shows that makes a divergence likely (always at least the learning rate).
void ct_divergence_causes(const CtRunConfig *cfg, char *buf, size_t size);
