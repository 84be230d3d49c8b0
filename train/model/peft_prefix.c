// Prefix tuning (Li & Liang, 2021; P-tuning v2, Liu et al., 2022), the prefix_tuning kind of
// train/model/peft.h, with Hugging Face PEFT's semantics (PrefixTuningConfig, PrefixEncoder,
// PeftModelForCausalLM.get_prompt): every layer gets P learned keys and values, a
// past_key_values of length P in front of each sequence; every token attends to all P (the
// attention op's prefix, kernels/ops.h), the tokens sit at positions P.. (PEFT offsets
// position_ids by num_virtual_tokens; transformers numbers tokens after a cache from its
// length), and the prefix keys are used as stored, without RoPE.
//
// The keys and values of all layers are one matrix kv [P, W], W = L·2·D with D = NKV·HD (PEFT's
// num_layers·2·token_dim, token_dim the key/value width under PEFT's GQA rule): row j holds,
// layer after layer, that layer's NKV key heads, then its NKV value heads (PEFT's
// view(P, 2L, NKV, HD): key 2l, value 2l + 1).
//   without projection:  kv = E,  E [P, W] ("embedding.weight")
//   with projection:     kv = W₂·tanh(W₁·e + b₁) + b₂ for each row e of E [P, D], W₁ [H, D],
//                        W₂ [W, H] ("transform.0", "transform.2"; H = encoder_hidden_size, PEFT's
//                        default D)
//   backward from dkv:   dW₂ = dkvᵀ·a, da = dkv·W₂, dh = (1 − a²) ⊙ da, dW₁ = dhᵀ·e, dE = dh·W₁
// PEFT saves kv itself as prompt_embeddings either way and loads it for inference with no
// projection (spec.inference: the one tensor "prompt_embeddings" [P, W]). On a device
// (ct_peft_to_backend) the ids and the activations below move into its memory.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "train/model/model_internal.h"
#include "train/model/peft.h"
#include "train/model/peft_hooks.h"

typedef struct {
    int P, D, W, H;                   // virtual tokens, key/value width, W = L·2·D, projection width (0: none)
    const CtOps *ops;                 // whose memory the buffers below are in
    int32_t *ids;                     // [P] 0..P−1, the embedding's rows
    CtAct *kv, *dkv;                  // [P, W] every layer's keys and values, and their gradient
    CtAct *e, *h, *a, *de, *dh, *da;  // projection: [P, D] rows of E, [P, H] W₁·e + b₁, tanh(h), gradients
} Prefix;

static Prefix *state(const CtModel *m) { return (Prefix *)m->peft->state; }
static int projected(const CtPeft *p) { return p->spec.prefix_projection && !p->spec.inference; }
static const float *param(const CtPeft *p, int i) { return p->dev_params + p->tensors[i].offset; }
static float *grad(const CtPeft *p, int i) { return p->dev_grads + p->tensors[i].offset; }

// ---- layout ----
static int kv_width(const CtModelConfig *c) { return ct_model_kv_width(c); }
static int hidden_size(const CtPeftSpec *s, const CtModelConfig *c) {
    return s->encoder_hidden_size > 0 ? s->encoder_hidden_size : kv_width(c);
}

static int prefix_layout(const CtPeftSpec *s, const CtModelConfig *c, CtPeftTensor *out) {
    if (c->mtp_depth > 0)
        return ct_error_set("prefix_tuning: the model has %d multi-token prediction modules; the prefix covers the "
                            "main blocks only (model.mtp_depth 0)", c->mtp_depth);
    if (s->num_virtual_tokens >= c->max_seq_len)
        return ct_error_set("prefix_tuning: %d virtual tokens leave no position of model.max_seq_len %d for text",
                            s->num_virtual_tokens, c->max_seq_len);
    const int P = s->num_virtual_tokens, D = kv_width(c), W = c->n_layer * 2 * D, H = hidden_size(s, c);
    if (s->inference || !s->prefix_projection) {
        out[0] = ct_peft_tensor(s->inference ? "prompt_embeddings" : "embedding.weight", P, W, 1);
        return 1;
    }
    out[0] = ct_peft_tensor("embedding.weight", P, D, 1);
    out[1] = ct_peft_tensor("transform.0.weight", H, D, 1);
    out[2] = ct_peft_tensor("transform.0.bias", H, 0, 0);
    out[3] = ct_peft_tensor("transform.2.weight", W, H, 1);
    out[4] = ct_peft_tensor("transform.2.bias", W, 0, 0);
    return 5;
}

