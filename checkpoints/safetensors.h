// safetensors (https://github.com/huggingface/safetensors): the tensor file of the Hugging Face
// ecosystem, and of PEFT adapters.
//   8 bytes    N, little-endian u64: the header's length
//   N bytes    JSON object: {"__metadata__": {string: string}, NAME: {"dtype": "F32",
//              "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ...}, padded with spaces
//   the rest   the data buffer; offsets are relative to its start
//
// These files come from strangers, so reading checks everything the format promises before a
// byte of tensor data is trusted: a header length inside the file and below 100 MB, a header
// that is one well-formed JSON object (only padding after it), no duplicate names, known
// dtypes, shapes whose byte size equals their offsets' span, offsets inside the data buffer,
// and tensors that neither overlap nor leave bytes of the buffer unaccounted for (the rules of
// the reference implementation). Any violation is a one-line error naming the file and the
// tensor. The file is memory-mapped; tensor data points into the mapping.
//
// Writing takes a list of named tensors (f32, f16, bf16, i32) and a metadata map, and writes
// atomically, with the data buffer aligned to 8 bytes as the reference writer does.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/named_tensor.h"

#define CT_ST_MAX_HEADER (100u * 1000u * 1000u)  // the reference implementation's limit
#define CT_ST_MAX_DIMS 8

typedef enum {
    CT_ST_BOOL, CT_ST_U8, CT_ST_I8, CT_ST_F8_E5M2, CT_ST_F8_E4M3, CT_ST_I16, CT_ST_U16, CT_ST_F16,
    CT_ST_BF16, CT_ST_I32, CT_ST_U32, CT_ST_F32, CT_ST_I64, CT_ST_U64, CT_ST_F64, CT_ST_N_DTYPES
} CtStDtype;

typedef struct {
    char *name;
    CtStDtype dtype;
    int ndim;
    int64_t shape[CT_ST_MAX_DIMS];
    uint64_t numel;
    const unsigned char *data;  // into the mapping; any alignment
    uint64_t nbytes;
} CtStTensor;

typedef struct {
    char *key, *value;
} CtStMetaEntry;

typedef struct {
    char *source;                // the path (or the name given to ct_st_parse), for messages
    void *map;                   // the mapping (NULL when parsed from memory)
    size_t map_size;
    CtStTensor *tensors;         // in header order
    int n_tensors;
    CtStMetaEntry *meta;         // __metadata__
    int n_meta;
} CtSafetensors;

// Maps and validates `path`. 0, or -1 + error ("PATH: tensor 'x': ..."); f is empty then.
int ct_st_open(CtSafetensors *f, const char *path);
// Validates a file image in memory (tests, fuzzing); tensor data points into `data`, which must
// outlive f. 0, or -1 + error naming `source`.
int ct_st_parse(CtSafetensors *f, const void *data, size_t size, const char *source);
void ct_st_close(CtSafetensors *f);

const CtStTensor *ct_st_find(const CtSafetensors *f, const char *name);  // NULL when absent
const char *ct_st_meta(const CtSafetensors *f, const char *key);         // NULL when absent

const char *ct_st_dtype_name(CtStDtype dtype);  // "F32"
size_t ct_st_dtype_size(CtStDtype dtype);       // bytes per element
// Converts an F32, F16 or BF16 tensor to float32 (out holds t->numel floats). Other dtypes are
// an error naming the tensor: model weights are floating point.
int ct_st_read_f32(const CtSafetensors *f, const CtStTensor *t, float *out);

// Writes tensors (in the order given) and metadata (may be NULL) to `path` atomically.
// Tensor names must be unique. 0, or -1 + error.
int ct_st_write(const char *path, const CtNamedTensor *tensors, int n, const CtStMetaEntry *meta, int n_meta);
// The header a write would produce, without the 8-byte length (free with ct_free); *data_size
// gets the data buffer's size. For tests and for totals in shard indexes.
char *ct_st_header(const CtNamedTensor *tensors, int n, const CtStMetaEntry *meta, int n_meta, uint64_t *data_size);
size_t ct_named_tensor_bytes(const CtNamedTensor *t);
