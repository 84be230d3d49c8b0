// ctrain detokenize: token ids in, the exact bytes out.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/tokenizer/bpe.h"
#include "train/cli/commands.h"
#include "train/cli/tokenizer_cli.h"

static const CtOption options[] = {
    {"tokenizer", "PATH", "a GPT-2 folder, a .tiktoken rank file, or a tokenizer.json", 0},
    {"pattern", "NAME", "pre-tokenization pattern (only needed to load a rank file without meta)", 0},
    {"input", "FILE", "read ids from this file instead of stdin", 0},
};

// Ids are integers separated by whitespace, commas or brackets, so both "1 2 3" and a JSON
// list "[1, 2, 3]" work.
static int parse_ids(const uint8_t *text, size_t len, CtIds *ids) {
    size_t i = 0;
    while (i < len) {
        uint8_t c = text[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == ',' || c == '[' || c == ']') {
            i++;
            continue;
        }
        if (c < '0' || c > '9') return ct_error_set("input byte %zu: '%c' is not part of a token id", i, c);
        int64_t v = 0;
        while (i < len && text[i] >= '0' && text[i] <= '9') {
            v = v * 10 + (text[i++] - '0');
            if (v > INT32_MAX) return ct_error_set("input byte %zu: token id too large", i);
        }
        ct_ids_push(ids, (int32_t)v);
    }
    return 0;
}

static int run_detokenize(const CtArgs *args) {
    CtTokenizer t;
    if (ct_cli_load_tokenizer(args, &t) != 0) return ct_cli_fail();
    size_t len;
    uint8_t *text = ct_cli_read_input(args, &len);
    CtIds ids = {0};
    uint8_t *out = NULL;
    size_t out_len = 0, out_cap = 0;
    int rc = text ? parse_ids(text, len, &ids) : -1;
    if (rc == 0) rc = ct_decode_text(&t, ids.data, ids.len, &out, &out_len, &out_cap);
    if (rc == 0 && out_len) fwrite(out, 1, out_len, stdout);
    if (rc == 0 && fflush(stdout) != 0) rc = ct_error_errno("stdout");
    ct_free(out);
    ct_ids_free(&ids);
    ct_free(text);
    ct_tokenizer_free(&t);
    return rc == 0 ? 0 : ct_cli_fail();
}

const CtCommand ct_cmd_detokenize = {
    .name = "detokenize",
    .summary = "decode token ids back into text",
    .usage = "ctrain detokenize --tokenizer PATH [--input FILE]",
    .description = "Reads token ids (separated by spaces, newlines or commas) and writes the exact bytes they\n"
                   "stand for, invalid UTF-8 included.",
    .options = options,
    .n_options = (int)(sizeof options / sizeof options[0]),
    .min_positionals = 0,
    .max_positionals = 0,
    .run = run_detokenize,
};
