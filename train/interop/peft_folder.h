// Adapters as Hugging Face PEFT folders, every kind: LoRA (train/interop/lora_peft.h) and the
// prompt-learning kinds of train/model/peft.h (checkpoints/peft_prompt.h's format). The folder's
// peft_type picks the kind.
#pragma once
#include "train/model/model.h"

// Writes m's prompt-learning adapter (m->peft) to DIR: adapter_config.json and PEFT's saved
// prompt_embeddings (P-tuning: the prompt encoder's output, as PEFT's save_pretrained writes it).
// base_name goes to base_model_name_or_path. 0, or -1 + error.
int ct_peft_save_folder(CtModel *m, const char *dir, const char *base_name);
// Attaches the adapter of the PEFT folder DIR to m (the base, loaded, on the CPU): LORA through
// ct_lora_load_peft; PROMPT_TUNING, P_TUNING, PREFIX_TUNING as an inference adapter holding
// prompt_embeddings. A config for another shape, a wrong tensor, or (folders ctrain wrote) a base
// whose parameters do not hash to the one recorded is an error, and m is left without adapter.
// 0, or -1 + error.
int ct_peft_load_folder(CtModel *m, const char *dir);
