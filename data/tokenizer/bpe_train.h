// Learning a byte-level BPE from text (the "tokenizer train" command).
//
// 1. Count: documents are pre-tokenized with the chosen pattern, in parallel over chunks cut
//    where every pattern starts a new piece, each thread counting pieces in its own table;
//    the tables are summed and the distinct pieces sorted by their bytes, so everything after
//    this point is the same whatever the thread count.
// 2. Merge: every piece is a "word" of symbols (its bytes at first) with a count. Pair counts
//    and, per pair, the words that contain it are built once. A max-heap holds candidate pairs
//    (count, then the smaller ids first on ties); an entry whose count is out of date is
//    pushed back with the current count when it surfaces (lazy deletion). Each merge rewrites
//    only the words that contain the pair and adjusts only the counts of the pairs around each
//    occurrence, so no merge ever recounts the corpus.
// Ids: 0..255 are the bytes, 256.. the merges in order, then the special tokens.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "data/tokenizer/bpe.h"

typedef struct {
    CtPattern pattern;
    int32_t vocab_size;      // including the 256 bytes and the special tokens
    const char **specials;   // special token strings, given ids after the merges
    int n_specials;
    int threads;
    int progress;            // draw progress bars on stderr
} CtBpeTrainOptions;

typedef struct CtBpeTrainer CtBpeTrainer;

CtBpeTrainer *ct_bpe_trainer_new(const CtBpeTrainOptions *options);
void ct_bpe_trainer_free(CtBpeTrainer *trainer);
// Adds one document (copied). Pieces never span two documents.
void ct_bpe_trainer_add_document(CtBpeTrainer *trainer, const uint8_t *text, size_t len);
// Counts, merges and builds a finished tokenizer (merge-list rule). 0, or -1 + error.
int ct_bpe_trainer_train(CtBpeTrainer *trainer, CtTokenizer *out);
// After training: distinct pieces and the number of merges learned.
size_t ct_bpe_trainer_distinct_pieces(const CtBpeTrainer *trainer);
