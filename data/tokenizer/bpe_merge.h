// The merge loop of BPE training, shared by the byte-level trainer (data/tokenizer/bpe_train.h)
// and the WordPiece one (data/tokenizer/wordpiece_train.h): words of symbols with counts, the
// most frequent adjacent pair merged first (ties: the smaller ids), pair counts kept up to date
// incrementally through a lazy max-heap (bpe_train.h describes it).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "data/tokenizer/bpe.h"

typedef struct {
    int32_t *symbols;  // ids of tok's tokens, rewritten as merges apply
    uint32_t len;
    uint64_t count;
    int32_t last_merge;  // the merge that last visited this word (visit each once per merge); -1 at first
} CtMergeWord;

// Learns up to n_new tokens, given ids first_id, first_id + 1, ... and adds them and their
// merges to tok (not finished). A merge whose string is already a normal token reuses it.
// continuing_prefix (WordPiece's "##", or NULL): the right part's leading prefix is dropped
// when the two are joined. The number of tokens made (fewer when the pairs run out), or -1 +
// error.
int32_t ct_learn_merges(CtTokenizer *tok, CtMergeWord *words, size_t n_words, int32_t first_id, int32_t n_new,
                        const char *continuing_prefix, int progress_bar);
