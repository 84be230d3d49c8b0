// The entry point of a training run: the ranks, the backend, then setup, start, the loop
// (train/loop/train_run.h) and teardown, with the exit status and the error printed once.
#include "train/loop/pretrain.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "kernels/cpu/cpu_ops.h"
#include "train/dist/dist.h"
#include "train/loop/train_common.h"
#include "train/loop/train_run.h"

static int fail(void) {
    fflush(stdout);
    fprintf(stderr, "ctrain: %s\n", ct_error_message());
    return 1;
}

int ct_pretrain(const CtPretrainJob *job) {
    CtRun r;
    memset(&r, 0, sizeof r);
    r.cfg = job->config;
    r.kind = job->objective;
    r.config_json = job->config_json;
    r.resume_dir = job->resume_dir;
    r.stop_after = job->stop_after;
    r.objective = ct_objective_for(job->objective);
    r.name = r.objective->name;
    r.best_val = INFINITY;
    r.last_val = r.last_loss = r.last_exact_match = r.unigram = NAN;
    // Data parallel (train/dist/dist.h): every rank runs this loop; rank 0 alone prints and writes.
    if (ct_dist_init() != 0) return fail();
    r.lead = ct_dist_rank() == 0, r.world = ct_dist_world();
    if (!r.lead) ct_log_set_level(CT_LOG_QUIET);
    if (!(r.ops = ct_train_select_ops(r.cfg))) return fail();
    r.threads = ct_cpu_set_threads(r.cfg->run.threads);
    int ready = ct_train_setup(&r);  // 1: a resumed run with nothing to do
    int status = ready < 0 ? 1 : ready == 1 ? 0 : ct_train_start(&r) != 0 ? 1 : ct_train_run(&r);
    if (status == 1) fail();
    if (status == 1 && r.world > 1) ct_dist_abort(1);  // the other ranks would wait for this one forever
    ct_train_catch_signals(0);
    ct_train_free(&r);
    ct_dist_finalize();
    return status;
}
