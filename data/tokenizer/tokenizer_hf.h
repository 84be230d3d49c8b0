// Hugging Face tokenizer.json for byte-level BPE: the native format of tokenizers ctrain
// trains, and a format it reads (GPT-2, Llama 3 and many hub models ship one).
//
// Read: model.type "BPE" with vocab {token: id} and merges as "a b" strings or ["a", "b"]
// pairs, model.ignore_merges (a piece that is a whole token is looked up first), added_tokens
// (all treated as special tokens: matched only when specials are allowed), and a pre-tokenizer
// that is ByteLevel(use_regex) (the gpt2 pattern) or a Split on one of the supported regexes
// followed by ByteLevel(use_regex=false). Anything ctrain cannot reproduce exactly (a
// normalizer, add_prefix_space, another model type) is an error, never silently ignored.
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
