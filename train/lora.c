// LoRA adapters in the model: which linear modules exist per family, matching PEFT's
// target_modules against them, the adapter buffer, initialisation, the forward/backward hooks
// and merging. See train/lora.h.
#include "train/lora.h"
#include "train/model_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/checksum.h"
#include "core/error.h"
#include "core/log.h"
#include "core/rng.h"

// One linear module of a block, as Hugging Face names it (relative to the block's prefix).
typedef struct {
    const char *name;
    CtLoraSite site;
    int col0, out, in, out_stride;
    int hf_transposed;
} Module;

// The linear modules of one block, in forward order. Returns the count (at most 7).
static int block_modules(const CtModelConfig *c, Module *mods) {
    const int C = c->d_model, F = c->d_ff, HD = ct_model_head_dim(c);
    if (c->arch == CT_ARCH_GPT2) {
        mods[0] = (Module){"attn.c_attn", CT_LORA_QKV, 0, 3 * C, C, 3 * C, 1};
        mods[1] = (Module){"attn.c_proj", CT_LORA_ATTN_OUT, 0, C, C, C, 1};
        mods[2] = (Module){"mlp.c_fc", CT_LORA_FC, 0, F, C, F, 1};
        mods[3] = (Module){"mlp.c_proj", CT_LORA_FC_OUT, 0, C, F, C, 1};
        return 4;
    }
    const int Q = c->n_head * HD, KV = c->n_kv_head * HD, QKV = Q + 2 * KV;
    mods[0] = (Module){"self_attn.q_proj", CT_LORA_QKV, 0, Q, C, QKV, 0};
    mods[1] = (Module){"self_attn.k_proj", CT_LORA_QKV, Q, KV, C, QKV, 0};
    mods[2] = (Module){"self_attn.v_proj", CT_LORA_QKV, Q + KV, KV, C, QKV, 0};
    mods[3] = (Module){"self_attn.o_proj", CT_LORA_ATTN_OUT, 0, C, Q, C, 0};
    mods[4] = (Module){"mlp.gate_proj", CT_LORA_FC, 0, F, C, 2 * F, 0};
    mods[5] = (Module){"mlp.up_proj", CT_LORA_FC, F, F, C, 2 * F, 0};
    mods[6] = (Module){"mlp.down_proj", CT_LORA_FC_OUT, 0, C, F, C, 0};
    return 7;
}

static const char *block_prefix(const CtModelConfig *c) {
    return c->arch == CT_ARCH_GPT2 ? "transformer.h" : "model.layers";
}

// PEFT's rule for a string entry of target_modules: the module's full name equals the target
// or ends with "." + target.
static int name_matches(const char *full, const char *target) {
    size_t nf = strlen(full), nt = strlen(target);
    if (nf == nt) return strcmp(full, target) == 0;
    return nf > nt && full[nf - nt - 1] == '.' && strcmp(full + nf - nt, target) == 0;
}

// PEFT's defaults (TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING) when no target is given.
static const char *default_targets(const CtModelConfig *c) {
    return c->arch == CT_ARCH_GPT2 ? "c_attn" : "q_proj,v_proj";
}

float ct_lora_scale(const CtLoraSpec *spec) {
    return spec->rslora ? spec->alpha / sqrtf((float)spec->r) : spec->alpha / (float)spec->r;
}

// Splits "a,b,c" into targets[]; returns the count.
static int split_targets(const char *list, char targets[][96], int max) {
    int n = 0;
    for (const char *p = list; *p && n < max;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && *p == ' ') p++, len--;
        snprintf(targets[n], 96, "%.*s", (int)len, p);
        if (targets[n][0]) n++;
        p += len + (end ? 1 : 0);
    }
    return n;
}

