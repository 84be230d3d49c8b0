// Trainable token rows beside LoRA adapters (PEFT's trainable_token_indices). See
// train/model/lora_tokens.h.
#include "train/model/lora_tokens.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "train/model/lora_hooks.h"
#include "train/model/model_internal.h"
#include "train/model/model_resize.h"

static int is_tied(const CtModel *m) { return m->w.lm_head == m->w.wte; }

static const char *embedding_name(const CtModel *m) {
    return m->config.arch == CT_ARCH_GPT2 ? "transformer.wte" : "model.embed_tokens";
}

int ct_lora_tokens_check(CtModel *m, const CtLoraSpec *spec) {
    const int n = spec->n_tokens;
    if (n == 0) return 0;
    if (n < 0 || n > CT_LORA_MAX_TOKENS)
        return ct_error_set("lora: %d trainable token rows; at most %d", n, CT_LORA_MAX_TOKENS);
    for (int i = 0; i < n; i++)
        if (spec->token_ids[i] < 0 || (i && spec->token_ids[i] <= spec->token_ids[i - 1]))
            return ct_error_set("lora: trainable token ids must be distinct, ascending and not negative (id %d at "
                                "place %d)", spec->token_ids[i], i);
    const int need_V = spec->token_ids[n - 1] + 1;
    if (need_V <= m->config.vocab_size) return 0;
    if (!m->ops->host_memory)
        return ct_error_set("lora: token id %d is past the vocabulary (%d) of a model already on a device",
                            need_V - 1, m->config.vocab_size);
    const int flags = (m->recompute ? CT_MODEL_RECOMPUTE : 0) | (m->frozen ? CT_MODEL_FROZEN : 0);
    return ct_model_grow_vocab(m, need_V, m->max_B, m->max_T, flags);
}

void ct_lora_tokens_layout(CtModel *m, size_t *at) {
    CtLora *lora = m->lora;
    CtLoraTokens *t = &lora->tokens;
    const size_t C = (size_t)m->config.d_model;
    memset(t, 0, sizeof *t);
    t->n = lora->spec.n_tokens;
    if (!t->n) return;
    t->head = lora->spec.token_head && !is_tied(m);
    snprintf(t->in_name, sizeof t->in_name, "%s.token_adapter.trainable_tokens_delta", embedding_name(m));
    snprintf(t->out_name, sizeof t->out_name, "lm_head.token_adapter.trainable_tokens_delta");
    t->sink_offset = *at;
    *at += C;
    t->in_offset = *at;
    *at += (size_t)t->n * C;
    if (t->head) {
        t->out_offset = *at;
        *at += (size_t)t->n * C;
    }
    t->dirty = 1;
}

// host rows of the base's table `table` (a pointer into dev_params' layout) -> or <- the buffer's rows
static void copy_rows_host(CtModel *m, const float *table, float *rows, int to_base) {
    const CtLoraTokens *t = &m->lora->tokens;
    const size_t C = (size_t)m->config.d_model;
    float *base = m->params + (table - m->dev_params);
    for (int i = 0; i < t->n; i++) {
        float *row = base + (size_t)m->lora->spec.token_ids[i] * C;
        if (to_base)
            memcpy(row, rows + (size_t)i * C, C * sizeof(float));
        else
            memcpy(rows + (size_t)i * C, row, C * sizeof(float));
    }
}

void ct_lora_tokens_init(CtModel *m) {
    CtLora *lora = m->lora;
    CtLoraTokens *t = &lora->tokens;
    if (!t->n) return;
    const size_t rows = (size_t)t->n * (size_t)m->config.d_model;
    copy_rows_host(m, m->w.wte, lora->params + t->in_offset, 0);
    if (t->head) copy_rows_host(m, m->w.lm_head, lora->params + t->out_offset, 0);
    t->original = ct_alloc(rows * (t->head ? 2 : 1) * sizeof(float));
    memcpy(t->original, lora->params + t->in_offset, rows * sizeof(float));
    if (t->head) memcpy(t->original + rows, lora->params + t->out_offset, rows * sizeof(float));
}

void ct_lora_tokens_alloc(CtModel *m, const CtOps *ops) {
    CtLoraTokens *t = &m->lora->tokens;
    if (!t->n) return;
    const size_t rows = (size_t)m->max_B * m->max_T;
    t->slot = ct_calloc((size_t)m->config.vocab_size, sizeof(int32_t));
    for (int i = 0; i < t->n; i++) t->slot[m->lora->spec.token_ids[i]] = i + 1;
    t->ids_host = ct_calloc(rows, sizeof(int32_t));
    t->ids = ops->host_memory ? t->ids_host : ops->alloc(rows * sizeof(int32_t), "LoRA token slots");
    t->dh = ops->alloc(rows * (size_t)m->config.d_model * ops->act_bytes, "LoRA token rows' scratch");
}

void ct_lora_tokens_free(CtLora *lora, const CtOps *ops) {
    CtLoraTokens *t = &lora->tokens;
    if (t->ids != t->ids_host) ops->free(t->ids);
    ops->free(t->dh);
    ct_free(t->ids_host);
    ct_free(t->slot);
    t->ids = t->ids_host = t->slot = NULL;
    t->dh = NULL;
}


// dst rows of a base table <- the buffer's rows (in the ops' memory)
static void write_rows(CtModel *m, float *table, const float *rows) {
    const CtLoraTokens *t = &m->lora->tokens;
    const int32_t *ids = m->lora->spec.token_ids;
    const size_t C = (size_t)m->config.d_model;
    for (int i = 0, j; i < t->n; i = j) {  // one copy per run of consecutive ids
        for (j = i + 1; j < t->n && ids[j] == ids[j - 1] + 1; j++) continue;
        m->ops->copy(table + (size_t)ids[i] * C, rows + (size_t)i * C, (size_t)(j - i) * C * sizeof(float));
    }
}

