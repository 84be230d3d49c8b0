#include "train/loop/divergence.h"

#include <math.h>
#include <stdio.h>

#include "core/log.h"

void ct_divergence_init(CtDivergence *d, int vocab_size) {
    d->loss_floor = vocab_size > 1 ? log((double)vocab_size) : 0;
    d->first_loss = d->first_norm = NAN;
    d->warned = 0;
}

// Rates at or above this are high for AdamW on a Transformer (GPT-2 used 6e-4, fine-tuning 1e-5..1e-4).
#define HIGH_LR 1e-2

void ct_divergence_causes(const CtRunConfig *cfg, char *buf, size_t size) {
    int n = snprintf(buf, size, "the learning rate optim.lr %g is %s", cfg->optim.lr,
                     cfg->optim.lr >= HIGH_LR ? "too high" : "too high for this model and data");
    if (n < 0 || (size_t)n >= size) return;
    const int no_warmup = cfg->optim.warmup_steps == 0, no_clip = cfg->optim.grad_clip == 0;
    if (no_warmup || no_clip)
        snprintf(buf + n, size - (size_t)n, ", with %s%s%s", no_warmup ? "no warmup (optim.warmup_steps 0)" : "",
                 no_warmup && no_clip ? " and " : "", no_clip ? "no gradient clipping (optim.grad_clip 0)" : "");
}

int ct_divergence_check(CtDivergence *d, const CtRunConfig *cfg, int64_t step, double loss, double norm,
                        int on_new_line) {
    if (isnan(d->first_loss)) {
        d->first_loss = loss;
        d->first_norm = norm;
        return 0;
    }
    if (d->warned) return 0;
    const double loss_limit = 2 * fmax(d->loss_floor, d->first_loss);
    const int loss_out = d->loss_floor > 0 && !(loss <= loss_limit);
    const int norm_out = d->first_norm > 0 && !(norm <= 1e4 * d->first_norm);
    if (!loss_out && !norm_out) return 0;
    d->warned = 1;
    char causes[400], what[200];
    ct_divergence_causes(cfg, causes, sizeof causes);
    if (loss_out)
        snprintf(what, sizeof what, "the loss %.4g is more than twice max(ln V %.2f, the first loss %.4g)", loss,
                 d->loss_floor, d->first_loss);
    else
        snprintf(what, sizeof what, "the gradient norm %.3g is over 10^4 times the first step's %.3g", norm,
                 d->first_norm);
    if (on_new_line) fputc('\n', stderr);
    ct_warn("step %lld: training is diverging: %s. Likely cause: %s; lower optim.lr%s%s (warned once)",
            (long long)step, what, causes, cfg->optim.warmup_steps == 0 ? ", set optim.warmup_steps" : "",
            cfg->optim.grad_clip == 0 ? ", set optim.grad_clip 1.0" : "");
    return 1;
}
