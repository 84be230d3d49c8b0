#include "optim/schedule.h"

#include <math.h>

double ct_lr_at(const CtLrSchedule *s, long step) {
    if (step < s->warmup_steps) return s->lr * (double)(step + 1) / (double)s->warmup_steps;
    if (s->shape == CT_LR_CONSTANT) return s->lr;
    if (step >= s->total_steps) return s->min_lr;
    if (s->shape == CT_LR_WSD) {
        long decay_steps = (long)ceil(s->decay_fraction * (double)s->total_steps);
        long decay_start = s->total_steps - decay_steps;
        if (decay_start < s->warmup_steps) decay_start = s->warmup_steps;
        if (step < decay_start) return s->lr;
        double p = (double)(step - decay_start) / (double)(s->total_steps - decay_start);
        return s->lr - (s->lr - s->min_lr) * p;
    }
    long span = s->total_steps - s->warmup_steps;
    double p = span > 0 ? (double)(step - s->warmup_steps) / (double)span : 1.0;
    if (s->shape == CT_LR_LINEAR) return s->lr - (s->lr - s->min_lr) * p;
    return s->min_lr + 0.5 * (s->lr - s->min_lr) * (1.0 + cos(M_PI * p));
}
