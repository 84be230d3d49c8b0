// NCCL collectives over GPU buffers (see train/dist/dist_nccl.h). Plain C against cuda_runtime.h and
// nccl.h, compiled only with make CUDA=1 and NCCL found (CTRAIN_NCCL); otherwise the stubs at
// the end. Not a .cu file: nothing here runs on the GPU, and the CPU emulation of the CUDA
// backend (tests/test_cuda_emu) compiles every .cu file, which it could not do for this one.
#include "train/dist/dist_nccl.h"

#include "core/error.h"

#ifdef CTRAIN_NCCL
#include <cuda_runtime.h>
#include <errno.h>
#include <math.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "train/dist/dist.h"

#define DEFAULT_STREAM ((cudaStream_t)0)  // the legacy default stream, where every op of the CUDA backend runs
#define DEFAULT_TIMEOUT_S 600.0

static struct {
    int ready, rank, world, device;
    double timeout_s;     // CTRAIN_NCCL_TIMEOUT; 0: no deadline
    ncclComm_t comm;      // non-blocking
    cudaStream_t stream;  // NCCL's, created non-blocking (no implicit sync with the default stream)
    cudaEvent_t queued;   // recorded on the default stream before each collective; the NCCL stream waits for it
    cudaEvent_t done;     // recorded on the NCCL stream by wait_all; the default stream waits for it
    int pending;          // collectives queued since the last wait
    char last[96];        // the last one queued, for messages
} nc = {.device = -1};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// Between polls: short enough not to delay a step (a bucket's all-reduce takes milliseconds),
// long enough not to take a core from the CPU side of the step.
static void nap(void) { nanosleep(&(struct timespec){0, 20000}, NULL); }

// ---- fatal errors (ct_fatal_at): the line names the rank, the communicator is aborted first,
// so no collective waits on this rank, then the whole job ends (one rank's exit would leave the
// others in their collectives) ----

static const char *TIMEOUT_HINT =
    "every rank must reach the same collectives: look for another rank's error above (or one that was killed); "
    "NCCL_DEBUG=INFO shows what NCCL did; for very long steps raise CTRAIN_NCCL_TIMEOUT (seconds)";

static const char *cuda_hint(cudaError_t e) {
    switch (e) {
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
        return "is there an NVIDIA GPU with a recent driver on this machine (nvidia-smi)?";
    case cudaErrorMemoryAllocation:
        return "the GPU is out of memory: use a smaller batch, or shard the optimizer state (optim.zero 1)";
    case cudaErrorInvalidDevice:
        return "this rank's GPU is not visible: check CUDA_VISIBLE_DEVICES";
    default:
        return "CUDA reported an error; rerun with CTRAIN_CUDA_SYNC=1 to name the kernel that caused it";
    }
}

static const char *nccl_hint(ncclResult_t r) {
    switch (r) {
    case ncclUnhandledCudaError:
        return "a CUDA call inside NCCL failed: check the GPU (nvidia-smi) and rerun with NCCL_DEBUG=WARN";
    case ncclSystemError:
        return "a system call inside NCCL failed (network, shared memory): check NCCL_SOCKET_IFNAME, the size of "
               "/dev/shm in containers, and rerun with NCCL_DEBUG=INFO";
    case ncclInternalError:
        return "an internal NCCL error: rerun with NCCL_DEBUG=INFO and report it with that output";
    case ncclInvalidArgument:
        return "NCCL refused an argument: a bug in ctrain, please report it with NCCL_DEBUG=WARN output";
    case ncclInvalidUsage:
        return "NCCL refused how it was used; the usual cause is two ranks on one GPU (NCCL_DEBUG=WARN says "
               "'Duplicate GPU detected'): run at most as many ranks per machine as it has GPUs";
    case ncclRemoteError:
        return "another rank failed or its network link went down: look for that rank's message";
    default:
        return "rerun with NCCL_DEBUG=INFO to see what NCCL did";
    }
}

// ct_fatal_at's ending once NCCL runs (ct_nccl_init sets it with the rank as the line's prefix).
static void end_job(void) {
    if (nc.comm) ncclCommAbort(nc.comm);
    nc.comm = NULL;
    ct_dist_abort(1);
}

static void cuda_check(cudaError_t e, const char *call, const char *file, int line) {
    if (e != cudaSuccess)
        ct_fatal_at(file, line, cuda_hint(e), "CUDA call failed: %s: %s (%s)", call, cudaGetErrorString(e),
                    cudaGetErrorName(e));
}
#define CUDA_CHECK(call) cuda_check((call), #call, __FILE__, __LINE__)

