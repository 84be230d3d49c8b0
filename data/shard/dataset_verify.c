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

// prompts: whether fields frame f of shard i holds an example that starts in [first, end).
static int frame_in_range(const CtDatasetSplit *ds, int i, uint32_t f, uint64_t first, uint64_t end) {
    const CtShard *s = &ds->shards[i];
    uint64_t from = ds->shard_first_token[i] + s->doc_starts[s->field_frame_first[f]];
    uint64_t last = ds->shard_first_token[i] + s->doc_starts[s->field_frame_first[f + 1] - 1];
    return from < end && last >= first;
}

int ct_dataset_verify_range(const CtDataset *d, CtSplit split, uint64_t first, uint64_t n, CtDatasetVerified *out) {
    const CtDatasetSplit *ds = &d->split[split];
    const uint64_t end = first < ds->n_tokens && n < ds->n_tokens - first ? first + n : ds->n_tokens;
    CtDatasetVerified v = {0};
    uint32_t max_tokens = 1;
    uint64_t max_fields = 1;
    for (int i = 0; i < ds->n_shards; i++) {
        const CtShard *s = &ds->shards[i];
        int used = 0;
        for (uint32_t c = 0; c < s->n_chunks; c++)
            if (chunk_in_range(ds, i, c, first, end)) {
                v.chunks++, used = 1;
                v.bytes += s->chunk_sizes[c];
                v.tokens += s->chunk_token_counts[c];
            }
        for (uint32_t f = 0; f < s->n_field_frames; f++)
            if (frame_in_range(ds, i, f, first, end)) {
                v.field_frames++, used = 1;
                v.bytes += s->field_frame_sizes[f];
                v.field_examples += s->field_frame_first[f + 1] - s->field_frame_first[f];
            }
        v.shards += used;
        if (used && s->max_chunk_tokens > max_tokens) max_tokens = s->max_chunk_tokens;
        if (used && s->max_field_frame_raw > max_fields) max_fields = s->max_field_frame_raw;
    }
    // What to read, flattened in file order: (shard, chunk within it), and after a shard's
    // chunks its fields frames (prompts), marked by frame_of >= 0.
    const uint64_t n_items = v.chunks + v.field_frames;
    int *shard_of = ct_alloc(sizeof(int) * (n_items + 1));
    uint32_t *chunk_of = ct_alloc(sizeof(uint32_t) * (n_items + 1));
    int64_t *frame_of = ct_alloc(sizeof(int64_t) * (n_items + 1));
    uint64_t k = 0;
    for (int i = 0; i < ds->n_shards; i++) {
        for (uint32_t c = 0; c < ds->shards[i].n_chunks; c++)
            if (chunk_in_range(ds, i, c, first, end)) shard_of[k] = i, chunk_of[k] = c, frame_of[k++] = -1;
        for (uint32_t f = 0; f < ds->shards[i].n_field_frames; f++)
            if (frame_in_range(ds, i, f, first, end)) shard_of[k] = i, chunk_of[k] = 0, frame_of[k++] = f;
    }
    uint64_t first_bad = n_items;  // the lowest failing item, and its message
    char message[CT_ERROR_MAX] = "";
#pragma omp parallel
    {
        void *dctx = ct_shard_dctx_new();
        int32_t *tokens = ct_alloc(sizeof(int32_t) * max_tokens);
        uint8_t *mask = ct_alloc(max_tokens);
        char *fields = ct_alloc((size_t)max_fields);
#pragma omp for schedule(dynamic, 1)
        for (uint64_t j = 0; j < n_items; j++) {
            uint64_t seen;
#pragma omp atomic read
            seen = first_bad;
            if (j > seen) continue;  // a bad chunk before this one is already the answer
            const CtShard *s = &ds->shards[shard_of[j]];
            long got = frame_of[j] < 0 ? ct_shard_read_chunk(s, chunk_of[j], dctx, tokens, mask)
                                       : ct_shard_read_fields_frame(s, (uint32_t)frame_of[j], dctx, fields);
            if (got >= 0) continue;
#pragma omp critical(ct_dataset_verify)
            if (j < first_bad) {
                snprintf(message, sizeof message, "%s", ct_error_message());
#pragma omp atomic write
                first_bad = j;
            }
        }
        ct_free(tokens);
        ct_free(mask);
        ct_free(fields);
        ct_shard_dctx_free(dctx);
    }
    ct_free(shard_of);
    ct_free(chunk_of);
    ct_free(frame_of);
    if (out) *out = v;
    if (first_bad < n_items) return ct_error_set("%s", message);
    return 0;
}

int ct_dataset_verify_split(const CtDataset *d, CtSplit split, CtDatasetVerified *out) {
    return ct_dataset_verify_range(d, split, 0, d->split[split].n_tokens, out);
}
