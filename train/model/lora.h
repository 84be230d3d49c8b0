// LoRA (Hu et al., 2021) over a frozen base, with Hugging Face PEFT's semantics:
//
//   y = x·Wᵀ + b + s·(x·Aᵀ)·Bᵀ,   A [r, in], B [out, r],   s = alpha/r  (alpha/√r with rsLoRA)
//
// With dropout p (training passes only), the adapter reads x̃ = dropout(x) = x⊙mask/(1-p), one
// mask per adapter as PEFT's separate nn.Dropout modules, the base reads x:
//   y = x·Wᵀ + s·(x̃·Aᵀ)·Bᵀ,  dA = dhᵀ·x̃,  dx += dy·W + (dh·A)⊙mask/(1-p)
// The masks are a pure function of (m->dropout_key, adapter, element), so backward regenerates them.
//
// A starts Kaiming-uniform with a = √5 (uniform(±1/√in), torch.nn.Linear's default, as PEFT
// does), B at zero, so at step 0 the model is exactly the base. The base's weights have no
// gradient buffer and no optimizer state: the model is created with CT_MODEL_FROZEN, and the
// optimizer steps the adapters' own buffer (m->train_params / m->train_grads).
//
// Adapters are per Hugging Face module, as PEFT's are: llama's q_proj, k_proj and v_proj each
// have their own A and B although ctrain computes q|k|v as one product; each adds into its row
// block of the fused output (gate_proj/up_proj likewise). GPT-2's c_attn is one module in HF, so
// one adapter covers the whole fused q|k|v output; its Conv1D layout is PEFT's fan_in_fan_out,
// which changes how HF stores W but not A and B (lora_A is [r, in], lora_B [out, r] either way).
//
// The math is the lora_forward/lora_backward ops (kernels/ops.h); here is which adapter sits
// where. train/model/lora_targets.h decides which modules are adapted (PEFT's rules), train/model/lora_tokens.h
// trains token rows beside the adapters, train/interop/lora_checkpoint.c saves runs, checkpoints/peft.h
// writes PEFT's files.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/named_tensor.h"
#include "train/model/lora_hooks.h"
#include "train/model/lora_types.h"
#include "train/model/model.h"

// PEFT's scale of a spec: alpha/r, or alpha/√r with rslora.
float ct_lora_scale(const CtLoraSpec *spec);
// Adds adapters to `m` for the spec's targets (matched as PEFT matches target_modules, with
// layers_to_transform, rank_pattern and alpha_pattern: train/model/lora_targets.h), A and B zero, and
// the spec's trainable token rows (from the base's rows; a model whose vocabulary lacks an id
// is grown first, train/model/model_resize.h). A target that matches no linear layer is an error
// naming what the model has. 0, or -1 + error.
int ct_lora_attach(CtModel *m, const CtLoraSpec *spec);
// PEFT's initialisation: A ~ uniform(±1/√in) from `seed` (one stream per adapter), B = 0.
void ct_lora_init(CtModel *m, uint64_t seed);
// The detach, backend moves and per-product hooks the model calls are in train/model/lora_hooks.h.

// Folds every adapter into its base weight, W[block] += s·B·A (in the Conv1D case too: the
// model holds every weight as [out, in]), then detaches. The model must hold its parameters.
void ct_lora_merge(CtModel *m);

// The adapters as named tensors (A, B per adapter, then the token rows: ct_lora_n_tensors
// entries) over params, grads or an optimizer moment of the same layout; names are
// "<module>.lora_A.weight" and "<embedding>.token_adapter.trainable_tokens_delta" (PEFT's).
void ct_lora_named_tensors(const CtLora *lora, const float *buffer, CtNamedTensor *out);
int ct_lora_n_tensors(const CtLora *lora);
// A fingerprint of the model's parameters (FNV-1a of the float32 buffer): the base a LoRA run
// or adapter was trained on.
uint64_t ct_lora_base_hash(const CtModel *m);
// Logs trainable parameters, their share, and the memory it saves (or costs, at ranks near the width) against full fine-tuning
// (gradients + two AdamW moments: 12 bytes per frozen parameter).
void ct_lora_report(const CtModel *m);
