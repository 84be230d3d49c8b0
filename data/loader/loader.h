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
#include <stdint.h>

#include "data/loader/loader_types.h"
#include "data/shard/dataset.h"

void ct_loader_default_options(CtLoaderOptions *o);

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
