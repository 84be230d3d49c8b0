// ctrain tokenize: text (or JSON lines) in, token ids out.
//
// Raw text is encoded by ct_encode_parallel (data/tokenizer/bpe_parallel.h): chunks cut where every
// pattern starts a new piece, so the ids equal a one-thread run's. JSON lines are
// read in batches; each batch's lines are encoded in parallel and written in order.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/timer.h"
#include "data/tokenizer/bpe.h"
#include "data/tokenizer/bpe_parallel.h"
#include "data/input/json_line.h"
#include "train/cli/commands.h"
#include "train/cli/tokenizer_cli.h"

static const CtOption options[] = {
    {"tokenizer", "PATH", "a GPT-2 folder (encoder.json + vocab.bpe), a .tiktoken rank file, or a tokenizer.json", 0},
    {"pattern", "NAME", "pre-tokenization pattern instead of the file's: gpt2, cl100k, o200k or qwen2", 0},
    {"input", "FILE", "read this file instead of stdin", 0},
    {"jsonl", NULL, "read lines {\"text\": ...}; write one line {\"ids\": [...]} per input line", 0},
    {"allow-special", NULL, "encode special-token strings (<|endoftext|>) as their ids (default: as plain text)", 0},
    {"threads", "N", "encoding threads (default: all cores, or OMP_NUM_THREADS)", 0},
    {"stats", NULL, "print bytes, tokens, bytes/token and MB/s on stderr", 0},
};

static void write_ids(FILE *out, const int32_t *ids, size_t n, int *first) {
    char buf[1 << 16];
    char *p = buf;
    for (size_t i = 0; i < n; i++) {
        if (p - buf > (long)sizeof buf - 16) {
            fwrite(buf, 1, (size_t)(p - buf), out);
            p = buf;
        }
        if (!*first) *p++ = ' ';
        *first = 0;
        p = ct_format_int(p, ids[i]);
    }
    fwrite(buf, 1, (size_t)(p - buf), out);
}

static void print_stats(size_t bytes, size_t tokens, double seconds, int threads) {
    fprintf(stderr, "bytes %zu  tokens %zu  bytes/token %.3f  %.1f MB/s (%d thread%s, %.3f s)\n", bytes, tokens,
            tokens ? (double)bytes / (double)tokens : 0.0, seconds > 0 ? (double)bytes / seconds / 1e6 : 0.0, threads,
            threads == 1 ? "" : "s", seconds);
}

static int tokenize_raw(const CtTokenizer *t, const CtArgs *args, int threads, CtEncoder **encoders) {
    size_t len;
    uint8_t *text = ct_cli_read_input(args, &len);
    if (!text) return -1;
    double start = ct_time_now();
    CtIds ids = {0};
    ct_encode_parallel(t, encoders, threads, text, len, ct_args_has(args, "allow-special"), &ids);
    double seconds = ct_time_now() - start;
    int first = 1;
    write_ids(stdout, ids.data, ids.len, &first);
    fputc('\n', stdout);
    if (ct_args_has(args, "stats")) print_stats(len, ids.len, seconds, threads);
    ct_ids_free(&ids);
    ct_free(text);
    return 0;
}

typedef struct {
    char *line;
    size_t len;
    char *out;  // the output line, formatted by the worker
    size_t out_len;
    size_t tokens, text_bytes;  // for --stats: the decoded text, not the JSON around it
    char *error;  // why this line failed (ct_strdup), or NULL
} Line;

#define BATCH_BYTES (8u << 20)
#define BATCH_LINES 65536

static void encode_line(CtEncoder *e, Line *l, int allow_special, uint8_t **text, size_t *text_cap, CtIds *ids) {
    size_t n;
    size_t len = l->len;
    while (len && (l->line[len - 1] == '\n' || l->line[len - 1] == '\r')) len--;
    int rc = 0;
    if (len == 0) {
        n = 0;  // a blank line gives an empty list, so output lines stay aligned with input lines
    } else {
        rc = ct_json_line_string(l->line, len, "text", text, &n, text_cap);
    }
    if (rc != 0) {
        l->error = ct_strdup(rc > 0 ? "no string field \"text\"" : ct_error_message());
        return;
    }
    ids->len = 0;
    ct_encode(e, *text, n, allow_special, ids);
    l->out = ct_alloc(ids->len * 12 + 16);
    char *p = l->out;
    memcpy(p, "{\"ids\": [", 9);
    p += 9;
    for (size_t i = 0; i < ids->len; i++) {
        if (i) *p++ = ',';
        p = ct_format_int(p, ids->data[i]);
    }
    memcpy(p, "]}\n", 3);
    l->out_len = (size_t)(p + 3 - l->out);
    l->tokens = ids->len;
    l->text_bytes = n;
}

