// Reading and validating safetensors files (see safetensors.h for the rules checked).
#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoints/dtype_convert.h"
#include "checkpoints/safetensors.h"
#include "core/alloc.h"
#include "core/error.h"

static const struct {
    const char *name;
    size_t size;
} dtypes[CT_ST_N_DTYPES] = {
    [CT_ST_BOOL] = {"BOOL", 1}, [CT_ST_U8] = {"U8", 1},    [CT_ST_I8] = {"I8", 1},
    [CT_ST_F8_E5M2] = {"F8_E5M2", 1}, [CT_ST_F8_E4M3] = {"F8_E4M3", 1},
    [CT_ST_I16] = {"I16", 2},   [CT_ST_U16] = {"U16", 2}, [CT_ST_F16] = {"F16", 2},
    [CT_ST_BF16] = {"BF16", 2}, [CT_ST_I32] = {"I32", 4}, [CT_ST_U32] = {"U32", 4},
    [CT_ST_F32] = {"F32", 4},   [CT_ST_I64] = {"I64", 8}, [CT_ST_U64] = {"U64", 8},
    [CT_ST_F64] = {"F64", 8},
};

const char *ct_st_dtype_name(CtStDtype d) { return d < CT_ST_N_DTYPES ? dtypes[d].name : "?"; }
size_t ct_st_dtype_size(CtStDtype d) { return d < CT_ST_N_DTYPES ? dtypes[d].size : 0; }

static int dtype_from_name(const char *s, CtStDtype *out) {
    for (int d = 0; d < CT_ST_N_DTYPES; d++)
        if (strcmp(dtypes[d].name, s) == 0) {
            *out = (CtStDtype)d;
            return 0;
        }
    return -1;
}

void ct_st_close(CtSafetensors *f) {
    for (int i = 0; i < f->n_tensors; i++) ct_free(f->tensors[i].name);
    for (int i = 0; i < f->n_meta; i++) {
        ct_free(f->meta[i].key);
        ct_free(f->meta[i].value);
    }
    ct_free(f->tensors);
    ct_free(f->meta);
    ct_free(f->source);
    if (f->map) munmap(f->map, f->map_size);
    memset(f, 0, sizeof *f);
}

// A name as it may appear in a one-line message: at most 80 bytes, control characters as '?'.
typedef struct {
    char s[96];
} Shown;

static Shown shown(const char *name) {
    Shown out;
    size_t n = 0;
    for (; name[n] && n < 80; n++) out.s[n] = (unsigned char)name[n] < 0x20 || name[n] == 0x7f ? '?' : name[n];
    if (name[n]) memcpy(out.s + n, "...", 3), n += 3;
    out.s[n] = 0;
    return out;
}

// UTF-8 without NUL bytes (the reference reader decodes the header as a Rust str; a NUL would
// let two different names look alike to C code).
static long invalid_utf8_at(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c == 0) return (long)i;
        if (c < 0x80) {
            i++;
            continue;
        }
        int len = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
        if (!len || i + (size_t)len > n) return (long)i;
        uint32_t cp = c & (0x7f >> len);
        for (int k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return (long)i;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
            return (long)i;
        i += (size_t)len;
    }
    return -1;
}

// A JSON number that is a whole, non-negative value that doubles hold exactly.
static int get_count(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || d != floor(d)) return -1;
    *out = (uint64_t)d;
    return 0;
}

typedef struct {
    const char *source;
    const unsigned char *buffer;  // the data buffer
    uint64_t buffer_size;
} ParseCtx;

static int parse_metadata(CtSafetensors *f, const cJSON *meta) {
    if (!cJSON_IsObject(meta)) return ct_error_set("%s: __metadata__ is not an object of strings", f->source);
    int n = cJSON_GetArraySize(meta);
    f->meta = ct_calloc((size_t)n + 1, sizeof(CtStMetaEntry));
    for (const cJSON *e = meta->child; e; e = e->next) {
        if (!cJSON_IsString(e))
            return ct_error_set("%s: __metadata__ value of '%s' is not a string", f->source, shown(e->string).s);
        for (int i = 0; i < f->n_meta; i++)
            if (strcmp(f->meta[i].key, e->string) == 0)
                return ct_error_set("%s: __metadata__ key '%s' appears twice", f->source, shown(e->string).s);
        f->meta[f->n_meta].key = ct_strdup(e->string);
        f->meta[f->n_meta].value = ct_strdup(e->valuestring);
        f->n_meta++;
    }
    return 0;
}

