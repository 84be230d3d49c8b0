#include "train/loop/moe_step.h"

#include <string.h>

#include "core/alloc.h"
#include "train/dist/dist.h"

void ct_moe_step_init(CtMoeStep *s, const CtModel *m) {
    memset(s, 0, sizeof *s);
    s->n_layers = m->moe.n_layers;
    s->E = m->moe.E;
    if (s->n_layers == 0) return;
    const size_t n = (size_t)s->n_layers * (size_t)s->E;
    s->counts = ct_calloc(n, sizeof(double));
    s->load = ct_calloc(n, sizeof(double));
    s->max_over_mean = ct_calloc((size_t)s->n_layers, sizeof(double));
}

void ct_moe_step_free(CtMoeStep *s) {
    ct_free(s->counts);
    ct_free(s->load);
    ct_free(s->max_over_mean);
    memset(s, 0, sizeof *s);
}

void ct_moe_step_begin(CtMoeStep *s, CtModel *m) {
    if (s->n_layers) ct_model_moe_reset(m);
}

void ct_moe_step_end(CtMoeStep *s, const CtModel *m) {
    if (s->n_layers == 0) return;
    const int L = s->n_layers, E = s->E;
    const size_t n = (size_t)L * (size_t)E;
    // One all-reduce: the counts, then the loss sums and the number of forwards behind them.
    double *sums = ct_alloc(sizeof(double) * (n + 3));
    memcpy(sums, m->moe.load, sizeof(double) * n);
    sums[n] = m->moe.aux_loss_sum;
    sums[n + 1] = m->moe.z_loss_sum;
    sums[n + 2] = (double)m->moe.n_forwards;
    ct_dist_allreduce_sum_f64(sums, n + 3);
    memcpy(s->counts, sums, sizeof(double) * n);
    s->aux_loss = sums[n + 2] > 0 ? sums[n] / sums[n + 2] : 0;
    s->router_z_loss = sums[n + 2] > 0 ? sums[n + 1] / sums[n + 2] : 0;
    ct_free(sums);
    // Every token takes K slots, so a layer's counts add up to N·K: dividing by their sum is
    // dividing by N·K, and the mean of a row of fractions is 1/E.
    s->imbalance = 0;
    for (int l = 0; l < L; l++) {
        const double *c = s->counts + (size_t)l * E;
        double total = 0, max = 0;
        for (int e = 0; e < E; e++) total += c[e];
        for (int e = 0; e < E; e++) {
            s->load[(size_t)l * E + e] = total > 0 ? c[e] / total : 0;
            if (c[e] > max) max = c[e];
        }
        s->max_over_mean[l] = total > 0 ? max * E / total : 0;
        if (s->max_over_mean[l] > s->imbalance) s->imbalance = s->max_over_mean[l];
    }
}
