// The structures of LoRA (train/model/lora.h has the picture and the functions): the spec of
// what to adapt (PEFT's LoraConfig), the adapters, the trainable token rows and their buffer.
// lora_targets.c and lora_tokens.c need the types only, lora.c the functions of both: the
// types sit below the three.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "kernels/ops.h"
#include "train/model/lora_hooks.h"

#define CT_LORA_MAX_PATTERNS 64
#define CT_LORA_MAX_TOKENS 1024
#define CT_LORA_MAX_LAYERS 512

// One entry of PEFT's rank_pattern / alpha_pattern: a regular expression `key` that a module's
// full name matches as (.*\.)?(key) (PEFT's get_pattern_key; the first key that matches wins).
typedef struct {
    char key[256];
    double value;
} CtLoraPattern;

// What to adapt and how, with PEFT's LoraConfig rules (train/model/lora_targets.h matches them).
typedef struct {
    int r;
    double alpha, dropout;  // as given (0.1 stays 0.1 in the files written); dropout: PEFT's lora_dropout, on the
                            // adapter's input x only, in training passes (m->training)
    int rslora;
    char targets[4096];     // a list (comma-separated): a module is adapted when its full name equals an
                            // entry or ends with "." + entry; "all-linear"; or "" (PEFT's default)
    char target_regex[1024];  // PEFT's string target_modules: a regex fully matched against the full name
    // PEFT's target_parameters (a list, comma-separated): the routed experts' fused parameters
    // ("mlp.experts.gate_up_proj", "mlp.experts.down_proj"), matched against the parameter's full name
    // ("model.layers.3.mlp.experts.gate_up_proj") by the list rule of targets; every MoE layer
    // (layers_to_transform does not apply, as in PEFT); no dropout (PEFT's ParamWrapper refuses it)
    char target_parameters[1024];
    int layers[CT_LORA_MAX_LAYERS], n_layers;  // layers_to_transform (n_layers 0: every layer)
    char layers_pattern[256];                  // comma-separated; "" any (where the layer index is read)
    CtLoraPattern rank_pattern[CT_LORA_MAX_PATTERNS], alpha_pattern[CT_LORA_MAX_PATTERNS];
    int n_rank_pattern, n_alpha_pattern;
    // Token rows that train beside the adapters (PEFT's trainable_token_indices): the embedding's
    // rows of these ids, and the output head's when it is not tied and token_head is 1. Ascending.
    int32_t token_ids[CT_LORA_MAX_TOKENS];
    int n_tokens, token_head;
    // PEFT's modules_to_save (comma-separated): modules that train in full beside the adapters, a
    // module saved when its full name ends with an entry (PEFT's plain endswith). ctrain saves the
    // classification head's modules only: PEFT's SEQ_CLS task sets "classifier,score"
    // (train/model/lora_saved.h)
    char modules_to_save[256];
} CtLoraSpec;

typedef struct {
    char module[96];         // "model.layers.0.self_attn.k_proj" (PEFT's key is base_model.model.<module>), or an
                             // expert parameter's "model.layers.0.mlp.experts.gate_up_proj"
    char a_name[128], b_name[128];  // "<module>.lora_A.weight", "<module>.lora_B.weight"
    int layer;
    CtLoraSite site;
    int in, out;             // the module's features
    int r;                   // its rank (rank_pattern, else spec.r)
    float scale;             // alpha/r of its own alpha and rank (alpha_pattern, rank_pattern)
    int col0, out_stride;    // its block in the site's (fused) output: columns col0..col0+out of out_stride
    int hf_transposed;       // the base weight is a Conv1D (fan_in_fan_out in PEFT)
    // 0: a module's adapter. E: the routed experts' fused parameter (PEFT's ParamWrapper), one A and B
    // per expert: A [E, r, in] (PEFT's lora_A [E·r, in] as is), B [E, out, r] (PEFT's lora_B [out, r·E]
    // holds B_e[o, k] at column k·E + e: train/interop/lora_peft_experts.h converts), each expert's
    // update on its block of sorted rows
    int n_experts;
    size_t a_offset, b_offset;  // in floats, into params / grads
    CtAct *h;                // [max_B·max_T, r]: x·Aᵀ of the last forward (an activation); experts':
                             // [max_B·max_T·top_k, r], over the sorted rows
} CtLoraAdapter;

// The trainable token rows (train/model/lora_tokens.c). Their values replace the base's rows of those
// ids (PEFT's TrainableTokensLayer: index_copy, not a delta added), so the base buffer's rows
// are kept equal to them (ct_lora_tokens_sync); the base's other rows are never written.
typedef struct {
    int n;                    // spec.n_tokens
    int head;                 // the untied head's rows train too
    char in_name[128], out_name[128];  // "<embedding>.token_adapter.trainable_tokens_delta", the head's
    size_t sink_offset;       // one row before in_offset: where embedding_backward drops other tokens' rows
    size_t in_offset, out_offset;  // [n, C] each, in floats into params / grads
    int32_t *slot;            // host [vocab]: 1 + the row of a trainable id, 0 for the others
    int32_t *ids_host, *ids;  // [max_B·max_T]: a batch's tokens as slots (host, and in the ops' memory)
    CtAct *dh;                // [max_B·max_T, C] scratch for the head rows' backward
    float *original;          // host: the base's own rows of those ids (embedding, then head), for the
                              // base alone (PEFT's trainable_tokens_original: DPO's reference)
    int dirty;                // the base does not hold the trained rows (they changed, or it shows its own)
} CtLoraTokens;

#define CT_LORA_MAX_SAVED 8

// Whole tensors of the base that train in full beside the adapters (PEFT's modules_to_save, the
// classification head: train/model/lora_saved.c). The model reads them from the adapters' buffer
// (their values) and adds their gradient there; the base's own copy is left as it was until merged.
typedef struct {
    int n;
    struct {
        char name[96];        // the base tensor's name ("classifier.weight"; PEFT's base_model.model.<name>)
        size_t base_offset;   // in floats, into the model's params
        size_t offset, numel;  // in floats, into the adapters' params / grads
        int ndim;
        int64_t shape[2];
    } t[CT_LORA_MAX_SAVED];
} CtLoraSaved;

typedef struct CtLora {
    CtLoraSpec spec;
    float scale;              // spec's alpha/r (modules without a pattern)
    CtLoraAdapter *adapters;  // in layer order, then site, then column
    int n_adapters;
    size_t n_params;
    float *params, *grads;    // every A and B in one buffer, host (grads NULL once on a device)
    float *dev_params, *dev_grads;  // what the ops use and AdamW steps: params/grads on the CPU
    CtAct *h_block, *dh;      // saved x·Aᵀ of every adapter; backward scratch [max_B·max_T, r] (ops' memory)
    CtAct *xd, *dxd;          // dropout scratch (ops' memory) [max_B·max_T, widest in]: dropout(x) and its gradient
    int dropout_on;           // the last forward applied dropout (backward regenerates its masks)
    int max_r;                // the largest rank of an adapter
    CtLoraTokens tokens;      // trainable token rows (tokens.n 0: none)
    CtLoraSaved saved;        // whole head tensors trained in full (saved.n 0: none)
    char target_modules[4096];  // the targets as PEFT's target_modules (comma-separated), or the regex
    char base_path[1024];     // the base checkpoint (training runs), and its parameters' hash
    uint64_t base_hash;
} CtLora;

