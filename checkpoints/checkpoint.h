// HDF5 checkpoints, readable with h5dump and h5py:
//   /model/<param name>          float32 datasets, Hugging Face names, shapes as the model holds them
//   /optim/m/<name>, /optim/v/<name>   AdamW moments (when saved)
//   /lora/...                     adapters (LoRA runs)
//   root attributes               format = "ctrain-checkpoint", version, and what the run adds:
//                                 config (JSON), step, tokens_seen, loader position, RNG state.
//                                 They are kept in HDF5's dense attribute storage (file format
//                                 1.8 or later), so a text attribute may be any size (a
//                                 tokenizer.json is megabytes; compact storage stops at 64 KB).
//                                 Files written before (compact storage) read the same.
// Datasets carry HDF5's Fletcher-32 checksum, so a damaged tensor is an error on reading, not a
// silently wrong model. Since format 1.1 (attribute version_minor = 1) every root attribute has
// a CRC-32 too (attribute_crc32, checkpoints/attribute_checksums.h), checked whenever a file is
// opened; files of format 1.0 still open, their attributes unchecked. Files are written under a
// temporary name and renamed when complete; a write that fails (disk full) closes every HDF5
// handle and leaves nothing behind.
// This code knows nothing about models: it writes and reads lists of named tensors.
#pragma once
#include <stdint.h>

#include "core/atomic_file.h"
#include "core/named_tensor.h"

#define CT_CKPT_VERSION 1        // readers refuse another; a change old readers would misread bumps it
#define CT_CKPT_VERSION_MINOR 1  // additions old readers may ignore; 1: attribute checksums

typedef struct {
    int64_t file;  // hid_t
    int writing;
    CtAtomicFile atomic;
    char *path;
    int version_minor;       // reading: the file's; 0 = written before attributes had checksums
    int attributes_checked;  // reading: how many attributes matched their checksum when opened
} CtCheckpoint;

// ---- writing ----
int ct_ckpt_create(CtCheckpoint *c, const char *path);
// Writes each tensor as GROUP/<name> ("model", "optim/m"). 0, or -1 + error.
int ct_ckpt_write_tensors(CtCheckpoint *c, const char *group, const CtNamedTensor *tensors, int n);
int ct_ckpt_set_string(CtCheckpoint *c, const char *name, const char *value);
int ct_ckpt_set_int(CtCheckpoint *c, const char *name, int64_t value);
int ct_ckpt_set_double(CtCheckpoint *c, const char *name, double value);
int ct_ckpt_set_u64s(CtCheckpoint *c, const char *name, const uint64_t *values, int n);
// Closes, flushes to disk and moves the file into place. 0, or -1 + error (nothing left behind).
int ct_ckpt_commit(CtCheckpoint *c);
void ct_ckpt_abort(CtCheckpoint *c);

// ---- reading ----
// Opens and checks that it is a ctrain checkpoint of a version this build reads, and that every
// attribute matches its checksum (format 1.1 and later).
int ct_ckpt_open(CtCheckpoint *c, const char *path);
void ct_ckpt_close(CtCheckpoint *c);
int ct_ckpt_has(const CtCheckpoint *c, const char *object);  // "model/wte", "optim/m", an attribute name
// Reads GROUP/<name> into each tensor's data, checking that it exists with the same shape.
int ct_ckpt_read_tensors(CtCheckpoint *c, const char *group, const CtNamedTensor *tensors, int n);
// Attributes: a string (free with ct_free), an integer, a double, u64 arrays (n must match).
int ct_ckpt_get_string(CtCheckpoint *c, const char *name, char **value);
int ct_ckpt_get_int(CtCheckpoint *c, const char *name, int64_t *value);
int ct_ckpt_get_double(CtCheckpoint *c, const char *name, double *value);
int ct_ckpt_get_u64s(CtCheckpoint *c, const char *name, uint64_t *values, int n);

// Calls fn for every dataset in the file (path like "model/wte", shape, element count).
typedef void (*CtCkptVisitFn)(void *ctx, const char *path, int ndim, const int64_t *shape, int64_t numel);
int ct_ckpt_visit(CtCheckpoint *c, CtCkptVisitFn fn, void *ctx);
// Reads every dataset once, so that HDF5 checks each one's Fletcher-32 checksum; *n_tensors (may
// be NULL) gets how many. 0, or -1 + an error naming the first tensor that fails.
int ct_ckpt_verify_tensors(CtCheckpoint *c, int64_t *n_tensors);
