// SFT and DPO examples from JSON lines, in the schemas users bring from the Hub:
//   sft  {"messages": [{"role": "user", "content": "..."}, ...]}
//        {"prompt": "...", "response": "..."}   ("completion" for "response"; optional "system")
//        {"instruction": "...", "input": "...", "output": "..."}   (Alpaca; "input" optional)
//   dpo  {"prompt": ..., "chosen": ..., "rejected": ...}, each a string or a message list
//        (chosen and rejected: one assistant message)
#pragma once
#include <stddef.h>

#include "data/chat_template.h"

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
} CtPreference;

// Returns 0, or -1 + error saying what is wrong (the caller adds file:line).
int ct_parse_sft_example(const char *line, size_t len, CtConversation *out);
void ct_conversation_free(CtConversation *c);
int ct_parse_dpo_example(const char *line, size_t len, CtPreference *out);
void ct_preference_free(CtPreference *p);
