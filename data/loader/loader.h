// The data loader: batches of B sequences of T tokens for each of `world` ranks, from a
// dataset split (data/shard/dataset.h). Every rank computes the same global order from the seed and
// takes its own disjoint slice of each global batch (rank r gets rows r·B … r·B+B-1 of the
// world·B rows).
//
//  text  windows of T+1 tokens of the split's stream (inputs and targets shifted by one), each
//        seen once per epoch. Order: the windows are cut into blocks of about block_tokens,
//        the blocks permuted, and the windows of each group of blocks (about shuffle_tokens)
//        permuted together. Datasets up to shuffle_tokens get one full random permutation;
//        larger ones stay fast to read. A background thread decompresses the next group
//        while the current one is served. With doc_masking, positions restart and doc ids
//        change at every document start inside a window.
//  sft   examples (held in memory), permuted per epoch, each row holding whole examples
//        (packed one after another, or one per row when packing is off), positions and doc
//        ids restarting per example; targets masked outside the response tokens. An example
//        longer than T loses tokens from the left of its prompt (counted).
//  dpo   pairs: row 2i is prompt+chosen, row 2i+1 prompt+rejected of pair i; loss mask on the
//        completion tokens; B counts pairs.
//
// The loader's position is a small struct: restoring it yields exactly the batches an
// uninterrupted run would have seen.
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

void ct_loader_default_options(CtLoaderOptions *o);

typedef struct {
    int rows, T;
    int32_t *tokens;     // rows × T inputs
    int32_t *targets;    // rows × T next tokens; -1 where there is none (padding)
    uint8_t *loss_mask;  // rows × T: 1 where the target counts in the loss
    int32_t *positions;  // rows × T position within its document (or row)
    int32_t *doc_ids;    // rows × T document index within the row; -1 on padding
    int64_t *example_ids;   // dpo: per row, the pair's example number in the split (-1 elsewhere)
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
    uint64_t n_examples;
    uint32_t *example_order;  // this epoch's permutation
    uint64_t *row_start;      // sft: rows of this epoch: index into row_examples
    uint32_t *row_examples;
    uint64_t n_rows;
    uint64_t planned_epoch;   // the epoch whose order/rows are computed (+1; 0 = none)
} CtLoader;

// Opens a loader over a split. Returns 0, or -1 + error (too little data for one global batch,
// bad options).
int ct_loader_open(CtLoader *l, const CtDataset *d, CtSplit split, const CtLoaderOptions *o);
void ct_loader_close(CtLoader *l);
// The next batch of this rank; epochs roll over by themselves. Returns 0, or -1 + error
// (a corrupt chunk found while reading).
int ct_loader_next(CtLoader *l, const CtLoaderBatch **batch);
CtLoaderState ct_loader_state(const CtLoader *l);
// Continues from a saved position. Returns 0, or -1 + error when it cannot belong to this data.
int ct_loader_restore(CtLoader *l, const CtLoaderState *state);

// Internal to data/loader*.c: one group of text windows materialised in memory.
struct CtLoaderGroup {
    uint64_t group;       // which group of which epoch it holds
    uint64_t epoch;
    int valid;
    int failed;
    char error[512];
    uint64_t n_windows;
    uint64_t *windows;    // window index (in the split) per position in the group's order
    uint64_t *block_at;   // per block slot: the first window index of the block
    uint64_t *slot_offset;// per block slot: offset of its tokens in `tokens`
    uint32_t n_slots;
    int32_t *tokens;
    uint64_t capacity;
};
