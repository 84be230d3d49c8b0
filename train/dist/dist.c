#include "train/dist/dist.h"

#include <stdlib.h>
#include <string.h>

#ifdef CTRAIN_MPI
#include <mpi.h>
#include <stdio.h>

#include "core/alloc.h"
#include "core/error.h"

static int joined, world = 1, rank, local_rank;

// Launched by mpirun (Open MPI), or by a PMI/PMIx launcher (srun, MPICH's hydra). Without one,
// MPI_Init would start a singleton runtime: slow, and useless for one rank.
static int under_launcher(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

static void end_job(void) { ct_dist_abort(1); }

int ct_dist_init(void) {
    if (joined || !under_launcher()) return 0;
    int provided, initialised;
    MPI_Initialized(&initialised);
    // FUNNELED: only the main thread calls MPI (OpenMP workers and the loader thread never do).
    if (!initialised && MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return ct_error_set("MPI_Init_thread failed: check the mpirun launch line and the MPI installation");
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &local);
    MPI_Comm_rank(local, &local_rank);
    MPI_Comm_free(&local);
    joined = 1;
    if (world > 1) {  // a fatal error names this rank and ends every rank
        char who[64];
        snprintf(who, sizeof who, "rank %d of %d", rank, world);
        ct_fatal_set_context(who, end_job);
    }
    return 0;
}

void ct_dist_finalize(void) {
    if (!joined) return;
    ct_fatal_set_context(NULL, NULL);
    MPI_Finalize();
    joined = 0;
}

int ct_dist_rank(void) { return rank; }
int ct_dist_world(void) { return world; }
int ct_dist_local_rank(void) { return local_rank; }

// MPI counts are ints: large buffers go in chunks.
static void allreduce(void *x, size_t n, size_t elem, MPI_Datatype type, MPI_Op op) {
    if (world == 1) return;
    const size_t chunk = (size_t)1 << 30;
    for (size_t at = 0; at < n; at += chunk) {
        size_t k = n - at < chunk ? n - at : chunk;
        MPI_Allreduce(MPI_IN_PLACE, (char *)x + at * elem, (int)k, type, op, MPI_COMM_WORLD);
    }
}

void ct_dist_allreduce_sum_f32(float *x, size_t n) { allreduce(x, n, sizeof *x, MPI_FLOAT, MPI_SUM); }
void ct_dist_allreduce_sum_f64(double *x, size_t n) { allreduce(x, n, sizeof *x, MPI_DOUBLE, MPI_SUM); }
void ct_dist_allreduce_sum_i64(int64_t *x, size_t n) { allreduce(x, n, sizeof *x, MPI_INT64_T, MPI_SUM); }
void ct_dist_allreduce_max_f64(double *x, size_t n) { allreduce(x, n, sizeof *x, MPI_DOUBLE, MPI_MAX); }

int ct_dist_any(int flag) {
    int v = flag != 0;
    if (world > 1) MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
    return v;
}

void ct_dist_broadcast(void *buf, size_t bytes, int root) {
    if (world == 1) return;
    const size_t chunk = (size_t)1 << 30;
    for (size_t at = 0; at < bytes; at += chunk) {
        size_t k = bytes - at < chunk ? bytes - at : chunk;
        MPI_Bcast((char *)buf + at, (int)k, MPI_BYTE, root, MPI_COMM_WORLD);
    }
}

// Displacements of the parts: their prefix sums.
static int *displacements(const int *counts) {
    int *d = ct_alloc(sizeof(int) * (size_t)world);  // out of memory ends every rank (ct_fatal_set_context)
    for (int r = 0, at = 0; r < world; at += counts[r], r++) d[r] = at;
    return d;
}

void ct_dist_reduce_scatter_sum_f32(const float *full, float *mine, const int *counts) {
    if (world == 1) {
        if (mine != full) memmove(mine, full, sizeof(float) * (size_t)counts[0]);
        return;
    }
    MPI_Reduce_scatter(full, mine, counts, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}

void ct_dist_allgather_f32(float *full, const int *counts) {
    if (world == 1) return;
    int *d = displacements(counts);
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, full, counts, d, MPI_FLOAT, MPI_COMM_WORLD);
    ct_free(d);
}

void ct_dist_gather_f32(const float *mine, float *full, const int *counts, int root) {
    if (world == 1) {
        if (mine != full) memmove(full, mine, sizeof(float) * (size_t)counts[0]);
        return;
    }
    int *d = displacements(counts);
    MPI_Gatherv(mine, counts[rank], MPI_FLOAT, full, counts, d, MPI_FLOAT, root, MPI_COMM_WORLD);
    ct_free(d);
}

_Noreturn void ct_dist_abort(int code) {
    if (joined && world > 1) MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

#else  // one rank: every collective is the identity

int ct_dist_init(void) { return 0; }
void ct_dist_finalize(void) {}
int ct_dist_rank(void) { return 0; }
int ct_dist_world(void) { return 1; }
int ct_dist_local_rank(void) { return 0; }
void ct_dist_allreduce_sum_f32(float *x, size_t n) { (void)x, (void)n; }
void ct_dist_allreduce_sum_f64(double *x, size_t n) { (void)x, (void)n; }
void ct_dist_allreduce_sum_i64(int64_t *x, size_t n) { (void)x, (void)n; }
void ct_dist_allreduce_max_f64(double *x, size_t n) { (void)x, (void)n; }
int ct_dist_any(int flag) { return flag != 0; }
void ct_dist_broadcast(void *buf, size_t bytes, int root) { (void)buf, (void)bytes, (void)root; }
void ct_dist_reduce_scatter_sum_f32(const float *full, float *mine, const int *counts) {
    if (mine != full) memmove(mine, full, sizeof(float) * (size_t)counts[0]);
}
void ct_dist_allgather_f32(float *full, const int *counts) { (void)full, (void)counts; }
void ct_dist_gather_f32(const float *mine, float *full, const int *counts, int root) {
    (void)root;
    if (mine != full) memmove(full, mine, sizeof(float) * (size_t)counts[0]);
}
_Noreturn void ct_dist_abort(int code) { exit(code); }

#endif

int ct_dist_same_everywhere(const void *buf, size_t bytes) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (size_t i = 0; i < bytes; i++) h = (h ^ ((const unsigned char *)buf)[i]) * 1099511628211ull;
    uint64_t root = h;
    ct_dist_broadcast(&root, sizeof root, 0);
    return !ct_dist_any(root != h);
}
