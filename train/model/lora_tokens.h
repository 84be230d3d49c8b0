// Token rows that train beside LoRA adapters: PEFT's trainable_token_indices (TrainableTokensLayer).
// When SFT's chat template adds tokens a base lacks (ChatML's <|im_start|>, <|im_end|>), the
// grown rows are new and nothing else can learn them; so with LoRA exactly those rows train —
// the embedding's, and the output head's when it is not tied — and every other base weight stays
// frozen. As in PEFT, the trained values replace the base's rows of those ids (index_copy: no
// delta is added), and a checkpoint or PEFT folder holds them as
//   <embedding>.token_adapter.trainable_tokens_delta [n, C]   (transformer.wte, model.embed_tokens)
//   lm_head.token_adapter.trainable_tokens_delta     [n, C]   (an untied head)
// In the adapters' buffer (train/model/lora.h) they follow every A and B: one sink row, where the
// embedding gradient of all other tokens lands and is zeroed, then the embedding's rows, then
// the head's. The head's rows are a product of the final norm's output like an adapter whose
// A is the identity (logits[:, ids] = lnf·Rowsᵀ), so lora_backward's dB gives their gradient.
#pragma once
#include "core/named_tensor.h"
#include "train/model/lora_types.h"
#include "train/model/model.h"

// Checks the spec's ids (ascending, distinct, at most CT_LORA_MAX_TOKENS) and grows m's
// vocabulary (frozen as it was, new rows the mean of the old ones) when an id is past it.
// Called by ct_lora_attach before the adapters exist. 0, or -1 + error.
int ct_lora_tokens_check(CtModel *m, const CtLoraSpec *spec);
// The rows' place in the adapters' buffer, from *at on (advanced); names.
void ct_lora_tokens_layout(CtModel *m, size_t *at);
// The rows start as the base's (host copies).
void ct_lora_tokens_init(CtModel *m);
// Scratch in the memory of `ops` (ct_lora_to_backend moves it), and its release.
void ct_lora_tokens_alloc(CtModel *m, const CtOps *ops);
void ct_lora_tokens_free(CtLora *lora, const CtOps *ops);
// Writes the rows into the base's weights (where the model reads them) when they changed: after
// an optimizer step, a load, or an attach.
void ct_lora_tokens_sync(CtModel *m);
// After an optimizer step: the rows changed; writes them (nothing without token rows).
void ct_lora_tokens_mark_changed(CtModel *m);
// Writes the base's own rows back (the adapters are about to be switched off: DPO's reference is
// the base alone); the next forward with the adapters writes the trained rows again.
void ct_lora_tokens_show_base(CtModel *m);
// The model's hooks (before the forward, after the head's backward, in place of the frozen
// embedding's backward) are declared in train/model/lora_hooks.h.
// Writes the rows into the host parameters (ct_lora_merge).
void ct_lora_tokens_merge(CtModel *m);
// The rows as named tensors over a buffer of the adapters' layout (0, 1 or 2 entries).
int ct_lora_tokens_n_tensors(const CtLora *lora);
void ct_lora_tokens_named_tensors(const CtLora *lora, const float *buffer, CtNamedTensor *out);

// SFT under LoRA: grows the vocabulary to new_V and makes the new rows (and an untied head's)
// trainable beside the adapters (train/model/lora_tokens.h), which keep their values. 0, or -1 + error.
int ct_lora_grow_vocab(CtModel *m, int new_V);
