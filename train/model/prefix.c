// Prefix tuning: the learned keys and values of every layer (train/model/prefix.h). The attention
// over them is the attention_prefix op (kernels/ops.h); here is where they come from, where their
// gradients go, and how generation's cache and the model's sizes take them.
#include "train/model/prefix.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "core/rng.h"
#include "train/model/model_internal.h"

static const char *const TENSOR_NAMES[] = {"prompt_encoder.embedding.weight", "prompt_encoder.transform.0.weight",
                                           "prompt_encoder.transform.0.bias", "prompt_encoder.transform.2.weight",
                                           "prompt_encoder.transform.2.bias"};

// The activations' buffers in the ops' memory.
static void alloc_acts(CtModel *m) {
    CtPrefix *x = m->prefix;
    const CtOps *ops = m->ops;
    const size_t A = ops->act_bytes, P = x->P ? (size_t)x->P : 1;  // P = 0: buffers of one row, never read
    x->ids = ops->alloc(P * sizeof(int32_t), "prefix ids");
    int32_t *ids = ct_alloc(P * sizeof(int32_t));
    for (size_t j = 0; j < P; j++) ids[j] = (int32_t)j;
    ops->upload(x->ids, ids, P * sizeof(int32_t));
    ct_free(ids);
    x->kv = ops->alloc(A * P * (size_t)x->width, "prefix keys and values");
    x->dkv = ops->alloc(A * P * (size_t)x->width, "prefix keys and values' gradient");
    if (!x->hidden) return;
    x->e = ops->alloc(A * P * (size_t)x->token_dim, "prefix projection input");
    x->de = ops->alloc(A * P * (size_t)x->token_dim, "prefix projection input gradient");
    x->h = ops->alloc(A * P * (size_t)x->hidden, "prefix projection hidden");
    x->a = ops->alloc(A * P * (size_t)x->hidden, "prefix projection tanh");
    x->dh = ops->alloc(A * P * (size_t)x->hidden, "prefix projection hidden gradient");
    x->da = ops->alloc(A * P * (size_t)x->hidden, "prefix projection tanh gradient");
}

static void free_acts(CtPrefix *x, const CtOps *ops) {
    void *bufs[] = {x->ids, x->kv, x->dkv, x->e, x->de, x->h, x->a, x->dh, x->da};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) ops->free(bufs[i]);
}

int ct_prefix_attach(CtModel *m, const CtPrefixSpec *spec, uint64_t seed) {
    const CtModelConfig *c = &m->config;
    if (m->lora || m->prefix) return ct_error_set("prefix tuning: the model already has adapters or a prefix");
    if (!m->frozen) return ct_error_set("prefix tuning: the base must be frozen (ct_model_create with CT_MODEL_FROZEN)");
    if (ct_model_is_encoder(c))
        return ct_error_set("prefix tuning: %s is an encoder; ctrain's prefix tuning is for decoders (gpt2, llama)",
                            ct_arch_name(c->arch));
    if (c->mtp_depth > 0)
        return ct_error_set("prefix tuning: the model has %d multi-token prediction modules; prefix tuning covers "
                            "the main blocks only (set model.mtp_depth 0)", c->mtp_depth);
    if (!m->ops->attention_prefix_forward || !m->ops->attention_prefix_backward)
        return ct_error_set("prefix tuning runs on the CPU only: the %s backend's attention has no prefix yet "
                            "(set run.device cpu)", m->ops->name);
    if (spec->num_virtual_tokens < 0) return ct_error_set("prefix tuning: num_virtual_tokens must be at least 0");
    if (m->config.max_seq_len - spec->num_virtual_tokens < 1)
        return ct_error_set("prefix tuning: %d virtual tokens leave no position of model.max_seq_len %d for text",
                            spec->num_virtual_tokens, m->config.max_seq_len);
    CtPrefix *x = ct_calloc(1, sizeof *x);
    x->spec = *spec;
    x->P = spec->num_virtual_tokens;
    x->token_dim = ct_model_kv_width(c);
    x->width = c->n_layer * 2 * x->token_dim;
    x->hidden = spec->prefix_projection ? (spec->encoder_hidden_size > 0 ? spec->encoder_hidden_size : x->token_dim) : 0;
    const size_t P = (size_t)x->P, D = (size_t)x->token_dim, H = (size_t)x->hidden, W = (size_t)x->width;
    x->emb_off = 0;
    if (x->hidden) {
        x->w1_off = P * D;
        x->b1_off = x->w1_off + H * D;
        x->w2_off = x->b1_off + H;
        x->b2_off = x->w2_off + W * H;
        x->n_params = x->b2_off + W;
    } else {
        x->n_params = P * W;
    }
    x->params = ct_calloc(x->n_params ? x->n_params : 1, sizeof(float));
    x->grads = ct_calloc(x->n_params ? x->n_params : 1, sizeof(float));
    m->prefix = x;
    // the saved attention state grows by P keys per row: the activations are sized again
    ct_model_activations_free(m);
    m->prefix_len = x->P;
    ct_model_activations_alloc(m);
    alloc_acts(m);
    ct_prefix_init(m, seed);
    m->train_params = x->params;
    m->train_grads = x->grads;
    m->n_train = x->n_params;
    return 0;
}