static int parse_tensor(const ParseCtx *ctx, const cJSON *e, CtStTensor *t) {
    const char *name = e->string;
    if (!cJSON_IsObject(e)) return ct_error_set("%s: tensor '%s': entry is not an object", ctx->source, shown(name).s);
    if (!name[0]) return ct_error_set("%s: a tensor has an empty name", ctx->source);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dtype)) return ct_error_set("%s: tensor '%s': no dtype string", ctx->source, shown(name).s);
    if (dtype_from_name(dtype->valuestring, &t->dtype) != 0)
        return ct_error_set("%s: tensor '%s': unknown dtype '%s'", ctx->source, shown(name).s, shown(dtype->valuestring).s);
    if (!cJSON_IsArray(shape)) return ct_error_set("%s: tensor '%s': no shape array", ctx->source, shown(name).s);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > CT_ST_MAX_DIMS)
        return ct_error_set("%s: tensor '%s': %d dimensions (at most %d are supported)", ctx->source, shown(name).s, ndim,
                            CT_ST_MAX_DIMS);
    t->ndim = ndim;
    uint64_t numel = 1;
    int overflow = 0, d = 0;
    for (const cJSON *v = shape->child; v; v = v->next, d++) {
        uint64_t dim;
        if (get_count(v, &dim) != 0)
            return ct_error_set("%s: tensor '%s': shape entry %d is not a non-negative integer", ctx->source, shown(name).s, d);
        t->shape[d] = (int64_t)dim;
        overflow |= __builtin_mul_overflow(numel, dim, &numel);
    }
    uint64_t nbytes = 0;
    overflow |= __builtin_mul_overflow(numel, (uint64_t)ct_st_dtype_size(t->dtype), &nbytes);
    if (overflow) return ct_error_set("%s: tensor '%s': shape is too large", ctx->source, shown(name).s);
    uint64_t begin, end;
    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2 || get_count(offsets->child, &begin) != 0 ||
        get_count(offsets->child->next, &end) != 0)
        return ct_error_set("%s: tensor '%s': data_offsets is not two non-negative integers", ctx->source, shown(name).s);
    if (end < begin) return ct_error_set("%s: tensor '%s': data_offsets [%llu, %llu] end before they begin",
                                         ctx->source, shown(name).s, (unsigned long long)begin, (unsigned long long)end);
    if (end > ctx->buffer_size)
        return ct_error_set("%s: tensor '%s': data_offsets [%llu, %llu] lie outside the data buffer of %llu bytes "
                            "(truncated file?)",
                            ctx->source, shown(name).s, (unsigned long long)begin, (unsigned long long)end,
                            (unsigned long long)ctx->buffer_size);
    if (end - begin != nbytes)
        return ct_error_set("%s: tensor '%s': shape of %llu %s elements takes %llu bytes but data_offsets span %llu",
                            ctx->source, shown(name).s, (unsigned long long)numel, ct_st_dtype_name(t->dtype),
                            (unsigned long long)nbytes, (unsigned long long)(end - begin));
    t->numel = numel;
    t->nbytes = nbytes;
    t->data = ctx->buffer + begin;
    t->name = ct_strdup(name);
    return 0;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const CtStTensor *const *)a)[0]->name, ((const CtStTensor *const *)b)[0]->name);
}