// ---- state ----
static CtAct *act(const CtOps *ops, size_t n, const char *what) { return ops->alloc(ops->act_bytes * (n ? n : 1), what); }

// The ids and the activations of `ops`: 0..P−1 uploaded, the rest zeros.
static void alloc_buffers(Prefix *s, const CtOps *ops) {
    const size_t P = (size_t)s->P;
    s->ops = ops;
    s->ids = ops->alloc(sizeof(int32_t) * (P ? P : 1), "prefix ids");
    int32_t *ids = ct_alloc(sizeof(int32_t) * (P ? P : 1));
    for (size_t j = 0; j < P; j++) ids[j] = (int32_t)j;
    ops->upload(s->ids, ids, sizeof(int32_t) * P);
    ct_free(ids);
    s->kv = act(ops, P * s->W, "prefix keys and values");
    s->dkv = act(ops, P * s->W, "prefix keys and values' gradient");
    if (s->H) {
        s->e = act(ops, P * s->D, "prefix projection input");
        s->de = act(ops, P * s->D, "prefix projection input gradient");
        s->h = act(ops, P * s->H, "prefix projection hidden");
        s->a = act(ops, P * s->H, "prefix projection tanh");
        s->dh = act(ops, P * s->H, "prefix projection hidden gradient");
        s->da = act(ops, P * s->H, "prefix projection tanh gradient");
    }
}

static void free_buffers(Prefix *s) {
    void *bufs[] = {s->ids, s->kv, s->dkv, s->e, s->h, s->a, s->de, s->dh, s->da};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) s->ops->free(bufs[i]);
}

static int prefix_attach(CtModel *m) {
    CtPeft *p = m->peft;
    const CtOps *ops = m->ops;
    if (!ops->attention_prefix_forward || !ops->attention_prefix_backward)
        return ct_error_set("prefix_tuning: the %s backend's attention has no prefix (run.device cpu)", ops->name);
    if (m->w.wpe && m->max_T + p->spec.num_virtual_tokens > m->config.max_seq_len)
        return ct_error_set("prefix_tuning: sequences of %d tokens after %d virtual tokens pass model.max_seq_len %d, "
                            "the learned position table's rows (the tokens sit at positions %d..): shorten "
                            "train.seq_len or use fewer virtual tokens", m->max_T, p->spec.num_virtual_tokens,
                            m->config.max_seq_len, p->spec.num_virtual_tokens);
    Prefix *s = ct_calloc(1, sizeof *s);
    p->state = s;
    s->P = p->spec.num_virtual_tokens;
    s->D = kv_width(&m->config);
    s->W = m->config.n_layer * 2 * s->D;
    s->H = projected(p) ? hidden_size(&p->spec, &m->config) : 0;
    alloc_buffers(s, ops);
    // the saved attention state takes P more keys per row: the activations are sized again
    if (m->att_extra_keys < s->P) {
        ct_model_activations_free(m);
        m->att_extra_keys = s->P;
        ct_model_activations_alloc(m);
    }
    return 0;
}

static void prefix_detach(CtPeft *p) {
    Prefix *s = p->state;
    if (!s) return;
    free_buffers(s);
    ct_free(s);
    p->state = NULL;
}

// The buffers into m->ops' memory (their contents are recomputed by every forward).
static void prefix_to_backend(CtModel *m) {
    Prefix *s = state(m);
    CT_CHECK(m->ops->attention_prefix_forward && m->ops->attention_prefix_backward,
             "prefix_tuning: this backend's attention has no prefix (run.device cpu)");
    free_buffers(s);
    alloc_buffers(s, m->ops);
}

// ---- the hooks (train/model/peft_hooks.h) ----
int ct_peft_prefix_len(const CtModel *m) {
    return m->peft && m->peft->spec.type == CT_PEFT_PREFIX_TUNING ? m->peft->spec.num_virtual_tokens : 0;
}

int ct_peft_prefix_stride(const CtModel *m) { return state(m)->W; }

const CtAct *ct_peft_prefix_kv(const CtModel *m, int layer) {
    return ct_act_at(m->ops->act_bytes, state(m)->kv, (size_t)layer * 2 * state(m)->D);
}

CtAct *ct_peft_prefix_dkv(const CtModel *m, int layer) {
    return ct_act_at(m->ops->act_bytes, state(m)->dkv, (size_t)layer * 2 * state(m)->D);
}

