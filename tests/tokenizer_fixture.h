// A small byte-level tokenizer built in memory, for tests that shard or render text without
// files from ../shared (tests/test_data_sharder.c, tests/test_data_prompts.c).
#pragma once
#include "data/tokenizer/bpe.h"

enum { ID_ENDOFTEXT = 300, ID_IM_START = 301, ID_IM_END = 302 };

// The 256 bytes, three merged tokens ("th" 256, "the" 257, " t" 258) and the special tokens
// <|endoftext|>, <|im_start|> and <|im_end|> (ids above).
void tiny_tokenizer(CtTokenizer *t);
