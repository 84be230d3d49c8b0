// Where generation stops: the end-of-sequence ids a checkpoint names (its generation_config, as
// Hugging Face's transformers reads them), the tokenizer's end of text, a chat template's end of
// turn. The generator itself (train/model/generate.h) works on token ids and knows none of them.
#pragma once
#include <stdint.h>

#include "data/tokenizer/bpe.h"

// The tokens generation stops at (the stop token itself is not printed):
//   the model's end-of-sequence ids: eos_token_id of the checkpoint's generation_config (an
//   imported model's, from its config.json or generation_config.json; a list or one id), or,
//   when the checkpoint names none, the tokenizer's <|endoftext|> (what `ctrain shard` ends
//   each document with);
//   and the chat template's end-of-turn token (<|im_end|> for ChatML, <|eot_id|> for Llama 3).
enum { CT_MAX_STOP_TOKENS = 16 };
typedef struct {
    int32_t ids[CT_MAX_STOP_TOKENS];
    int n;
} CtStopTokens;

// generation_config_json (may be NULL) is the checkpoint's; end_of_turn is -1 without a chat
// template. `source` names the checkpoint in errors. 0, or -1 + error.
int ct_stop_tokens_init(CtStopTokens *s, const char *generation_config_json, const CtTokenizer *tok, int vocab_size,
                        int32_t end_of_turn, const char *source);
int ct_stop_tokens_has(const CtStopTokens *s, int32_t id);
// The ids of "eos_token_id" in a JSON object's text (a number, a list of numbers, or null; key
// absent: *n = 0). Ids at or past vocab_size are left out with a warning (the model cannot
// produce them). 0, or -1 + error naming `source` (not a list of non-negative integers).
int ct_eos_token_ids_parse(const char *json, const char *source, int vocab_size, int32_t *ids, int max, int *n);
// The tokenizer's end-of-sequence special token as `ctrain export hf` names it eos_token in
// tokenizer_config.json: the first present of <|endoftext|>, <|end_of_text|>, </s>, <|eot_id|>,
// <|im_end|>; -1 when it has none.
int32_t ct_tokenizer_eos_special(const CtTokenizer *t);
// The JSON text the checkpoint stores for these ids: {"eos_token_id": [ids]} (free with ct_free()).
char *ct_generation_config_json(const int32_t *ids, int n);
