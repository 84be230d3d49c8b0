// What the model calls of its prompt-learning adapter (m->peft, train/model/peft.h): the narrow
// side that the model's own files include, so that the adapters sit above the model (as
// train/model/lora_hooks.h does for LoRA). Each is a no-op without m->peft unless noted.
#pragma once
#include "kernels/ops.h"

typedef struct CtModel CtModel;
typedef struct CtBatch CtBatch;

// Rows the adapter places before every sequence (prompt kinds: num_virtual_tokens; else 0).
int ct_peft_prepend_rows(const CtModel *m);
// ct_model_forward with a prompt adapter (ct_peft_prepend_rows > 0): runs `forward` (the model's
// own, over rows) on the batch with the virtual rows prepended, then gives back the per-token
// values in the batch's [B,T] layout. Returns forward's loss.
float ct_peft_forward(CtModel *m, const CtBatch *batch, float (*forward)(CtModel *, const CtBatch *));
// After the token embedding of a pass (before positions, scale, dropout): the virtual rows of
// the pass (ct_peft_set_pass) take the prompt embeddings. Backward: their gradient.
void ct_peft_embed_forward(CtModel *m, CtAct *x, int N);
void ct_peft_embed_backward(CtModel *m, const CtAct *dx, int N);
// Which rows of the next embedding passes are virtual: in each of B sequences of T rows, the first
// `rows` (0: none). ct_peft_forward sets it for its batch; generation for its virtual prefill.
void ct_peft_set_pass(CtModel *m, int B, int T, int rows);
// After a prompt adapter's forward (the model's logits [B·(V+T), V] in host memory): those of
// the real rows, [B·T, V], into out.
void ct_peft_compact_logits(const CtModel *m, const float *all, float *out);
// ct_model_set_loss_weights's weights [B·T] in the forward's [B·(V+T)] layout (0 on the virtual
// rows), into a host buffer of the adapter (valid until the next call).
const float *ct_peft_expand_weights(CtModel *m, const float *weights);
// Whether the last forward ran with prepended rows.
int ct_peft_last_expanded(const CtModel *m);
// Prefix tuning (train/model/peft_prefix.c): P learned keys and values before every sequence in
// every layer (kernels/ops.h's attention_prefix_forward); the tokens sit at positions P... P, or
// 0 without a prefix-tuning adapter (m->peft NULL included: DPO's reference forward).
int ct_peft_prefix_len(const CtModel *m);
// Before a forward (P > 0): every layer's keys and values from the adapter's tensors, and their
// gradient zeroed for the backward that may follow.
void ct_peft_prefix_forward(CtModel *m);
// Layer l's keys and values [P, stride] and their gradient: row j is the layer's NKV key heads,
// then its NKV value heads; rows ct_peft_prefix_stride numbers apart.
const CtAct *ct_peft_prefix_kv(const CtModel *m, int layer);
CtAct *ct_peft_prefix_dkv(const CtModel *m, int layer);
int ct_peft_prefix_stride(const CtModel *m);
// After the blocks' backward: the keys' and values' gradient into the adapter's (added).
void ct_peft_prefix_backward(CtModel *m);
// Generation: rows 0..P−1 of every layer's key and value caches ([L, cache_rows, NKV·HD]) from
// the current tensors.
void ct_peft_prefix_fill_cache(CtModel *m, CtAct *k_cache, CtAct *v_cache, int cache_rows);
// Frees the adapter (ct_model_free calls it).
void ct_peft_detach(CtModel *m);
// Device backends: moves the adapter's buffers into m->ops' memory; syncs host ↔ device.
void ct_peft_to_backend(CtModel *m);
void ct_peft_sync(CtModel *m, int to_device);
// The adapter's parameters in host memory (m->peft set; current after ct_peft_sync(m, 0)).
const float *ct_peft_params_host(const CtModel *m);