void ct_prefix_init(CtModel *m, uint64_t seed) {
    CtPrefix *x = m->prefix;
    CtNamedTensor t[5];
    ct_prefix_named_tensors(x, x->params, t);
    for (int i = 0; i < ct_prefix_n_tensors(x); i++) {
        CtRng rng;
        ct_rng_seed_stream(&rng, seed, CT_RNG_STREAM_PREFIX_INIT + (uint64_t)i);
        float *v = t[i].data;
        const size_t n = (size_t)t[i].shape[0] * (size_t)(t[i].ndim > 1 ? t[i].shape[1] : 1);
        if (i == 0) {  // torch.nn.Embedding: normal(0, 1)
            for (size_t k = 0; k < n; k++) v[k] = (float)ct_rng_normal(&rng);
            continue;
        }
        // torch.nn.Linear: weight and bias uniform(±1/√in)
        const int in = i <= 2 ? x->token_dim : x->hidden;
        const float bound = 1.0f / sqrtf((float)in);
        for (size_t k = 0; k < n; k++) v[k] = (float)(2 * ct_rng_uniform(&rng) - 1) * bound;
    }
}

void ct_prefix_detach(CtModel *m) {
    CtPrefix *x = m->prefix;
    if (!x) return;
    free_acts(x, m->ops);
    ct_free(x->params);
    ct_free(x->grads);
    ct_free(x);
    m->prefix = NULL;
    m->prefix_len = 0;
    m->train_params = m->dev_params;
    m->train_grads = m->dev_grads;
    m->n_train = m->dev_grads ? m->n_params : 0;
}

void ct_prefix_forward(CtModel *m) {
    CtPrefix *x = m->prefix;
    const CtOps *ops = m->ops;
    const int P = x->P;
    ops->zero(x->dkv, ops->act_bytes * (size_t)P * x->width);
    if (!x->hidden) {  // kv = E: its rows as activations
        ops->embedding_forward(x->kv, x->ids, x->params + x->emb_off, P, x->width, 0);
        return;
    }
    ops->embedding_forward(x->e, x->ids, x->params + x->emb_off, P, x->token_dim, 0);
    ops->matmul_forward(x->h, x->e, x->params + x->w1_off, x->params + x->b1_off, P, x->token_dim, x->hidden);
    ops->tanh_forward(x->a, x->h, (size_t)P * x->hidden);
    ops->matmul_forward(x->kv, x->a, x->params + x->w2_off, x->params + x->b2_off, P, x->hidden, x->width);
}

const CtAct *ct_prefix_layer_kv(const CtModel *m, int layer) {
    const CtPrefix *x = m->prefix;
    return ct_act_at(m->ops->act_bytes, x->kv, (size_t)layer * 2 * x->token_dim);
}

CtAct *ct_prefix_layer_dkv(const CtModel *m, int layer) {
    const CtPrefix *x = m->prefix;
    return ct_act_at(m->ops->act_bytes, x->dkv, (size_t)layer * 2 * x->token_dim);
}

