// Data parallelism: which rank of how many this process is, and the collectives the training
// loop needs. One interface, two implementations chosen at build time: MPI when mpicc builds
// (CTRAIN_MPI) and the process was launched by mpirun (or another PMI launcher); otherwise a
// single rank whose collectives are no-ops, so the loop runs the same code either way.
//
// Every collective must be called by every rank in the same order. Errors inside MPI are
// fatal for the whole job (MPI_ERRORS_ARE_FATAL), so a collective never returns a failure: a
// rank that dies makes mpirun end the others instead of leaving them waiting.
#pragma once
#include <stddef.h>
#include <stdint.h>

// Joins the job (MPI_Init_thread under a launcher; nothing otherwise). Idempotent. 0, or -1 + error.
int ct_dist_init(void);
// Leaves the job (MPI_Finalize, which synchronises): call once, on success paths only.
void ct_dist_finalize(void);
int ct_dist_rank(void);        // 0 … world-1
int ct_dist_world(void);       // ranks in the job (1 without MPI)
int ct_dist_local_rank(void);  // rank among the ranks of this machine (picks the GPU)
// In place, over all ranks: x ← Σ_ranks x.
void ct_dist_allreduce_sum_f32(float *x, size_t n);
void ct_dist_allreduce_sum_f64(double *x, size_t n);
void ct_dist_allreduce_sum_i64(int64_t *x, size_t n);
void ct_dist_allreduce_max_f64(double *x, size_t n);  // element-wise maximum (a minimum: of −x)
// 1 when `flag` is non-zero on any rank (a stop request seen by one rank stops all together).
int ct_dist_any(int flag);
// Sharded buffers (ZeRO): rank r owns counts[r] elements, after those of ranks 0 … r-1, of a
// buffer of Σ counts (counts has world entries; uneven counts need no padding).
// mine ← rank's part of Σ_ranks full.
void ct_dist_reduce_scatter_sum_f32(const float *full, float *mine, const int *counts);
// In place: every rank's full gets each owner's part (each rank's own part is already in place).
void ct_dist_allgather_f32(float *full, const int *counts);
// root's full gets every rank's `mine` (other ranks' full is not touched and may be NULL).
void ct_dist_gather_f32(const float *mine, float *full, const int *counts, int root);
// 1 when `bytes` bytes at buf are the same on every rank (compared through a 64-bit hash).
int ct_dist_same_everywhere(const void *buf, size_t bytes);
// Copies `bytes` bytes of root's buffer into every rank's.
void ct_dist_broadcast(void *buf, size_t bytes, int root);
// Ends every rank of the job with `code` (exit(code) with one rank). Does not return.
_Noreturn void ct_dist_abort(int code);
