// What the model calls of its LoRA adapters (m->lora, train/model/lora.h): the narrow side of
// LoRA that the model's own files (model.c, model_block.c, model_backend.c) include, so that
// the model depends on these declarations only and LoRA (lora.c, lora_tokens.c) sits above the
// model. Every function is a no-op question or must be called only when m->lora is set, as noted.
#pragma once
#include "kernels/ops.h"

// train/model/model.h defines them; declared here so that this header depends on nothing of the model.
typedef struct CtModel CtModel;
typedef struct CtBatch CtBatch;

// Where an adapter's module sits in the model's forward pass: the four linear products of a block;
// in an MoE layer, the shared expert's three (gate|up, down, its [1,C] gate) and the routed
// experts' two grouped products (gate|up, down) over the sorted rows; in a multi-token prediction
// module (whose block is layer n_layer + k − 1), its eh_proj before the block.
typedef enum {
    CT_LORA_QKV,
    CT_LORA_ATTN_OUT,
    CT_LORA_FC,
    CT_LORA_FC_OUT,
    CT_LORA_SHARED_FC,
    CT_LORA_SHARED_FC_OUT,
    CT_LORA_SHARED_GATE,
    CT_LORA_EXPERTS_GATE_UP,
    CT_LORA_EXPERTS_DOWN,
    CT_LORA_EH_PROJ,  // a multi-token prediction module's eh_proj [C, 2C] (its "layer": n_layer + k − 1)
    CT_LORA_N_SITES
} CtLoraSite;

// After each linear product of block `layer` (m->lora set): add the adapters of that site
// (forward), and their backward (dinp += ..., adapter gradients += ...).
void ct_lora_forward(CtModel *m, int layer, CtLoraSite site, CtAct *out, const CtAct *inp, int N);
void ct_lora_backward(CtModel *m, int layer, CtLoraSite site, CtAct *dinp, const CtAct *dout, const CtAct *inp, int N);
// The same after a grouped expert product of MoE layer `layer` (site CT_LORA_EXPERTS_*): out[R, OC]
// and inp[R, in] are the sorted rows, expert e owning rows offsets[e]..offsets[e+1]-1 (offsets in
// host memory, as moe_permute gives them); each expert's adapter adds into its own rows. Backward
// adds dinp (may be NULL) and the adapters' gradients; the forward's offsets must be passed again.
void ct_lora_experts_forward(CtModel *m, int layer, CtLoraSite site, CtAct *out, const CtAct *inp,
                             const int32_t *offsets);
void ct_lora_experts_backward(CtModel *m, int layer, CtLoraSite site, CtAct *dinp, const CtAct *dout,
                              const CtAct *inp, const int32_t *offsets);
// 1 when block `layer` has an adapter at `site` (0 without LoRA).
int ct_lora_has_adapter(const CtModel *m, int layer, CtLoraSite site);

// The trainable token rows (train/model/lora_tokens.h; m->lora set): before the forward (host
// batch), after the head's backward, and in place of the frozen embedding's backward.
void ct_lora_tokens_forward(CtModel *m, const CtBatch *batch);
void ct_lora_tokens_backward_head(CtModel *m, int N);
void ct_lora_tokens_backward_embedding(CtModel *m, const CtAct *dres, int N);

// The classification head's tensors (train/model/lora_saved.h): for a base tensor that trains in
// full beside the adapters (PEFT's modules_to_save), its values in the adapters' buffer, and
// *grad set to its gradient there; any other tensor (or no LoRA) is returned as it is, *grad
// untouched.
const float *ct_lora_saved_tensor(const CtModel *m, const float *base, float **grad);

// Frees the adapters (ct_model_free calls it; nothing without LoRA).
void ct_lora_detach(CtModel *m);
// Device backends (m->lora set): move the adapters and their scratch into the memory of m->ops;
// copy adapters host → device (to_device 1) or back (0).
void ct_lora_to_backend(CtModel *m);
void ct_lora_sync(CtModel *m, int to_device);
// The adapters' parameters in host memory (m->lora set; current after ct_lora_sync(m, 0)).
const float *ct_lora_params_host(const CtModel *m);
