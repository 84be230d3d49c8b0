// What a loader is made of (data/loader/loader.h has what it does): its options, the batch it
// serves, its position and its state, shared by its text part (loader.c) and its sft/dpo part
// (loader_examples.c).
#pragma once
#include <pthread.h>
#include <stdint.h>

#include "data/shard/dataset.h"

typedef struct {
    int batch;     // B: rows per rank per step (dpo: pairs, so 2B rows)
    int seq_len;   // T
    int rank, world;
    uint64_t seed;
    int shuffle;          // 1: a seeded order per epoch; 0: file order (evaluation)
    int doc_masking;      // text: positions and doc ids restart at document starts
    int packing;          // sft: several examples per row
    uint64_t block_tokens;    // text: windows are permuted in blocks of about this many tokens
    uint64_t shuffle_tokens;  // text: and freely within groups of about this many tokens
    int prefetch;             // text: load the next group on a background thread
} CtLoaderOptions;

typedef struct {
    int rows, T;
    int32_t *tokens;     // rows × T inputs
    int32_t *targets;    // rows × T next tokens; -1 where there is none (padding)
    uint8_t *loss_mask;  // rows × T: 1 where the target counts in the loss
    int32_t *positions;  // rows × T position within its document (or row)
    int32_t *doc_ids;    // rows × T document index within the row; -1 on padding
    int64_t *example_ids;   // dpo: per row, the pair's example number in the split (-1 elsewhere)
    double *margins;        // dpo: per row, the pair's margin (0 when the dataset has none, and elsewhere)
    int64_t n_loss_tokens;  // the sum of loss_mask over this rank's rows
} CtLoaderBatch;

typedef struct {
    uint64_t seed;
    uint64_t epoch;
    uint64_t step;  // global batches already served in this epoch
} CtLoaderState;

typedef struct CtLoaderGroup CtLoaderGroup;

typedef struct {
    const CtDataset *dataset;
    CtSplit split;
    CtLoaderOptions opt;
    CtLoaderState state;
    CtLoaderBatch batch;
    uint64_t steps_per_epoch;
    uint64_t truncated_examples;  // sft/dpo: examples cut to fit T so far
    // text
    uint64_t n_windows, block_windows, n_blocks, group_blocks, n_groups;
    uint32_t *block_order;    // this epoch's permutation of blocks
    uint64_t *group_start;    // n_groups + 1: first window position of each group in the epoch order
    CtLoaderGroup *current, *ahead;
    pthread_t ahead_thread;
    int ahead_running;
    uint64_t ahead_epoch, ahead_group;
    // sft / dpo (in memory)
    int32_t *ex_tokens;
    uint8_t *ex_mask;
    uint64_t *ex_offset;  // n_examples + 1
    uint32_t *ex_lengths; // dpo: 3 per example
    double *ex_margins;   // dpo: per example (NULL when the dataset has no margins)
    uint64_t n_examples;
    uint32_t *example_order;  // this epoch's permutation
    uint64_t *row_start;      // sft: rows of this epoch: index into row_examples
    uint32_t *row_examples;
    uint64_t n_rows;
    uint64_t planned_epoch;   // the epoch whose order/rows are computed (+1; 0 = none)
} CtLoader;
