// What the sharder is asked to do (shard_builder.h), shared by the per-document encoding
// (shard_encode.h) and the pipeline around it.
#pragma once
#include <stdint.h>

#include "data/examples/chat_template.h"
#include "data/shard/dataset.h"
#include "data/tokenizer/bpe.h"

typedef enum { CT_DOCS_PER_FILE = 0, CT_DOCS_PER_PARAGRAPH = 1, CT_DOCS_PER_LINE = 2 } CtTextSplit;

typedef struct {
    CtShardKind kind;
    const CtTokenizer *tokenizer;
    const CtChatTemplate *chat_template;  // sft and dpo; prompts (NULL: each prompt a "prompt" string, as it is)
    CtTextSplit text_split;               // .txt inputs
    const char *field;                    // the text field of .jsonl inputs (text kind)
    int allow_special;                    // text: special-token strings become their ids
    int32_t eot;                          // end of text: after each text document, after raw dpo completions
    uint64_t tokenizer_hash;
    double val_fraction;                  // the share of documents held out for validation (0: none) ...
    uint64_t val_min;                     // ... but at least min(N/10, val_min) of the N documents (0: no minimum)
    uint64_t seed;
    int threads;
    int skip_bad;                         // skip malformed lines (counted) instead of stopping
    int strict;                           // dpo: refuse a pair with chosen = rejected or an empty completion
                                          // (FILE:LINE) instead of skipping it (counted)
    int dpo_margins;                      // dpo: every pair must carry a numeric "margin", stored with it (set
                                          // from ct_shard_dpo_survey: some pair has one); 0: none may
    uint64_t shard_tokens;
    uint32_t chunk_tokens;
    int zstd_level;
} CtShardJob;
