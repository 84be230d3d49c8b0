// How one rank's gradients become the step's and the parameters move, whatever the setup: one
// process; data parallel through MPI on host buffers; NCCL on GPUs, all-reduced in buckets while
// the last micro-batch's backward still runs (overlap); or ZeRO-1, where each rank reduce-scatters
// the gradients, clips with the global norm and updates only its slice of the AdamW state
// (train/dist/zero.h). The training loop calls the same four functions in every case:
// arm (before the last backward), reduce, clip, update.
#pragma once
#include <stddef.h>

#include "kernels/ops.h"
#include "optim/adamw.h"
#include "train/dist/grad_buckets.h"
#include "train/dist/zero.h"
#include "train/model/model.h"

typedef struct {
    const CtOps *ops;  // the backend the model trains on
    int world;
    int nccl;          // GPU gradients go through NCCL (train/dist/dist_nccl.h)
    int overlap;       // ... in buckets, as the last micro-batch's backward finishes them
    int gpu;           // the device index this rank trains on
    CtGradBuckets buckets;
    CtZero zero;       // optim.zero 1: this rank's slice of the AdamW state
    int have_zero;
    int armed, reduced;  // the coming backward all-reduces in buckets / the step's gradients are summed
    CtModel *model;      // the model whose backward reports its final gradients (while armed)
} CtGradSync;

// Before anything is allocated on a GPU: NCCL starts (it picks this rank's GPU from its
// node-local rank), or without NCCL each rank takes its own GPU (its node-local rank modulo the
// GPUs); every rank stops when one cannot. 0, or -1 + error.
int ct_grad_sync_pick_gpu(CtGradSync *s, const CtOps *ops);
// Once the model is on its device: the overlap's buckets (full training with NCCL, no ZeRO-1).
void ct_grad_sync_plan_overlap(CtGradSync *s, CtModel *m, int zero);
// ZeRO-1: every rank keeps only its slice of opt's state (released from opt). 0, or -1 + error.
int ct_grad_sync_init_zero(CtGradSync *s, CtAdamW *opt, const CtModel *m);
void ct_grad_sync_free(CtGradSync *s);

// Call before the backward that completes the step's gradients: with the overlap, their
// all-reduce starts bucket by bucket as that backward finishes them.
void ct_grad_sync_arm(CtGradSync *s, CtModel *m);
// After that backward: waits until every bucket is out (no MPI collective may come before).
void ct_grad_sync_backward_done(CtGradSync *s, CtModel *m);
// The step's gradients summed over the ranks (unless the overlap did it, or ZeRO-1 does it in
// ct_grad_sync_clip); nothing to do on one process without NCCL.
void ct_grad_sync_reduce(CtGradSync *s, CtModel *m);
// The gradient norm before clipping to max_norm (over every rank's slice with ZeRO-1).
double ct_grad_sync_clip(CtGradSync *s, CtModel *m, double max_norm);
// The AdamW step of the trained parameters (this rank's slice with ZeRO-1, then gathered).
void ct_grad_sync_update(CtGradSync *s, CtModel *m, CtAdamW *opt);
// Around a checkpoint: ZeRO-1 gathers the whole state into opt on rank 0, and frees it after.
void ct_grad_sync_gather_state(CtGradSync *s, CtAdamW *opt);
void ct_grad_sync_release_state(CtGradSync *s, CtAdamW *opt);
