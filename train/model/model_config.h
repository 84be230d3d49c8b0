// The shape of a model: architecture family and sizes, with named presets.
#pragma once
#include <math.h>
#include <stddef.h>

#include "kernels/ops.h"  // CtRouter, CT_MOE_MAX_EXPERTS, CT_MOE_MAX_TOP_K

// gpt2 and llama are decoders (causal attention, next-token head); bert and roberta are encoders
// (bidirectional attention, post-LayerNorm blocks, the masked-language-model head): see
// ct_model_is_encoder and docs/model.md.
typedef enum { CT_ARCH_GPT2 = 0, CT_ARCH_LLAMA = 1, CT_ARCH_BERT = 2, CT_ARCH_ROBERTA = 3 } CtArch;

// The published family a llama-architecture model follows: decides the Hugging Face names,
// config.json and GGUF shape on export; the math is decided by the feature fields below.
typedef enum {
    CT_FAMILY_LLAMA = 0,  // Llama 1/2/3.x, SmolLM, TinyLlama
    CT_FAMILY_MISTRAL,
    CT_FAMILY_QWEN2,      // Qwen2, Qwen2.5
    CT_FAMILY_QWEN3,
    CT_FAMILY_GEMMA2,
    CT_FAMILY_GEMMA3,     // gemma3_text
    CT_FAMILY_PHI3,
    CT_FAMILY_MIXTRAL,    // Mixtral 8x7B / 8x22B (Mistral's attention, every MLP an MoE)
    CT_FAMILY_QWEN2_MOE,  // Qwen1.5-MoE, Qwen2-MoE: shared expert with a sigmoid gate
    CT_FAMILY_QWEN3_MOE,
    CT_FAMILY_OLMOE,      // OLMoE: q/k norms over the whole projection (qk_norm 2)
} CtFamily;

// RoPE frequency scaling, as transformers' rope_parameters / rope_scaling define it.
typedef enum { CT_ROPE_DEFAULT = 0, CT_ROPE_LINEAR, CT_ROPE_DYNAMIC, CT_ROPE_YARN, CT_ROPE_LLAMA3 } CtRopeType;
typedef struct {
    CtRopeType type;
    float factor;                   // linear, dynamic, yarn, llama3
    int original_max_position;      // dynamic, yarn, llama3: original_max_position_embeddings
    float low_freq_factor, high_freq_factor;  // llama3
    float beta_fast, beta_slow;     // yarn (transformers' defaults 32 and 1)
    float mscale, mscale_all_dim;   // yarn (0: unset)
    float attention_factor;         // yarn (0: derived from factor and mscale)
    int truncate;                   // yarn: 1 rounds the correction range to whole dimensions
} CtRopeScaling;


// The gated MLP of the llama architecture: act(gate) · up.
typedef enum { CT_GATE_SILU = 0, CT_GATE_GELU_TANH = 1 } CtGateAct;
// How multi-token prediction modules read the model (train/model/model_mtp.c, docs/mtp.md).
typedef enum { CT_MTP_SEQUENTIAL = 0, CT_MTP_PARALLEL = 1 } CtMtpStyle;

