// SFT and DPO examples from JSON lines, in the schemas users bring from the Hub:
//   sft  {"messages": [{"role": "user", "content": "..."}, ...]}
//        {"prompt": "...", "response": "..."}   ("completion" for "response"; optional "system")
//        {"instruction": "...", "input": "...", "output": "..."}   (Alpaca; "input" optional)
//   dpo  {"prompt": ..., "chosen": ..., "rejected": ...}, each a string or a message list
//        (chosen and rejected: one assistant message); optional "margin", a number (TRL's
//        RewardTrainer subtracts it in the reward loss)
//   task {"prompt": "..." (optional "system") or a message list, or "messages": [...], and
//        "answer": the ground truth, a string or an integer} (ctrain eval --task; other fields
//        such as "response" are ignored, so an SFT file of the arithmetic task serves as is)
//   prompts  the same prompt, "answer" optional (ctrain shard --format prompts, for ctrain grpo)
// and the tokens of plain-string pairs, as TRL's DPOTrainer makes them.
#pragma once
#include <stddef.h>

#include "data/examples/chat_template.h"

typedef struct {
    void *root;  // the parsed JSON (cJSON), which owns the strings
    char *owned; // text built here (Alpaca's instruction + input)
    CtMessage *messages;
    int n_messages;
} CtConversation;

typedef struct {
    void *root;
    CtMessage *prompt;  // the prompt as messages (a string prompt is one user message)
    int n_prompt;
    int conversational; // the prompt was a message list
    const char *chosen, *rejected;
    size_t chosen_len, rejected_len;
    int has_margin;     // the line has a "margin" (a finite number: anything else is refused)
    double margin;      // ... its value (0 without)
} CtPreference;

typedef struct {
    void *root;
    CtMessage *prompt;  // the prompt as messages (a string prompt is a user message after "system")
    int n_prompt;
    const char *prompt_key;  // "prompt" or "messages": where the prompt came from
    int used_system;         // a "system" string went into the prompt (with a "prompt" string)
    char *answer;            // the ground truth as text (an integer answer printed); NULL from ct_parse_prompt
} CtTaskPrompt;

// Returns 0, or -1 + error saying what is wrong (the caller adds file:line).
int ct_parse_sft_example(const char *line, size_t len, CtConversation *out);
void ct_conversation_free(CtConversation *c);
int ct_parse_dpo_example(const char *line, size_t len, CtPreference *out);
void ct_preference_free(CtPreference *p);
// A "messages" list loses its trailing assistant messages (the reference answer, which an SFT
// file carries): the prompt is what comes before them, and must not be empty.
int ct_parse_task_prompt(const char *line, size_t len, CtTaskPrompt *out);
// The same prompt without the need of an "answer" (a prompts dataset keeps whatever fields a
// line has for its rewards: data/examples/prompt_fields.h).
int ct_parse_prompt(const char *line, size_t len, CtTaskPrompt *out);
void ct_task_prompt_free(CtTaskPrompt *p);
// A prompt's tokens, appended to out: rendered by the chat template with the generation prompt
// (the header of the assistant turn that answers it), or, with no template (NULL), the text of a
// single "prompt" string as it is. 0, or -1 + error (a system message or a message list with no
// template: "... needs <what_renders_chats>", which names where a template would come from; a
// template that refuses the conversation; no tokens at all).
int ct_encode_prompt(const CtChatTemplate *t, const CtTokenizer *tok, CtEncoder *enc, const CtTaskPrompt *p,
                     const char *what_renders_chats, CtIds *out);

// The tokens of a plain-string pair (p->conversational == 0) as TRL 1.x's DPOTrainer makes
// them: the end-of-sequence text (the token `eos`) appended to each completion that does not
// end with it; the prompt, prompt+chosen and prompt+rejected each tokenized whole (special-token
// strings are those tokens, as in a Hugging Face tokenizer); the prompt is their common prefix
// and each completion the rest of its sequence. Appends to prompt, chosen and rejected, and
// returns how many tokens of the prompt tokenized alone are not in that prefix (0 unless
// tokens merge across the boundary: TRL warns then, and so does ctrain shard).
size_t ct_encode_plain_preference(CtEncoder *enc, const CtTokenizer *tok, int32_t eos, const CtPreference *p,
                                  CtIds *prompt, CtIds *chosen, CtIds *rejected);
