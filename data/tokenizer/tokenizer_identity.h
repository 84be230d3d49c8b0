// What identifies a tokenizer: a fingerprint that shards and checkpoints record, so that data
// made with one tokenizer is never read with another; and lookups of special tokens by text.
#pragma once
#include <stdint.h>

#include "data/tokenizer/bpe.h"

// FNV-1a over what defines the tokenizer: pattern, whole-piece lookup, every token's id, kind
// (special or not) and bytes, and the merge list (a rank file's is derived from its ranks,
// data/tokenizer/bpe.h). Not the file's bytes nor its format: GPT-2's encoder.json + vocab.bpe, a .tiktoken
// file and the tokenizer.json ctrain saves from either get the same fingerprint.
uint64_t ct_tokenizer_fingerprint(const CtTokenizer *t);
// Whether `recorded` (a shard's or checkpoint's) identifies t: its fingerprint, or the one an
// earlier ctrain recorded for it (shards written before the fingerprint left out the format).
int ct_tokenizer_is(const CtTokenizer *t, uint64_t recorded);
// The id of the special token spelled `text`, or -1.
int32_t ct_tokenizer_special_id(const CtTokenizer *t, const char *text);
