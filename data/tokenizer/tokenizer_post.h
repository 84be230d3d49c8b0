// The tokens a Hugging Face tokenizer.json adds around an encoded text, or a pair of texts: its
// post_processor (what transformers' tokenizer(text) / tokenizer(a, b) applies by default,
// add_special_tokens=True), with the token type ids it gives each token. Llama 3's
// TemplateProcessing puts <|begin_of_text|> first; BERT's BertProcessing gives [CLS] A [SEP] and
// [CLS] A [SEP] B [SEP] (types 0 0 0 1 1); RoBERTa's RobertaProcessing <s> A </s> and
// <s> A </s></s> B </s> (all type 0); GPT-2's ByteLevel and a null post_processor add nothing.
// Read: TemplateProcessing ("single" and "pair"), BertProcessing, RobertaProcessing, ByteLevel,
// and a Sequence of those. Another type is an error, never ignored.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "data/tokenizer/token_ids.h"

#define CT_POST_A (-1)  // a template's first text
#define CT_POST_B (-2)  // ... and second text

typedef struct {
    int32_t id;       // a token id, or CT_POST_A / CT_POST_B
    int32_t type_id;  // the token type of it (of every token of the text)
} CtPostPiece;

#define CT_POST_MAX_SIDE 8
#define CT_POST_MAX_PIECES 34

typedef struct {
    // The single-text template as ids before and after the text (what framing needs).
    int32_t prefix[CT_POST_MAX_SIDE], suffix[CT_POST_MAX_SIDE];
    int n_prefix, n_suffix;
    // The templates in full. n_single == 0: the single one is prefix, A, suffix (type 0), and
    // the pair one is it twice, the second with B and type 1 (as transformers'
    // update_post_processor writes it); that is how a post-processor made from prefix and
    // suffix alone (tokenizer_config.json's flags, tests) behaves.
    CtPostPiece single[CT_POST_MAX_PIECES], pair[CT_POST_MAX_PIECES];
    int n_single, n_pair;
    // RobertaProcessing: every token type is 0, even without special tokens (HF gives the second
    // text type 1 there otherwise); written back as a RobertaProcessing
    int roberta;
} CtPostProcessor;

// From tokenizer.json text (source names it in errors). 0, or -1 + error.
int ct_post_processor_parse(const char *json, const char *source, CtPostProcessor *out);
// From the parsed tokenizer.json object. 0, or -1 + error (without a file name).
struct cJSON;
int ct_post_processor_read(const struct cJSON *root, CtPostProcessor *out);
// The templates in full (see n_single above): single into single[], pair into pair[]; counts.
void ct_post_templates(const CtPostProcessor *post, CtPostPiece *single, int *n_single, CtPostPiece *pair, int *n_pair);
// As tokenizer.json's post_processor (TemplateProcessing, or null when it adds nothing);
// name(ctx, id, buf, cap) writes a token's text for the template.
typedef void (*CtPostTokenName)(const void *ctx, int32_t id, char *buf, size_t cap);
struct cJSON *ct_post_processor_json(const CtPostProcessor *post, CtPostTokenName name, const void *ctx);

// Applies it: a's ids (and b's when b is not NULL) with the template's tokens around them when
// add_special, else a then b; into ids, and each one's token type into type_ids (may be NULL;
// without add_special, 0 for a and 1 for b, as HF gives them).
void ct_post_apply(const CtPostProcessor *post, const CtIds *a, const CtIds *b, int add_special, CtIds *ids,
                   CtIds *type_ids);
