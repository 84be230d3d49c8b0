// Collectives over GPU buffers with NCCL (issue 10): the GPU half of data parallelism, next to
// the MPI half of train/dist/dist.h, which launches the ranks and bootstraps NCCL (rank 0 makes an
// ncclUniqueId and broadcasts it over MPI). Without MPI the process is one rank, and NCCL still
// runs (a communicator of one), so the same code path works on one GPU.
//
// Streams. Every op of the CUDA backend runs on the legacy default stream (kernels/cuda/
// cuda_ops.h). NCCL runs on a stream of its own, created non-blocking so it does not serialise
// with the default stream: a collective waits (through an event) for the work queued on the
// default stream before it, and ct_nccl_wait_all() makes the default stream's later work wait
// for every collective queued so far. That is what lets the all-reduce of the last layers'
// gradients run while backward computes the earlier layers' (train/dist/grad_buckets.h).
//
// Faults. The communicator is non-blocking (ncclConfig_t.blocking = 0), so no NCCL call can
// hang the host: every wait polls ncclCommGetAsyncError and the stream with a deadline,
// CTRAIN_NCCL_TIMEOUT seconds (default 600; 0 waits forever). An NCCL error or a collective
// past the deadline (a rank died, stopped, or took another branch) aborts the communicator and
// ends the job (ct_dist_abort) with a line naming the rank. CUDA and NCCL failures are fatal
// with file:line, the call, the error string and a hint, as in the CUDA backend.
//
// Every function must be called by every rank, in the same order, with the same counts.
// Builds without NCCL (CPU-only, or make NCCL=0) have the same functions: ct_nccl_init()
// fails with a message saying so, and the others must not be called.
#pragma once
#include <stddef.h>

#include "train/dist/grad_buckets.h"

typedef enum { CT_NCCL_SUM = 0, CT_NCCL_MEAN = 1 } CtNcclReduce;  // mean: ncclAvg, Σ / world

int ct_nccl_built(void);    // 1 when this binary has NCCL
int ct_nccl_version(void);  // the loaded library's, ncclGetVersion's code (22809: 2.28.9); 0 without NCCL
// Picks this rank's GPU (cudaSetDevice(ct_dist_local_rank() % visible GPUs): one GPU per rank,
// and one visible GPU per rank when a launcher sets CUDA_VISIBLE_DEVICES per rank), joins the
// communicator, creates the communication stream. Call after ct_dist_init() and before anything
// allocates on the GPU. Idempotent. 0, or -1 + error (every rank fails together when one cannot
// pick its GPU; a failed NCCL setup may fail on some ranks only: end the job with ct_dist_abort).
int ct_nccl_init(void);
// Waits for the queued collectives and leaves the communicator (every rank, on success paths).
void ct_nccl_finalize(void);
int ct_nccl_device(void);  // the GPU this rank uses; -1 before ct_nccl_init

// In place over all ranks, ordered after the work queued on the default stream; returns when
// done (so the result may be read or copied to the host at once).
void ct_nccl_allreduce_sum_f32(float *d, size_t n);
void ct_nccl_allreduce_mean_f32(float *d, size_t n);

// Overlapping communication with backward. A bucket of gradients is final once backward has
// queued the last kernel that writes it: ct_nccl_bucket_ready() queues its in-place all-reduce
// on the communication stream, after that kernel, and returns at once; the default stream goes
// on with backward. ct_nccl_wait_all() makes the default stream wait for every collective
// queued so far and returns when they are done (with the watchdog). Nothing may write a
// bucket between its bucket_ready and the wait_all. No MPI collective (ct_dist_*) either: a
// host call that waits for the GPU (cudaFree, cudaDeviceSynchronize, the CUDA backend growing
// its scratch) would wait for this rank's queued collectives, hence for the peers, while a peer
// waits in MPI for this rank: a deadlock no watchdog sees.
void ct_nccl_bucket_ready(float *d, size_t n, CtNcclReduce op);
// The buckets of grads (n = b->n floats, train/dist/grad_buckets.h) that are final when every
// gradient at index >= final_from is: bucket_ready for each, last bucket first. Call from
// backward as layers finish (and with final_from = 0 at its end, before ct_nccl_wait_all).
void ct_nccl_buckets_ready_from(CtGradBuckets *b, float *grads, size_t final_from, CtNcclReduce op);
void ct_nccl_wait_all(void);

// ZeRO-1 on the GPU. NCCL's reduce-scatter and all-gather take EQUAL parts per rank, so the
// flat buffer is padded to padded = ct_zero_padded_count(n, world) floats (optim/zero.h), and
// rank r owns [r·padded/world, (r+1)·padded/world): every element has exactly one owner. The
// padding must be zeros in the gradients (allocate padded floats and clear them once).
// mine ← rank's part of Σ_ranks full (mine may be full + rank·padded/world: in place).
void ct_nccl_reduce_scatter_sum_f32(const float *full, float *mine, size_t padded);
// In place: every rank's full gets each owner's part (each rank's own part is already there).
void ct_nccl_allgather_f32(float *full, size_t padded);
