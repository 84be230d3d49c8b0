// See nccl.h and emu_runtime.h: devices, streams, events and NCCL's collectives for the
// emulation. Built with MPI (CTRAIN_MPI, run.sh) the collectives are MPI's non-blocking ones
// over MPI_COMM_WORLD, completed by polling; without MPI, or in a process no launcher started,
// the communicator has one rank and they complete at once.
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "nccl.h"
#ifdef CTRAIN_MPI
#include <mpi.h>
#endif

// ---- devices ----
static int current_device;

extern "C" int ct_emu_gpu_count(void) {
    const char *s = getenv("CTRAIN_EMU_GPUS");
    int n = s && *s ? atoi(s) : 2;
    return n > 0 ? n : 0;
}

cudaError_t cudaGetDeviceCount(int *count) {
    *count = ct_emu_gpu_count();
    return *count > 0 ? cudaSuccess : cudaErrorNoDevice;
}

cudaError_t cudaSetDevice(int device) {
    if (device < 0 || device >= ct_emu_gpu_count()) return cudaErrorInvalidDevice;
    current_device = device;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device) {
    if (device < 0 || device >= ct_emu_gpu_count()) return cudaErrorInvalidDevice;
    snprintf(prop->name, sizeof prop->name, "CPU emulation, device %d", device);
    prop->totalGlobalMem = (size_t)80 << 30;
    return cudaSuccess;
}

// ---- streams and events: the collectives queued on a stream, and those an event waits for ----
struct EmuCollective {
#ifdef CTRAIN_MPI
    MPI_Request request = MPI_REQUEST_NULL;
#endif
    float *result = nullptr;  // divided by the ranks when done, for ncclAvg
    size_t count = 0;
    bool average = false, done = false;
    std::vector<float> send_copy;  // a reduce-scatter's input (MPI forbids it to overlap the output)
};
using Collective = std::shared_ptr<EmuCollective>;
struct EmuStream {
    std::vector<Collective> queued;
};
struct EmuEvent {
    std::vector<Collective> waits_for;
};

static int world_size(void);

static void finish(EmuCollective &c) {
    if (c.average)
        for (size_t i = 0; i < c.count; i++) c.result[i] /= (float)world_size();
    c.send_copy.clear();
    c.done = true;
}

static bool progress(EmuCollective &c) {
    if (c.done) return true;
#ifdef CTRAIN_MPI
    int flag = 0;
    MPI_Test(&c.request, &flag, MPI_STATUS_IGNORE);
    if (flag) finish(c);
#endif
    return c.done;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) {
    *s = new EmuStream;
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
    delete s;
    return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned) {
    *e = new EmuEvent;
    return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
    delete e;
    return cudaSuccess;
}
// The default stream's work is done when its calls return: an event on it is complete at once.
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    e->waits_for.clear();
    if (!s) return cudaSuccess;
    std::vector<Collective> pending;
    for (auto &c : s->queued)
        if (!progress(*c)) pending.push_back(c);
    s->queued = pending;
    e->waits_for = pending;
    return cudaSuccess;
}
cudaError_t cudaEventQuery(cudaEvent_t e) {
    bool all = true;
    for (auto &c : e->waits_for) all = progress(*c) && all;
    return all ? cudaSuccess : cudaErrorNotReady;
}
// Not enforced: the default stream runs each call to completion, so it cannot be held back
// until a collective is done. ctrain polls the event (the watchdog) right after this wait and
// writes no bucket in between; the emulation checks that usage, not CUDA's stream ordering.
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned) { return cudaSuccess; }

// ---- NCCL ----
struct EmuNcclComm {
    int rank, world;
};

static int world_size(void) {
#ifdef CTRAIN_MPI
    int on = 0;
    MPI_Initialized(&on);
    if (on) {
        int w = 1;
        MPI_Comm_size(MPI_COMM_WORLD, &w);
        return w;
    }
#endif
    return 1;
}

static int mpi_running(void) { return world_size() > 1; }

