#include "data/input/text_input.h"

#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/input/input_reader.h"
#include "data/input/json_line.h"

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

int ct_read_documents(const char *path, CtDocumentFn fn, void *ctx) {
    CtLineReader r;
    if (ct_line_reader_open(&r, path) != 0) return -1;
    int jsonl = ct_input_is_jsonl(path), rc = 0, got;
    const char *line;
    size_t len;
    int newline;
    uint8_t *doc = NULL;  // a .txt file is one document; a JSON line's decoded "text"
    size_t doc_len = 0, doc_cap = 0;
    while ((got = ct_line_reader_next(&r, &line, &len, &newline)) > 0) {
        if (jsonl) {
            if (is_blank(line, len)) continue;
            int found = ct_json_line_string(line, len, "text", &doc, &doc_len, &doc_cap);
            if (found < 0) {
                rc = ct_error_prefix("%s:%llu: ", path, (unsigned long long)r.line_no);
                break;
            }
            if (found > 0) {
                rc = ct_error_set("%s:%llu: no string field \"text\"", path, (unsigned long long)r.line_no);
                break;
            }
            if (fn(ctx, doc, doc_len) != 0) {
                rc = ct_error_prefix("%s:%llu: ", path, (unsigned long long)r.line_no);
                break;
            }
        } else {
            if (doc_len + len + 1 > doc_cap) doc = ct_realloc(doc, doc_cap = (doc_len + len + 1) * 2);
            memcpy(doc + doc_len, line, len);
            doc_len += len;
            if (newline) doc[doc_len++] = '\n';
        }
    }
    if (got < 0) rc = -1;
    if (rc == 0 && !jsonl && doc_len > 0 && fn(ctx, doc, doc_len) != 0) rc = ct_error_prefix("%s: ", path);
    ct_free(doc);
    ct_line_reader_close(&r);
    return rc;
}
