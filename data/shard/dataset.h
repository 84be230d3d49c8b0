// A dataset folder: a manifest (dataset.json) and the shards of its splits. The writer rolls
// shards at a size limit and writes the manifest last; the reader validates everything and
// addresses each split as one token stream. Layout and guarantees: docs/formats.md.
#pragma once
#include <stdint.h>

#include "data/tokenizer/bpe.h"
#include "data/shard/shard.h"

typedef enum { CT_SPLIT_TRAIN = 0, CT_SPLIT_VAL = 1, CT_N_SPLITS = 2 } CtSplit;
const char *ct_split_name(CtSplit split);  // "train", "val"

typedef struct {
    CtShardSpec shard;
    int64_t eot_token;      // the end-of-text token (-1 when the tokenizer has none)
    uint64_t shard_tokens;  // a shard is closed once it holds this many tokens
} CtDatasetSpec;

typedef struct {
    char file[64];
    uint64_t tokens, documents, bytes;
} CtShardRecord;

typedef struct {
    char *dir;
    CtDatasetSpec spec;
    int compress_tasks;  // chunks each shard writer compresses at once (ct_shard_writer_compress_in_tasks)
    struct {
        CtShardWriter writer;
        int writer_open;
        CtShardRecord *records;
        uint32_t n_shards;
        uint64_t tokens, documents;
    } split[CT_N_SPLITS];
} CtDatasetWriter;

// Creates dir when missing and removes an old manifest (and the shards it lists) first, so
// that a crash midway can never leave a manifest pointing at a mix of old and new shards.
int ct_dataset_writer_open(CtDatasetWriter *w, const char *dir, const CtDatasetSpec *spec);
// Its shard writers compress up to `jobs` chunks at once as OpenMP tasks (ct_shard_writer_compress_in_tasks).
void ct_dataset_writer_compress_in_tasks(CtDatasetWriter *w, int jobs);
// text: one document's tokens (the caller appends the end-of-text token); may span shards.
// sft: one example's tokens and loss mask; an example never spans shards.
int ct_dataset_write_document(CtDatasetWriter *w, CtSplit split, const uint32_t *tokens, const uint8_t *mask, size_t n);
// text: more tokens of the document the last ct_dataset_write_document to `split` began (a long
// document written in parts); the shards hold the same as one call with all its tokens.
int ct_dataset_continue_document(CtDatasetWriter *w, CtSplit split, const uint32_t *tokens, size_t n);
// dpo: one pair and its margin (0 when the dataset has none: spec.shard.dpo_margins); a pair never spans shards.
int ct_dataset_write_dpo(CtDatasetWriter *w, CtSplit split, const uint32_t *prompt, uint32_t n_prompt,
                         const uint32_t *chosen, uint32_t n_chosen, const uint32_t *rejected, uint32_t n_rejected,
                         double margin);
// prompts: one prompt's tokens and its fields (a JSON object's text); an example never spans shards.
int ct_dataset_write_prompt(CtDatasetWriter *w, CtSplit split, const uint32_t *tokens, size_t n, const char *fields,
                            size_t fields_len);
// Closes the shards and writes dataset.json. `source_json` (may be NULL) is a JSON object
// text stored under "source" (inputs, byte counts, template). Returns 0 or -1 + error.
int ct_dataset_writer_finish(CtDatasetWriter *w, const char *source_json);
void ct_dataset_writer_abort(CtDatasetWriter *w);  // removes what this writer created

typedef struct {
    CtShard *shards;
    int n_shards;
    uint64_t *shard_first_token;  // n_shards + 1 prefix sums
    uint64_t n_tokens, n_documents;
    uint64_t *doc_starts;         // every document start in the split, as a stream position
} CtDatasetSplit;

typedef struct {
    char *dir;
    CtShardKind kind;
    uint32_t token_bytes, vocab_size;
    uint64_t tokenizer_hash;
    int64_t eot_token;
    int dpo_margins;  // dpo: every pair carries a margin (the manifest's "margins": true; each shard's margins[])
    CtDatasetSplit split[CT_N_SPLITS];
} CtDataset;

// Reads the manifest and opens and validates every shard. Returns 0 or -1 + error.
int ct_dataset_open(CtDataset *d, const char *dir);
void ct_dataset_close(CtDataset *d);
// Refuses a dataset made with another tokenizer (data/tokenizer/tokenizer_identity.h: the same tokenizer
// from another file format is the same). Returns 0 or -1 + error.
int ct_dataset_check_tokenizer(const CtDataset *d, const CtTokenizer *t);
// What ct_dataset_verify_split / _range read: shards touched, chunks, their tokens and bytes.
typedef struct {
    int shards;
    uint64_t chunks, tokens, bytes;  // bytes: compressed, of chunks and fields frames
    uint64_t field_frames;           // prompts: fields frames read, and their examples
    uint64_t field_examples;
} CtDatasetVerified;
// Reads every chunk of every shard of the split and checks it as a loader does when it reads
// (zstd checksum, size, token range, sft mask; prompts: every fields frame too, each example's
// fields one JSON object), on all threads; ct_dataset_open checks only
// headers and indexes. Returns 0, or -1 + error naming the first bad chunk in file order: the
// file, the chunk and its bytes, the problem. `out` may be NULL.
int ct_dataset_verify_split(const CtDataset *d, CtSplit split, CtDatasetVerified *out);
// The same for the chunks holding tokens [first, first + n) of the split's stream (clamped to it),
// and the fields frames of the examples that start there.
int ct_dataset_verify_range(const CtDataset *d, CtSplit split, uint64_t first, uint64_t n, CtDatasetVerified *out);
// Tokens [first, first + n) of a split's stream, across shards. Returns 0 or -1 + error.
int ct_dataset_read_range(const CtDataset *d, CtSplit split, uint64_t first, uint64_t n, void *dctx, int32_t *tokens,
                          uint8_t *mask);
