// Embedding lookup and its deterministic backward (math in kernels/cpu/embedding.inc).
//
// Backward, without atomics: dtable[id] += Σ_{n: ids[n] = id} dout[n]. The (id, n) pairs are
// sorted by id with CUB's radix sort, which is stable, so each run of equal ids lists its
// tokens in increasing n. Block (i, channel chunk) starts work only when sorted position i
// begins a run; it sums that run's dout rows in order and adds the sum to the table row once.
// Every number is thus summed by one thread in a fixed order: the same bits on every run,
// whatever the GPU schedules (atomicAdd would sum in arrival order).
#include <cub/device/device_radix_sort.cuh>

#include "kernels/cuda/act_io.cuh"
#include "kernels/cuda/cuda_common.cuh"

// out is the table's activation type (act_io.cuh); with accumulate the sum is rounded once.
template <typename act_t>
__global__ void embedding_forward_kernel(act_t *out, const int32_t *ids, const float *table, int C, size_t total,
                                         int accumulate) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        size_t n = i / C, c = i % C;
        float x = table[(size_t)ids[n] * C + c];
        act_store(out + i, accumulate ? act_load(out + i) + x : x);
    }
}

__global__ void iota_kernel(int32_t *x, int N) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < N) x[i] = i;
}

// grid.x = sorted position i (N), grid.y = chunks of blockDim.x channels. The run's sum is float.
template <typename act_t>
__global__ void embedding_backward_runs(float *dtable, const act_t *dout, const int32_t *sorted_ids,
                                        const int32_t *sorted_tokens, int N, int C) {
    const int i = blockIdx.x, c = blockIdx.y * blockDim.x + threadIdx.x;
    const int32_t id = sorted_ids[i];
    if (c >= C || (i > 0 && sorted_ids[i - 1] == id)) return;  // not the start of a run
    float s = 0.0f;
    for (int j = i; j < N && sorted_ids[j] == id; j++) s += act_load(dout + (size_t)sorted_tokens[j] * C + c);
    dtable[(size_t)id * C + c] += s;
}

template <typename act_t>
static void embedding_forward(CtAct *out, const int32_t *ids, const float *table, int N, int C, int accumulate) {
    size_t total = (size_t)N * C;
    if (!total) return;
    embedding_forward_kernel<act_t><<<ct_blocks(total, 256), 256>>>((act_t *)out, ids, table, C, total, accumulate);
    LAUNCH_CHECK("embedding_forward_kernel");
}

template <typename act_t>
static void embedding_backward(float *dtable, const CtAct *dout, const int32_t *ids, int N, int C) {
    if (N <= 0 || C <= 0) return;
    // scratch: [tokens in | ids out | tokens out | CUB temp], 256-byte aligned pieces
    size_t temp_bytes = 0;
    CUDA_CHECK(cub::DeviceRadixSort::SortPairs(NULL, temp_bytes, (const int32_t *)NULL, (int32_t *)NULL,
                                               (const int32_t *)NULL, (int32_t *)NULL, N));
    const size_t piece = ((size_t)N * sizeof(int32_t) + 255) & ~(size_t)255;
    char *scratch = (char *)ct_cuda_scratch(CT_SCRATCH_SORT, 3 * piece + temp_bytes);
    int32_t *tokens_in = (int32_t *)scratch, *ids_out = (int32_t *)(scratch + piece);
    int32_t *tokens_out = (int32_t *)(scratch + 2 * piece);
    void *temp = scratch + 3 * piece;
    iota_kernel<<<(N + 255) / 256, 256>>>(tokens_in, N);
    LAUNCH_CHECK("iota_kernel");
    // ids are non-negative, so sorting their bits as signed ints orders them correctly
    CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp, temp_bytes, ids, ids_out, tokens_in, tokens_out, N));
    const int threads = C < 256 ? ((C + 31) / 32) * 32 : 256;
    dim3 grid(N, (C + threads - 1) / threads);
    embedding_backward_runs<act_t><<<grid, threads>>>(dtable, (const act_t *)dout, ids_out, tokens_out, N, C);
    LAUNCH_CHECK("embedding_backward_runs");
}

CT_CUDA_EXPORT_PAIR(ct_cuda_embedding_forward, ct_cuda_embedding_forward_bf16,
                    (CtAct *out, const int32_t *ids, const float *table, int N, int C, int accumulate),
                    embedding_forward<act_t>(out, ids, table, N, C, accumulate))
CT_CUDA_EXPORT_PAIR(ct_cuda_embedding_backward, ct_cuda_embedding_backward_bf16,
                    (float *dtable, const CtAct *dout, const int32_t *ids, int N, int C),
                    embedding_backward<act_t>(dtable, dout, ids, N, C))
