// Task evaluation (`ctrain eval --task`): the greedy answers of a model to the prompts of a JSON
// lines file, scored against each line's "answer" by the answer rule
// (data/examples/answer_extract.h). Each prompt is rendered with the chat template the
// checkpoint carries and its generation prompt (as `ctrain chat` does), or, for a checkpoint
// without one, is the text of a string prompt as it is; the model answers greedily with the
// key/value cache until a stop token (train/interop/stop_tokens.h), its context or
// max_new_tokens ends the answer.
#pragma once
#include <stdio.h>

#include "data/examples/chat_template.h"
#include "data/examples/examples.h"
#include "train/interop/stop_tokens.h"
#include "train/model/model.h"

// The prompts of a file, each with its line number, and their tokens.
typedef struct {
    CtTaskPrompt *items;
    long *line_no;
    int n;
    char *path;
    CtIds ids;         // every prompt's tokens, one after another
    size_t *offsets;   // [n + 1] into ids
} CtTaskPrompts;

// Reads the file's JSON lines (blank lines skipped; .zst decompressed), the first max_examples of
// them (0: all). 0, or -1 + error "PATH:LINE: problem" (or a file with no prompt at all).
int ct_task_prompts_read(CtTaskPrompts *p, const char *path, long max_examples);
// Encodes every prompt (template: NULL for the text as it is) and checks that each leaves room
// for an answer in a context of max_ctx. 0, or -1 + error "PATH:LINE: problem".
int ct_task_prompts_encode(CtTaskPrompts *p, const CtTokenizer *tok, const CtChatTemplate *template, int max_ctx);
void ct_task_prompts_free(CtTaskPrompts *p);

typedef struct {
    CtModel *model;
    const CtTokenizer *tok;
    const CtStopTokens *stop;
    int max_new_tokens;
    int progress;  // show a progress bar
} CtTaskEvalSetup;

typedef struct {
    int examples, correct;
    int cut_short;  // answers that ended at max_new_tokens or the context, not at a stop token
} CtTaskEvalTotals;

// Answers and scores every prompt; with `results` (may be NULL), one JSON line per prompt:
// {"line", the prompt under its own key ("prompt" or "messages"), "completion", "extracted",
// "answer", "correct", "stopped": "stop_token"|"max_tokens"|"context"}. 0, or -1 + error.
int ct_task_eval_run(const CtTaskEvalSetup *s, const CtTaskPrompts *p, FILE *results, CtTaskEvalTotals *totals);
