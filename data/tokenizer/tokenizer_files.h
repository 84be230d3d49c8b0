// Tokenizer files. ctrain reads three formats and picks by the path:
//   a folder with encoder.json + vocab.bpe   GPT-2's original files (a meta.json beside them,
//                                            as in ../shared/data, may give pat_str and specials)
//   a folder with tokenizer.json, or *.json  Hugging Face tokenizer.json (byte-level or
//                                            SentencePiece-style BPE; a tokenizer_config.json
//                                            beside it is checked: data/tokenizer/tokenizer_config.h)
//   *.tiktoken (or any other file)           tiktoken's rank file: "base64(bytes) rank" per line;
//                                            the pattern and special tokens come from NAME.meta.json
//                                            beside it, else from the name (cl100k_base, o200k_base,
//                                            r50k_base), else from pattern_name
// Every error names the file and, where it applies, the line or key, in one line.
#pragma once
#include <stddef.h>

#include "data/tokenizer/bpe.h"

// Loads and finishes `t`. pattern_name ("gpt2", "cl100k", "o200k", "qwen2"; may be NULL) overrides the
// pattern the file implies. 0, or -1 + error; t is empty after an error.
int ct_tokenizer_load(CtTokenizer *t, const char *path, const char *pattern_name);

int ct_tokenizer_load_gpt2_folder(CtTokenizer *t, const char *dir, const char *pattern_name);
int ct_tokenizer_load_tiktoken(CtTokenizer *t, const char *path, const char *pattern_name);

// From memory (for tests and fuzzing); `source` names the data in errors. meta_json may be NULL.
int ct_tokenizer_parse_tiktoken(CtTokenizer *t, const char *text, size_t len, const char *source,
                                const char *meta_json, CtPattern pattern);
int ct_tokenizer_parse_gpt2(CtTokenizer *t, const char *encoder_json, size_t encoder_len, const char *vocab_bpe,
                            size_t vocab_len, const char *meta_json, const char *source, CtPattern pattern);
