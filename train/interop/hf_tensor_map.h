// Where each tensor of ctrain's parameter table lies in a family's Hugging Face files. The table
// uses Hugging Face's names, so most entries are one tensor of the same name. Three families differ:
//   Phi-3 fuses q|k|v into self_attn.qkv_proj.weight and gate|up into mlp.gate_up_proj.weight
//   (rows stacked in that order): an entry is a range of the fused tensor's rows;
//   Gemma 2/3 compute RMSNorm as x·(1 + w) and store w: ctrain stores 1 + w, so that its norm is
//   the plain x·w (added on import, subtracted on export; in fp32 1 + ((1 + w) − 1) = 1 + w for
//   any stored weight in [0.5, 2], so the exported model computes the same);
//   Mixtral names its MoE block block_sparse_moe and its experts' projections w1 (gate), w3 (up)
//   and w2 (down): model.layers.L.block_sparse_moe.{gate.weight, experts.E.w1.weight, ...}.
// Those are the names transformers 5.23 saves (and the hub's checkpoints hold) for the MoE
// families. In memory transformers 5 fuses each layer's experts into two 3-D tensors,
//   model.layers.L.mlp.experts.gate_up_proj [E, 2F, C] (expert e: its gate rows, then its up rows)
//   model.layers.L.mlp.experts.down_proj    [E, C, F]
// (Mixtral's router too is mlp.gate.weight there); files in that form import as well
// (ct_hf_fused_place_of), viewed as [E·2F, C] and [E·C, F] whose row ranges are the entries.
#pragma once
#include <stdint.h>

#include "train/model/model.h"

typedef struct {
    char name[128];  // the tensor in the files
    int64_t rows;    // its rows: the entry's own, or the whole fused tensor's (all experts' for a 3-D one)
    int64_t row0;    // the first of the entry's rows in it
    float offset;    // ctrain's value = the file's value + offset
    int64_t experts; // 0: a tensor of the entry's rank; E: a 3-D [E, rows / E, cols] tensor of fused experts
} CtHfPlace;

// The place of table entry e of a model of config c: the name transformers saves.
void ct_hf_place_of(const CtModelConfig *c, const CtParamEntry *e, CtHfPlace *p);
// The other place an import accepts for entry e: an expert's projection or Mixtral's router in
// transformers 5's in-memory form (above). 1 and *p set, or 0 when the entry has no other place.
int ct_hf_fused_place_of(const CtModelConfig *c, const CtParamEntry *e, CtHfPlace *p);
// Whether `name` (a Hugging Face name) belongs to a multi-token prediction module: DeepSeek-V3's
// layout puts module k at layer n_layer + k − 1 (model.layers.N. / transformer.h.N., N ≥ n_layer).
// A plain export (HF, GGUF) leaves them out: transformers' and llama.cpp's models have no modules.
int ct_hf_is_mtp_tensor(const CtModelConfig *c, const char *name);
// The copies of the shared embedding (head 0) and output head (head 1) that DeepSeek-V3's
// checkpoints store per module: "<prefix>.N.embed_tokens.weight" and "<prefix>.N.shared_head.head.weight"
// (N = n_layer + k − 1, prefix model.layers or transformer.h). ctrain's modules share the main
// model's; `export hf --keep-mtp` writes the copies and `import hf` checks them.
void ct_hf_mtp_shared_name(const CtModelConfig *c, int k, int head, char *out, size_t size);
