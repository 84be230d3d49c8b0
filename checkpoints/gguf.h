// GGUF v3 (llama.cpp's model file), writing:
//   "GGUF", u32 version 3, u64 tensor count, u64 key/value count
//   key/values: gguf string key (u64 length + bytes), u32 value type, value
//   tensor infos: name, u32 n_dims, u64 dims[n_dims] (innermost first: a torch [out, in]
//   matrix is written as ne = {in, out}), u32 ggml type, u64 offset into the data section
//   padding to general.alignment (32), then each tensor's data at its offset (32-aligned)
// This code knows nothing about models: keys, values and named tensors come from the caller.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/named_tensor.h"

#define CT_GGUF_VERSION 3
#define CT_GGUF_ALIGNMENT 32

// GGUF value types and the ggml tensor types written here.
enum {
    CT_GGUF_UINT8 = 0, CT_GGUF_INT8 = 1, CT_GGUF_UINT16 = 2, CT_GGUF_INT16 = 3, CT_GGUF_UINT32 = 4,
    CT_GGUF_INT32 = 5, CT_GGUF_FLOAT32 = 6, CT_GGUF_BOOL = 7, CT_GGUF_STRING = 8, CT_GGUF_ARRAY = 9,
    CT_GGUF_UINT64 = 10, CT_GGUF_INT64 = 11, CT_GGUF_FLOAT64 = 12
};
enum { CT_GGML_F32 = 0, CT_GGML_F16 = 1, CT_GGML_BF16 = 30 };

typedef struct {
    unsigned char *kv;  // the key/value section, serialised as added
    size_t kv_len, kv_cap;
    uint64_t n_kv;
    CtNamedTensor *tensors;  // F32, F16 or BF16; data not owned
    int n_tensors, tensors_cap;
} CtGgufWriter;

void ct_gguf_init(CtGgufWriter *w);
void ct_gguf_free(CtGgufWriter *w);

void ct_gguf_add_string(CtGgufWriter *w, const char *key, const char *value);
void ct_gguf_add_u32(CtGgufWriter *w, const char *key, uint32_t value);
void ct_gguf_add_f32(CtGgufWriter *w, const char *key, float value);
void ct_gguf_add_bool(CtGgufWriter *w, const char *key, int value);
// Arrays of strings (with lengths, so they may hold any bytes) and of i32.
void ct_gguf_add_string_array(CtGgufWriter *w, const char *key, const char *const *values, const size_t *lengths,
                              uint64_t n);
void ct_gguf_add_i32_array(CtGgufWriter *w, const char *key, const int32_t *values, uint64_t n);
// Adds a tensor (shape as torch holds it); its data must stay valid until ct_gguf_write.
int ct_gguf_add_tensor(CtGgufWriter *w, const CtNamedTensor *t);

// Writes the file atomically. 0, or -1 + error.
int ct_gguf_write(CtGgufWriter *w, const char *path);
