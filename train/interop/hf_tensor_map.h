// Where each tensor of ctrain's parameter table lies in a family's Hugging Face files. The table
// uses Hugging Face's names, so most entries are one tensor of the same name. Two families differ:
//   Phi-3 fuses q|k|v into self_attn.qkv_proj.weight and gate|up into mlp.gate_up_proj.weight
//   (rows stacked in that order): an entry is a range of the fused tensor's rows;
//   Gemma 2/3 compute RMSNorm as x·(1 + w) and store w: ctrain stores 1 + w, so that its norm is
//   the plain x·w (added on import, subtracted on export; in fp32 1 + ((1 + w) − 1) = 1 + w for
//   any stored weight in [0.5, 2], so the exported model computes the same).
#pragma once
#include <stdint.h>

#include "train/model/model.h"

typedef struct {
    char name[128];  // the tensor in the files
    int64_t rows;    // its rows: the entry's own, or the whole fused tensor's
    int64_t row0;    // the first of the entry's rows in it
    float offset;    // ctrain's value = the file's value + offset
} CtHfPlace;

// The place of table entry e of a model of config c.
void ct_hf_place_of(const CtModelConfig *c, const CtParamEntry *e, CtHfPlace *p);
