// Hugging Face PEFT's LoRA adapter folder (what PeftModel.from_pretrained(base, DIR) loads and
// model.save_pretrained(DIR) writes):
//   DIR/adapter_config.json        {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r", "lora_alpha",
//                                   "lora_dropout", "target_modules": [...], "bias": "none",
//                                   "fan_in_fan_out" (true for GPT-2's Conv1D), "use_rslora",
//                                   "base_model_name_or_path", ...}
//   DIR/adapter_model.safetensors  base_model.model.<module>.lora_A.weight [r, in] and
//                                  base_model.model.<module>.lora_B.weight [out, r]
//                                  (a parameter of target_parameters: see train/interop/lora_peft_experts.h)
// Writing puts the tensors first and adapter_config.json last, each atomically, so a folder
// without its config is not an adapter. Reading validates the config (only what ctrain
// implements: plain LoRA, bias "none", no DoRA; modules_to_save is the caller's to check) and looks tensors
// up by the names the caller expects, with one-line errors for a missing tensor, a wrong shape
// or a tensor that belongs to no module. Knows nothing of models: names and shapes come in.
#pragma once
#include <stdint.h>

#include "checkpoints/safetensors.h"
#include "core/named_tensor.h"

#define CT_PEFT_PREFIX "base_model.model."
#define CT_PEFT_BASE_HASH_KEY "ctrain_base_hash"  // safetensors metadata: FNV-1a of the base's parameters

#define CT_PEFT_MAX_PATTERNS 64
#define CT_PEFT_MAX_TOKENS 1024
#define CT_PEFT_MAX_LAYERS 512

typedef struct {
    char key[256];
    double value;
} CtPeftPattern;

typedef struct {
    int r;
    double lora_alpha, lora_dropout;     // written back as read: 0.1 stays 0.1
    int use_rslora, fan_in_fan_out;
    char target_modules[4096];           // a list (comma-separated), or the regex when target_is_regex
    int target_is_regex;
    // target_parameters (comma-separated; "" null): nn.Parameters adapted directly, as the routed
    // experts' fused mlp.experts.gate_up_proj / down_proj (PEFT's ParamWrapper); target_modules may
    // then be empty (null)
    char target_parameters[1024];
    int layers_to_transform[CT_PEFT_MAX_LAYERS], n_layers;  // n_layers 0: null
    char layers_pattern[256];            // comma-separated; "" null
    CtPeftPattern rank_pattern[CT_PEFT_MAX_PATTERNS], alpha_pattern[CT_PEFT_MAX_PATTERNS];
    int n_rank_pattern, n_alpha_pattern;
    // trainable_token_indices: a list (n_token_modules 0: the input embedding), or a dict of
    // module names, each with the same ids
    int32_t token_ids[CT_PEFT_MAX_TOKENS];
    int n_tokens;
    char token_modules[2][128];
    int n_token_modules;
    char base_model_name_or_path[1024];
    // task_type ("" writes CAUSAL_LM; PEFT's SEQ_CLS for a sequence classifier) and modules_to_save
    // (comma-separated; "" null): modules trained in full, saved under their own names
    // (base_model.model.classifier.weight), which SEQ_CLS sets to classifier, score
    char task_type[32];
    char modules_to_save[256];
} CtPeftConfig;

// Writes DIR (created when missing): tensors named as given get the "base_model.model." prefix;
// base_hash (0: none) goes into the safetensors metadata. 0, or -1 + error.
int ct_peft_write(const char *dir, const CtPeftConfig *cfg, const CtNamedTensor *tensors, int n, uint64_t base_hash);

// Writes DIR (created when missing): adapter_model.safetensors with the tensors under the names
// given (metadata format "pt", and base_hash when not 0), then adapter_config.json = config; on a
// failure neither is left (a folder this call made is removed). Every adapter kind writes through it.
int ct_peft_write_folder(const char *dir, const CtNamedTensor *tensors, int n, uint64_t base_hash, const char *config);

// Reads and validates DIR/adapter_config.json. 0, or -1 + error naming the file and the key.
int ct_peft_read_config(const char *dir, CtPeftConfig *cfg);

// Opens DIR/adapter_model.safetensors and reads every tensor of `want` (names without the
// prefix, float32 data to fill, shapes expected); every tensor of the file must be one of them.
// *base_hash gets the metadata's hash (0 when absent). 0, or -1 + error.
int ct_peft_read_tensors(const char *dir, const CtNamedTensor *want, int n, uint64_t *base_hash);