// kv = W2·tanh(W1·e + b1) + b2 backwards: d a = d kv·W2, d h = (1 − a²) ⊙ d a, d e = d h·W1, and
// the weights' gradients on the way; d E[j] = d e[j] (every row is used once).
void ct_prefix_backward(CtModel *m) {
    CtPrefix *x = m->prefix;
    const CtOps *ops = m->ops;
    const int P = x->P;
    const size_t A = ops->act_bytes;
    if (!x->hidden) {
        ops->embedding_backward(x->grads + x->emb_off, x->dkv, x->ids, P, x->width);
        return;
    }
    ops->zero(x->da, A * (size_t)P * x->hidden);
    ops->matmul_backward(x->da, x->grads + x->w2_off, x->grads + x->b2_off, x->dkv, x->a, x->params + x->w2_off, P,
                         x->hidden, x->width);
    ops->zero(x->dh, A * (size_t)P * x->hidden);
    ops->tanh_backward(x->dh, x->a, x->da, (size_t)P * x->hidden);
    ops->zero(x->de, A * (size_t)P * x->token_dim);
    ops->matmul_backward(x->de, x->grads + x->w1_off, x->grads + x->b1_off, x->dh, x->e, x->params + x->w1_off, P,
                         x->token_dim, x->hidden);
    ops->embedding_backward(x->grads + x->emb_off, x->de, x->ids, P, x->token_dim);
}

void ct_prefix_fill_cache(CtModel *m, CtAct *k_cache, CtAct *v_cache, int cache_rows) {
    const CtPrefix *x = m->prefix;
    const CtOps *ops = m->ops;
    const size_t A = ops->act_bytes, D = (size_t)x->token_dim;
    ct_prefix_forward(m);
    for (int l = 0; l < m->config.n_layer; l++)
        for (int j = 0; j < x->P; j++) {
            const CtAct *row = ct_act_at(A, x->kv, (size_t)j * x->width + (size_t)l * 2 * D);
            const size_t slot = ((size_t)l * cache_rows + (size_t)j) * D;
            ops->copy(ct_act_at(A, k_cache, slot), row, A * D);
            ops->copy(ct_act_at(A, v_cache, slot), ct_act_at(A, row, D), A * D);
        }
}

int ct_prefix_n_tensors(const CtPrefix *x) { return x->hidden ? 5 : 1; }

void ct_prefix_named_tensors(const CtPrefix *x, const float *buffer, CtNamedTensor *out) {
    const int64_t P = x->P, D = x->token_dim, H = x->hidden, W = x->width;
    const struct {
        size_t off;
        int ndim;
        int64_t d0, d1;
    } t[5] = {{x->emb_off, 2, P, H ? D : W}, {x->w1_off, 2, H, D}, {x->b1_off, 1, H, 0}, {x->w2_off, 2, W, H},
              {x->b2_off, 1, W, 0}};
    for (int i = 0; i < ct_prefix_n_tensors(x); i++)
        out[i] = (CtNamedTensor){.name = TENSOR_NAMES[i], .ndim = t[i].ndim, .shape = {t[i].d0, t[i].d1},
                                 .dtype = CT_DTYPE_F32, .data = (void *)(buffer + t[i].off)};
}

void ct_prefix_embeddings(CtModel *m, float *out) {
    const CtPrefix *x = m->prefix;
    ct_prefix_forward(m);
    m->ops->download_act(out, x->kv, (size_t)x->P * x->width);
}

int ct_prefix_load_embeddings(CtModel *m, const float *kv, int P, int width) {
    CtPrefix *x = m->prefix;
    if (x->hidden)
        return ct_error_set("prefix tuning: prompt_embeddings (the computed keys and values) cannot be loaded into a "
                            "prefix with a projection; load them with prefix_projection false");
    if (P != x->P || width != x->width)
        return ct_error_set("prefix tuning: prompt_embeddings is [%d, %d], the model's prefix is [%d, %d] "
                            "(num_virtual_tokens, num_layers·2·token_dim)", P, width, x->P, x->width);
    memcpy(x->params + x->emb_off, kv, sizeof(float) * (size_t)P * width);
    return 0;
}

void ct_prefix_report(const CtModel *m) {
    const CtPrefix *x = m->prefix;
    char trainable[32], total[32];
    ct_format_count(trainable, sizeof trainable, (double)x->n_params);
    ct_format_count(total, sizeof total, (double)(m->n_params + x->n_params));
    char proj[64] = "";
    if (x->hidden) snprintf(proj, sizeof proj, ", projection through %d hidden", x->hidden);
    ct_log("prefix tuning: %d virtual tokens × %d layers (keys and values %d wide%s); trainable %s of %s parameters "
           "(%.3f%%); no gradients or optimizer state for the frozen base",
           x->P, m->config.n_layer, x->token_dim, proj, trainable, total,
           100.0 * (double)x->n_params / (double)(m->n_params + x->n_params));
}
