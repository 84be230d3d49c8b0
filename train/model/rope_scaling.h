// RoPE's frequency table of a layer: the inverse frequencies and the attention factor that
// transformers' modeling_rope_utils (ROPE_INIT_FUNCTIONS, 5.x) computes for each rope type, in
// float32 as it does, so imported models rotate by the same angles.
#pragma once
#include "train/model/model_config.h"

// The inverse frequencies inv_freq[HD/2] and the attention factor (YaRN's cos/sin multiplier,
// 1 otherwise) of base theta with `scaling`, for head size HD. seq_len is the largest position
// of the pass + 1 (dynamic NTK reads it: above max_position it raises the base, as
// transformers' dynamic_rope_update does for a model that has not seen a longer pass); the
// other types ignore it. max_position: dynamic's max_position_embeddings.
void ct_rope_inv_freq(float *inv_freq, float *attention_factor, float theta, const CtRopeScaling *scaling, int HD,
                      int max_position, int seq_len);

// The table of layer `layer` of a llama-architecture model: Gemma 3's sliding layers use
// rope_local_theta unscaled (when set); every other layer rope_theta with rope_scaling.
void ct_model_layer_inv_freq(const CtModelConfig *c, int layer, int seq_len, float *inv_freq, float *attention_factor);
