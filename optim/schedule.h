// Learning-rate schedules. Every shape starts with a linear warmup, lr·(step+1)/warmup for
// step < warmup (as llm.c; the first step already moves), then:
//   cosine    min_lr + ½(lr − min_lr)(1 + cos(π·p)),  p = (step − warmup)/(total − warmup)
//   linear    lr − (lr − min_lr)·p
//   constant  lr
//   wsd       warmup-stable-decay: lr until the last decay_fraction of the steps, then linear to min_lr
// Steps are counted from 0; at and after total_steps the rate is min_lr (constant: lr).
#pragma once

typedef enum { CT_LR_COSINE = 0, CT_LR_LINEAR = 1, CT_LR_CONSTANT = 2, CT_LR_WSD = 3 } CtLrShape;

typedef struct {
    CtLrShape shape;
    double lr, min_lr;
    long warmup_steps, total_steps;
    double decay_fraction;  // wsd only, in (0, 1]
} CtLrSchedule;

double ct_lr_at(const CtLrSchedule *s, long step);
