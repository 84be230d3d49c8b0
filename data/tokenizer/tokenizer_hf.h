// Hugging Face tokenizer.json: the native format of tokenizers ctrain trains, and the format
// today's models ship (GPT-2, Llama 3, Qwen2 byte-level; Llama 2, Mistral, Gemma, Phi-3
// SentencePiece-style).
//
// Read: model.type "BPE" with vocab {token: id} and merges as "a b" strings or ["a", "b"]
// pairs, model.ignore_merges, byte_fallback, unk_token, fuse_unk; or model.type "WordPiece"
// (BERT) with its pipeline (data/tokenizer/tokenizer_hf_wordpiece.h); added_tokens (special ones
// matched only when specials are allowed, others always; lstrip, rstrip, normalized); the
// normalizer, pre-tokenizer and decoder of data/tokenizer/tokenizer_hf_pipeline.h; the
// post_processor (into t->post). Anything ctrain cannot reproduce exactly is an error naming it,
// never silently ignored. ct_tokenizer_load_hf also checks a tokenizer_config.json beside the
// file (data/tokenizer/tokenizer_config.h).
#pragma once
#include <stddef.h>

#include "data/tokenizer/bpe.h"

int ct_tokenizer_load_hf(CtTokenizer *t, const char *path, const char *pattern_name);
int ct_tokenizer_parse_hf(CtTokenizer *t, const char *json, size_t len, const char *source, const char *pattern_name);

// The tokenizer as tokenizer.json text (free with free()), or NULL + error when it has no
// merge list. A rank file's (.tiktoken, GPT-2's folder) is written with ignore_merges and the
// merge list its ranks imply (data/tokenizer/bpe.h), which encode as the ranks do.
char *ct_tokenizer_hf_json(const CtTokenizer *t);
// Writes it atomically (core/atomic_file.h). 0, or -1 + error.
int ct_tokenizer_save_hf(const CtTokenizer *t, const char *path);
