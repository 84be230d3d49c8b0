// RoPE in a Hugging Face config.json, both shapes: transformers 4's top-level rope_theta with a
// rope_scaling block, and transformers 5's rope_parameters block (Gemma 3: one block per layer
// type, full_attention and sliding_attention). Read into CtModelConfig's rope_theta,
// rope_scaling and rope_local_theta; written back in both shapes on export.
#pragma once
#include <cJSON.h>

#include "train/model/model_config.h"

// Reads the RoPE of config.json's object `root` into m (m->family, m->max_seq_len and the head
// size are set). Refuses, naming `source` and the key: a rope_type ctrain does not compute
// (longrope, ...), a key of the block that would change the frequencies and that ctrain does not
// read, partial rotation. 0, or -1 + error.
int ct_hf_rope_parse(const cJSON *root, const char *source, CtModelConfig *m);
// Adds the RoPE keys of m to config.json's object `o`: rope_parameters (transformers 5) and
// rope_theta + rope_scaling (transformers 4; Gemma 3: rope_local_base_freq too).
void ct_hf_rope_write(cJSON *o, const CtModelConfig *m);
// The shortest decimal that reads back as the same float: 1e-5f prints "1e-05".
double ct_hf_short_float(float f);
