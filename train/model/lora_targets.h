// Which linear modules a LoRA spec adapts, and with which rank and alpha: Hugging Face PEFT's
// rules (peft 0.21: tuners_utils.check_target_module_exists, utils.other.get_pattern_key),
// applied to a module's full name ("model.layers.3.self_attn.q_proj", "transformer.h.0.attn.c_attn"):
//   target_modules a list   the name equals an entry, or ends with "." + entry; with
//                           layers_to_transform, a suffix match counts only in those layers (the
//                           index read after layers_pattern, else after the name's first
//                           "<segment>.<digits>."); an exact name is taken whatever its layer
//   target_modules a string a regular expression fully matched against the name (layers_to_transform
//                           does not apply, as in PEFT)
//   "all-linear"            every linear layer but the output head (the caller's to expand)
//   rank_pattern / alpha_pattern  the first key whose regex matches the name as (.*\.)?(key) gives the
//                           module's r / alpha; otherwise r and lora_alpha
#pragma once
#include "train/model/lora_types.h"
#include "train/model/model_config.h"

// *match: 1 when the spec's targets (list or regex; not all-linear) adapt the module `full`.
// 0, or -1 + error (a regular expression ctrain cannot run).
int ct_lora_target_matches(const CtLoraSpec *spec, const char *full, int *match);
// 1 when the list entry `entry` names `full` by PEFT's list rule (equal, or a "." + entry suffix).
int ct_lora_name_matches(const char *full, const char *entry);
// The module's rank and alpha (rank_pattern, alpha_pattern, else the spec's). 0, or -1 + error.
int ct_lora_module_rank_alpha(const CtLoraSpec *spec, const char *full, int *r, double *alpha);
// PEFT's layer index of a module name (layers_pattern: comma-separated, "" for any), or -1.
int ct_lora_layer_index(const char *full, const char *layers_pattern);
// 1 when the spec selects every linear layer ("all-linear", any case, as PEFT reads it).
int ct_lora_is_all_linear(const char *targets);
// *hit: 1 when a list entry (regex 0) or a regular expression (regex 1) names a module outside the
// blocks that PEFT would adapt and ctrain does not: the embeddings, the output head, an encoder's
// pooler and MLM head (those the model has). 0, or -1 + error (a regex ctrain cannot run).
int ct_lora_outside_blocks(const CtModelConfig *c, const char *entry, int regex, int *hit);
