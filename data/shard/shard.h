// One token shard file (*.ctshard): writer and reader. The layout is in docs/formats.md.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/atomic_file.h"

// Version 2 added the prompts kind, version 3 a margin per dpo pair; a shard is written with the
// lowest version that describes it (text, sft and dpo without margins: 1), so that an older
// ctrain reads what it can and refuses the rest by its version. A reader takes all three.
#define CT_SHARD_VERSION 1
#define CT_SHARD_VERSION_PROMPTS 2
#define CT_SHARD_VERSION_DPO_MARGINS 3
#define CT_SHARD_VERSION_MAX 3
#define CT_SHARD_HEADER_BYTES 128
// Prompts shards: the fields JSON of consecutive prompts is compressed in frames of about this many bytes.
#define CT_SHARD_FIELDS_FRAME_BYTES (1u << 20)

typedef enum { CT_SHARD_TEXT = 1, CT_SHARD_SFT = 2, CT_SHARD_DPO = 3, CT_SHARD_PROMPTS = 4 } CtShardKind;

// The lowest format version a shard or manifest of this kind may have (the version it came with).
static inline int ct_shard_kind_version(CtShardKind kind) {
    return kind == CT_SHARD_PROMPTS ? CT_SHARD_VERSION_PROMPTS : CT_SHARD_VERSION;
}
// The version a shard or manifest is written with: its kind's, or 3 for a dpo one with margins.
static inline int ct_shard_write_version(CtShardKind kind, int dpo_margins) {
    return kind == CT_SHARD_DPO && dpo_margins ? CT_SHARD_VERSION_DPO_MARGINS : ct_shard_kind_version(kind);
}

typedef struct {
    CtShardKind kind;
    uint32_t token_bytes;  // 2 or 4
    uint32_t vocab_size;
    uint64_t tokenizer_hash;
    uint32_t chunk_tokens;  // tokens per zstd frame (the last may hold fewer)
    int zstd_level;
    int dpo_margins;  // dpo: each example carries a margin (TRL's "margin" column; format version 3)
} CtShardSpec;

// ---- writing ----

// A chunk being compressed: its bytes, then room for them compressed (buf), and its own zstd
// context, so that chunks compress in parallel.
typedef struct {
    void *cctx;  // ZSTD_CCtx
    unsigned char *buf;
    size_t raw_size;
    size_t size;  // compressed bytes, or a zstd error code
    uint32_t n;   // tokens
} CtShardChunkJob;

typedef struct {
    CtShardSpec spec;
    uint32_t shard_index;
    CtAtomicFile file;
    uint64_t offset;  // bytes written so far
    // the chunk being filled
    uint32_t *pending_tokens;
    uint8_t *pending_mask;
    uint32_t pending;
    // the index as it grows
    uint64_t *chunk_offsets;
    uint32_t *chunk_sizes, *chunk_token_counts;
    uint32_t n_chunks, cap_chunks;
    uint64_t *doc_starts;
    uint32_t *dpo_lengths;  // 3 per document
    double *margins;        // dpo: per document, when spec.dpo_margins
    uint32_t *field_lengths;  // prompts: bytes of each example's fields JSON
    uint64_t n_docs, cap_docs;
    // prompts: the fields JSON being gathered into a frame, and the frames compressed so far
    // (held in memory: they are written after the token chunks, when the shard closes)
    char *pending_fields;
    size_t pending_fields_len, pending_fields_cap;
    uint32_t pending_field_examples;
    unsigned char **field_frames;
    uint32_t *field_frame_sizes, *field_frame_examples;
    uint32_t n_field_frames, cap_field_frames;
    uint64_t n_tokens;
    void *cctx;  // ZSTD_CCtx (prompts' fields frames)
    size_t compressed_cap;
    // chunks in flight: compressed as OpenMP tasks, written in order once max_jobs are waiting
    CtShardChunkJob *jobs;
    int n_jobs, max_jobs;
} CtShardWriter;

