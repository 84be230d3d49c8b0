// LoRA adapters of a model as a Hugging Face PEFT folder (checkpoints/peft.h): written from a
// model with adapters, read onto a loaded base. The names are PEFT's (per HF module: q_proj,
// k_proj, v_proj apart although ctrain fuses them); GPT-2 adapters say fan_in_fan_out; Phi-3's
// HF modules are the fused qkv_proj and gate_up_proj, to which its adapters are fused on
// writing and from which they are split on reading (lora_peft_fused.h).
#pragma once
#include "train/model/model.h"

// Writes m's adapters to DIR; base_name goes to base_model_name_or_path (the base's path or hub
// name, as the user knows it). 0, or -1 + error.
int ct_lora_save_peft(const CtModel *m, const char *dir, const char *base_name);
// Attaches the adapters of the PEFT folder DIR to `m` (the base, loaded) and reads them. A
// config that targets modules the model lacks, a missing tensor, a wrong shape, or a base whose
// parameters do not hash to the one recorded by ctrain is an error, and m is left without
// adapters. 0, or -1 + error.
int ct_lora_load_peft(CtModel *m, const char *dir);