// The forward's saved x·Aᵀ, backward's dh and dropout's scratch, in the memory of `ops`.
static void alloc_scratch(CtModel *m, const CtOps *ops) {
    CtLora *lora = m->lora;
    const size_t rows = (size_t)m->max_B * m->max_T, r = (size_t)lora->spec.r, A = ops->act_bytes;
    lora->h_block = ops->alloc(rows * r * (size_t)lora->n_adapters * A, "LoRA saved activations");
    lora->dh = ops->alloc(rows * r * A, "LoRA backward scratch");
    if (lora->spec.dropout > 0) {  // scratch for dropout(x) and its gradient, as wide as the widest input
        int widest = 0;
        for (int i = 0; i < lora->n_adapters; i++)
            if (lora->adapters[i].in > widest) widest = lora->adapters[i].in;
        lora->xd = ops->alloc(rows * (size_t)widest * A, "LoRA dropout scratch");
        lora->dxd = ops->alloc(rows * (size_t)widest * A, "LoRA dropout scratch");
    }
    for (int i = 0; i < lora->n_adapters; i++) lora->adapters[i].h = ct_act_at(A, lora->h_block, rows * r * (size_t)i);
}

static void free_scratch(CtLora *lora, const CtOps *ops) {
    ops->free(lora->h_block);
    ops->free(lora->dh);
    ops->free(lora->xd);
    ops->free(lora->dxd);
    lora->h_block = lora->dh = lora->xd = lora->dxd = NULL;
}

int ct_lora_attach(CtModel *m, const CtLoraSpec *spec) {
    const CtModelConfig *c = &m->config;
    if (m->lora) return ct_error_set("the model already has adapters");
    if (spec->r < 1) return ct_error_set("lora.r = %d: the rank must be at least 1", spec->r);
    if (!(spec->dropout >= 0 && spec->dropout < 1))
        return ct_error_set("lora.dropout = %g: must be in [0, 1)", (double)spec->dropout);
    if (!(spec->alpha > 0)) return ct_error_set("lora.alpha = %g: must be positive", (double)spec->alpha);
    Module mods[8];
    const int n_mods = block_modules(c, mods);
    const char *list = spec->targets[0] ? spec->targets : default_targets(c);
    int all_linear = strcmp(list, "all-linear") == 0;
    char targets[32][96];
    int n_targets = all_linear ? 0 : split_targets(list, targets, 32);
    if (!all_linear && n_targets == 0) return ct_error_set("lora.targets names no module");
    if (spec->r > c->d_model)
        return ct_error_set("lora.r = %d is larger than the model's width %d: a low-rank adapter needs r < d_model",
                            spec->r, c->d_model);

    // which of the block's modules are adapted (the same in every block, as PEFT's suffix rule gives)
    int chosen[8] = {0};
    for (int t = 0; t < n_targets; t++) {
        int hits = 0;
        for (int i = 0; i < n_mods; i++) {
            char full[96];
            snprintf(full, sizeof full, "%s.0.%s", block_prefix(c), mods[i].name);
            if (name_matches(full, targets[t]) || name_matches(mods[i].name, targets[t])) chosen[i] = 1, hits++;
        }
        if (!hits) {
            char have[256] = "";
            for (int i = 0; i < n_mods; i++)
                snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s", i ? ", " : "", strrchr(mods[i].name, '.') + 1);
            return ct_error_set("lora.targets: '%s' matches no linear layer of this %s model (its layers: %s; or "
                                "all-linear)", targets[t], ct_arch_name(c->arch), have);
        }
    }
    if (all_linear)
        for (int i = 0; i < n_mods; i++) chosen[i] = 1;

    CtLora *lora = ct_calloc(1, sizeof *lora);
    lora->spec = *spec;
    lora->scale = ct_lora_scale(spec);
    // target_modules as PEFT records them: the names given, or every short name for all-linear
    if (all_linear) {
        for (int i = 0; i < n_mods; i++) {
            const char *shortname = strrchr(mods[i].name, '.') + 1;
            if (strstr(lora->target_modules, shortname)) continue;  // gpt2's c_proj twice
            snprintf(lora->target_modules + strlen(lora->target_modules),
                     sizeof lora->target_modules - strlen(lora->target_modules), "%s%s",
                     lora->target_modules[0] ? "," : "", shortname);
        }
    } else {
        snprintf(lora->target_modules, sizeof lora->target_modules, "%s", list);
    }
    int per_block = 0;
    for (int i = 0; i < n_mods; i++) per_block += chosen[i];
    lora->n_adapters = per_block * c->n_layer;
    lora->adapters = ct_calloc((size_t)lora->n_adapters, sizeof(CtLoraAdapter));
    const int r = spec->r;
    int k = 0;
    size_t at = 0;
    for (int l = 0; l < c->n_layer; l++) {
        for (int i = 0; i < n_mods; i++) {
            if (!chosen[i]) continue;
            CtLoraAdapter *a = &lora->adapters[k++];
            snprintf(a->module, sizeof a->module, "%s.%d.%s", block_prefix(c), l, mods[i].name);
            snprintf(a->a_name, sizeof a->a_name, "%s.lora_A.weight", a->module);
            snprintf(a->b_name, sizeof a->b_name, "%s.lora_B.weight", a->module);
            a->layer = l;
            a->site = mods[i].site;
            a->in = mods[i].in;
            a->out = mods[i].out;
            a->col0 = mods[i].col0;
            a->out_stride = mods[i].out_stride;
            a->hf_transposed = mods[i].hf_transposed;
            a->a_offset = at;
            at += (size_t)r * a->in;
            a->b_offset = at;
            at += (size_t)a->out * r;
        }
    }
    lora->n_params = at;
    lora->params = ct_calloc(at, sizeof(float));
    lora->grads = ct_calloc(at, sizeof(float));
    lora->dev_params = lora->params;
    lora->dev_grads = lora->grads;
    m->lora = lora;
    alloc_scratch(m, ct_ops_cpu());
    if (!m->ops->host_memory) {  // attached to a model already on a device
        lora->dev_params = NULL;
        lora->dev_grads = NULL;
        ct_lora_to_backend(m);
    }
    m->train_params = lora->dev_params;
    m->train_grads = lora->dev_grads;
    m->n_train = lora->n_params;
    return 0;
}