// In non-blocking mode a call may return ncclInProgress: the communicator's state must then be
// polled until it is no longer in progress before the next NCCL call or CUDA work on its
// stream (NCCL user guide, "Fault Tolerance"). Returns the settled state, or ncclInProgress
// when the deadline (0: none) passed first.
static ncclResult_t settle(ncclResult_t r, double deadline) {
    while (r == ncclInProgress) {
        if (deadline > 0 && now() > deadline) return ncclInProgress;
        nap();
        ncclResult_t state = ncclSuccess, q = ncclCommGetAsyncError(nc.comm, &state);
        r = q != ncclSuccess ? q : state;
    }
    return r;
}

static double deadline_from_now(void) { return nc.timeout_s > 0 ? now() + nc.timeout_s : 0; }

static void nccl_check(ncclResult_t r, const char *call, const char *file, int line) {
    r = settle(r, deadline_from_now());
    if (r == ncclInProgress)
        ct_fatal_at(file, line, TIMEOUT_HINT, "%s did not finish within %g s (CTRAIN_NCCL_TIMEOUT)", call,
                    nc.timeout_s);
    if (r != ncclSuccess)
        ct_fatal_at(file, line, nccl_hint(r), "NCCL call failed: %s: %s (%s)", call, ncclGetErrorString(r),
                    ncclGetLastError(nc.comm));
}
#define NCCL_CHECK(call) nccl_check((call), #call, __FILE__, __LINE__)

// The watchdog: waits for event `ev` on the NCCL stream while polling the communicator for
// asynchronous errors (a peer that failed, a broken link) and the deadline.
static void watch(cudaEvent_t ev, const char *file, int line) {
    const double start = now();
    for (;;) {
        cudaError_t q = cudaEventQuery(ev);
        if (q == cudaSuccess) return;
        if (q != cudaErrorNotReady) cuda_check(q, "cudaEventQuery(collectives done)", file, line);
        ncclResult_t state = ncclSuccess, r = ncclCommGetAsyncError(nc.comm, &state);
        if (r == ncclSuccess) r = state;
        if (r != ncclSuccess && r != ncclInProgress)
            ct_fatal_at(file, line, nccl_hint(r), "NCCL failed in %d queued collective%s (the last: %s): %s (%s)",
                        nc.pending, nc.pending == 1 ? "" : "s", nc.last, ncclGetErrorString(r),
                        ncclGetLastError(nc.comm));
        if (nc.timeout_s > 0 && now() - start > nc.timeout_s)
            ct_fatal_at(file, line, TIMEOUT_HINT,
                        "%d queued collective%s (the last: %s) did not finish within %g s (CTRAIN_NCCL_TIMEOUT)",
                        nc.pending, nc.pending == 1 ? "" : "s", nc.last, nc.timeout_s);
        nap();
    }
}

// ---- setup ----

static int parse_timeout(double *seconds) {
    *seconds = DEFAULT_TIMEOUT_S;
    const char *s = getenv("CTRAIN_NCCL_TIMEOUT");
    if (!s || !*s) return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < 0)
        return ct_error_set("CTRAIN_NCCL_TIMEOUT=%s: expected seconds, a number >= 0 (0 waits forever)", s);
    *seconds = v;
    return 0;
}

// This rank's GPU: local rank modulo the visible GPUs. "" in why, or the reason it has none.
static void pick_device(char *why, size_t size) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        snprintf(why, size, "no usable CUDA device (%s): is there an NVIDIA GPU with a recent driver?",
                 cudaGetErrorString(e));
        cudaGetLastError();
        return;
    }
    if (count == 0) {
        snprintf(why, size, "no CUDA device is visible (check CUDA_VISIBLE_DEVICES and the driver)");
        return;
    }
    nc.device = ct_dist_local_rank() % count;
    e = cudaSetDevice(nc.device);
    if (e != cudaSuccess) snprintf(why, size, "cudaSetDevice(%d) failed: %s", nc.device, cudaGetErrorString(e));
}

static int init_failed(const char *call, cudaError_t e) {
    ct_error_set("nccl: rank %d: %s failed: %s (%s)", nc.rank, call, cudaGetErrorString(e), cudaGetErrorName(e));
    if (nc.comm) ncclCommAbort(nc.comm);
    nc.comm = NULL;
    return -1;
}

