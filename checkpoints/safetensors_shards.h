// A Hugging Face model folder's weights as save_pretrained writes them: one model.safetensors, or
// shards model-0000i-of-0000n.safetensors listed by model.safetensors.index.json
// ({"metadata": {"total_size"}, "weight_map": {tensor: shard file}}). Named tensors only: the
// mapping onto a model is train/interop's.
#pragma once
#include <stdint.h>

#include "checkpoints/safetensors.h"
#include "core/named_tensor.h"

#define CT_ST_MAX_SHARDS 1024

typedef struct {
    CtSafetensors files[CT_ST_MAX_SHARDS];
    int n_files;
} CtStShards;

// Opens the folder's weights: the index and every shard it names (each tensor it lists must be
// in the shard it names), or the one model.safetensors. A tensor in two shards is an error.
// 0, or -1 + error with nothing left open.
int ct_st_shards_open(CtStShards *w, const char *dir);
void ct_st_shards_close(CtStShards *w);

// Writes the tensors into dir: one model.safetensors when they fit in max_bytes; else greedy
// shards in their order (a tensor larger than the limit gets a shard of its own, as
// save_pretrained does) and the index. *n_shards: the weight files written. 0, or -1 + error.
int ct_st_shards_write(const char *dir, const CtNamedTensor *t, int n, uint64_t max_bytes, int *n_shards);
