#include "data/text_input.h"

#include <stdio.h>
#include <string.h>
#include <zstd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/json_line.h"
#include "data/read_file.h"

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

// JSON lines arrive in blocks; a line may straddle two blocks, so the reader keeps the
// unfinished tail and prepends it to the next block.
typedef struct {
    const char *path;
    CtDocumentFn fn;
    void *ctx;
    char *pending;
    size_t pending_len, pending_cap;
    size_t line_no;
    uint8_t *text;
    size_t text_cap;
} LineReader;

static int handle_line(LineReader *r, const char *line, size_t len) {
    r->line_no++;
    while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t')) len--;
    if (len == 0) return 0;
    size_t n = 0;
    int rc = ct_json_line_string(line, len, "text", &r->text, &n, &r->text_cap);
    if (rc < 0) return ct_error_prefix("%s:%zu: ", r->path, r->line_no);
    if (rc > 0) return ct_error_set("%s:%zu: no string field \"text\"", r->path, r->line_no);
    if (r->fn(r->ctx, r->text, n) != 0) return ct_error_prefix("%s:%zu: ", r->path, r->line_no);
    return 0;
}

static int feed(LineReader *r, const char *data, size_t len) {
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        if (!nl) break;
        size_t line_len = (size_t)(nl - (data + pos));
        int rc;
        if (r->pending_len) {
            if (r->pending_len + line_len > r->pending_cap)
                r->pending = ct_realloc(r->pending, r->pending_cap = (r->pending_len + line_len) * 2);
            memcpy(r->pending + r->pending_len, data + pos, line_len);
            rc = handle_line(r, r->pending, r->pending_len + line_len);
            r->pending_len = 0;
        } else {
            rc = handle_line(r, data + pos, line_len);
        }
        if (rc != 0) return -1;
        pos += line_len + 1;
    }
    size_t rest = len - pos;
    if (rest) {
        if (r->pending_len + rest > r->pending_cap) r->pending = ct_realloc(r->pending, r->pending_cap = (r->pending_len + rest) * 2);
        memcpy(r->pending + r->pending_len, data + pos, rest);
        r->pending_len += rest;
    }
    return 0;
}

static int finish(LineReader *r, int rc) {
    if (rc == 0 && r->pending_len) rc = handle_line(r, r->pending, r->pending_len);
    ct_free(r->pending);
    ct_free(r->text);
    return rc;
}

static int read_jsonl_zst(const char *path, LineReader *r) {
    FILE *f = fopen(path, "rb");
    if (!f) return ct_error_errno("%s", path);
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    size_t in_cap = ZSTD_DStreamInSize(), out_cap = ZSTD_DStreamOutSize();
    char *in = ct_alloc(in_cap), *out = ct_alloc(out_cap);
    int rc = 0;
    size_t last = 0, got;
    int any = 0;
    while (rc == 0 && (got = fread(in, 1, in_cap, f)) > 0) {
        any = 1;
        ZSTD_inBuffer input = {in, got, 0};
        while (input.pos < input.size && rc == 0) {
            ZSTD_outBuffer output = {out, out_cap, 0};
            last = ZSTD_decompressStream(dctx, &output, &input);
            if (ZSTD_isError(last)) {
                rc = ct_error_set("%s: corrupt zstd data (%s)", path, ZSTD_getErrorName(last));
                break;
            }
            rc = feed(r, out, output.pos);
        }
    }
    // Flush what the decoder still holds.
    while (rc == 0 && last != 0 && any) {
        ZSTD_inBuffer input = {in, 0, 0};
        ZSTD_outBuffer output = {out, out_cap, 0};
        last = ZSTD_decompressStream(dctx, &output, &input);
        if (ZSTD_isError(last)) {
            rc = ct_error_set("%s: corrupt zstd data (%s)", path, ZSTD_getErrorName(last));
            break;
        }
        if (output.pos == 0) {
            rc = ct_error_set("%s: truncated zstd stream", path);
            break;
        }
        rc = feed(r, out, output.pos);
    }
    if (rc == 0 && ferror(f)) rc = ct_error_set("%s: read error", path);
    fclose(f);
    ZSTD_freeDCtx(dctx);
    ct_free(in);
    ct_free(out);
    return rc;
}

int ct_read_documents(const char *path, CtDocumentFn fn, void *ctx) {
    LineReader r = {.path = path, .fn = fn, .ctx = ctx};
    if (ends_with(path, ".jsonl.zst") || ends_with(path, ".json.zst")) return finish(&r, read_jsonl_zst(path, &r));
    size_t len;
    char *data = ct_read_whole_file(path, &len);
    if (!data) return -1;
    int rc;
    if (ends_with(path, ".jsonl") || ends_with(path, ".ndjson")) {
        rc = finish(&r, feed(&r, data, len));
    } else {
        rc = len ? fn(ctx, (const uint8_t *)data, len) : 0;
        if (rc != 0) ct_error_prefix("%s: ", path);
        finish(&r, 0);
    }
    ct_free(data);
    return rc;
}
