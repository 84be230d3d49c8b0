// The fields a prompts dataset keeps for each prompt's rewards: every member of the JSON line
// except those that make the prompt ("prompt" or "messages", and "system" when it went into the
// prompt), copied byte for byte as the line spells them (numbers such as 12345678901234567890 or
// 1.50 keep their digits, strings their escapes, nesting its layout), as one JSON object:
//   {"prompt": "What is 2 + 2?", "answer": "4", "meta": {"level": 1}}  ->  {"answer":"4","meta":{"level": 1}}
// A reward function reads the answer, or anything else the data carries, from it.
#pragma once
#include <stddef.h>

#include "data/examples/examples.h"

// The fields of `line` (a JSON object that ct_parse_prompt accepted into `p`), as JSON text
// (free with ct_free; *out_len gets its length). NULL + error when they hold bytes that are not
// UTF-8 (the reward's JSON would carry them on to a reward command).
char *ct_prompt_fields(const char *line, size_t len, const CtTaskPrompt *p, size_t *out_len);
