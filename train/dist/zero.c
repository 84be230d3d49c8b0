// ZeRO stage 1's collectives around the sharded state of optim/zero.h. See train/dist/zero.h.
#include "train/dist/zero.h"

#include <math.h>
#include <string.h>

#include "core/error.h"
#include "train/dist/dist.h"
#include "train/dist/dist_nccl.h"

int ct_zero_init(CtZero *z, const CtAdamW *full, const CtOps *ops) {
    if (!ops->host_memory && !ct_nccl_built()) {
        memset(z, 0, sizeof *z);
        return ct_error_set("optim.zero = 1 on a GPU needs NCCL, and this ctrain was built without it: install NCCL "
                            "(libnccl-dev) and rebuild with make CUDA=1, or set optim.zero = 0");
    }
    return ct_zero_init_slice(z, full, ops, ct_dist_rank(), ct_dist_world());
}

double ct_zero_reduce_clip(CtZero *z, float *grads, double max_norm) {
    float *slice = ct_zero_grad_slice(z, grads);
    if (z->on_device)
        ct_nccl_reduce_scatter_sum_f32(grads, slice, z->padded);  // returns when done: MPI may follow
    else
        ct_dist_reduce_scatter_sum_f32(grads, slice, z->counts);
    double sq = ct_zero_slice_norm_sq(z, slice);
    ct_dist_allreduce_sum_f64(&sq, 1);
    const double norm = sqrt(sq);
    ct_zero_clip_slice(z, slice, norm, max_norm);
    return norm;
}

void ct_zero_update(CtZero *z, float *params, float *grads, double lr) {
    ct_zero_step_slice(z, params, grads, lr);
    if (z->on_device) {
        ct_nccl_allgather_f32(params, z->padded);
        ct_zero_refresh_weight_copy(z, params);
    } else {
        ct_dist_allgather_f32(params, z->counts);
    }
}

void ct_zero_gather_state(const CtZero *z, CtAdamW *full, int root) {
    const int is_root = ct_dist_rank() == root;
    CT_CHECK(full->n == z->n, "gather into the CtAdamW that ct_zero_init took its slice from");
    if (is_root) ct_zero_alloc_state(z, full);
    CtAdamW slice = ct_zero_host_slice(z);
    ct_dist_gather_f32(slice.m, is_root ? full->m : NULL, z->counts, root);
    ct_dist_gather_f32(slice.v, is_root ? full->v : NULL, z->counts, root);
    ct_zero_host_slice_free(z, &slice);
    full->step = z->opt.step;
}