int ct_nccl_init(void) {
    if (nc.ready) return 0;
    nc.rank = ct_dist_rank();
    nc.world = ct_dist_world();
    if (parse_timeout(&nc.timeout_s) != 0) return -1;
    // Every rank picks its GPU; all fail together when one cannot (the others would wait in
    // the communicator's setup for it).
    char why[512] = "";
    pick_device(why, sizeof why);
    if (ct_dist_any(why[0] != 0)) {
        nc.device = -1;
        return ct_error_set("nccl: rank %d: %s", nc.rank,
                            why[0] ? why : "another rank could not pick its GPU (see its message)");
    }
    // Bootstrap over MPI: rank 0's unique id (and whether it could make one) to every rank.
    struct {
        int result;
        ncclUniqueId id;
    } boot;
    memset(&boot, 0, sizeof boot);
    if (nc.rank == 0) boot.result = (int)ncclGetUniqueId(&boot.id);
    ct_dist_broadcast(&boot, sizeof boot, 0);
    if (boot.result != ncclSuccess)
        return ct_error_set("nccl: ncclGetUniqueId failed on rank 0: %s; hint: it listens on a network interface: "
                            "name one with NCCL_SOCKET_IFNAME (NCCL_DEBUG=INFO lists what it tried)",
                            ncclGetErrorString((ncclResult_t)boot.result));
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;  // no NCCL call blocks the host: the watchdog can see a hang and abort
    ncclResult_t r = ncclCommInitRankConfig(&nc.comm, nc.world, boot.id, nc.rank, &config);
    r = settle(r, deadline_from_now());
    if (r != ncclSuccess) {
        if (r == ncclInProgress)
            ct_error_set("nccl: rank %d of %d: joining the communicator took more than %g s (CTRAIN_NCCL_TIMEOUT); "
                         "hint: %s",
                         nc.rank, nc.world, nc.timeout_s, TIMEOUT_HINT);
        else
            ct_error_set("nccl: rank %d of %d on GPU %d: ncclCommInitRankConfig failed: %s (%s); hint: %s", nc.rank,
                         nc.world, nc.device, ncclGetErrorString(r), ncclGetLastError(nc.comm), nccl_hint(r));
        if (nc.comm) ncclCommAbort(nc.comm);
        nc.comm = NULL;
        return -1;
    }
    cudaError_t e;
    if ((e = cudaStreamCreateWithFlags(&nc.stream, cudaStreamNonBlocking)) != cudaSuccess)
        return init_failed("cudaStreamCreateWithFlags", e);
    if ((e = cudaEventCreateWithFlags(&nc.queued, cudaEventDisableTiming)) != cudaSuccess ||
        (e = cudaEventCreateWithFlags(&nc.done, cudaEventDisableTiming)) != cudaSuccess)
        return init_failed("cudaEventCreateWithFlags", e);
    nc.ready = 1;
    nc.pending = 0;
    char who[64];
    snprintf(who, sizeof who, "rank %d of %d", nc.rank, nc.world);
    ct_fatal_set_context(who, end_job);
    const int version = ct_nccl_version();
    struct cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, nc.device) != cudaSuccess) snprintf(prop.name, sizeof prop.name, "?");
    ct_log("nccl %d.%d.%d: %d rank%s, rank %d on GPU %d (%s), collective timeout %g s", version / 10000,
           version / 100 % 100, version % 100, nc.world, nc.world == 1 ? "" : "s", nc.rank, nc.device, prop.name,
           nc.timeout_s);
    return 0;
}

void ct_nccl_finalize(void) {
    if (!nc.ready) return;
    ct_nccl_wait_all();
    NCCL_CHECK(ncclCommFinalize(nc.comm));  // flushes and waits for the peers (settled by polling)
    ncclResult_t r = ncclCommDestroy(nc.comm);
    if (r != ncclSuccess)
        ct_fatal_at(__FILE__, __LINE__, nccl_hint(r), "NCCL call failed: ncclCommDestroy: %s", ncclGetErrorString(r));
    nc.comm = NULL;
    CUDA_CHECK(cudaEventDestroy(nc.queued));
    CUDA_CHECK(cudaEventDestroy(nc.done));
    CUDA_CHECK(cudaStreamDestroy(nc.stream));
    nc.ready = 0;
    nc.device = -1;
}

int ct_nccl_built(void) { return 1; }
int ct_nccl_version(void) {
    int version = 0;
    return ncclGetVersion(&version) == ncclSuccess ? version : 0;
}
int ct_nccl_device(void) { return nc.device; }

// ---- collectives ----

static void need_ready(const char *what) {
    if (!nc.ready) CT_FATAL("call ct_nccl_init() first (a bug in ctrain)", "%s before ct_nccl_init", what);
}

// The next collective on the NCCL stream starts after the work queued so far on the default stream.
static void after_default_stream(void) {
    CUDA_CHECK(cudaEventRecord(nc.queued, DEFAULT_STREAM));
    CUDA_CHECK(cudaStreamWaitEvent(nc.stream, nc.queued, 0));
}

