// The Mixture-of-Experts keys of the MoE families' config.json (transformers 5.23's
// MixtralConfig, Qwen2MoeConfig, Qwen3MoeConfig, OlmoeConfig), read into CtModelConfig's MoE
// fields and written back on export:
//   experts      num_local_experts (Mixtral, Qwen3-MoE) / num_experts (Qwen2-MoE, Qwen3-MoE, OLMoE):
//                the config classes alias the two names (attribute_map), so either is read
//   top_k        num_experts_per_tok
//   moe_d_ff     moe_intermediate_size (Qwen); intermediate_size (Mixtral, OLMoE: their experts' size)
//   shared       Qwen2-MoE: shared_expert_intermediate_size = n_shared_experts · moe_intermediate_size,
//                its output gated by sigmoid(x·shared_expert_gate)
//   layers       decoder_sparse_step (Qwen) = moe_layer_freq; mlp_only_layers must be empty
//   router       norm_topk_prob: softmax (false) or softmax_norm (true); Mixtral renormalises the
//                top-k of the softmax, which is topk_softmax
// router_jitter_noise (Mixtral) multiplies the router's input by noise in training: refused
// unless 0. output_router_logits and router_aux_loss_coef change the training loss, not the
// logits: harmless (ctrain's train.aux_loss_coef is the run's own).
#pragma once
#include <cJSON.h>

#include "train/model/model_config.h"

// Whether the family is one of the four MoE families.
int ct_hf_family_is_moe(CtFamily family);
// Reads the MoE keys of config.json's object `root` into m (m->family, m->n_layer, m->d_ff set:
// d_ff is intermediate_size). Refuses, naming `source` and the key, what ctrain cannot compute.
// 0, or -1 + error.
int ct_hf_moe_parse(const cJSON *root, const char *source, CtModelConfig *m);
// Adds the MoE keys of m to config.json's object `o` (an MoE family); refuses, with an error
// naming ctrain's model keys, an MoE shape the family's config class cannot say (a router or
// shared expert of another family, experts on a dense family). 0, or -1 + error.
int ct_hf_moe_write(cJSON *o, const CtModelConfig *m);
// The intermediate_size config.json of the family says: the experts' for Mixtral and OLMoE
// (which have no dense MLP), the dense layers' for Qwen.
int ct_hf_moe_intermediate_size(const CtModelConfig *m);