typedef struct {
    CtArch arch;      // gpt2: learned positions, LayerNorm, GELU MLP, biases, tied head
                      // llama: RoPE, RMSNorm, SwiGLU, no biases, untied head, grouped-query heads
                      // bert, roberta: learned positions and token types, embedding LayerNorm,
                      // bidirectional attention, post-LayerNorm blocks with biases, exact GELU, the
                      // MLM head (dense, GELU, LayerNorm, decoder tied to the embeddings + bias)
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
    int reward_head;  // 1: a reward model: a scalar head score.weight [1, d_model] (no bias) on the final
                      // norm's output, as transformers' *ForSequenceClassification with num_labels 1
    int reward_pad_id;  // reward_head: the score is read at a sequence's last token that is not this id
                        // (transformers' rule with pad_token_id; TRL pads with the EOS); -1: its last token.
                        // 0 (unused) without reward_head

    // ---- encoders (bert, roberta; all zero for the decoders) ----
    int type_vocab_size;          // rows of the token-type (segment) embedding: BERT 2, RoBERTa 1
    int pad_token_id;             // RoBERTa: its padding_idx; positions start at pad_token_id + 1 and a pad
                                  // token sits at position pad_token_id (ct_model_position_offset). BERT: kept
                                  // for config.json only
    int pooler;                   // 1: the pooler (dense + tanh on [CLS]: bert.pooler.dense) is in the table

    // ---- llama-architecture variants (all zero: plain LLaMA) ----
    CtFamily family;
    int head_dim;                 // 0: d_model / n_head (Qwen3, Gemma set their own)
    int qkv_bias;                 // Qwen2: q, k and v projections have biases (o has none)
    int qk_norm;                  // 1 (Qwen3, Gemma 3): RMSNorm over each query and key head, weights [head_dim];
                                  // 2 (OLMoE): over the whole q and k projections, weights [n_head·head_dim]
                                  // (needs n_kv_head == n_head: ct_model_qk_norm_heads)
    CtRopeScaling rope_scaling;   // of every layer, or of the global layers where rope_local_theta is set
    float rope_local_theta;       // Gemma 3: RoPE base of the sliding layers, unscaled (0: as the global ones)
    int sliding_window;           // 0: none; else query t sees keys t2 with t - t2 < sliding_window
    int sliding_window_pattern;   // 0: every layer slides; P: layer l is global when (l + 1) % P == 0 (Gemma)
    CtGateAct gate_act;           // SwiGLU, or GeGLU with tanh GELU (Gemma)
    int post_norms;               // Gemma 2/3: RMSNorm on the attention and MLP outputs before each residual add
    int embed_scale;              // Gemma: embeddings multiplied by √d_model (in float)
    float query_scale;            // 0: 1/√head_dim; Gemma: query_pre_attn_scalar^-½
    float attn_softcap;           // 0: none; Gemma 2: scores s → cap·tanh(s/cap) before the softmax
    float final_softcap;          // 0: none; Gemma 2: logits z → cap·tanh(z/cap)

    // ---- Mixture of Experts (llama architecture; n_experts 0: every MLP dense) ----
    // An MoE layer's MLP: a router [E, C] picks top_k of n_experts SwiGLU experts (each of hidden
    // size moe_d_ff) per token and sums their outputs with the router's weights (times
    // router_scale), plus the shared experts every token passes through: one SwiGLU of hidden size
    // n_shared_experts·moe_d_ff, its output times sigmoid(x·w) when shared_expert_gate (Qwen2-MoE).
    int n_experts;                // E routed experts per MoE layer
    int top_k;                    // experts per token (1..min(E, CT_MOE_MAX_TOP_K))
    int moe_d_ff;                 // hidden size of one routed expert (per half of SwiGLU)
    int n_shared_experts;         // 0: none
    int shared_expert_gate;       // Qwen2-MoE: the shared experts' output times sigmoid(x·shared_expert_gate)
    int moe_layer_freq;           // layer l is MoE when (l + 1) % moe_layer_freq == 0 (HF's decoder_sparse_step); 0 or 1: all
    CtRouter router;
    float router_scale;           // multiplies the routed weights (DeepSeek's routed_scaling_factor); 0: 1

    // ---- Multi-token prediction (train/model/model_mtp.c) ----
    // D modules beside the main model, module k (1..D) predicting token i+k+1 at position i. 0: none.
    // Sequential (DeepSeek-V3): module k reads module k-1's hidden state (the main model's for
    // k = 1) and the embedding of token i+k. Parallel (Gloeckle et al. 2024): head k is one more
    // block reading the input of the main model's last block, as that block does. With D = 0 the
    // style is CT_MTP_SEQUENTIAL (the run config and checkpoints say nothing else).
    int mtp_depth;
    CtMtpStyle mtp_style;
} CtModelConfig;

