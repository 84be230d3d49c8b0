// Verifying a split's token data (data/shard/dataset.h): every chunk of every shard, or those holding
// a range of the split's tokens, is read and checked exactly as a loader checks it when it reads
// (ct_shard_read_chunk: the zstd frame checksum, the decompressed size, every token inside the
// vocabulary, sft loss-mask bytes 0 or 1), on all threads. The error reported is the first bad
// chunk in file order, so it names the same place on any number of threads.
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/shard/dataset.h"

// Whether chunk c of shard i holds a token of the split's stream range [first, end).
static int chunk_in_range(const CtDatasetSplit *ds, int i, uint32_t c, uint64_t first, uint64_t end) {
    const CtShard *s = &ds->shards[i];
    uint64_t from = ds->shard_first_token[i] + s->chunk_first_token[c];
    return from < end && from + s->chunk_token_counts[c] > first;
}

int ct_dataset_verify_range(const CtDataset *d, CtSplit split, uint64_t first, uint64_t n, CtDatasetVerified *out) {
    const CtDatasetSplit *ds = &d->split[split];
    const uint64_t end = first < ds->n_tokens && n < ds->n_tokens - first ? first + n : ds->n_tokens;
    uint64_t n_chunks = 0, bytes = 0, n_tokens = 0;
    uint32_t max_tokens = 1;
    int shards = 0;
    for (int i = 0; i < ds->n_shards; i++) {
        int used = 0;
        for (uint32_t c = 0; c < ds->shards[i].n_chunks; c++)
            if (chunk_in_range(ds, i, c, first, end)) {
                n_chunks++, used = 1;
                bytes += ds->shards[i].chunk_sizes[c];
                n_tokens += ds->shards[i].chunk_token_counts[c];
            }
        shards += used;
        if (used && ds->shards[i].max_chunk_tokens > max_tokens) max_tokens = ds->shards[i].max_chunk_tokens;
    }
    // The chunks to read, flattened in file order: (shard, chunk within it).
    int *shard_of = ct_alloc(sizeof(int) * (n_chunks + 1));
    uint32_t *chunk_of = ct_alloc(sizeof(uint32_t) * (n_chunks + 1));
    uint64_t k = 0;
    for (int i = 0; i < ds->n_shards; i++)
        for (uint32_t c = 0; c < ds->shards[i].n_chunks; c++)
            if (chunk_in_range(ds, i, c, first, end)) shard_of[k] = i, chunk_of[k++] = c;
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
    if (out) *out = (CtDatasetVerified){shards, n_chunks, n_tokens, bytes};
    if (first_bad < n_chunks) return ct_error_set("%s", message);
    return 0;
}

int ct_dataset_verify_split(const CtDataset *d, CtSplit split, CtDatasetVerified *out) {
    return ct_dataset_verify_range(d, split, 0, d->split[split].n_tokens, out);
}
