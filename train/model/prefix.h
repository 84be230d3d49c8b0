// Prefix tuning (Li & Liang, 2021; P-tuning v2, Liu et al., 2022) over a frozen base, with Hugging
// Face PEFT's semantics (PrefixTuningConfig, PrefixEncoder, PeftModelForCausalLM.get_prompt):
//
//   every layer l gets P learned keys and values, a past_key_values of length P in front of each
//   sequence; every token attends to all P (the attention op's prefix, kernels/ops.h), the real
//   tokens sit at positions P.., and the prefix keys are used as stored (no RoPE).
//
// The keys and values of all layers are one matrix kv[P, width], width = L·2·NKV·HD (PEFT's
// num_layers·2·token_dim, token_dim = NKV·HD): row j holds, layer after layer, that layer's NKV
// key heads then its NKV value heads (PEFT's view(P, 2L, NKV, HD) with key 2l, value 2l + 1).
//   without projection:  kv = E,  E [P, width] learned (PEFT's embedding.weight)
//   with projection:     kv = W2·tanh(W1·e_j + b1) + b2, e_j a row of E [P, token_dim],
//                        W1 [H, token_dim], W2 [width, H] (H: encoder_hidden_size)
// PEFT saves kv itself as `prompt_embeddings` either way, and loads it for inference with no
// projection; ctrain does the same (train/interop).
//
// Initialisation as PEFT's: E ~ normal(0, 1) (torch.nn.Embedding), W and b of each Linear
// uniform(±1/√in) (torch.nn.Linear). The base has no gradients and no optimizer state: the model
// is created with CT_MODEL_FROZEN and the optimizer steps the prefix's own buffer
// (m->train_params). On the CPU only for now: the CUDA attention has no prefix yet.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/named_tensor.h"
#include "kernels/ops.h"

typedef struct CtModel CtModel;  // train/model/model.h

typedef struct {
    int num_virtual_tokens;   // P >= 0 (0: the base model's numbers, bit for bit)
    int prefix_projection;    // 1: the two-layer MLP reparameterisation
    int encoder_hidden_size;  // H of the projection; 0: token_dim (PEFT's default)
} CtPrefixSpec;

typedef struct CtPrefix {
    CtPrefixSpec spec;
    int P, width, token_dim, hidden;  // hidden: H with projection, else 0
    size_t n_params;
    float *params, *grads;            // the learned tensors, one buffer (named by ct_prefix_named_tensors)
    size_t emb_off, w1_off, b1_off, w2_off, b2_off;  // in floats, into params (w1.. only with projection)
    // in the ops' memory
    int32_t *ids;                     // [P] 0..P−1: the embedding rows
    CtAct *kv, *dkv;                  // [P, width] the keys and values of every layer, and their gradient
    CtAct *e, *h, *a, *de, *dh, *da;  // projection: [P,token_dim] rows of E, [P,H] W1·e + b1, tanh(h), gradients
} CtPrefix;

// Adds a prefix of spec.num_virtual_tokens to the model (its parameters must be frozen: created with
// CT_MODEL_FROZEN), initialised from `seed`, and makes it what trains. The activations are
// re-sized for P more keys. Errors (0, or -1 + error): encoders, multi-token prediction modules,
// a backend without the prefix attention (CUDA), a model that already has adapters or a prefix.
int ct_prefix_attach(CtModel *m, const CtPrefixSpec *spec, uint64_t seed);
// PEFT's initialisation of the learned tensors (see the top of the file).
void ct_prefix_init(CtModel *m, uint64_t seed);
// Frees the prefix (ct_model_free calls it; nothing without one).
void ct_prefix_detach(CtModel *m);

// What the model calls (m->prefix set). Before a forward: kv from the parameters (and dkv zeroed
// for the backward that may follow). Layer l's slice of kv / dkv (rows `width` apart).
void ct_prefix_forward(CtModel *m);
const CtAct *ct_prefix_layer_kv(const CtModel *m, int layer);
CtAct *ct_prefix_layer_dkv(const CtModel *m, int layer);
// After the blocks' backward: dkv into the parameters' gradients (added).
void ct_prefix_backward(CtModel *m);
// Generation: rows 0..P−1 of every layer's key and value caches ([L, cache_rows, NKV·HD]) get
// the prefix (computed from the current parameters).
void ct_prefix_fill_cache(CtModel *m, CtAct *k_cache, CtAct *v_cache, int cache_rows);

// The learned tensors as named tensors over params, grads or an optimizer moment of the same layout:
// "prompt_encoder.embedding.weight", and with projection "prompt_encoder.transform.0.weight",
// ".0.bias", ".2.weight", ".2.bias" (PEFT's module names). out holds ct_prefix_n_tensors entries.
int ct_prefix_n_tensors(const CtPrefix *prefix);
void ct_prefix_named_tensors(const CtPrefix *prefix, const float *buffer, CtNamedTensor *out);
// kv [P, width] as host floats (PEFT's prompt_embeddings): E itself, or the projection's output.
void ct_prefix_embeddings(CtModel *m, float *out);
// Loads PEFT's prompt_embeddings [P, width] into a prefix without projection. 0, or -1 + error.
int ct_prefix_load_embeddings(CtModel *m, const float *kv, int P, int width);
// Logs the trainable parameters and their share of the model.
void ct_prefix_report(const CtModel *m);
