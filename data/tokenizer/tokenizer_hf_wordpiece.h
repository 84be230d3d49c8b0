// The parts of a Hugging Face tokenizer.json with a WordPiece model (BERT): normalizer
// BertNormalizer (or null), pre_tokenizer BertPreTokenizer (or null; alone or as a Sequence of
// one), decoder WordPiece (or null), and the model's unk_token, continuing_subword_prefix and
// max_input_chars_per_word; read into CtWordPieceRules, or an error naming the key.
#pragma once
#include "data/tokenizer/wordpiece_rules.h"

struct cJSON;
// root: the tokenizer.json object. The unk token's text into unk (cap bytes). 0, or -1 + error.
int ct_hf_read_wordpiece(const struct cJSON *root, CtWordPieceRules *out, char *unk, size_t cap);
// normalizer, pre_tokenizer and decoder as JSON (added to root).
void ct_hf_write_wordpiece_pipeline(struct cJSON *root, const CtWordPieceRules *r);
// The model's options (type, unk_token, continuing_subword_prefix, max_input_chars_per_word)
// added to the model object; unk: the unk token's text.
void ct_hf_write_wordpiece_model(struct cJSON *model, const CtWordPieceRules *r, const char *unk);