void ct_lora_to_backend(CtModel *m) {
    CtLora *lora = m->lora;
    const CtOps *ops = m->ops;
    if (lora->dev_params && lora->dev_params != lora->params) return;  // already there
    free_scratch(lora, ct_ops_cpu());
    alloc_scratch(m, ops);
    lora->dev_params = ct_model_device_buffer(ops, lora->params, lora->n_params, m->train_shards, "LoRA adapters");
    if (ops->keep_low_precision_weights) ops->keep_low_precision_weights(lora->dev_params, lora->n_params, NULL);
    lora->dev_grads = ct_model_device_buffer(ops, NULL, lora->n_params, m->train_shards, "LoRA adapter gradients");
    ct_free(lora->grads);  // gradients live on the device only
    lora->grads = NULL;
    m->train_params = lora->dev_params;
    m->train_grads = lora->dev_grads;
}

void ct_lora_sync(CtModel *m, int to_device) {
    CtLora *lora = m->lora;
    if (m->ops->host_memory || lora->dev_params == lora->params) return;
    if (to_device) {
        m->ops->upload(lora->dev_params, lora->params, lora->n_params * sizeof(float));
        if (m->ops->keep_low_precision_weights)
            m->ops->keep_low_precision_weights(lora->dev_params, lora->n_params, NULL);
    } else {
        m->ops->download(lora->params, lora->dev_params, lora->n_params * sizeof(float));
    }
}

// PEFT's initialisation on the host copy of the adapters.
static void init_host(CtLora *lora, uint64_t seed) {
    memset(lora->params, 0, lora->n_params * sizeof(float));
    for (int i = 0; i < lora->n_adapters; i++) {
        // kaiming_uniform_(A, a=√5): gain √(2/(1+5)), bound gain·√(3/in) = 1/√in
        const CtLoraAdapter *a = &lora->adapters[i];
        const float bound = 1.0f / sqrtf((float)a->in);
        CtRng rng;
        ct_rng_seed_stream(&rng, seed, 0x10A0000ull + (uint64_t)i);
        float *A = lora->params + a->a_offset;
        for (size_t j = 0; j < (size_t)lora->spec.r * a->in; j++) A[j] = (2 * ct_rng_uniform(&rng) - 1) * bound;
    }
}

void ct_lora_init(CtModel *m, uint64_t seed) {
    CtLora *lora = m->lora;
    init_host(lora, seed);
    ct_lora_sync(m, 1);
}