static int tokenize_jsonl(const CtTokenizer *t, const CtArgs *args, int threads, CtEncoder **encoders) {
    const char *path = ct_args_get(args, "input");
    const char *source = path ? path : "stdin";
    FILE *in = path ? fopen(path, "rb") : stdin;
    if (!in) return ct_error_errno("%s", path);
    int allow_special = ct_args_has(args, "allow-special");
    Line *lines = ct_calloc(BATCH_LINES, sizeof *lines);
    size_t line_no = 0, bytes = 0, tokens = 0;
    double seconds = 0;
    int rc = 0, eof = 0;
    while (!eof && rc == 0) {
        size_t n = 0, batch_bytes = 0;
        while (n < BATCH_LINES && batch_bytes < BATCH_BYTES) {
            char *line = NULL;
            size_t cap = 0;
            ssize_t got = getline(&line, &cap, in);
            if (got < 0) {
                free(line);
                eof = 1;
                break;
            }
            lines[n++] = (Line){.line = line, .len = (size_t)got};
            batch_bytes += (size_t)got;
        }
        double start = ct_time_now();
#pragma omp parallel num_threads(threads)
        {
            uint8_t *text = NULL;
            size_t text_cap = 0;
            CtIds ids = {0};
            CtEncoder *e = encoders[omp_get_thread_num()];
#pragma omp for schedule(dynamic, 64)
            for (size_t i = 0; i < n; i++) encode_line(e, &lines[i], allow_special, &text, &text_cap, &ids);
            ct_free(text);
            ct_ids_free(&ids);
        }
        seconds += ct_time_now() - start;
        for (size_t i = 0; i < n; i++) {
            Line *l = &lines[i];
            if (rc == 0 && l->error) rc = ct_error_set("%s:%zu: %s", source, line_no + i + 1, l->error);
            ct_free(l->error);
            if (rc == 0) fwrite(l->out, 1, l->out_len, stdout);
            bytes += l->text_bytes;
            tokens += l->tokens;
            free(l->line);
            ct_free(l->out);
        }
        line_no += n;
    }
    if (path) fclose(in);
    ct_free(lines);
    if (rc == 0 && ct_args_has(args, "stats")) print_stats(bytes, tokens, seconds, threads);
    return rc;
}

static int run_tokenize(const CtArgs *args) {
    int threads;
    if (ct_cli_threads(args, &threads) != 0) return ct_cli_usage_error(&ct_cmd_tokenize, "%s", ct_error_message());
    CtTokenizer t;
    if (ct_cli_load_tokenizer(args, &t) != 0) return ct_cli_fail();
    CtEncoder **encoders = ct_alloc((size_t)threads * sizeof *encoders);
    for (int i = 0; i < threads; i++) encoders[i] = ct_encoder_new(&t);
    int rc = ct_args_has(args, "jsonl") ? tokenize_jsonl(&t, args, threads, encoders)
                                        : tokenize_raw(&t, args, threads, encoders);
    for (int i = 0; i < threads; i++) ct_encoder_free(encoders[i]);
    ct_free(encoders);
    ct_tokenizer_free(&t);
    if (fflush(stdout) != 0 && rc == 0) rc = ct_error_errno("stdout");
    return rc == 0 ? 0 : ct_cli_fail();
}

const CtCommand ct_cmd_tokenize = {
    .name = "tokenize",
    .summary = "encode text into token ids",
    .usage = "ctrain tokenize --tokenizer PATH [--jsonl] [--allow-special] [--threads N] [--input FILE] [--stats]",
    .description = "Without --jsonl: reads raw text (any bytes) and writes the ids separated by spaces.\n"
                   "With --jsonl: reads {\"text\": ...} lines and writes {\"ids\": [...]} lines, in order.\n"
                   "Ids equal tiktoken's encode(text, disallowed_special=()) (or allowed_special=\"all\"\n"
                   "with --allow-special) for GPT-2, cl100k_base and o200k_base.",
    .options = options,
    .n_options = (int)(sizeof options / sizeof options[0]),
    .min_positionals = 0,
    .max_positionals = 0,
    .run = run_tokenize,
};
