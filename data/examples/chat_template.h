// Chat templates as data: how a conversation becomes tokens, and which tokens the model is
// trained to produce. A template is a small JSON object (built in: "chatml", "plain"; or a
// file given by path):
//   {"name": "chatml",
//    "turn_start": "<|im_start|>{role}\n",   text before each message ({role} is replaced)
//    "turn_end": "<|im_end|>\n",             text after each message
//    "end_of_turn": "<|im_end|>",            the token that ends a trained turn: in the loss,
//                                            and where generation stops (must be one token)
//    "trained_roles": ["assistant"]}         roles whose content the loss covers
// A message of a trained role contributes its content and the end-of-turn token to the loss
// (mask 1); headers, other roles and the rest of turn_end have mask 0. Template text is
// encoded with special tokens allowed; message content never is, so a user who types
// "<|im_end|>" cannot end a turn.
//
// Or a model's own template (kind "jinja"): the Jinja text of tokenizer_config.json's
// "chat_template", with its bos/eos token strings, rendered as transformers'
// apply_chat_template renders it (data/examples/jinja.h). Stored (dataset manifests,
// checkpoints) as {"kind": "jinja", "name": ..., "template": "...", "bos_token": ...,
// "eos_token": ..., "end_of_turn": ...}. Its end of turn is the first of <|eot_id|>, <|im_end|>,
// <end_of_turn>, <|end|> the template spells, else its eos_token. The loss covers each trained
// message from where the generation prompt before it ends (the text rendered for the messages
// before it with add_generation_prompt, where that is a prefix of the whole; else from its
// content) through the first end-of-turn after its content (chat_jinja.c).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "data/tokenizer/bpe.h"

typedef struct CtJinja CtJinja;

typedef struct {
    char name[64];
    char *turn_start, *turn_end, *end_of_turn;  // jinja: turn_start and turn_end are ""
    char **trained_roles;
    int n_trained_roles;
    CtJinja *jinja;                    // kind "jinja": the parsed template, else NULL
    char *jinja_source;                // its text
    char *bos_token, *eos_token;       // the strings the template's bos_token/eos_token are; may be NULL
} CtChatTemplate;

typedef struct {
    const char *role;
    const char *content;
    size_t content_len;
} CtMessage;

// "chatml", "plain", or a path: a .jinja file (a model's template; bos/eos undefined unless a
// tokenizer_config.json stands beside it), a model folder (its chat_template.jinja, else its
// tokenizer_config.json's "chat_template"; bos_token and eos_token from tokenizer_config.json),
// a tokenizer_config.json, or a JSON template file (either kind). 0, or -1 + error.
int ct_chat_template_load(CtChatTemplate *t, const char *name_or_path);
int ct_chat_template_parse(CtChatTemplate *t, const char *json, const char *source);
// A Jinja template's text with its bos/eos strings (either may be NULL). 0, or -1 + error naming
// `source` and the template's line.
int ct_chat_template_from_jinja(CtChatTemplate *t, const char *jinja, const char *bos_token, const char *eos_token,
                                const char *source);
// The template from a tokenizer_config.json's text: its "chat_template" (a string, or a list of
// {name, template} whose "default" is taken), bos_token and eos_token (strings or {"content"}).
// 1 when it has no chat_template, 0, or -1 + error.
int ct_chat_template_from_tokenizer_config(CtChatTemplate *t, const char *json, const char *source);
// The JSON text that ct_chat_template_parse reads back (free with ct_free).
char *ct_chat_template_to_json(const CtChatTemplate *t);
void ct_chat_template_free(CtChatTemplate *t);
int ct_chat_template_trains(const CtChatTemplate *t, const char *role);
// The roles a message may have: system, user, assistant and tool (the Hub's chat datasets and
// Hugging Face's templates use these), and the template's trained roles. Any other (a typo
// such as "assitant", or "User") would be rendered as an untrained turn and silently not
// learned, so the sharder refuses it by name.
int ct_chat_template_allows_role(const CtChatTemplate *t, const char *role);
// "system, user, assistant, tool" and the template's other trained roles, for messages.
void ct_chat_template_roles_text(const CtChatTemplate *t, char *out, size_t size);
// The special-token strings the template spells: end_of_turn and every "<|...|>" in turn_start
// and turn_end (a Jinja template: in its text). Returns how many were written to names (at most max).
int ct_chat_template_specials(const CtChatTemplate *t, char names[][128], int max);
// The id of the end-of-turn token in tok, or -1 + error when the tokenizer lacks it (or the
// template's other special strings) as a single token.
int32_t ct_chat_template_check(const CtChatTemplate *t, const CtTokenizer *tok);

// A growable token list with a loss mask.
typedef struct {
    CtIds ids;
    uint8_t *mask;
    size_t mask_cap;
} CtMaskedIds;

void ct_masked_ids_clear(CtMaskedIds *m);
void ct_masked_ids_free(CtMaskedIds *m);

// Appends the tokens of `messages` rendered by the template. With add_generation_prompt, the
// header of an assistant turn follows (what generation and dpo prompts end with). 0, or -1 +
// error (a Jinja template may refuse a conversation: raise_exception).
int ct_chat_encode(const CtChatTemplate *t, const CtTokenizer *tok, CtEncoder *enc, const CtMessage *messages,
                   int n_messages, int add_generation_prompt, CtMaskedIds *out);
// Appends a completion that follows the generation prompt of `prompt`: the content, the
// end-of-turn token and the rest of the turn (dpo's chosen and rejected answers). A Jinja
// template renders prompt + the assistant message and takes what follows the prompt's
// rendering (as TRL does); where that is not a prefix, -1 + error. 0, or -1 + error.
int ct_chat_encode_completion(const CtChatTemplate *t, const CtTokenizer *tok, CtEncoder *enc, const CtMessage *prompt,
                              int n_prompt, const char *content, size_t content_len, CtMaskedIds *out);

// ---- the Jinja kind (chat_jinja.c) ----
// The rendered text of a conversation, and the character ranges the loss covers: ranges[2k],
// ranges[2k+1] = [start, end) of each trained message. 0, or -1 + error. Free text and ranges
// with ct_free.
int ct_chat_jinja_render(const CtChatTemplate *t, const CtMessage *messages, int n_messages, int add_generation_prompt,
                         char **text, size_t **ranges, int *n_ranges);
// Its tokens: the text is encoded whole, with special tokens, as transformers tokenizes it, each
// token trained where any of its bytes is; a message's content that spells a special token is
// cut out and encoded as text. skip_prefix: the text's first skip_prefix bytes are encoded apart
// and left out (dpo's prompt: TRL tokenizes prompt and completion apart).
int ct_chat_jinja_encode(const CtChatTemplate *t, const CtTokenizer *tok, CtEncoder *enc, const CtMessage *messages,
                         int n_messages, int add_generation_prompt, size_t skip_prefix, CtMaskedIds *out);
int ct_chat_jinja_encode_completion(const CtChatTemplate *t, const CtTokenizer *tok, CtEncoder *enc,
                                    const CtMessage *prompt, int n_prompt, const char *content, size_t content_len,
                                    CtMaskedIds *out);
// The end-of-turn string a Jinja template ends assistant turns with (see above); NULL when it
// spells none.
const char *ct_chat_jinja_end_of_turn(const char *source, const char *eos_token);
