// config.json of the encoder families (transformers 5.23's BertConfig and RobertaConfig, model_type
// bert / roberta; BertForMaskedLM, RobertaForMaskedLM), read into CtModelConfig and written back:
//   n_layer, n_head, d_model, d_ff   num_hidden_layers, num_attention_heads, hidden_size, intermediate_size
//   max_seq_len                      max_position_embeddings (RoBERTa: minus padding_idx + 1, the rows
//                                    before its first position: roberta-base's 514 is 512 tokens)
//   type_vocab_size, norm_eps        type_vocab_size, layer_norm_eps
//   pad_token_id                     pad_token_id (RoBERTa's padding_idx)
// Refused, naming the key: hidden_act other than "gelu" (the exact GELU), position_embedding_type
// other than "absolute", is_decoder or add_cross_attention (a causal or cross-attending BERT),
// tie_word_embeddings false (ctrain's MLM decoder is the word embedding). Dropout probabilities,
// classifier_dropout, initializer_range and the token ids are harmless: they do not change the
// logits of a model in evaluation.
#pragma once
#include <cJSON.h>

#include "train/model/model_config.h"

// Whether model_type (or architectures' first name) is an encoder family ctrain reads.
int ct_hf_is_encoder_type(const char *model_type);
// Reads config.json's object `root` of model_type bert or roberta into *out (zeroed first);
// `source` names the file in messages. 0, or -1 + error.
int ct_hf_encoder_config_parse(const cJSON *root, const char *source, const char *model_type, CtModelConfig *out);
// Adds the keys of an encoder's config.json (architectures, model_type and the shape) to `o`.
void ct_hf_encoder_config_write(cJSON *o, const CtModelConfig *m);
// The architecture name export writes and import accepts: BertForMaskedLM, RobertaForMaskedLM.
const char *ct_hf_encoder_architecture(const CtModelConfig *m);
