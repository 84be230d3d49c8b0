// tokenizer_config.json, the file transformers reads beside tokenizer.json: what it says about
// the tokens added around an encoded text. transformers (TokenizersBackend) rebuilds the
// post-processor when add_bos_token or add_eos_token is present: BOS first iff add_bos_token,
// EOS last iff add_eos_token (a missing one counts as false), with bos_token / eos_token (a
// string, or an object with "content"); otherwise tokenizer.json's post_processor stands. So
// Gemma and Mistral get BOS, and Phi-3 (add_bos_token false) gets none although its
// tokenizer.json's TemplateProcessing adds <s>.
#pragma once
#include "data/tokenizer/bpe.h"

// Applies config_json to t->post (source names it in errors). 0, or -1 + error.
int ct_tokenizer_apply_config(CtTokenizer *t, const char *config_json, const char *source);
// The same with the tokenizer_config.json in the folder of tokenizer_json_path, when there is
// one (none: 0, nothing changes).
int ct_tokenizer_apply_config_beside(CtTokenizer *t, const char *tokenizer_json_path);
// The id of a token given by its text: an added token, or a vocab token (its vocab string for a
// SentencePiece-style tokenizer, its bytes for a byte-level one). -1 when there is none.
int32_t ct_tokenizer_token_id(const CtTokenizer *t, const char *text);
// tokenizer.json text with its post_processor replaced by t->post (free with free()), or NULL +
// error. For storing a tokenizer.json whose tokenizer_config.json changes what it adds.
char *ct_tokenizer_json_with_post(const CtTokenizer *t, const char *json);
