// The training loop: each step takes the next micro-batches, runs the objective's step on them
// (forward and backward), sums the gradients over the ranks and clips them, steps the
// optimizer, then reports, evaluates and saves when due. What differs between pretraining, SFT
// and DPO is behind the objective (train/objectives/objective.h), what differs between one
// process, MPI, NCCL and ZeRO-1 behind train/dist/grad_sync.h; setup is train_setup.c's.
#include <math.h>
#include <signal.h>

#include "core/timer.h"
#include "train/dist/dist.h"
#include "train/loop/train_run.h"
#include "train/model/lora_tokens.h"

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig) { stop_signal = sig; }

void ct_train_catch_signals(int on) {
    signal(SIGINT, on ? on_stop_signal : SIG_DFL);
    signal(SIGTERM, on ? on_stop_signal : SIG_DFL);
}

// How many ranks received SIGINT and SIGTERM, summed over the ranks after each step, so that
// every rank stops after the same step (never on its own flag, which a signal may set later).
static int stop_requested(CtRun *r) {
    r->stop_by[0] = stop_signal == SIGINT, r->stop_by[1] = stop_signal == SIGTERM;
    ct_dist_allreduce_sum_i64(r->stop_by, 2);
    return r->stop_by[0] + r->stop_by[1] > 0;
}

static int due(int64_t step, int every) { return every && step % every == 0; }

int ct_train_run(CtRun *r) {
    const CtRunConfig *cfg = r->cfg;
    CtModel *m = &r->model;
    const int64_t max_steps = cfg->train.max_steps;
    int stopping = 0, stopped_early = 0, write_failed = 0;
    while (r->step < max_steps && !stopping && !stopped_early && !write_failed) {
        double t0 = ct_time_now();
        r->opt.lr = ct_lr_at(&r->sched, (long)r->step);
        ct_model_zero_grad(m);
        // The next batch: the step's micro-batches, this rank's rows of them.
        if (!r->objective->reads_prompts && !r->objective->own_data && ct_step_batches_fetch(&r->step_batches, &r->train) != 0) return 1;
        // The objective's step: forward and backward over them; this rank's share of the loss.
        ct_moe_step_begin(&r->moe, m);
        CtStepResult res = r->objective->step(&r->obj);
        if (res.failed) return ct_train_step_failed(r);
        ct_moe_step_end(&r->moe, m);  // Mixture of Experts: the step's routing, over every rank
        // Reduce and clip: the sums over the ranks are the step's loss and gradients.
        double loss = res.loss;
        ct_dist_allreduce_sum_f64(&loss, 1);
        ct_grad_sync_reduce(&r->sync, m);
        ct_model_set_dropout(m, 0, 0);  // evaluation and samples see the whole model
        double norm = ct_grad_sync_clip(&r->sync, m, cfg->optim.grad_clip);
        if (!isfinite(loss) || !isfinite(norm)) return ct_train_non_finite(r, loss, norm);
        // The optimizer step.
        ct_grad_sync_update(&r->sync, m, &r->opt);
        // DeepSeek-V3's auxiliary-loss-free balancing: the selection biases move toward the mean
        // load, from the whole step's counts (the same on every rank).
        if (cfg->train.aux_free_bias_rate > 0) ct_model_moe_update_bias(m, r->moe.counts, (float)cfg->train.aux_free_bias_rate);
        ct_lora_tokens_mark_changed(m);  // LoRA's trainable token rows: the base reads them anew
        r->step++;
        stopping = stop_requested(r);
        stopped_early = r->stop_after > 0 && r->step - r->first_step >= r->stop_after && r->step < max_steps;
        r->tokens_seen += r->tokens_per_step;
        r->last_loss = loss;
        int eval_now = r->have_val && (due(r->step, cfg->train.eval_every) || r->step == max_steps);
        ct_train_record_step(r, &res, loss, norm, ct_time_now() - t0, eval_now);
        // Evaluate.
        if (eval_now && ct_train_evaluate(r) != 0) return 1;
        if (r->lead && due(r->step, cfg->train.sample_every)) {
            if (r->tty) fputc('\n', stderr);
            ct_train_print_samples(r, "during training");
        }
        // Save. A metrics or plot write that failed (a full disk) stops the run after a last checkpoint, if one fits.
        write_failed = ct_dist_any(r->lead && r->metrics.failed);
        if ((due(r->step, cfg->train.save_every) || r->step == max_steps || stopping || stopped_early || write_failed) &&
            ct_train_save(r, write_failed) != 0)
            return 1;
    }
    return ct_train_finish(r, stopping, stopped_early, write_failed);
}