void ct_lora_detach(CtModel *m) {
    CtLora *lora = m->lora;
    if (!lora) return;
    free_scratch(lora, m->ops);
    if (lora->dev_params != lora->params) {
        m->ops->free(lora->dev_params);
        m->ops->free(lora->dev_grads);
    }
    ct_free(lora->adapters);
    ct_free(lora->params);
    ct_free(lora->grads);
    ct_free(lora);
    m->lora = NULL;
    m->train_params = m->dev_params;
    m->train_grads = m->dev_grads;
    m->n_train = m->dev_grads ? m->n_params : 0;
}

// The adapters of (layer, site): a contiguous run of the table (it is in layer, site order).
static int site_range(const CtLora *lora, int layer, CtLoraSite site, int *first) {
    int n = 0;
    *first = 0;
    for (int i = 0; i < lora->n_adapters; i++) {
        const CtLoraAdapter *a = &lora->adapters[i];
        if (a->layer == layer && a->site == site) {
            if (!n) *first = i;
            n++;
        } else if (n || a->layer > layer) {
            break;
        }
    }
    return n;
}

int ct_lora_has_adapter(const CtModel *m, int layer, CtLoraSite site) {
    int first;
    return m->lora && site_range(m->lora, layer, site, &first) > 0;
}

// The dropout mask's key of adapter i in this micro-batch (the op hashes it per element).
static uint64_t lora_dropout_key(const CtModel *m, int i) {
    return m->dropout_seed * 0x100000001B3ull + (uint64_t)(i + 1) * 0xD6E8FEB86659FD93ull;
}

void ct_lora_forward(CtModel *m, int layer, CtLoraSite site, CtAct *out, const CtAct *inp, int N) {
    CtLora *lora = m->lora;
    int first, n = site_range(lora, layer, site, &first);
    lora->dropout_on = m->training && lora->spec.dropout > 0;
    for (int i = first; i < first + n; i++) {
        CtLoraAdapter *a = &lora->adapters[i];
        const CtAct *x = inp;
        if (lora->dropout_on) {  // x̃ = dropout(x): the adapter's input only, its own mask
            m->ops->dropout_forward(lora->xd, inp, (size_t)N * a->in, lora->spec.dropout, lora_dropout_key(m, i));
            x = lora->xd;
        }
        CtAct *out_block = ct_act_at(m->ops->act_bytes, out, (size_t)a->col0);  // the adapter's columns
        m->ops->lora_forward(out_block, a->h, x, lora->dev_params + a->a_offset, lora->dev_params + a->b_offset,
                             lora->scale, N, a->in, lora->spec.r, a->out, a->out_stride);
    }
}

void ct_lora_backward(CtModel *m, int layer, CtLoraSite site, CtAct *dinp, const CtAct *dout, const CtAct *inp, int N) {
    CtLora *lora = m->lora;
    int first, n = site_range(lora, layer, site, &first);
    for (int i = first; i < first + n; i++) {
        CtLoraAdapter *a = &lora->adapters[i];
        const float *A = lora->dev_params + a->a_offset, *B = lora->dev_params + a->b_offset;
        float *dA = lora->dev_grads + a->a_offset, *dB = lora->dev_grads + a->b_offset;
        const CtAct *dout_block = ct_act_at(m->ops->act_bytes, dout, (size_t)a->col0);  // the adapter's columns
        if (!lora->dropout_on) {
            m->ops->lora_backward(dinp, dA, dB, lora->dh, dout_block, inp, a->h, A, B, lora->scale, N, a->in,
                                  lora->spec.r, a->out, a->out_stride);
            continue;
        }
        // the forward's mask again: dA = dhᵀ·x̃, then dx += (dh·A)⊙mask/(1-p)
        const size_t nx = (size_t)N * a->in;
        m->ops->dropout_forward(lora->xd, inp, nx, lora->spec.dropout, lora_dropout_key(m, i));
        m->ops->zero(lora->dxd, nx * m->ops->act_bytes);
        m->ops->lora_backward(dinp ? lora->dxd : NULL, dA, dB, lora->dh, dout_block, lora->xd, a->h, A, B,
                              lora->scale, N, a->in, lora->spec.r, a->out, a->out_stride);
        if (dinp) {  // the op writes (in place is allowed), so through dxd and then added
            m->ops->dropout_backward(lora->dxd, lora->dxd, nx, lora->spec.dropout, lora_dropout_key(m, i));
            m->ops->residual_forward(dinp, dinp, lora->dxd, nx);  // dinp += dxd
        }
    }
}

