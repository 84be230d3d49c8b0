// The shape of a model: architecture family and sizes, with named presets.
#pragma once
#include <stddef.h>

typedef enum { CT_ARCH_GPT2 = 0, CT_ARCH_LLAMA = 1 } CtArch;

typedef struct {
    CtArch arch;      // gpt2: learned positions, LayerNorm, GELU MLP, biases, tied head
                      // llama: RoPE, RMSNorm, SwiGLU, no biases, untied head, grouped-query heads
    int n_layer;
    int n_head;
    int n_kv_head;    // key/value heads; n_head is a multiple of it (GQA); gpt2: = n_head
    int d_model;      // channels; d_model / n_head is the head size
    int d_ff;         // hidden size of the MLP (per half for SwiGLU)
    int vocab_size;
    int max_seq_len;
    float norm_eps;
    float rope_theta;  // llama only
    int tie_embeddings;
    float dropout;
} CtModelConfig;

typedef struct {
    const char *name;
    const char *summary;
    CtModelConfig config;
} CtModelPreset;

extern const CtModelPreset ct_model_presets[];
extern const int ct_model_n_presets;

// The preset called `name`. Returns 0, or -1 + error listing the presets.
int ct_model_preset(const char *name, CtModelConfig *out);
// Checks sizes and their relations. Returns 0, or -1 + error naming the key and the rule.
int ct_model_config_validate(const CtModelConfig *c);
const char *ct_arch_name(CtArch arch);
static inline int ct_model_head_dim(const CtModelConfig *c) { return c->d_model / c->n_head; }

// The widths per token of the fused products, the one rule every user of them follows
// (parameters, activations, generation, LoRA, FLOPs):
//   q|k|v: the NH query heads, then NKV key heads, then NKV value heads (a key or value part
//          is ct_model_kv_width wide);
//   the MLP's first product: d_ff, or gate|up (2·d_ff) that SwiGLU reads as two halves.
static inline int ct_model_kv_width(const CtModelConfig *c) { return c->n_kv_head * ct_model_head_dim(c); }
static inline int ct_model_qkv_width(const CtModelConfig *c) {
    return c->n_head * ct_model_head_dim(c) + 2 * ct_model_kv_width(c);
}
static inline int ct_model_fc_width(const CtModelConfig *c) { return c->arch == CT_ARCH_LLAMA ? 2 * c->d_ff : c->d_ff; }
