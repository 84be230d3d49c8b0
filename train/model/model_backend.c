// Where the model's numbers live. A model is built, initialised or loaded on the CPU (host
// memory, where checkpoints and exports read and write); ct_model_to_backend moves it into a
// device backend's memory, after which every forward and backward runs there. The host keeps
// a mirror of the parameters, synced on demand (checkpoints, samples from the host, tests).
// A backend whose products read low-precision weights is told which buffers hold weights
// (keep_low_precision_weights): when they arrive and whenever the host pushes edits.
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "train/model/lora_hooks.h"
#include "train/model/peft_hooks.h"
#include "train/model/model_internal.h"

// RoBERTa's positions (transformers' create_position_ids_from_input_ids): a pad token sits at
// row pad_token_id, any other at pad_token_id + 1 + p, p its batch position or, without one, the
// number of tokens before it in its row that are not pads.
static void roberta_positions(const CtModelConfig *c, const CtBatch *batch, int32_t *out) {
    const int pad = c->pad_token_id;
    for (int b = 0; b < batch->B; b++) {
        int seen = 0;
        for (int t = 0; t < batch->T; t++) {
            const size_t n = (size_t)b * batch->T + t;
            const int is_pad = batch->tokens[n] == pad;
            out[n] = is_pad ? pad : pad + 1 + (batch->positions ? batch->positions[n] : seen);
            seen += !is_pad;
        }
    }
}

// An encoder's token types must be rows of its token-type table; positions rows of its position table.
static void check_encoder_batch(const CtModelConfig *c, const CtBatch *batch) {
    const size_t N = (size_t)batch->B * batch->T;
    for (size_t n = 0; batch->token_types && n < N; n++)
        CT_CHECK(batch->token_types[n] >= 0 && batch->token_types[n] < c->type_vocab_size,
                 "a token type id is outside 0..model.type_vocab_size-1");
    for (size_t n = 0; batch->positions && n < N; n++)
        CT_CHECK(batch->positions[n] >= 0 && batch->positions[n] < c->max_seq_len,
                 "a position is outside 0..model.max_seq_len-1");
}

// A decoder's positions: the batch's, or 0..T−1 in each row, shifted by a prefix's P (prefix
// tuning: PEFT offsets position_ids by num_virtual_tokens, and transformers numbers the tokens
// after a past_key_values of length P from P on). A model with a position table must have room.
static void decoder_positions(const CtModel *m, const CtBatch *batch, int32_t *out) {
    const size_t N = (size_t)batch->B * batch->T;
    const int P = ct_peft_prefix_len(m);
    int top = 0;
    for (size_t n = 0; n < N; n++) {
        out[n] = P + (batch->positions ? batch->positions[n] : (int32_t)(n % (size_t)batch->T));
        if (out[n] > top) top = out[n];
    }
    CT_CHECK(!m->w.wpe || top < m->config.max_seq_len,
             "with the prefix's virtual tokens the batch's positions pass model.max_seq_len (prefix tuning: the "
             "sequences must be at most max_seq_len - num_virtual_tokens long)");
}

CtBatch ct_model_stage_batch(CtModel *m, const CtBatch *batch) {
    const CtOps *ops = m->ops;
    const size_t N = (size_t)batch->B * batch->T;
    const int encoder = ct_model_is_encoder(&m->config), roberta = m->config.arch == CT_ARCH_ROBERTA;
    CtBatch s = *batch;
    if (encoder) check_encoder_batch(&m->config, batch);
    if (ops->host_memory) {
        if (roberta) {
            roberta_positions(&m->config, batch, m->act.positions);
            s.positions = m->act.positions;
        } else if (!batch->positions || ct_peft_prefix_len(m)) {
            decoder_positions(m, batch, m->act.positions);
            s.positions = m->act.positions;
        }
        if (encoder && !batch->token_types) s.token_types = m->act.token_types;  // zeros, never written
        return s;
    }
    ops->upload(m->staged.tokens, batch->tokens, N * sizeof(int32_t));
    s.tokens = m->staged.tokens;
    if (batch->targets) {
        ops->upload(m->staged.targets, batch->targets, N * sizeof(int32_t));
        s.targets = m->staged.targets;
    }
    if (batch->loss_mask) {
        ops->upload(m->staged.loss_mask, batch->loss_mask, N);
        s.loss_mask = m->staged.loss_mask;
    }
    if (batch->loss_weights) {
        ops->upload(m->staged.loss_weights, batch->loss_weights, N * sizeof(float));
        s.loss_weights = m->staged.loss_weights;
    }
    if (batch->doc_ids) {
        ops->upload(m->staged.doc_ids, batch->doc_ids, N * sizeof(int32_t));
        s.doc_ids = m->staged.doc_ids;
    }
    const int32_t *positions = batch->positions;
    if (roberta) {
        roberta_positions(&m->config, batch, m->staged.host_positions);
        positions = m->staged.host_positions;
    } else if (!positions || ct_peft_prefix_len(m)) {
        decoder_positions(m, batch, m->staged.host_positions);
        positions = m->staged.host_positions;
    }
    ops->upload(m->staged.positions, positions, N * sizeof(int32_t));
    s.positions = m->staged.positions;
    if (encoder) {
        ops->upload(m->staged.token_types, batch->token_types ? batch->token_types : m->staged.host_token_types,
                    N * sizeof(int32_t));
        s.token_types = m->staged.token_types;
    }
    return s;
}

