// The tokens a Hugging Face tokenizer.json adds around an encoded text: its post_processor
// (what transformers' tokenizer(text) applies by default, add_special_tokens=True). Llama 3's
// TemplateProcessing puts <|begin_of_text|> first; GPT-2's ByteLevel and a null post_processor
// add nothing. Read: TemplateProcessing's "single" template, ByteLevel, and a Sequence of
// those. Another type (BertProcessing, RobertaProcessing...) is an error, never ignored.
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int32_t prefix[8], suffix[8];  // ids before and after the text's tokens
    int n_prefix, n_suffix;
} CtPostProcessor;

// From tokenizer.json text (source names it in errors). 0, or -1 + error.
int ct_post_processor_parse(const char *json, const char *source, CtPostProcessor *out);
// From the parsed tokenizer.json object. 0, or -1 + error (without a file name).
struct cJSON;
int ct_post_processor_read(const struct cJSON *root, CtPostProcessor *out);
// As tokenizer.json's post_processor (TemplateProcessing, or null when it adds nothing), with
// names[] the tokens' texts for the template (names[i] for prefix ids, then suffix ids).
struct cJSON *ct_post_processor_json(const CtPostProcessor *post, const char *const *prefix_names,
                                     const char *const *suffix_names);
