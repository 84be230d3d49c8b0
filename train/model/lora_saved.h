// Whole modules that train in full beside LoRA adapters: PEFT's modules_to_save, which its
// SEQ_CLS task sets to ["classifier", "score"] so that a sequence classifier's new head trains
// while the base stays frozen. ctrain saves the classification head's modules only (BERT's
// classifier, and its pooler where the run drew one; RoBERTa's classifier.dense and
// .out_proj; a decoder's score): their tensors sit after the adapters and token rows in the
// adapters' buffer, start as the base's values, are read from there by the head
// (ct_lora_saved_tensor, train/model/lora_hooks.h) and get their gradient there; merging copies
// them into the base. PEFT's file names them base_model.model.<tensor> ("classifier.weight").
#pragma once
#include <stddef.h>

#include "core/named_tensor.h"
#include "train/model/lora_types.h"
#include "train/model/model.h"

// The spec's modules_to_save against m: every tensor of a matched module must belong to the
// classification head, and an entry list that matches nothing is an error. 0, or -1 + error.
int ct_lora_saved_check(const CtModel *m, const CtLoraSpec *spec);
// Lays the saved tensors out in the adapters' buffer from *at (which it advances).
void ct_lora_saved_layout(CtModel *m, size_t *at);
// Their starting values: the base's (host copies).
void ct_lora_saved_init(CtModel *m);
// The trained values into the base's tensors (host copies).
void ct_lora_saved_merge(CtModel *m);
// As named tensors over a buffer of the adapters' layout (their base names).
int ct_lora_saved_n_tensors(const CtLora *lora);
void ct_lora_saved_named_tensors(const CtLora *lora, const float *buffer, CtNamedTensor *out);
// Their count of values (for the report).
size_t ct_lora_saved_numel(const CtLora *lora);
