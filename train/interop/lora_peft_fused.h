// Phi-3's Hugging Face modules fuse q|k|v (self_attn.qkv_proj) and gate|up (mlp.gate_up_proj),
// while ctrain adapts the parts. For PEFT, the parts' adapters of one fused module become one
// adapter on it, exactly: with ranks r_p and scale s (no rank or alpha patterns: every part has
// the same), A is the parts' A stacked ([Σr_p, in]) and B block-diagonal ([out, Σr_p], each
// part's B in its rows and its own columns), so that s·B·A is each part's s·B_p·A_p in its rows
// and zero in the rows of a part without an adapter; rank_pattern and alpha_pattern give the
// fused module rank Σr_p and the alpha that keeps s (alpha/r, or alpha/√r with rsLoRA).
#pragma once
#include "checkpoints/peft.h"
#include "train/model/model.h"

typedef struct {
    CtNamedTensor *tensors;  // the adapters as PEFT names them, fused where the module is
    int n;
    char (*names)[128];
    float **owned;           // group g's fused A and B: owned[2g], owned[2g + 1]
    int n_owned;
    int *group_first, *group_last;  // group g fuses adapters [first, last)
    int n_groups;
} CtPeftFused;

// The adapters of m (a Phi-3 model) as PEFT's tensors; cfg's target_modules, rank_pattern and
// alpha_pattern are rewritten for the fused modules. 0, or -1 + error (patterns, regex targets:
// not fused). Free with ct_peft_fused_free.
int ct_peft_fuse_phi3(const CtModel *m, CtPeftConfig *cfg, CtPeftFused *out);
void ct_peft_fused_free(CtPeftFused *f);

// Reading a PEFT adapter made for Phi-3's fused modules: the config's targets, rank_pattern and
// alpha_pattern keys qkv_proj and gate_up_proj name the parts instead (as regexes: [qkv]_proj,
// (gate|up)_proj), so that each part is attached with the fused module's rank and alpha (the
// same scale). Returns 1 when the config names a fused module.
int ct_peft_unfuse_phi3_config(CtPeftConfig *cfg);
// The tensors to read for m's adapters so attached (*f: fused modules' A and B into scratch,
// the others in place), and the split after reading: each part's A is the fused A, its B the
// fused B's rows of the part — s·B·A restricted to the part's rows, exactly.
int ct_peft_fused_want_phi3(const CtModel *m, CtPeftFused *f);
void ct_peft_split_phi3(const CtModel *m, const CtPeftFused *f);
