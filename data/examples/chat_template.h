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
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "data/tokenizer/bpe.h"

typedef struct {
    char name[64];
    char *turn_start, *turn_end, *end_of_turn;
    char **trained_roles;
    int n_trained_roles;
} CtChatTemplate;

typedef struct {
    const char *role;
    const char *content;
    size_t content_len;
} CtMessage;

// "chatml", "plain", or the path of a JSON file. 0, or -1 + error.
int ct_chat_template_load(CtChatTemplate *t, const char *name_or_path);
int ct_chat_template_parse(CtChatTemplate *t, const char *json, const char *source);
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
// and turn_end. Returns how many were written to names (at most max).
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
// header of an assistant turn follows (what generation and dpo prompts end with).
void ct_chat_encode(const CtChatTemplate *t, const CtTokenizer *tok, CtEncoder *enc, const CtMessage *messages,
                    int n_messages, int add_generation_prompt, CtMaskedIds *out);
// Appends a completion that follows a generation prompt: the content, the end-of-turn token
// and the rest of turn_end (dpo's chosen and rejected answers).
void ct_chat_encode_completion(const CtChatTemplate *t, const CtTokenizer *tok, CtEncoder *enc, const char *content,
                               size_t content_len, CtMaskedIds *out);