// The base weight of a site in block `layer` (the model holds every weight as [out, in]).
static float *site_weight(CtModel *m, int layer, CtLoraSite site) {
    const CtLayerTensors *p = &m->w.layers[layer];
    switch (site) {
    case CT_LORA_QKV: return p->qkv_w;
    case CT_LORA_ATTN_OUT: return p->attn_out_w;
    case CT_LORA_FC: return p->fc_w;
    default: return p->fc_out_w;
    }
}

void ct_lora_merge(CtModel *m) {
    CtLora *lora = m->lora;
    if (!lora) return;
    const int r = lora->spec.r;
    ct_model_sync_to_host(m);  // merged on the host copy (a device model gets it back below)
    for (int i = 0; i < lora->n_adapters; i++) {
        const CtLoraAdapter *a = &lora->adapters[i];
        // rows col0.. of the fused [out_stride, in] weight: W[col0 + j, c] += s·Σ_k B[j,k]·A[k,c]
        float *W = m->params + (site_weight(m, a->layer, a->site) - m->dev_params) + (size_t)a->col0 * a->in;
        const float *A = lora->params + a->a_offset, *B = lora->params + a->b_offset;
#pragma omp parallel for schedule(static)
        for (int j = 0; j < a->out; j++) {
            float *w = W + (size_t)j * a->in;
            for (int k = 0; k < r; k++) {
                const float bk = lora->scale * B[(size_t)j * r + k];
                const float *ak = A + (size_t)k * a->in;
                for (int c = 0; c < a->in; c++) w[c] += bk * ak[c];
            }
        }
    }
    ct_lora_detach(m);
    ct_model_sync_to_device(m);
}

void ct_lora_named_tensors(const CtLora *lora, const float *buffer, CtNamedTensor *out) {
    for (int i = 0; i < lora->n_adapters; i++) {
        const CtLoraAdapter *a = &lora->adapters[i];
        out[2 * i] = (CtNamedTensor){.name = a->a_name, .ndim = 2, .dtype = CT_DTYPE_F32,
                                     .data = (void *)(buffer + a->a_offset)};
        out[2 * i].shape[0] = lora->spec.r;
        out[2 * i].shape[1] = a->in;
        out[2 * i + 1] = (CtNamedTensor){.name = a->b_name, .ndim = 2, .dtype = CT_DTYPE_F32,
                                         .data = (void *)(buffer + a->b_offset)};
        out[2 * i + 1].shape[0] = a->out;
        out[2 * i + 1].shape[1] = lora->spec.r;
    }
}

uint64_t ct_lora_base_hash(const CtModel *m) {
    return ct_fnv1a64(m->params, m->n_params * sizeof(float));
}

void ct_lora_report(const CtModel *m) {
    const CtLora *lora = m->lora;
    char trainable[32], total[32], saved[32];
    ct_format_count(trainable, sizeof trainable, (double)lora->n_params);
    ct_format_count(total, sizeof total, (double)(m->n_params + lora->n_params));
    // full fine-tuning keeps a gradient and two AdamW moments (float32) for every base parameter;
    // LoRA keeps the adapters, their gradients and moments instead (16 bytes per adapter value)
    ct_format_bytes(saved, sizeof saved, 12.0 * (double)m->n_params - 16.0 * (double)lora->n_params);
    ct_log("lora: r %d, alpha %g, scale %g, targets %s: %d adapters; trainable %s of %s parameters (%.3f%%); "
           "no gradients or optimizer state for the frozen base: %s saved against full fine-tuning",
           lora->spec.r, (double)lora->spec.alpha, (double)lora->scale, lora->target_modules, lora->n_adapters,
           trainable, total, 100.0 * (double)lora->n_params / (double)(m->n_params + lora->n_params), saved);
}
