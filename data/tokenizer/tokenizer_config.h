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

// Reads config_json (source names it in messages) and warns where its add_bos_token /
// add_eos_token disagree with t->post. 0, or -1 + error when the file is not a JSON object or
// a flag is not a boolean.
int ct_tokenizer_check_config(const CtTokenizer *t, const char *config_json, const char *source);
// The same with the tokenizer_config.json in the folder of tokenizer_json_path, when there is
// one (none: 0).
int ct_tokenizer_check_config_beside(const CtTokenizer *t, const char *tokenizer_json_path);
// The id of a token given by its text: an added token, or a vocab token (its vocab string for a
// SentencePiece-style tokenizer, its bytes for a byte-level one). -1 when there is none.
int32_t ct_tokenizer_token_id(const CtTokenizer *t, const char *text);
