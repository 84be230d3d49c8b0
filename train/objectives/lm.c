#include "train/objectives/lm.h"

#include <math.h>

#include "core/error.h"
#include "train/dist/dist.h"

CtStepResult ct_lm_step(CtObjectiveRun *o) {
    CtStepBatches *s = o->batches;
    CtModel *m = o->model;
    int64_t total = s->total;  // data parallel: the mean is over every rank's targets
    ct_dist_allreduce_sum_i64(&total, 1);
    ct_step_batches_normalise(s, total);
    ct_objective_set_router_losses(o);  // Mixture of Experts: the router losses' share of each backward
    CtStepResult res = {0};  // the step's mean: micro-batch losses are already weighted by their share
    for (int a = 0; a < o->set.accum; a++) {
        CtBatch mb = ct_step_batch(s, a, o->set.with_docs);
        // Dropout masks (model.dropout > 0): a stream per micro-batch, so a resumed run draws the same ones.
        ct_model_set_dropout(m, 1, ct_objective_dropout_seed(o->set.seed, (uint64_t)*o->step * 65536 + (uint64_t)a));
        res.loss += ct_model_forward_train(m, &mb);
        // multi-token prediction: each depth's mean, weighted by the micro-batch's share as the main loss
        for (int k = 0; k < m->config.mtp_depth; k++) res.mtp_loss[k] += m->mtp_loss[k];
        if (a == o->set.accum - 1) ct_grad_sync_arm(o->sync, m);  // the gradients are complete as this backward ends
        ct_model_backward(m);
    }
    ct_grad_sync_backward_done(o->sync, m);
    res.mtp_depth = m->config.mtp_depth;
    if (res.mtp_depth) ct_dist_allreduce_sum_f64(res.mtp_loss, res.mtp_depth);
    return res;
}

// The validation loss, and with multi-token prediction each depth's (o->val_mtp_loss): every
// loss is the mean over the tokens it counted across the batches and ranks, as the main one.
double ct_lm_evaluate(CtObjectiveRun *o, int *failed) {
    uint64_t n = ct_objective_val_start(o);
    const int D = o->model->mtp_weight != 0 ? o->model->config.mtp_depth : 0;  // the modules run with λ > 0
    double sum = 0, count = 0;
    double depth[2 * CT_MODEL_MAX_MTP_DEPTH + 2] = {0};  // Σ loss·count, Σ count per depth; the main pair last
    o->val_mtp_depth = 0;
    for (uint64_t i = 0; i < n; i++) {
        const CtLoaderBatch *b;
        if (ct_loader_next(o->val, &b) != 0) {
            *failed = 1;
            ct_error_prefix("validation: ");
            return NAN;
        }
        // As the step sees it: sft's packed examples apart.
        CtBatch mb = {.tokens = b->tokens, .targets = b->targets, .loss_mask = b->loss_mask, .B = b->rows, .T = b->T};
        if (o->set.with_docs) {
            mb.doc_ids = b->doc_ids;
            mb.positions = b->positions;
        }
        float loss = ct_model_forward(o->model, &mb);
        sum += (double)loss * o->model->loss_count;
        count += o->model->loss_count;
        for (int k = 0; k < D; k++) {
            depth[2 * k] += (double)o->model->mtp_loss[k] * o->model->mtp_loss_count[k];
            depth[2 * k + 1] += o->model->mtp_loss_count[k];
        }
    }
    depth[2 * D] = sum;
    depth[2 * D + 1] = count;
    ct_dist_allreduce_sum_f64(depth, 2 * D + 2);
    for (int k = 0; k < D; k++) o->val_mtp_loss[k] = depth[2 * k + 1] > 0 ? depth[2 * k] / depth[2 * k + 1] : NAN;
    o->val_mtp_depth = D;
    return depth[2 * D + 1] > 0 ? depth[2 * D] / depth[2 * D + 1] : NAN;
}

const CtObjective ct_objective_lm = {
    .name = "pretrain", .data_kind = CT_SHARD_TEXT, .cross_entropy = 1, .text_samples = 1,
    .step = ct_lm_step, .evaluate = ct_lm_evaluate,
};
