#include "train/dist/grad_sync.h"

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/device.h"
#include "optim/clip.h"
#include "train/dist/dist.h"
#include "train/dist/dist_nccl.h"

// Without NCCL each rank still takes its own GPU (its node-local rank modulo the GPUs) and
// the gradients go through the host; every rank stops when one cannot.
static int pick_gpu_without_nccl(CtGradSync *s) {
    char why[256] = "";
    int count = ct_cuda_device_count(why, sizeof why);
    s->gpu = count > 0 ? ct_dist_local_rank() % count : 0;
    int failed = count > 0 && ct_cuda_use_device(s->gpu, why, sizeof why) != 0;
    if (ct_dist_any(failed))
        return ct_error_set("rank %d: %s", ct_dist_rank(), failed ? why : "another rank could not pick its GPU");
    return 0;
}

int ct_grad_sync_pick_gpu(CtGradSync *s, const CtOps *ops) {
    s->ops = ops;
    // NCCL carries the gradients between GPUs (one rank too: the same code runs); it picks
    // this rank's GPU from its node-local rank, so it starts before anything is allocated there.
    if (ct_nccl_built()) {
        if (ct_nccl_init() != 0) return -1;
        s->nccl = 1;
        s->gpu = ct_nccl_device();
        return 0;
    }
    return pick_gpu_without_nccl(s);
}

void ct_grad_sync_plan_overlap(CtGradSync *s, CtModel *m, int zero) {
    // Full training (not LoRA: its few adapter gradients go in one call) overlaps the
    // all-reduce with backward. ZeRO-1 reduce-scatters after backward instead.
    s->overlap = s->nccl && !m->lora && !zero;
    if (s->overlap) ct_grad_buckets_init(&s->buckets, m->n_train, 0);
}

int ct_grad_sync_init_zero(CtGradSync *s, CtAdamW *opt, const CtModel *m) {
    if (ct_zero_init(&s->zero, opt, s->ops) != 0) return -1;
    s->have_zero = 1;
    ct_zero_refresh_weight_copy(&s->zero, m->train_params);  // resumed: the bf16 copy its last step wrote
    ct_zero_release_state(opt);
    return 0;
}

void ct_grad_sync_free(CtGradSync *s) {
    if (s->have_zero) ct_zero_free(&s->zero);
    if (s->nccl) ct_nccl_finalize();
}

// The model's backward reports how far its gradients are final (CtModel.grads_final): the
// buckets wholly past that point start their all-reduce on NCCL's stream at once.
static void buckets_ready(void *ctx, size_t final_from) {
    CtGradSync *s = ctx;
    ct_nccl_buckets_ready_from(&s->buckets, s->model->train_grads, final_from, CT_NCCL_SUM);
}

void ct_grad_sync_arm(CtGradSync *s, CtModel *m) {
    if (!s->overlap) return;
    ct_grad_buckets_restart(&s->buckets);
    s->model = m;
    s->armed = 1;
    m->grads_final = buckets_ready;
    m->grads_final_ctx = s;
}

void ct_grad_sync_backward_done(CtGradSync *s, CtModel *m) {
    m->grads_final = NULL;
    if (!s->armed) return;
    ct_nccl_wait_all();  // every bucket is out now (the last report is 0)
    s->armed = 0;
    s->reduced = 1;
}

// Data parallel: the gradients summed over ranks: NCCL on GPUs; MPI on host buffers, so a GPU
// build without NCCL goes through the host.
static void allreduce_grads(CtGradSync *s, CtModel *m) {
    if (s->nccl) {
        ct_nccl_allreduce_sum_f32(m->train_grads, m->n_train);
        return;
    }
    if (s->ops->host_memory) {
        ct_dist_allreduce_sum_f32(m->train_grads, m->n_train);
        return;
    }
    float *host = ct_alloc(m->n_train * sizeof(float));
    s->ops->download(host, m->train_grads, m->n_train * sizeof(float));
    ct_dist_allreduce_sum_f32(host, m->n_train);
    s->ops->upload(m->train_grads, host, m->n_train * sizeof(float));
    ct_free(host);
}

void ct_grad_sync_reduce(CtGradSync *s, CtModel *m) {
    if (!s->have_zero && !s->reduced && (s->world > 1 || s->nccl)) allreduce_grads(s, m);
    s->reduced = 0;
}

double ct_grad_sync_clip(CtGradSync *s, CtModel *m, double max_norm) {
    return s->have_zero ? ct_zero_reduce_clip(&s->zero, m->train_grads, max_norm)
                        : ct_clip_grad_norm_on(s->ops, m->train_grads, m->n_train, max_norm);
}

void ct_grad_sync_update(CtGradSync *s, CtModel *m, CtAdamW *opt) {
    if (s->have_zero)
        ct_zero_update(&s->zero, m->train_params, m->train_grads, opt->lr);
    else
        ct_adamw_step(opt, m->train_params, m->train_grads);
}

void ct_grad_sync_gather_state(CtGradSync *s, CtAdamW *opt) {
    if (s->have_zero) ct_zero_gather_state(&s->zero, opt, 0);  // ZeRO-1: the whole state on rank 0
}

void ct_grad_sync_release_state(CtGradSync *s, CtAdamW *opt) {
    if (s->have_zero) ct_zero_release_state(opt);  // the gathered copy was for the file
}