// The most multi-token-prediction modules a model may have.
#define CT_MODEL_MAX_MTP_DEPTH 8

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
// "gpt2", "llama", "bert", "roberta", and back (0, or -1 when the name is none of them).
const char *ct_arch_name(CtArch arch);
int ct_arch_from_name(const char *name, CtArch *out);
// Names of the enums as the run config and checkpoints spell them ("llama", "qwen3", ...;
// "default", "linear", "dynamic", "yarn", "llama3"; "silu", "gelu_tanh"), and back: 0, or -1 when
// the name is none of them.
const char *ct_family_name(CtFamily family);
int ct_family_from_name(const char *name, CtFamily *out);
const char *ct_rope_type_name(CtRopeType type);
int ct_rope_type_from_name(const char *name, CtRopeType *out);
const char *ct_gate_act_name(CtGateAct act);
int ct_gate_act_from_name(const char *name, CtGateAct *out);
// "softmax", "softmax_norm", "topk_softmax", "sigmoid", "sigmoid_norm".
const char *ct_router_name(CtRouter router);
int ct_router_from_name(const char *name, CtRouter *out);
// "sequential", "parallel".
const char *ct_mtp_style_name(CtMtpStyle style);
int ct_mtp_style_from_name(const char *name, CtMtpStyle *out);
// Whether the model is an encoder (bert, roberta): bidirectional, post-LN, an MLM head; it does not generate.
static inline int ct_model_is_encoder(const CtModelConfig *c) {
    return c->arch == CT_ARCH_BERT || c->arch == CT_ARCH_ROBERTA;
}
// RoBERTa's position rows start after its padding row: position p of a sequence uses row
// pad_token_id + 1 + p (transformers' create_position_ids_from_input_ids). 0 for the others.
static inline int ct_model_position_offset(const CtModelConfig *c) {
    return c->arch == CT_ARCH_ROBERTA ? c->pad_token_id + 1 : 0;
}
// Rows of the learned position table (gpt2, bert, roberta): max_seq_len plus RoBERTa's offset
// (HF's max_position_embeddings: roberta-base's 514 = 512 + padding_idx 1 + 1).
static inline int ct_model_position_rows(const CtModelConfig *c) { return c->max_seq_len + ct_model_position_offset(c); }
static inline int ct_model_head_dim(const CtModelConfig *c) { return c->head_dim ? c->head_dim : c->d_model / c->n_head; }
// Width of the attention output (the o projection's input): n_head · head_dim, d_model unless head_dim is set.
static inline int ct_model_attn_width(const CtModelConfig *c) { return c->n_head * ct_model_head_dim(c); }
// Gemma's embedding scale √d_model, as transformers rounds it: the double square root to float.
static inline float ct_model_embed_scale(const CtModelConfig *c) { return (float)sqrt((double)c->d_model); }
// How the qk_norm ops see the q/k norms: *nh query and *nkv key "heads" of *hd numbers each —
// the model's heads (qk_norm 1), or one of n_head·head_dim numbers each (qk_norm 2: the whole
// projection, which is also the size of each norm weight).
static inline void ct_model_qk_norm_heads(const CtModelConfig *c, int *nh, int *nkv, int *hd) {
    const int whole = c->qk_norm == 2;
    *nh = whole ? 1 : c->n_head;
    *nkv = whole ? 1 : c->n_kv_head;
    *hd = whole ? c->n_head * ct_model_head_dim(c) : ct_model_head_dim(c);
}
// Whether layer l's MLP is a Mixture of Experts.
static inline int ct_model_layer_is_moe(const CtModelConfig *c, int l) {
    return c->n_experts > 0 && (c->moe_layer_freq <= 1 || (l + 1) % c->moe_layer_freq == 0);
}
static inline int ct_model_moe_layers(const CtModelConfig *c) {
    int n = 0;
    for (int l = 0; l < c->n_layer; l++) n += ct_model_layer_is_moe(c, l);
    return n;
}
// Whether the router has DeepSeek-V3's selection bias (model.layers.L.mlp.gate.e_score_correction_bias).
static inline int ct_model_router_has_bias(const CtModelConfig *c) {
    return c->n_experts > 0 && (c->router == CT_ROUTER_SIGMOID || c->router == CT_ROUTER_SIGMOID_NORM);
}
static inline float ct_model_router_scale(const CtModelConfig *c) { return c->router_scale != 0 ? c->router_scale : 1.0f; }
// Whether layer l attends through the sliding window.
static inline int ct_model_layer_slides(const CtModelConfig *c, int l) {
    return c->sliding_window > 0 && (c->sliding_window_pattern == 0 || (l + 1) % c->sliding_window_pattern != 0);
}

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