ncclResult_t ncclGetVersion(int *version) {
    *version = 0;  // 0.0.0: the emulation
    return ncclSuccess;
}
ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
    memset(id, 0, sizeof *id);
    snprintf(id->internal, sizeof id->internal, "emulated NCCL over MPI_COMM_WORLD");
    return ncclSuccess;
}
ncclResult_t ncclCommInitRankConfig(ncclComm_t *comm, int nranks, ncclUniqueId, int rank, ncclConfig_t *config) {
    *comm = nullptr;
    if (!config || config->blocking) return ncclInvalidUsage;  // the emulation has non-blocking communicators only
    if (nranks != world_size() || rank < 0 || rank >= nranks) return ncclInvalidArgument;
    *comm = new EmuNcclComm{rank, nranks};
    return ncclSuccess;
}
ncclResult_t ncclCommGetAsyncError(ncclComm_t, ncclResult_t *state) {
    *state = ncclSuccess;
    return ncclSuccess;
}
ncclResult_t ncclCommFinalize(ncclComm_t) { return ncclSuccess; }
ncclResult_t ncclCommDestroy(ncclComm_t comm) {
    delete comm;
    return ncclSuccess;
}
ncclResult_t ncclCommAbort(ncclComm_t comm) {
    delete comm;
    return ncclSuccess;
}
const char *ncclGetErrorString(ncclResult_t r) { return r == ncclSuccess ? "no error" : "emulated NCCL error"; }
const char *ncclGetLastError(ncclComm_t) { return ""; }

static Collective enqueue(cudaStream_t stream) {
    Collective c = std::make_shared<EmuCollective>();
    if (stream) stream->queued.push_back(c);
    return c;
}

ncclResult_t ncclAllReduce(const void *send, void *recv, size_t count, ncclDataType_t type, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream) {
    if (!comm || type != ncclFloat32 || count > INT_MAX) return ncclInvalidArgument;
    if (send != recv) memmove(recv, send, count * sizeof(float));
    Collective c = enqueue(stream);
    c->result = (float *)recv;
    c->count = count;
    c->average = op == ncclAvg;
#ifdef CTRAIN_MPI
    if (mpi_running()) {
        MPI_Iallreduce(MPI_IN_PLACE, recv, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &c->request);
        return ncclSuccess;
    }
#endif
    finish(*c);
    return ncclSuccess;
}

ncclResult_t ncclReduceScatter(const void *send, void *recv, size_t recv_count, ncclDataType_t type, ncclRedOp_t op,
                               ncclComm_t comm, cudaStream_t stream) {
    if (!comm || type != ncclFloat32 || op != ncclSum || recv_count > INT_MAX) return ncclInvalidArgument;
    Collective c = enqueue(stream);
    const float *in = (const float *)send;
    c->send_copy.assign(in, in + recv_count * (size_t)comm->world);
#ifdef CTRAIN_MPI
    if (mpi_running()) {
        MPI_Ireduce_scatter_block(c->send_copy.data(), recv, (int)recv_count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD,
                                  &c->request);
        return ncclSuccess;
    }
#endif
    memmove(recv, c->send_copy.data() + recv_count * (size_t)comm->rank, recv_count * sizeof(float));
    finish(*c);
    return ncclSuccess;
}

ncclResult_t ncclAllGather(const void *send, void *recv, size_t send_count, ncclDataType_t type, ncclComm_t comm,
                           cudaStream_t stream) {
    if (!comm || type != ncclFloat32 || send_count > INT_MAX) return ncclInvalidArgument;
    Collective c = enqueue(stream);
    float *own = (float *)recv + send_count * (size_t)comm->rank;
#ifdef CTRAIN_MPI
    if (mpi_running()) {
        if (send == own)  // in place, as NCCL defines it: MPI_IN_PLACE reads the same slot
            MPI_Iallgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, recv, (int)send_count, MPI_FLOAT, MPI_COMM_WORLD,
                           &c->request);
        else
            MPI_Iallgather(send, (int)send_count, MPI_FLOAT, recv, (int)send_count, MPI_FLOAT, MPI_COMM_WORLD,
                           &c->request);
        return ncclSuccess;
    }
#endif
    if (send != own) memmove(own, send, send_count * sizeof(float));
    finish(*c);
    return ncclSuccess;
}
