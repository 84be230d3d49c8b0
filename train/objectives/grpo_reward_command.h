// The command reward source of GRPO (train/objectives/grpo_rewards.h): a program, run once per
// batch through /bin/sh -c, that reads one JSON line per completion on stdin,
//   {"prompt": "...", "completion": "...", "fields": {...}}
// ("fields" the prompt's fields as the object itself; bytes of prompt or completion that are
// not UTF-8 written as U+FFFD, so any JSON reader takes the line) and prints one number per
// line on stdout, in the same order. Its stdin is a temporary file (mkstemp in $TMPDIR or /tmp,
// removed as soon as it is open), so a command that prints before it has read everything
// cannot deadlock; its stderr is ours.
#pragma once
#include <stdio.h>

#include "train/objectives/grpo_reward_input.h"

// out[j]: the number the command printed on line j + 1. 0, or -1 + a one-line error naming the
// command: it cannot start, exits non-zero or is killed, prints other than n lines, or a line
// that is not one finite number (quoted).
int ct_reward_command_run(const char *command, const CtRewardInput *in, int n, double *out);
// Writes in's JSON line (newline included) to f. 0, or -1 + error (fields that are not a JSON object).
int ct_reward_command_write_line(FILE *f, const CtRewardInput *in);
