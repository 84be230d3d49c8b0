// One input document or example encoded as the sharder stores it: a text (framed as the
// tokenizer frames a text, then the end-of-text token), an sft conversation with its loss mask,
// a dpo pair, or a prompt with its fields. Used by the sharder's encoding tasks (shard_builder.c).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "data/shard/shard_job.h"

// What a document became. Reused from document to document (its lists keep their room).
typedef struct {
    CtMaskedIds main;        // text / sft tokens, or the dpo prompt
    CtMaskedIds chosen, rejected;
    char *fields;              // prompts: the fields JSON kept for the rewards
    size_t fields_len;
    size_t prompt_not_prefix;  // dpo: prompt tokens that merged with the completions (TRL's warning)
    double margin;             // dpo: the pair's margin (0 without)
    int failed, empty;
    int unusable;  // dpo: a well-formed pair that cannot teach a preference (error says why)
    char error[400];
} CtShardEncoded;

// Encodes one document (a .txt document, or a .jsonl line: jsonl) into e, which it clears first;
// a bad one sets e->failed (e->error says why), an empty text e->empty, a dpo pair that cannot
// teach a preference e->unusable. scratch: the thread's buffer for a .jsonl text field.
void ct_shard_encode_document(const CtShardJob *job, CtEncoder *enc, const char *text, size_t len, int jsonl,
                              CtShardEncoded *e, uint8_t **scratch, size_t *scratch_cap);
void ct_shard_encoded_free(CtShardEncoded *e);

// A text's frame: the tokens the tokenizer's post-processor puts before a text, and those after
// it, then the end-of-text token (once).
void ct_shard_frame_begin(const CtShardJob *job, CtIds *ids);
void ct_shard_frame_end(const CtShardJob *job, CtIds *ids);
