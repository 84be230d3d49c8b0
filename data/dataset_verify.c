// Verifying a split's token data whole (data/dataset.h): every chunk of every shard is read
// and checked exactly as a loader checks it when it reads (ct_shard_read_chunk: the zstd frame
// checksum, the decompressed size, every token inside the vocabulary, sft loss-mask bytes 0 or
// 1), on all threads. The error reported is the first bad chunk in file order, so it names the
// same place on any number of threads.
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/dataset.h"

int ct_dataset_verify_split(const CtDataset *d, CtSplit split, CtDatasetVerified *out) {
    const CtDatasetSplit *ds = &d->split[split];
    uint64_t n_chunks = 0;
    uint32_t max_tokens = 1;
    for (int i = 0; i < ds->n_shards; i++) {
        n_chunks += ds->shards[i].n_chunks;
        if (ds->shards[i].max_chunk_tokens > max_tokens) max_tokens = ds->shards[i].max_chunk_tokens;
    }
    // Chunk k of the split, flattened: (shard, chunk within it).
    int *shard_of = ct_alloc(sizeof(int) * (n_chunks + 1));
    uint32_t *chunk_of = ct_alloc(sizeof(uint32_t) * (n_chunks + 1));
    uint64_t k = 0, bytes = 0;
    for (int i = 0; i < ds->n_shards; i++) {
        for (uint32_t c = 0; c < ds->shards[i].n_chunks; c++, k++) shard_of[k] = i, chunk_of[k] = c;
        bytes += ds->shards[i].file_size;
    }
    uint64_t first_bad = n_chunks;  // the lowest failing chunk, and its message
    char message[CT_ERROR_MAX] = "";
#pragma omp parallel
    {
        void *dctx = ct_shard_dctx_new();
        int32_t *tokens = ct_alloc(sizeof(int32_t) * max_tokens);
        uint8_t *mask = ct_alloc(max_tokens);
#pragma omp for schedule(dynamic, 1)
        for (uint64_t j = 0; j < n_chunks; j++) {
            uint64_t seen;
#pragma omp atomic read
            seen = first_bad;
            if (j > seen) continue;  // a bad chunk before this one is already the answer
            if (ct_shard_read_chunk(&ds->shards[shard_of[j]], chunk_of[j], dctx, tokens, mask) >= 0) continue;
#pragma omp critical(ct_dataset_verify)
            if (j < first_bad) {
                snprintf(message, sizeof message, "%s", ct_error_message());
#pragma omp atomic write
                first_bad = j;
            }
        }
        ct_free(tokens);
        ct_free(mask);
        ct_shard_dctx_free(dctx);
    }
    ct_free(shard_of);
    ct_free(chunk_of);
    if (out) *out = (CtDatasetVerified){ds->n_shards, n_chunks, ds->n_tokens, bytes};
    if (first_bad < n_chunks) return ct_error_set("%s", message);
    return 0;
}