int ct_shard_writer_open(CtShardWriter *w, const char *path, const CtShardSpec *spec, uint32_t shard_index);
// Lets up to `jobs` full chunks compress at once, each as an OpenMP task (by the team's idle
// threads, when the writer runs inside a parallel region), before they are written in order;
// the file is the same bytes. Default 1: each chunk is compressed and written when it fills.
// Call right after open. The tasks are the appending task's children: when appends come from
// several tasks, each must see its chunks compressed before it ends (a taskgroup around it).
void ct_shard_writer_compress_in_tasks(CtShardWriter *w, int jobs);
// Marks a document (text) or example (sft) as starting at the current position.
int ct_shard_writer_begin_document(CtShardWriter *w);
// Appends tokens (and, for sft shards, their loss mask; NULL elsewhere).
int ct_shard_writer_append(CtShardWriter *w, const uint32_t *tokens, const uint8_t *mask, size_t n);
// Appends one dpo example: prompt, chosen and rejected completions, and its margin (a finite
// number; 0 in a shard without margins, where it is not stored).
int ct_shard_writer_append_dpo(CtShardWriter *w, const uint32_t *prompt, uint32_t n_prompt, const uint32_t *chosen,
                               uint32_t n_chosen, const uint32_t *rejected, uint32_t n_rejected, double margin);
// Appends one prompts example: its prompt tokens (at least one) and its fields, the text of a
// JSON object (stored as given; the caller has checked it).
int ct_shard_writer_append_prompt(CtShardWriter *w, const uint32_t *tokens, size_t n, const char *fields,
                                  size_t fields_len);
// Flushes, writes index and header, and moves the file into place. Returns 0 or -1 + error;
// either way the writer is released. *bytes_out (may be NULL) gets the file size.
int ct_shard_writer_close(CtShardWriter *w, uint64_t *bytes_out);
void ct_shard_writer_abort(CtShardWriter *w);  // no file is left behind

// ---- reading ----

typedef struct {
    char *path;
    int fd;
    uint64_t file_size;
    CtShardKind kind;
    uint32_t token_bytes, vocab_size, shard_index;
    uint64_t tokenizer_hash;
    uint64_t n_tokens, n_docs;
    uint32_t n_chunks;
    uint64_t *chunk_offsets;
    uint32_t *chunk_sizes, *chunk_token_counts;
    uint64_t *chunk_first_token;  // n_chunks + 1 prefix sums
    uint64_t *doc_starts;
    uint32_t *dpo_lengths;
    int dpo_margins;        // dpo: the index carries a margin per example (version 3)
    double *margins;        // ... each example's (NULL without)
    uint32_t max_chunk_tokens;
    // prompts: the frames holding the examples' fields JSON, and each example's bytes in them
    uint32_t n_field_frames;
    uint64_t *field_frame_offsets;
    uint32_t *field_frame_sizes;
    uint64_t *field_frame_first;     // n_field_frames + 1: the first example of each frame
    uint64_t *field_frame_raw;       // decompressed bytes of each frame
    uint32_t *field_lengths;         // per example
    uint64_t max_field_frame_raw;
} CtShard;

// Opens and validates header and index. Returns 0, or -1 + error naming the file.
int ct_shard_open(CtShard *s, const char *path);
void ct_shard_close(CtShard *s);
// Decompresses chunk `c` into tokens[] (and mask[] for sft; may be NULL), checking the zstd
// checksum, the size and the token range. Thread-safe for distinct `dctx` (a ZSTD_DCtx from
// ct_shard_dctx_new). Returns the number of tokens, or -1 + error naming file and chunk.
long ct_shard_read_chunk(const CtShard *s, uint32_t c, void *dctx, int32_t *tokens, uint8_t *mask);
// Reads tokens [first, first + n) of the shard (across chunks). Returns 0 or -1 + error.
int ct_shard_read_range(const CtShard *s, uint64_t first, uint64_t n, void *dctx, int32_t *tokens, uint8_t *mask);
// Decompresses fields frame `f` into out[] (field_frame_raw[f] bytes: the fields JSON of its
// examples back to back, each field_lengths[e] bytes), checking the zstd checksum, the size, and
// that each example's text is one JSON object. Thread-safe for distinct `dctx`. Returns the
// bytes, or -1 + error naming the file, the frame and its bytes, and the example.
long ct_shard_read_fields_frame(const CtShard *s, uint32_t f, void *dctx, char *out);
// The chunk that holds token `position`.
uint32_t ct_shard_chunk_of(const CtShard *s, uint64_t position);
void *ct_shard_dctx_new(void);
const char *ct_shard_kind_name(CtShardKind kind);  // "text", "sft", "dpo", "prompts"
void ct_shard_dctx_free(void *dctx);
