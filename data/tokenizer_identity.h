// What identifies a tokenizer: a fingerprint that shards and checkpoints record, so that data
// made with one tokenizer is never read with another; and lookups of special tokens by text.
#pragma once
#include <stdint.h>

#include "data/bpe.h"

// FNV-1a over everything that decides encoding and decoding: pattern, merge rule, whole-piece
// lookup, every token's id, kind and bytes, and the merge list. Equal tokenizers loaded from
// different file formats get equal fingerprints when they encode alike.
uint64_t ct_tokenizer_fingerprint(const CtTokenizer *t);
// The id of the special token spelled `text`, or -1.
int32_t ct_tokenizer_special_id(const CtTokenizer *t, const char *text);