void ct_nccl_bucket_ready(float *d, size_t n, CtNcclReduce op) {
    need_ready("ct_nccl_bucket_ready");
    if (n == 0) return;
    after_default_stream();
    NCCL_CHECK(ncclAllReduce(d, d, n, ncclFloat32, op == CT_NCCL_MEAN ? ncclAvg : ncclSum, nc.comm, nc.stream));
    snprintf(nc.last, sizeof nc.last, "all-reduce of %zu floats", n);
    nc.pending++;
}

void ct_nccl_wait_all(void) {
    need_ready("ct_nccl_wait_all");
    if (!nc.pending) return;
    CUDA_CHECK(cudaEventRecord(nc.done, nc.stream));
    CUDA_CHECK(cudaStreamWaitEvent(DEFAULT_STREAM, nc.done, 0));
    watch(nc.done, __FILE__, __LINE__);
    nc.pending = 0;
}

void ct_nccl_allreduce_sum_f32(float *d, size_t n) {
    ct_nccl_bucket_ready(d, n, CT_NCCL_SUM);
    ct_nccl_wait_all();
}

void ct_nccl_allreduce_mean_f32(float *d, size_t n) {
    ct_nccl_bucket_ready(d, n, CT_NCCL_MEAN);
    ct_nccl_wait_all();
}

static size_t shard_of(size_t padded, const char *what) {
    need_ready(what);
    if (padded % (size_t)nc.world)
        CT_FATAL("pad the buffer to ct_zero_padded_count(n, world) floats (a bug in ctrain)",
                 "%s of %zu floats, not a multiple of the %d ranks", what, padded, nc.world);
    return padded / (size_t)nc.world;
}

void ct_nccl_reduce_scatter_sum_f32(const float *full, float *mine, size_t padded) {
    const size_t shard = shard_of(padded, "ct_nccl_reduce_scatter_sum_f32");
    if (shard == 0) return;
    after_default_stream();
    NCCL_CHECK(ncclReduceScatter(full, mine, shard, ncclFloat32, ncclSum, nc.comm, nc.stream));
    snprintf(nc.last, sizeof nc.last, "reduce-scatter of %zu floats", padded);
    nc.pending++;
    ct_nccl_wait_all();
}

void ct_nccl_allgather_f32(float *full, size_t padded) {
    const size_t shard = shard_of(padded, "ct_nccl_allgather_f32");
    if (shard == 0) return;
    after_default_stream();
    NCCL_CHECK(ncclAllGather(full + (size_t)nc.rank * shard, full, shard, ncclFloat32, nc.comm, nc.stream));
    snprintf(nc.last, sizeof nc.last, "all-gather of %zu floats", padded);
    nc.pending++;
    ct_nccl_wait_all();
}

#else  // no NCCL in this build: ct_nccl_init says so, nothing else may be called

int ct_nccl_built(void) { return 0; }
int ct_nccl_version(void) { return 0; }
int ct_nccl_init(void) {
#ifdef CTRAIN_CUDA
    return ct_error_set("this ctrain was built with CUDA but without NCCL (NCCL=0, or nccl.h not found): multi-GPU "
                        "training needs it; install NCCL (libnccl-dev) and rebuild with make CUDA=1");
#else
    return ct_error_set("this ctrain was built without CUDA and NCCL: rebuild with make CUDA=1 where nvcc and NCCL "
                        "are installed");
#endif
}
void ct_nccl_finalize(void) {}
int ct_nccl_device(void) { return -1; }

static _Noreturn void not_built(const char *what) {
    CT_FATAL("ct_nccl_init() fails in builds without NCCL: check its result (a bug in ctrain)",
             "%s in a build without NCCL", what);
}
void ct_nccl_allreduce_sum_f32(float *d, size_t n) { (void)d, (void)n, not_built(__func__); }
void ct_nccl_allreduce_mean_f32(float *d, size_t n) { (void)d, (void)n, not_built(__func__); }
void ct_nccl_bucket_ready(float *d, size_t n, CtNcclReduce op) { (void)d, (void)n, (void)op, not_built(__func__); }
void ct_nccl_wait_all(void) { not_built(__func__); }
void ct_nccl_reduce_scatter_sum_f32(const float *full, float *mine, size_t padded) {
    (void)full, (void)mine, (void)padded, not_built(__func__);
}
void ct_nccl_allgather_f32(float *full, size_t padded) { (void)full, (void)padded, not_built(__func__); }

#endif

void ct_nccl_buckets_ready_from(CtGradBuckets *b, float *grads, size_t final_from, CtNcclReduce op) {
    size_t begin, count;
    while (ct_grad_buckets_take(b, final_from, &begin, &count)) ct_nccl_bucket_ready(grads + begin, count, op);
}
