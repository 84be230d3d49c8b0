#include "train/cli/tokenizer_cli.h"

#include <omp.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/input/read_file.h"
#include "data/tokenizer/tokenizer_files.h"

int ct_cli_load_tokenizer(const CtArgs *args, CtTokenizer *t) {
    const char *path = ct_args_get(args, "tokenizer");
    if (!path) return ct_error_set("--tokenizer PATH is required (a GPT-2 folder, a .tiktoken file or a tokenizer.json)");
    return ct_tokenizer_load(t, path, ct_args_get(args, "pattern"));
}

uint8_t *ct_cli_read_input(const CtArgs *args, size_t *len) {
    const char *path = ct_args_get(args, "input");
    if (path) return (uint8_t *)ct_read_whole_file(path, len);
    size_t cap = 1 << 20, n = 0, got;
    uint8_t *buf = ct_alloc(cap);
    while ((got = fread(buf + n, 1, cap - n, stdin)) > 0) {
        n += got;
        if (n == cap) buf = ct_realloc(buf, cap *= 2);
    }
    if (ferror(stdin)) {
        ct_free(buf);
        ct_error_set("stdin: read error");
        return NULL;
    }
    *len = n;
    return buf;
}

int ct_cli_threads(const CtArgs *args, int *threads) {
    long n;
    if (ct_args_get_long(args, "threads", omp_get_max_threads(), &n) != 0) return ct_error_prefix("--threads: ");
    if (n < 1 || n > 1024) return ct_error_set("--threads must be between 1 and 1024, not %ld", n);
    *threads = (int)n;
    return 0;
}

char *ct_format_int(char *buf, int64_t v) {
    char tmp[24];
    int n = 0;
    uint64_t u = v < 0 ? (uint64_t)(-(v + 1)) + 1 : (uint64_t)v;
    if (v < 0) *buf++ = '-';
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    while (n) *buf++ = tmp[--n];
    return buf;
}