void ct_model_set_loss_weights(CtModel *m, const float *weights) {
    CT_CHECK(m->head_grad != CT_HEAD_GRAD_WRITTEN,
             "ct_model_forward_train's forward has used the loss weights for the gradient already: run ct_model_forward");
    if (ct_peft_last_expanded(m)) weights = ct_peft_expand_weights(m, weights);  // [B·T] → the forward's rows
    const size_t N = (size_t)m->batch.B * m->batch.T;
    if (m->ops->host_memory) {
        m->batch.loss_weights = weights;
        return;
    }
    m->ops->upload(m->staged.loss_weights, weights, N * sizeof(float));
    m->batch.loss_weights = m->staged.loss_weights;
}

// A device buffer of n floats from host (or zeros), with room for `shards` equal parts.
float *ct_model_device_buffer(const CtOps *ops, const float *host, size_t n, int shards, const char *what) {
    const size_t w = shards > 1 ? (size_t)shards : 1, room = (n + w - 1) / w * w;
    float *d = ops->alloc((room ? room : 1) * sizeof(float), what);  // zeroed: the padding stays 0
    if (host) ops->upload(d, host, n * sizeof(float));
    return d;
}

void ct_model_to_backend(CtModel *m, const CtOps *ops) {
    if (ops == m->ops) return;
    CT_CHECK(!ct_peft_prefix_len(m) || ops->attention_prefix_forward,
             "prefix tuning: this backend's attention has no prefix (set run.device cpu)");
    CT_CHECK(m->ops->host_memory && !ops->host_memory,
             "ct_model_to_backend moves a model from host memory to a device backend");
    // The host's activations go; the device gets its own, sized by its attention.
    ct_model_activations_free(m);
    m->ops = ops;
    m->dev_params = ct_model_device_buffer(ops, m->params, m->n_params, m->train_shards, "model parameters");
    if (ops->keep_low_precision_weights) ops->keep_low_precision_weights(m->dev_params, m->n_params, NULL);
    m->dev_grads = NULL;
    if (m->grads) {  // gradients live on the device only
        m->dev_grads = ct_model_device_buffer(ops, NULL, m->n_params, m->train_shards, "model gradients");
        ct_free(m->grads);
        m->grads = NULL;
    }
    ct_model_layout_bind(&m->config, m->dev_params, &m->w);
    ct_model_layout_bind(&m->config, m->dev_grads, &m->g);
    ct_model_activations_alloc(m);
    const size_t BT = (size_t)m->max_B * m->max_T;
    m->losses = ct_calloc(BT, sizeof(float));
    m->logprobs = ct_calloc(BT, sizeof(float));
    m->staged.tokens = ops->alloc(BT * sizeof(int32_t), "batch tokens");
    m->staged.targets = ops->alloc(BT * sizeof(int32_t), "batch targets");
    m->staged.doc_ids = ops->alloc(BT * sizeof(int32_t), "batch document ids");
    m->staged.positions = ops->alloc(BT * sizeof(int32_t), "batch positions");
    m->staged.loss_mask = ops->alloc(BT, "batch loss mask");
    m->staged.loss_weights = ops->alloc(BT * sizeof(float), "batch loss weights");
    m->staged.host_positions = ct_alloc(BT * sizeof(int32_t));
    m->staged.token_types = ops->alloc(BT * sizeof(int32_t), "batch token types");
    m->staged.host_token_types = ct_calloc(BT, sizeof(int32_t));  // zeros: a batch without token types
    m->train_params = m->dev_params;
    m->train_grads = m->dev_grads;
    m->n_train = m->dev_grads ? m->n_params : 0;
    if (m->lora) ct_lora_to_backend(m);
    if (m->peft) ct_peft_to_backend(m);
}

void ct_model_free_backend(CtModel *m) {
    const CtOps *ops = m->ops;
    if (!ops) return;
    ct_model_activations_free(m);
    if (ops->host_memory) return;  // parameters and gradients are the host buffers
    ops->free(m->dev_params);
    ops->free(m->dev_grads);
    ct_free(m->losses);
    ct_free(m->logprobs);
    ops->free(m->staged.tokens);
    ops->free(m->staged.targets);
    ops->free(m->staged.doc_ids);
    ops->free(m->staged.positions);
    ops->free(m->staged.loss_mask);
    ops->free(m->staged.loss_weights);
    ct_free(m->staged.host_positions);
    ops->free(m->staged.token_types);
    ct_free(m->staged.host_token_types);
    m->dev_params = m->dev_grads = NULL;
}

void ct_model_sync_to_host(CtModel *m) {
    if (m->ops->host_memory) return;
    m->ops->download(m->params, m->dev_params, m->n_params * sizeof(float));
    if (m->lora) ct_lora_sync(m, 0);
    ct_peft_sync(m, 0);
}

void ct_model_sync_to_device(CtModel *m) {
    if (m->ops->host_memory) return;
    m->ops->upload(m->dev_params, m->params, m->n_params * sizeof(float));
    if (m->ops->keep_low_precision_weights) m->ops->keep_low_precision_weights(m->dev_params, m->n_params, NULL);
    if (m->lora) ct_lora_sync(m, 1);
    ct_peft_sync(m, 1);
}

const float *ct_model_train_params_host(CtModel *m) {
    ct_model_sync_to_host(m);
    return m->lora ? ct_lora_params_host(m) : m->peft ? ct_peft_params_host(m) : m->params;
}
