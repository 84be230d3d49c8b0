// Writing safetensors files. The header is built by hand rather than through cJSON so that
// offsets above 2^31 print as plain integers and the byte layout is fully ours to pin down.
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "checkpoints/safetensors.h"
#include "core/alloc.h"
#include "core/atomic_file.h"
#include "core/error.h"

typedef struct {
    char *s;
    size_t len, cap;
} Text;

static void text_put(Text *t, const char *s, size_t n) {
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->s = ct_realloc(t->s, t->cap);
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = 0;
}

static void text_printf(Text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_printf(Text *t, const char *fmt, ...) {
    char buf[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    text_put(t, buf, (size_t)n);
}

static void text_json_string(Text *t, const char *s) {
    text_put(t, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p};
            text_put(t, esc, 2);
        } else if (*p < 0x20) {
            text_printf(t, "\\u%04x", *p);
        } else {
            text_put(t, (const char *)p, 1);
        }
    }
    text_put(t, "\"", 1);
}

static const char *dtype_name(CtDtype d) {
    switch (d) {
    case CT_DTYPE_F32: return "F32";
    case CT_DTYPE_BF16: return "BF16";
    case CT_DTYPE_F16: return "F16";
    case CT_DTYPE_I32: return "I32";
    }
    return "?";
}

static size_t dtype_size(CtDtype d) { return d == CT_DTYPE_F32 || d == CT_DTYPE_I32 ? 4 : 2; }

size_t ct_named_tensor_bytes(const CtNamedTensor *t) {
    size_t n = dtype_size(t->dtype);
    for (int d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
    return n;
}

// Data order: wider elements first (stable), so every tensor starts aligned to its element
// size when the buffer starts 8-aligned, as the reference writer arranges.
static void data_order(const CtNamedTensor *tensors, int n, int *order) {
    int k = 0;
    for (size_t width = 8; width >= 1; width /= 2)
        for (int i = 0; i < n; i++)
            if (dtype_size(tensors[i].dtype) == width) order[k++] = i;
}

char *ct_st_header(const CtNamedTensor *tensors, int n, const CtStMetaEntry *meta, int n_meta, uint64_t *data_size) {
    int *order = ct_alloc(sizeof(int) * (size_t)(n ? n : 1));
    data_order(tensors, n, order);
    Text t = {0};
    text_put(&t, "{", 1);
    if (n_meta > 0) {
        text_put(&t, "\"__metadata__\":{", 16);
        for (int i = 0; i < n_meta; i++) {
            if (i) text_put(&t, ",", 1);
            text_json_string(&t, meta[i].key);
            text_put(&t, ":", 1);
            text_json_string(&t, meta[i].value);
        }
        text_put(&t, "}", 1);
    }
    uint64_t offset = 0;
    for (int k = 0; k < n; k++) {
        const CtNamedTensor *x = &tensors[order[k]];
        if (k || n_meta > 0) text_put(&t, ",", 1);
        text_json_string(&t, x->name);
        text_printf(&t, ":{\"dtype\":\"%s\",\"shape\":[", dtype_name(x->dtype));
        for (int d = 0; d < x->ndim; d++) text_printf(&t, "%s%" PRId64, d ? "," : "", x->shape[d]);
        uint64_t bytes = ct_named_tensor_bytes(x);
        text_printf(&t, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", offset, offset + bytes);
        offset += bytes;
    }
    text_put(&t, "}", 1);
    // pad with spaces so that the data buffer (after the 8-byte length) starts 8-aligned
    while ((8 + t.len) % 8 != 0) text_put(&t, " ", 1);
    ct_free(order);
    if (data_size) *data_size = offset;
    return t.s;
}

int ct_st_write(const char *path, const CtNamedTensor *tensors, int n, const CtStMetaEntry *meta, int n_meta) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(tensors[i].name, tensors[j].name) == 0)
                return ct_error_set("%s: tensor '%s' given twice", path, tensors[i].name);
    char *header = ct_st_header(tensors, n, meta, n_meta, NULL);
    size_t header_len = strlen(header);
    CtAtomicFile f;
    if (ct_atomic_open(&f, path) != 0) {
        ct_free(header);
        return -1;
    }
    unsigned char len_bytes[8];
    for (int i = 0; i < 8; i++) len_bytes[i] = (unsigned char)((uint64_t)header_len >> (8 * i));
    int ok = fwrite(len_bytes, 1, 8, f.fp) == 8 && fwrite(header, 1, header_len, f.fp) == header_len;
    ct_free(header);
    int *order = ct_alloc(sizeof(int) * (size_t)(n ? n : 1));
    data_order(tensors, n, order);
    for (int k = 0; k < n && ok; k++) {
        const CtNamedTensor *x = &tensors[order[k]];
        size_t bytes = ct_named_tensor_bytes(x);
        ok = bytes == 0 || fwrite(x->data, 1, bytes, f.fp) == bytes;
    }
    ct_free(order);
    if (!ok) {
        ct_error_errno("%s: write failed", path);
        ct_atomic_abort(&f);
        return -1;
    }
    return ct_atomic_commit(&f);
}
