// From input files to a dataset folder: documents are read in input order, tokenized in
// parallel in batches (a long .txt document in chunks cut at the pre-tokenizer's split points),
// and written by one writer in input order while the next batch is tokenized, so the output
// bytes are the same for any number of threads. Train and validation are split by document with a seeded
// hash of the document's number, so the split does not depend on threads either: a document
// is held out when its hash falls below val_fraction; when that would hold out fewer than
// min(N/10, val_min) of the N documents (small corpora: N < val_min / val_fraction), the
// documents are counted first and exactly that many, those of the smallest hashes, are.
#pragma once
#include <stdint.h>

#include "core/log.h"
#include "data/input/input_reader.h"
#include "data/shard/shard_job.h"

typedef struct {
    uint64_t documents[CT_N_SPLITS], tokens[CT_N_SPLITS];
    uint64_t skipped;           // malformed lines skipped with skip_bad
    uint64_t empty;             // documents with no text, left out
    uint64_t prompt_not_prefix; // dpo: plain pairs whose tokenized prompt is not a prefix of prompt+completion
    char first_not_prefix[600]; // ... the first one's FILE:LINE
    uint64_t unusable_pairs;    // dpo: pairs skipped as chosen = rejected or with an empty completion
    char first_unusable[1100];  // ... the first one's FILE:LINE: why
    uint64_t fields_bytes;      // prompts: bytes of the fields JSON kept
    uint64_t text_bytes;        // text read (after decompression)
    uint64_t file_bytes;        // bytes of the input files
    double seconds;
} CtShardStats;

// Builds the dataset in out_dir. `progress` (may be NULL) is advanced in input-file bytes.
// Returns 0, or -1 + error "FILE:LINE: what is wrong"; on error nothing that a loader would
// accept is left in out_dir.
int ct_shard_build(const CtShardJob *job, const CtInputList *inputs, const char *out_dir, CtShardStats *stats,
                   CtProgress *progress);

// What a dpo job needs to know of its inputs before it starts. Lines that do not parse are passed
// over (the real pass reports them).
typedef struct {
    int messages;            // some pair has a message-list prompt (the chat template is needed);
                             // 0: every pair is plain strings (no template, the tokenizer as it is)
    int margins;             // some pair has a "margin": then every pair must (TRL's RewardTrainer
                             // reads the column of every row), so the job sets dpo_margins
    char first_margin[600];  // ... the first such pair's FILE:LINE
} CtDpoSurvey;
// Reads the inputs until it knows both (to the end when some answer is no). 0, or -1 + error.
int ct_shard_dpo_survey(const CtInputList *inputs, CtDpoSurvey *out);