// rows of a base table <- host rows (the base's own values)
static void upload_rows(CtModel *m, float *table, const float *rows) {
    const CtLoraTokens *t = &m->lora->tokens;
    const int32_t *ids = m->lora->spec.token_ids;
    const size_t C = (size_t)m->config.d_model;
    for (int i = 0, j; i < t->n; i = j) {
        for (j = i + 1; j < t->n && ids[j] == ids[j - 1] + 1; j++) continue;
        m->ops->upload(table + (size_t)ids[i] * C, rows + (size_t)i * C, (size_t)(j - i) * C * sizeof(float));
    }
}

void ct_lora_tokens_show_base(CtModel *m) {
    CtLoraTokens *t = m->lora ? &m->lora->tokens : NULL;
    if (!t || !t->n) return;
    upload_rows(m, m->w.wte, t->original);
    if (t->head) upload_rows(m, m->w.lm_head, t->original + (size_t)t->n * m->config.d_model);
    if (m->ops->keep_low_precision_weights) m->ops->keep_low_precision_weights(m->dev_params, m->n_params, NULL);
    t->dirty = 1;
}

void ct_lora_tokens_sync(CtModel *m) {
    CtLoraTokens *t = m->lora ? &m->lora->tokens : NULL;
    if (!t || !t->n || !t->dirty) return;
    write_rows(m, m->w.wte, m->lora->dev_params + t->in_offset);
    if (t->head) write_rows(m, m->w.lm_head, m->lora->dev_params + t->out_offset);
    if (m->ops->keep_low_precision_weights)  // the base's bf16 copy (device) follows the new rows
        m->ops->keep_low_precision_weights(m->dev_params, m->n_params, NULL);
    t->dirty = 0;
}

void ct_lora_tokens_mark_changed(CtModel *m) {
    if (!m->lora) return;
    m->lora->tokens.dirty = 1;
    ct_lora_tokens_sync(m);  // now: generation (samples) reads the table without a forward
}

void ct_lora_tokens_forward(CtModel *m, const CtBatch *batch) {
    CtLoraTokens *t = &m->lora->tokens;
    if (!t->n) return;
    ct_lora_tokens_sync(m);
    const int N = batch->B * batch->T, V = m->config.vocab_size;
    for (int n = 0; n < N; n++) {
        const int32_t id = batch->tokens[n];
        t->ids_host[n] = id >= 0 && id < V ? t->slot[id] : 0;
    }
    if (t->ids != t->ids_host) m->ops->upload(t->ids, t->ids_host, (size_t)N * sizeof(int32_t));
}

void ct_lora_tokens_backward_head(CtModel *m, int N) {
    CtLora *lora = m->lora;
    const CtLoraTokens *t = &lora->tokens;
    if (!t->n || (!is_tied(m) && !t->head)) return;
    const size_t rows = is_tied(m) ? t->in_offset : t->out_offset, C = (size_t)m->config.d_model;
    const int32_t *ids = lora->spec.token_ids;
    // logits[:, ids] = lnf·Rowsᵀ: an adapter with h = lnf, B = Rows; dB = doutᵀ·h (dh is scratch)
    for (int i = 0, j; i < t->n; i = j) {
        for (j = i + 1; j < t->n && ids[j] == ids[j - 1] + 1; j++) continue;
        const CtAct *dlogits = ct_act_at(m->ops->act_bytes, m->act.logits, (size_t)ids[i]);
        const float *R = lora->dev_params + rows + (size_t)i * C;
        m->ops->lora_backward(NULL, NULL, lora->dev_grads + rows + (size_t)i * C, t->dh, dlogits, m->act.lnf,
                              m->act.lnf, R, R, 1.0f, N, (int)C, (int)C, j - i, m->config.vocab_size);
    }
}

void ct_lora_tokens_backward_embedding(CtModel *m, const CtAct *dres, int N) {
    CtLora *lora = m->lora;
    const CtLoraTokens *t = &lora->tokens;
    if (!t->n) return;
    // row 0 is the sink (every other token's gradient), rows 1.. the trainable ids'
    const size_t C = (size_t)m->config.d_model;
    m->ops->embedding_backward(lora->dev_grads + t->sink_offset, dres, t->ids, N, (int)C);
    m->ops->zero(lora->dev_grads + t->sink_offset, C * sizeof(float));
}

void ct_lora_tokens_merge(CtModel *m) {
    CtLora *lora = m->lora;
    const CtLoraTokens *t = &lora->tokens;
    if (!t->n) return;
    copy_rows_host(m, m->w.wte, lora->params + t->in_offset, 1);
    if (t->head) copy_rows_host(m, m->w.lm_head, lora->params + t->out_offset, 1);
}

int ct_lora_tokens_n_tensors(const CtLora *lora) { return lora->tokens.n ? 1 + lora->tokens.head : 0; }

void ct_lora_tokens_named_tensors(const CtLora *lora, const float *buffer, CtNamedTensor *out) {
    const CtLoraTokens *t = &lora->tokens;
    if (!t->n) return;
    const int64_t C = (int64_t)(t->in_offset - t->sink_offset);
    out[0] = (CtNamedTensor){.name = t->in_name, .ndim = 2, .dtype = CT_DTYPE_F32, .data = (void *)(buffer + t->in_offset)};
    out[0].shape[0] = t->n;
    out[0].shape[1] = C;
    if (t->head) {
        out[1] = out[0];
        out[1].name = t->out_name;
        out[1].data = (void *)(buffer + t->out_offset);
    }
}