void ct_peft_prefix_forward(CtModel *m) {
    const CtPeft *p = m->peft;
    Prefix *s = state(m);
    const CtOps *ops = m->ops;
    ops->zero(s->dkv, ops->act_bytes * (size_t)s->P * s->W);
    if (!s->H) {  // kv = E: its rows as activations
        ops->embedding_forward(s->kv, s->ids, param(p, 0), s->P, s->W, 0);
        return;
    }
    ops->embedding_forward(s->e, s->ids, param(p, 0), s->P, s->D, 0);
    ops->matmul_forward(s->h, s->e, param(p, 1), param(p, 2), s->P, s->D, s->H);
    ops->tanh_forward(s->a, s->h, (size_t)s->P * s->H);
    ops->matmul_forward(s->kv, s->a, param(p, 3), param(p, 4), s->P, s->H, s->W);
}

void ct_peft_prefix_backward(CtModel *m) {
    const CtPeft *p = m->peft;
    Prefix *s = state(m);
    const CtOps *ops = m->ops;
    const size_t A = ops->act_bytes, P = (size_t)s->P;
    if (p->spec.inference) return;  // an imported adapter does not train
    if (!s->H) {
        ops->embedding_backward(grad(p, 0), s->dkv, s->ids, s->P, s->W);
        return;
    }
    ops->zero(s->da, A * P * s->H);
    ops->matmul_backward(s->da, grad(p, 3), grad(p, 4), s->dkv, s->a, param(p, 3), s->P, s->H, s->W);
    ops->zero(s->dh, A * P * s->H);
    ops->tanh_backward(s->dh, s->a, s->da, P * s->H);
    ops->zero(s->de, A * P * s->D);
    ops->matmul_backward(s->de, grad(p, 1), grad(p, 2), s->dh, s->e, param(p, 1), s->P, s->D, s->H);
    ops->embedding_backward(grad(p, 0), s->de, s->ids, s->P, s->D);
}

void ct_peft_prefix_fill_cache(CtModel *m, CtAct *k_cache, CtAct *v_cache, int cache_rows) {
    const Prefix *s = state(m);
    const CtOps *ops = m->ops;
    const size_t A = ops->act_bytes, D = (size_t)s->D;
    ct_peft_prefix_forward(m);
    for (int l = 0; l < m->config.n_layer; l++)
        for (int j = 0; j < s->P; j++) {
            const CtAct *row = ct_act_at(A, s->kv, (size_t)j * s->W + (size_t)l * 2 * D);
            const size_t slot = ((size_t)l * cache_rows + (size_t)j) * D;
            ops->copy(ct_act_at(A, k_cache, slot), row, A * D);
            ops->copy(ct_act_at(A, v_cache, slot), ct_act_at(A, row, D), A * D);
        }
}

// ---- PEFT's saved form: kv itself ----
static float *prompt_embeddings(CtModel *m, int64_t shape[2]) {
    const Prefix *s = state(m);
    shape[0] = s->P;
    shape[1] = s->W;
    const size_t n = (size_t)s->P * s->W;
    float *out = ct_alloc(n * sizeof(float) + 1);
    ct_peft_prefix_forward(m);
    m->ops->download_act(out, s->kv, n);
    return out;
}

static int set_prompt_embeddings(CtModel *m, const float *data, const int64_t shape[2]) {
    CtPeft *p = m->peft;
    if (projected(p))
        return ct_error_set("prefix_tuning: PEFT's prompt_embeddings (the computed keys and values) load into an "
                            "inference adapter, not into one with a projection to train");
    const CtPeftTensor *t = &p->tensors[0];
    if (shape[0] != t->shape[0] || shape[1] != t->shape[1])
        return ct_error_set("prompt_embeddings is [%lld, %lld]; this base and num_virtual_tokens take [%lld, %lld] "
                            "(num_virtual_tokens, num_layers·2·token_dim)", (long long)shape[0], (long long)shape[1],
                            (long long)t->shape[0], (long long)t->shape[1]);
    memcpy(p->params + t->offset, data, t->numel * sizeof(float));
    ct_peft_sync(m, 1);
    return 0;
}

const CtPeftKind ct_peft_prefix_tuning_kind = {
    .type = CT_PEFT_PREFIX_TUNING, .name = "prefix_tuning", .peft_type = "PREFIX_TUNING",
    .layout = prefix_layout, .attach = prefix_attach, .detach = prefix_detach, .init = ct_peft_init_default,
    .prompt_embeddings = prompt_embeddings, .set_prompt_embeddings = set_prompt_embeddings,
    .to_backend = prefix_to_backend,
};
