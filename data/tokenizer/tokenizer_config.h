// tokenizer_config.json, the file transformers reads beside tokenizer.json, and what it says
// about the tokens added around an encoded text (BOS/EOS).
//
// transformers 5 (5.23 checked: tokenization_utils_base's _from_pretrained) drops
// add_bos_token / add_eos_token from tokenizer_config.json when a tokenizer.json exists, so
// tokenizer.json's post_processor alone decides, and ctrain follows it. transformers 4's
// Llama/Gemma tokenizer classes rebuilt the post-processor from the two flags instead (BOS iff
// add_bos_token, EOS iff add_eos_token); where the flags say something else than the
// post_processor (Phi-3's tokenizer_config.json has add_bos_token false), ctrain says so in a
// warning naming both.
#pragma once
#include "data/tokenizer/bpe.h"

// Reads config_json (source names it in messages): warns where its add_bos_token /
// add_eos_token disagree with t->post, and keeps its eos_token's text in t->eos_text (the
// default end-of-text token of `ctrain shard` where the tokenizer has no <|endoftext|>).
// 0, or -1 + error when the file is not a JSON object or a flag is not a boolean.
int ct_tokenizer_read_config(CtTokenizer *t, const char *config_json, const char *source);
// The same with the tokenizer_config.json in the folder of tokenizer_json_path, when there is
// one (none: 0).
int ct_tokenizer_read_config_beside(CtTokenizer *t, const char *tokenizer_json_path);
// The end-of-text token to close documents with: "<|endoftext|>" when the tokenizer has it,
// else tokenizer_config.json's eos_token (t->eos_text) when it is an added token, else the last
// token the post-processor puts after a text when it is special (BERT's [SEP], RoBERTa's </s>:
// the sharder's documents are then [CLS] text [SEP], nothing more), else "<|endoftext|>" (which
// the caller then reports missing).
const char *ct_tokenizer_default_eot(const CtTokenizer *t);
// The id of a token given by its text: an added token, or a vocab token (its vocab string for a
// SentencePiece-style tokenizer, its bytes for a byte-level one). -1 when there is none.
int32_t ct_tokenizer_token_id(const CtTokenizer *t, const char *text);