static int by_offset(const void *a, const void *b) {
    const CtStTensor *x = *(const CtStTensor *const *)a, *y = *(const CtStTensor *const *)b;
    if (x->data != y->data) return x->data < y->data ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

// No two tensors share a name; the tensors tile the data buffer exactly (no overlap, no gap).
static int check_layout(const ParseCtx *ctx, CtSafetensors *f) {
    int n = f->n_tensors;
    const CtStTensor **order = ct_alloc(sizeof(CtStTensor *) * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) order[i] = &f->tensors[i];
    int rc = 0;
    qsort(order, (size_t)n, sizeof *order, by_name);
    for (int i = 1; i < n && rc == 0; i++)
        if (strcmp(order[i - 1]->name, order[i]->name) == 0)
            rc = ct_error_set("%s: tensor '%s' appears twice in the header", ctx->source, shown(order[i]->name).s);
    qsort(order, (size_t)n, sizeof *order, by_offset);
    uint64_t covered = 0;  // the buffer is accounted for up to here
    const CtStTensor *prev = NULL;
    for (int i = 0; i < n && rc == 0; i++) {
        uint64_t begin = (uint64_t)(order[i]->data - ctx->buffer);
        if (begin < covered)
            rc = ct_error_set("%s: tensors '%s' and '%s' overlap (bytes %llu..%llu)", ctx->source, shown(prev->name).s,
                              shown(order[i]->name).s, (unsigned long long)begin, (unsigned long long)covered);
        else if (begin > covered)
            rc = ct_error_set("%s: bytes %llu..%llu of the data buffer belong to no tensor", ctx->source,
                              (unsigned long long)covered, (unsigned long long)begin);
        covered = begin + order[i]->nbytes;
        prev = order[i];
    }
    if (rc == 0 && covered != ctx->buffer_size)
        rc = ct_error_set("%s: bytes %llu..%llu at the end of the file belong to no tensor", ctx->source,
                          (unsigned long long)covered, (unsigned long long)ctx->buffer_size);
    ct_free(order);
    return rc;
}

static int parse_image(CtSafetensors *f, const unsigned char *data, size_t size) {
    const char *src = f->source;
    if (size < 8)
        return ct_error_set("%s: truncated: %zu bytes; a safetensors file starts with an 8-byte header length", src, size);
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--) header_len = (header_len << 8) | data[i];
    if (header_len > CT_ST_MAX_HEADER)
        return ct_error_set("%s: header length %llu is above the limit of %u bytes (not a safetensors file?)", src,
                            (unsigned long long)header_len, CT_ST_MAX_HEADER);
    if (header_len > size - 8)
        return ct_error_set("%s: truncated: the header length is %llu bytes but only %zu bytes follow it", src,
                            (unsigned long long)header_len, size - 8);
    const char *header = (const char *)data + 8;
    if (header_len < 2 || header[0] != '{')
        return ct_error_set("%s: the header does not start with '{' (not a safetensors file?)", src);
    long bad = invalid_utf8_at((const unsigned char *)header, header_len);
    if (bad >= 0) return ct_error_set("%s: header byte %ld is not valid UTF-8 (or is NUL)", src, bad);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(header, header_len, &end, 0);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long pos = at && at >= header && at <= header + header_len ? (long)(at - header) : -1;
        return ct_error_set("%s: the header is not well-formed JSON (near byte %ld of %llu)", src, pos,
                            (unsigned long long)header_len);
    }
    int rc = 0;
    for (const char *p = end; p < header + header_len && rc == 0; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            rc = ct_error_set("%s: the header has data after its JSON object (byte %ld)", src, (long)(p - header));
    if (rc == 0 && !cJSON_IsObject(root)) rc = ct_error_set("%s: the header is not a JSON object", src);
    ParseCtx ctx = {src, data + 8 + header_len, size - 8 - header_len};
    if (rc == 0) {
        f->tensors = ct_calloc((size_t)cJSON_GetArraySize(root) + 1, sizeof(CtStTensor));
        for (const cJSON *e = root->child; e && rc == 0; e = e->next) {
            if (strcmp(e->string, "__metadata__") == 0) {
                if (f->meta) rc = ct_error_set("%s: __metadata__ appears twice", src);
                else rc = parse_metadata(f, e);
            } else {
                rc = parse_tensor(&ctx, e, &f->tensors[f->n_tensors]);
                if (rc == 0) f->n_tensors++;
            }
        }
    }
    cJSON_Delete(root);
    if (rc == 0) rc = check_layout(&ctx, f);
    return rc;
}

int ct_st_parse(CtSafetensors *f, const void *data, size_t size, const char *source) {
    memset(f, 0, sizeof *f);
    f->source = ct_strdup(source);
    if (parse_image(f, data, size) != 0) {
        ct_st_close(f);
        return -1;
    }
    return 0;
}

int ct_st_open(CtSafetensors *f, const char *path) {
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ct_error_errno("%s: cannot open", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return ct_error_errno("%s: cannot stat", path);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return ct_error_set("%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    void *map = NULL;
    if (size >= 8) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            close(fd);
            return ct_error_errno("%s: cannot map %zu bytes", path, size);
        }
    }
    close(fd);
    f->source = ct_strdup(path);
    static const unsigned char empty[1];
    if (parse_image(f, map ? map : empty, map ? size : (size_t)st.st_size) != 0) {
        if (map) munmap(map, size);
        ct_st_close(f);
        return -1;
    }
    f->map = map;
    f->map_size = size;
    return 0;
}

const CtStTensor *ct_st_find(const CtSafetensors *f, const char *name) {
    for (int i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

const char *ct_st_meta(const CtSafetensors *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[i].key, key) == 0) return f->meta[i].value;
    return NULL;
}

int ct_st_read_f32(const CtSafetensors *f, const CtStTensor *t, float *out) {
    switch (t->dtype) {
    case CT_ST_F32: ct_f32_array_from_bytes(t->data, out, t->numel); return 0;
    case CT_ST_F16: ct_f16_array_to_f32(t->data, out, t->numel); return 0;
    case CT_ST_BF16: ct_bf16_array_to_f32(t->data, out, t->numel); return 0;
    default:
        return ct_error_set("%s: tensor '%s' has dtype %s; model weights must be F32, F16 or BF16", f->source,
                            shown(t->name).s, ct_st_dtype_name(t->dtype));
    }
}
