// What the tokenizer commands share: loading the tokenizer named on the command line, reading
// the input, and writing numbers fast.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/args.h"
#include "data/tokenizer/bpe.h"

// Loads --tokenizer PATH (with --pattern NAME when given). 0, or -1 + error.
int ct_cli_load_tokenizer(const CtArgs *args, CtTokenizer *t);
// The whole of --input FILE, or of stdin; free with ct_free. NULL + error.
uint8_t *ct_cli_read_input(const CtArgs *args, size_t *len);
// --threads N (default: OpenMP's thread count). -1 + error for a bad value.
int ct_cli_threads(const CtArgs *args, int *threads);
// Appends the decimal form of v to buf; returns the new end.
char *ct_format_int(char *buf, int64_t v);
