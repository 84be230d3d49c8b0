#include "checkpoints/gguf.h"

#include <string.h>

#include "checkpoints/safetensors.h"
#include "core/alloc.h"
#include "core/atomic_file.h"
#include "core/error.h"

void ct_gguf_init(CtGgufWriter *w) { memset(w, 0, sizeof *w); }

void ct_gguf_free(CtGgufWriter *w) {
    ct_free(w->kv);
    ct_free(w->tensors);
    memset(w, 0, sizeof *w);
}

static void put(CtGgufWriter *w, const void *p, size_t n) {
    if (w->kv_len + n > w->kv_cap) {
        w->kv_cap = (w->kv_len + n) * 2 + 256;
        w->kv = ct_realloc(w->kv, w->kv_cap);
    }
    memcpy(w->kv + w->kv_len, p, n);
    w->kv_len += n;
}

// GGUF is little-endian, as is every machine ctrain runs on, so values are copied as they are.
static void put_u32(CtGgufWriter *w, uint32_t v) { put(w, &v, 4); }
static void put_u64(CtGgufWriter *w, uint64_t v) { put(w, &v, 8); }
static void put_string(CtGgufWriter *w, const char *s, size_t n) {
    put_u64(w, n);
    put(w, s, n);
}

static void put_key(CtGgufWriter *w, const char *key, uint32_t type) {
    put_string(w, key, strlen(key));
    put_u32(w, type);
    w->n_kv++;
}

void ct_gguf_add_string(CtGgufWriter *w, const char *key, const char *value) {
    put_key(w, key, CT_GGUF_STRING);
    put_string(w, value, strlen(value));
}

void ct_gguf_add_u32(CtGgufWriter *w, const char *key, uint32_t value) {
    put_key(w, key, CT_GGUF_UINT32);
    put_u32(w, value);
}

void ct_gguf_add_f32(CtGgufWriter *w, const char *key, float value) {
    put_key(w, key, CT_GGUF_FLOAT32);
    put(w, &value, 4);
}

void ct_gguf_add_bool(CtGgufWriter *w, const char *key, int value) {
    put_key(w, key, CT_GGUF_BOOL);
    uint8_t b = value ? 1 : 0;
    put(w, &b, 1);
}

void ct_gguf_add_string_array(CtGgufWriter *w, const char *key, const char *const *values, const size_t *lengths,
                              uint64_t n) {
    put_key(w, key, CT_GGUF_ARRAY);
    put_u32(w, CT_GGUF_STRING);
    put_u64(w, n);
    for (uint64_t i = 0; i < n; i++) put_string(w, values[i], lengths[i]);
}

void ct_gguf_add_i32_array(CtGgufWriter *w, const char *key, const int32_t *values, uint64_t n) {
    put_key(w, key, CT_GGUF_ARRAY);
    put_u32(w, CT_GGUF_INT32);
    put_u64(w, n);
    put(w, values, n * 4);
}

int ct_gguf_add_tensor(CtGgufWriter *w, const CtNamedTensor *t) {
    if (t->dtype != CT_DTYPE_F32 && t->dtype != CT_DTYPE_F16 && t->dtype != CT_DTYPE_BF16)
        return ct_error_set("gguf: tensor '%s': only F32, F16 and BF16 are written", t->name);
    if (w->n_tensors == w->tensors_cap) {
        w->tensors_cap = w->tensors_cap * 2 + 16;
        w->tensors = ct_realloc(w->tensors, sizeof(CtNamedTensor) * (size_t)w->tensors_cap);
    }
    w->tensors[w->n_tensors++] = *t;
    return 0;
}

static uint64_t align_up(uint64_t x) { return (x + CT_GGUF_ALIGNMENT - 1) / CT_GGUF_ALIGNMENT * CT_GGUF_ALIGNMENT; }

static uint32_t ggml_type(CtDtype d) { return d == CT_DTYPE_F32 ? CT_GGML_F32 : d == CT_DTYPE_F16 ? CT_GGML_F16 : CT_GGML_BF16; }

int ct_gguf_write(CtGgufWriter *w, const char *path) {
    // the header and tensor infos go into a second buffer after the key/values
    CtGgufWriter head;
    ct_gguf_init(&head);
    put(&head, "GGUF", 4);
    put_u32(&head, CT_GGUF_VERSION);
    put_u64(&head, (uint64_t)w->n_tensors);
    put_u64(&head, w->n_kv);
    put(&head, w->kv, w->kv_len);
    uint64_t offset = 0;
    for (int i = 0; i < w->n_tensors; i++) {
        const CtNamedTensor *t = &w->tensors[i];
        put_string(&head, t->name, strlen(t->name));
        put_u32(&head, (uint32_t)t->ndim);
        for (int d = t->ndim - 1; d >= 0; d--) put_u64(&head, (uint64_t)t->shape[d]);  // innermost first
        put_u32(&head, ggml_type(t->dtype));
        put_u64(&head, offset);
        offset = align_up(offset + ct_named_tensor_bytes(t));
    }
    static const unsigned char zeros[CT_GGUF_ALIGNMENT];
    size_t pad = (size_t)(align_up(head.kv_len) - head.kv_len);
    put(&head, zeros, pad);

    CtAtomicFile f;
    int ok = ct_atomic_open(&f, path) == 0;
    if (!ok) {
        ct_gguf_free(&head);
        return -1;
    }
    ok = fwrite(head.kv, 1, head.kv_len, f.fp) == head.kv_len;
    ct_gguf_free(&head);
    for (int i = 0; i < w->n_tensors && ok; i++) {
        size_t bytes = ct_named_tensor_bytes(&w->tensors[i]);
        size_t tail = (size_t)(align_up(bytes) - bytes);
        ok = fwrite(w->tensors[i].data, 1, bytes, f.fp) == bytes && (tail == 0 || fwrite(zeros, 1, tail, f.fp) == tail);
    }
    if (!ok) {
        ct_error_errno("%s: write failed", path);
        ct_atomic_abort(&f);
        return -1;
    }
    return ct_atomic_commit(&f);
}
