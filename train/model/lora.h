// LoRA (Hu et al., 2021) over a frozen base, with Hugging Face PEFT's semantics:
//
//   y = x·Wᵀ + b + s·(x·Aᵀ)·Bᵀ,   A [r, in], B [out, r],   s = alpha/r  (alpha/√r with rsLoRA)
//
// With dropout p (training passes only), the adapter reads x̃ = dropout(x) = x⊙mask/(1-p), one
// mask per adapter as PEFT's separate nn.Dropout modules, the base reads x:
//   y = x·Wᵀ + s·(x̃·Aᵀ)·Bᵀ,  dA = dhᵀ·x̃,  dx += dy·W + (dh·A)⊙mask/(1-p)
// The masks are a pure function of (m->dropout_key, adapter, element), so backward regenerates them.
//
// A starts Kaiming-uniform with a = √5 (uniform(±1/√in), torch.nn.Linear's default, as PEFT
// does), B at zero, so at step 0 the model is exactly the base. The base's weights have no
// gradient buffer and no optimizer state: the model is created with CT_MODEL_FROZEN, and the
// optimizer steps the adapters' own buffer (m->train_params / m->train_grads).
//
// Adapters are per Hugging Face module, as PEFT's are: llama's q_proj, k_proj and v_proj each
// have their own A and B although ctrain computes q|k|v as one product; each adds into its row
// block of the fused output (gate_proj/up_proj likewise). GPT-2's c_attn is one module in HF, so
// one adapter covers the whole fused q|k|v output; its Conv1D layout is PEFT's fan_in_fan_out,
// which changes how HF stores W but not A and B (lora_A is [r, in], lora_B [out, r] either way).
//
// The math is the lora_forward/lora_backward ops (kernels/ops.h); here is which adapter sits
// where. train/model/lora_targets.h decides which modules are adapted (PEFT's rules), train/model/lora_tokens.h
// trains token rows beside the adapters, train/interop/lora_checkpoint.c saves runs, checkpoints/peft.h
// writes PEFT's files.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/named_tensor.h"
#include "train/model/model.h"

// Where an adapter's module sits in the model's forward pass: the four linear products of a block.
typedef enum { CT_LORA_QKV, CT_LORA_ATTN_OUT, CT_LORA_FC, CT_LORA_FC_OUT, CT_LORA_N_SITES } CtLoraSite;

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
    int layers[CT_LORA_MAX_LAYERS], n_layers;  // layers_to_transform (n_layers 0: every layer)
    char layers_pattern[256];                  // comma-separated; "" any (where the layer index is read)
    CtLoraPattern rank_pattern[CT_LORA_MAX_PATTERNS], alpha_pattern[CT_LORA_MAX_PATTERNS];
    int n_rank_pattern, n_alpha_pattern;
    // Token rows that train beside the adapters (PEFT's trainable_token_indices): the embedding's
    // rows of these ids, and the output head's when it is not tied and token_head is 1. Ascending.
    int32_t token_ids[CT_LORA_MAX_TOKENS];
    int n_tokens, token_head;
} CtLoraSpec;

typedef struct {
    char module[96];         // "model.layers.0.self_attn.k_proj" (PEFT's key is base_model.model.<module>)
    char a_name[128], b_name[128];  // "<module>.lora_A.weight", "<module>.lora_B.weight"
    int layer;
    CtLoraSite site;
    int in, out;             // the module's features
    int r;                   // its rank (rank_pattern, else spec.r)
    float scale;             // alpha/r of its own alpha and rank (alpha_pattern, rank_pattern)
    int col0, out_stride;    // its block in the site's (fused) output: columns col0..col0+out of out_stride
    int hf_transposed;       // the base weight is a Conv1D (fan_in_fan_out in PEFT)
    size_t a_offset, b_offset;  // in floats, into params / grads
    CtAct *h;                // [max_B·max_T, r]: x·Aᵀ of the last forward (an activation)
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
    char target_modules[4096];  // the targets as PEFT's target_modules (comma-separated), or the regex
    char base_path[1024];     // the base checkpoint (training runs), and its parameters' hash
    uint64_t base_hash;
} CtLora;

// PEFT's scale of a spec: alpha/r, or alpha/√r with rslora.
float ct_lora_scale(const CtLoraSpec *spec);
// Adds adapters to `m` for the spec's targets (matched as PEFT matches target_modules, with
// layers_to_transform, rank_pattern and alpha_pattern: train/model/lora_targets.h), A and B zero, and
// the spec's trainable token rows (from the base's rows; a model whose vocabulary lacks an id
// is grown first, train/model/model_resize.h). A target that matches no linear layer is an error
// naming what the model has. 0, or -1 + error.
int ct_lora_attach(CtModel *m, const CtLoraSpec *spec);
// PEFT's initialisation: A ~ uniform(±1/√in) from `seed` (one stream per adapter), B = 0.
void ct_lora_init(CtModel *m, uint64_t seed);
void ct_lora_detach(CtModel *m);  // frees the adapters (ct_model_free calls it)
// Device backends (train/model/model_backend.c calls these): move the adapters and their scratch
// into the memory of m->ops; copy adapters host → device (to_device 1) or back (0).
void ct_lora_to_backend(CtModel *m);
void ct_lora_sync(CtModel *m, int to_device);

// The hooks train/model/model.c calls after each linear product of block `layer`: add the adapters
// of that site (forward), and their backward (dinp += ..., adapter gradients += ...).
void ct_lora_forward(CtModel *m, int layer, CtLoraSite site, CtAct *out, const CtAct *inp, int N);
void ct_lora_backward(CtModel *m, int layer, CtLoraSite site, CtAct *dinp, const CtAct *dout, const CtAct *inp, int N);
// 1 when block `layer` has an adapter at `site` (0 without LoRA).
int ct_lora_has_adapter(const CtModel *m, int layer, CtLoraSite site);

// Folds every adapter into its base weight, W[block] += s·B·A (in the Conv1D case too: the
// model holds every weight as [out, in]), then detaches. The model must hold its parameters.
void ct_lora_merge(CtModel *m);

// The adapters as named tensors (A, B per adapter, then the token rows: ct_lora_n_tensors
// entries) over params, grads or an optimizer moment of the same layout; names are
// "<module>.lora_A.weight" and "<embedding>.token_adapter.trainable_tokens_delta" (PEFT's).
void ct_lora_named_tensors(const CtLora *lora, const float *buffer, CtNamedTensor *out);
int ct_lora_n_tensors(const CtLora *lora);
// A fingerprint of the model's parameters (FNV-1a of the float32 buffer): the base a LoRA run
// or adapter was trained on.
uint64_t ct_lora_base_hash(const CtModel *m);
// Logs trainable parameters, their share, and the memory it saves (or costs, at ranks near the width) against full fine-tuning
// (gradients + two AdamW moments: 12 bytes per frozen parameter).
void ct_lora_report(const CtModel *m);
