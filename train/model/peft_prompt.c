// Prompt tuning and P-tuning: V virtual rows before every sequence, their embeddings learned
// directly (PEFT's PromptEmbedding) or made by PEFT's MLP prompt encoder from its own embedding E:
//
//   P = W₃·ReLU(W₂·ReLU(W₁·E + b₁) + b₂) + b₃     (mlp_head.0, .2, .4; E, P [V, C], hidden H)
//   backward from dP: dW₃ = dPᵀ·a₂, da₂ = dP·W₃, dh₂ = da₂⊙[h₂>0], ..., dE = dh₁·W₁
//
// through the matmul and ReLU ops (kernels/ops.h); or by PEFT's LSTM encoder (train/model/peft_lstm.c).
// The virtual rows' embedding replaces the token
// lookup of their rows; positions, the embedding scale (Gemma) and dropout apply after it, as they
// do to PEFT's inputs_embeds. See train/model/peft.h for how a batch is laid out.
//
// On a device (ct_peft_to_backend) the ids and the encoder's buffers move into its memory. The
// encoder's arrays are float (its input and output are the float embedding tables the embedding
// op reads), so it runs on the table of float activations on that memory
// (ct_ops_float_activations: the fp32 CUDA table under the bf16 one).
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"
#include "kernels/device.h"
#include "train/model/peft.h"
#include "train/model/peft_hooks.h"
#include "train/model/peft_lstm.h"

typedef struct {
    int V, C, H;
    const CtOps *ops;              // whose memory ids and enc are in (the CPU's until to_backend)
    int32_t *ids;                  // [V] 0..V-1 (the ops' memory)
    float *enc;                    // P-tuning: [V,C] the encoder's output, then h₁, a₁, h₂, a₂ [V,H] each
    float *h1, *a1, *h2, *a2;
    float *d_table, *d_a, *d_h;    // P-tuning backward scratch: [V,C], [V,H], [V,H]
    CtPeftLstm *lstm;              // P-tuning with the LSTM encoder (then h₁.. are unused)
    int pass_B, pass_T, pass_rows; // the embedding passes' virtual rows (ct_peft_set_pass)
    int last_B, last_T, expanded;  // the last ct_peft_forward's batch (T without the virtual rows)
    // host copies of an expanded batch [max_B·max_T] and of expanded loss weights
    int32_t *tokens, *targets, *doc_ids, *positions;
    uint8_t *mask;
    float *weights, *weights_out;
} Prompt;

static Prompt *state(const CtModel *m) { return (Prompt *)m->peft->state; }
static int encoded(const CtPeft *p) { return p->spec.type == CT_PEFT_P_TUNING && !p->spec.inference; }

// ---- layouts ----
static int hidden_size(const CtPeftSpec *s, const CtModelConfig *c) {
    return s->encoder_hidden_size > 0 ? s->encoder_hidden_size : c->d_model;
}

static int prompt_layout(const CtPeftSpec *s, const CtModelConfig *c, CtPeftTensor *out) {
    out[0] = ct_peft_tensor(s->inference ? "prompt_embeddings" : "embedding.weight", s->num_virtual_tokens, c->d_model, 1);
    return 1;
}

static int p_tuning_layout(const CtPeftSpec *s, const CtModelConfig *c, CtPeftTensor *out) {
    if (s->inference) return prompt_layout(s, c, out);
    const int C = c->d_model, H = hidden_size(s, c);
    if (s->encoder == CT_PEFT_ENCODER_LSTM) return ct_peft_lstm_layout(s, C, H, out);
    out[0] = ct_peft_tensor("embedding.weight", s->num_virtual_tokens, C, 1);
    out[1] = ct_peft_tensor("mlp_head.0.weight", H, C, 1);
    out[2] = ct_peft_tensor("mlp_head.0.bias", H, 0, 0);
    out[3] = ct_peft_tensor("mlp_head.2.weight", H, H, 1);
    out[4] = ct_peft_tensor("mlp_head.2.bias", H, 0, 0);
    out[5] = ct_peft_tensor("mlp_head.4.weight", C, H, 1);
    out[6] = ct_peft_tensor("mlp_head.4.bias", C, 0, 0);
    return 7;
}

static int extra_rows(const CtPeftSpec *s) { return s->num_virtual_tokens; }

// ---- state ----
// P-tuning's encoder buffers in the memory of ops: enc [V,C], h₁, a₁, h₂, a₂ [V,H], then the
// backward's scratch d_table [V,C], d_a, d_h [V,H].
static void alloc_encoder(Prompt *s, const CtOps *ops) {
    const size_t V = (size_t)s->V, H = (size_t)s->H, C = (size_t)s->C;
    s->enc = ops->alloc(sizeof(float) * (V * C * 2 + V * H * 6 + 1), "prompt encoder activations");
    s->h1 = s->enc + V * C;
    s->a1 = s->h1 + V * H;
    s->h2 = s->a1 + V * H;
    s->a2 = s->h2 + V * H;
    s->d_table = s->a2 + V * H;
    s->d_a = s->d_table + V * C;
    s->d_h = s->d_a + V * H;
}

static int prompt_attach(CtModel *m) {
    CtPeft *p = m->peft;
    Prompt *s = ct_calloc(1, sizeof *s);
    p->state = s;
    s->V = p->spec.num_virtual_tokens;
    s->C = m->config.d_model;
    s->H = hidden_size(&p->spec, &m->config);
    s->ops = m->ops;
    const size_t BT = (size_t)m->max_B * m->max_T, V = (size_t)s->V;
    s->ids = ct_alloc(sizeof(int32_t) * (V ? V : 1));
    for (int v = 0; v < s->V; v++) s->ids[v] = v;
    if (encoded(p) && p->spec.encoder == CT_PEFT_ENCODER_LSTM) {
        s->lstm = ct_peft_lstm_new(s->V, s->C, s->H, p->spec.encoder_num_layers);
        s->d_table = ct_alloc(sizeof(float) * (V * (size_t)s->C + 1));
    } else if (encoded(p)) {
        alloc_encoder(s, s->ops);
    }
    s->tokens = ct_alloc(sizeof(int32_t) * BT * 4);
    s->targets = s->tokens + BT;
    s->doc_ids = s->targets + BT;
    s->positions = s->doc_ids + BT;
    s->mask = ct_alloc(BT);
    s->weights = ct_alloc(sizeof(float) * BT * 2);
    s->weights_out = s->weights + BT;
    return 0;
}

// The ids and the encoder's buffers into m->ops' memory (the rest is host staging of batches).
static void prompt_to_backend(CtModel *m) {
    Prompt *s = state(m);
    const CtOps *ops = m->ops;
    const size_t V = (size_t)s->V, bytes = sizeof(int32_t) * (V ? V : 1);
    int32_t *ids = ops->alloc(bytes, "prompt ids");
    ops->upload(ids, s->ids, bytes);
    s->ops->free(s->ids);
    s->ids = ids;
    if (s->enc) {
        s->ops->free(s->enc);
        alloc_encoder(s, ops);
    }
    s->ops = ops;
}

static void prompt_detach(CtPeft *p) {
    Prompt *s = p->state;
    if (!s) return;
    s->ops->free(s->ids);
    if (s->lstm) {
        ct_peft_lstm_free(s->lstm);
        ct_free(s->d_table);
    } else {
        s->ops->free(s->enc);
    }
    ct_free(s->tokens);
    ct_free(s->mask);
    ct_free(s->weights);
    ct_free(s);
    p->state = NULL;
}

// ---- initialisation (PEFT's) ----
// torch.nn.Embedding: normal(0, 1); or (prompt tuning from a text) the base's rows of the text's
// ids, repeated or cut to V (PromptEmbedding: init_token_ids * ceil(V/n), then [:V]).
static void prompt_init(CtModel *m, uint64_t seed) {
    CtPeft *p = m->peft;
    ct_peft_init_default(m, seed);
    if (state(m)->lstm) ct_peft_lstm_init(p, seed);
    const CtPeftSpec *sp = &p->spec;
    if (!(sp->type == CT_PEFT_PROMPT_TUNING && sp->init == CT_PEFT_INIT_TEXT && sp->n_init_ids > 0)) return;
    float *E = p->params + p->tensors[0].offset;
    const size_t V = (size_t)sp->num_virtual_tokens, C = (size_t)m->config.d_model;
    for (size_t v = 0; v < V; v++)
        memcpy(E + v * C, m->params + (size_t)(m->w.wte - m->dev_params) + (size_t)sp->init_ids[v % (size_t)sp->n_init_ids] * C,
               C * sizeof(float));
}

// ---- the prompt rows ----
static const float *param(const CtPeft *p, int i) { return p->dev_params + p->tensors[i].offset; }
static float *grad(const CtPeft *p, int i) { return p->dev_grads + p->tensors[i].offset; }

// The V prompt rows [V,C]: the embedding itself, or (P-tuning) the encoder's output.
static const float *prompt_rows(CtModel *m) {
    CtPeft *p = m->peft;
    if (!encoded(p)) return param(p, 0);
    const CtOps *ops = ct_ops_float_activations(m->ops);
    Prompt *s = state(m);
    if (s->lstm) return ct_peft_lstm_forward(s->lstm, ops, p);
    const int V = s->V, C = s->C, H = s->H;
    ops->matmul_forward(s->h1, param(p, 0), param(p, 1), param(p, 2), V, C, H);
    ops->relu_forward(s->a1, s->h1, (size_t)V * H);
    ops->matmul_forward(s->h2, s->a1, param(p, 3), param(p, 4), V, H, H);
    ops->relu_forward(s->a2, s->h2, (size_t)V * H);
    ops->matmul_forward(s->enc, s->a2, param(p, 5), param(p, 6), V, H, C);
    return s->enc;
}

// dP → the encoder's gradients (its forward's activations are the last prompt_rows').
static void encoder_backward(CtModel *m, const float *dP) {
    CtPeft *p = m->peft;
    const CtOps *ops = ct_ops_float_activations(m->ops);
    Prompt *s = state(m);
    if (s->lstm) {
        ct_peft_lstm_backward(s->lstm, ops, p, dP);
        return;
    }
    const int V = s->V, C = s->C, H = s->H;
    const size_t VH = (size_t)V * H;
    ops->zero(s->d_a, VH * sizeof(float));
    ops->matmul_backward(s->d_a, grad(p, 5), grad(p, 6), dP, s->a2, param(p, 5), V, H, C);
    ops->zero(s->d_h, VH * sizeof(float));
    ops->relu_backward(s->d_h, s->h2, s->d_a, VH);
    ops->zero(s->d_a, VH * sizeof(float));
    ops->matmul_backward(s->d_a, grad(p, 3), grad(p, 4), s->d_h, s->a1, param(p, 3), V, H, H);
    ops->zero(s->d_h, VH * sizeof(float));
    ops->relu_backward(s->d_h, s->h1, s->d_a, VH);
    ops->matmul_backward(grad(p, 0), grad(p, 1), grad(p, 2), s->d_h, param(p, 0), param(p, 1), V, C, H);
}

// ---- the hooks (train/model/peft_hooks.h) ----
int ct_peft_prepend_rows(const CtModel *m) {
    return m->peft && m->peft->kind->extra_rows ? m->peft->kind->extra_rows(&m->peft->spec) : 0;
}

void ct_peft_set_pass(CtModel *m, int B, int T, int rows) {
    if (!ct_peft_prepend_rows(m)) return;
    Prompt *s = state(m);
    s->pass_B = B;
    s->pass_T = T;
    s->pass_rows = rows;
}

void ct_peft_embed_forward(CtModel *m, CtAct *x, int N) {
    if (!ct_peft_prepend_rows(m) || !state(m)->pass_rows) return;
    Prompt *s = state(m);
    CT_CHECK(N == s->pass_B * s->pass_T && s->pass_rows <= s->pass_T, "a prompt adapter's pass of another shape");
    const float *rows = prompt_rows(m);
    const size_t A = m->ops->act_bytes;
    for (int b = 0; b < s->pass_B; b++)
        m->ops->embedding_forward(ct_act_at(A, x, (size_t)b * s->pass_T * s->C), s->ids, rows, s->pass_rows, s->C, 0);
}

void ct_peft_embed_backward(CtModel *m, const CtAct *dx, int N) {
    if (!ct_peft_prepend_rows(m) || !state(m)->expanded || m->peft->spec.inference) return;
    Prompt *s = state(m);
    const int T2 = s->last_T + s->V;
    CT_CHECK(N == s->last_B * T2, "a prompt adapter's backward of another shape than its forward");
    const size_t A = m->ops->act_bytes;
    float *d_rows = encoded(m->peft) ? s->d_table : grad(m->peft, 0);
    if (encoded(m->peft)) m->ops->zero(d_rows, (size_t)s->V * s->C * sizeof(float));
    for (int b = 0; b < s->last_B; b++)
        m->ops->embedding_backward(d_rows, ct_act_at(A, dx, (size_t)b * T2 * s->C), s->ids, s->V, s->C);
    if (encoded(m->peft)) encoder_backward(m, d_rows);
}

int ct_peft_last_expanded(const CtModel *m) { return ct_peft_prepend_rows(m) && state(m)->expanded; }

// PeftModelForCausalLM's layout: the virtual rows first, labels -100 (targets -1, no loss), the
// positions counting them; a row's virtual tokens belong to its first token's document.
float ct_peft_forward(CtModel *m, const CtBatch *batch, float (*forward)(CtModel *, const CtBatch *)) {
    Prompt *s = state(m);
    const int V = s->V, B = batch->B, T = batch->T, T2 = T + V;
    CT_CHECK(B <= m->max_B && T2 <= m->max_T,
             "the batch and its virtual tokens are longer than the model's activations (max_T = seq_len + "
             "num_virtual_tokens)");
    CtBatch b2 = {.tokens = s->tokens, .B = B, .T = T2};
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T2; t++) {
            const size_t i = (size_t)b * T2 + t, j = (size_t)b * T + (t - V);  // j: the real row (t ≥ V)
            const int virt = t < V;
            s->tokens[i] = virt ? 0 : batch->tokens[j];
            if (batch->targets) s->targets[i] = virt ? -1 : batch->targets[j];
            if (batch->loss_mask) s->mask[i] = virt ? 0 : batch->loss_mask[j];
            if (batch->loss_weights) s->weights[i] = virt ? 0 : batch->loss_weights[j];
            if (batch->doc_ids) s->doc_ids[i] = batch->doc_ids[virt ? (size_t)b * T : j];
            if (batch->positions) s->positions[i] = virt ? t : batch->positions[j] + V;
        }
    }
    if (batch->targets) b2.targets = s->targets;
    if (batch->loss_mask) b2.loss_mask = s->mask;
    if (batch->loss_weights) b2.loss_weights = s->weights;
    if (batch->doc_ids) b2.doc_ids = s->doc_ids;
    if (batch->positions) b2.positions = s->positions;
    ct_peft_set_pass(m, B, T2, V);
    const float loss = forward(m, &b2);
    ct_peft_set_pass(m, 0, 0, 0);
    s->last_B = B;
    s->last_T = T;
    s->expanded = 1;
    if (batch->targets) {  // the per-token values back to [B,T] (in place: a row moves only toward the start)
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                m->losses[(size_t)b * T + t] = m->losses[(size_t)b * T2 + V + t];
                m->logprobs[(size_t)b * T + t] = m->logprobs[(size_t)b * T2 + V + t];
            }
    }
    return loss;
}

void ct_peft_compact_logits(const CtModel *m, const float *all, float *out) {
    const Prompt *s = state(m);
    const size_t V = (size_t)m->config.vocab_size, T2 = (size_t)(s->last_T + s->V);
    for (int b = 0; b < s->last_B; b++)
        memmove(out + (size_t)b * s->last_T * V, all + ((size_t)b * T2 + s->V) * V, (size_t)s->last_T * V * sizeof(float));
}

const float *ct_peft_expand_weights(CtModel *m, const float *weights) {
    Prompt *s = state(m);
    const int V = s->V, T = s->last_T, T2 = T + V;
    for (int b = 0; b < s->last_B; b++)
        for (int t = 0; t < T2; t++)
            s->weights_out[(size_t)b * T2 + t] = t < V ? 0.0f : weights[(size_t)b * T + t - V];
    return s->weights_out;
}

// ---- PEFT's saved form ----
static float *prompt_embeddings(CtModel *m, int64_t shape[2]) {
    CtPeft *p = m->peft;
    Prompt *s = state(m);
    shape[0] = s->V;
    shape[1] = s->C;
    const size_t n = (size_t)s->V * s->C;
    float *out = ct_alloc(n * sizeof(float) + 1);
    m->ops->download(out, encoded(p) ? prompt_rows(m) : param(p, 0), n * sizeof(float));
    return out;
}

static int set_prompt_embeddings(CtModel *m, const float *data, const int64_t shape[2]) {
    CtPeft *p = m->peft;
    if (encoded(p)) return ct_error_set("%s: PEFT's prompt_embeddings load into an inference adapter", p->kind->name);
    if (shape[0] != p->tensors[0].shape[0] || shape[1] != p->tensors[0].shape[1])
        return ct_error_set("prompt_embeddings is [%lld, %lld]; this base and num_virtual_tokens take [%lld, %lld]",
                            (long long)shape[0], (long long)shape[1], (long long)p->tensors[0].shape[0],
                            (long long)p->tensors[0].shape[1]);
    memcpy(p->params + p->tensors[0].offset, data, p->tensors[0].numel * sizeof(float));
    ct_peft_sync(m, 1);
    return 0;
}

const CtPeftKind ct_peft_prompt_tuning_kind = {
    .type = CT_PEFT_PROMPT_TUNING, .name = "prompt_tuning", .peft_type = "PROMPT_TUNING",
    .layout = prompt_layout, .extra_rows = extra_rows, .attach = prompt_attach, .detach = prompt_detach,
    .init = prompt_init, .prompt_embeddings = prompt_embeddings, .set_prompt_embeddings = set_prompt_embeddings,
    .to_backend = prompt_to_backend,
};

const CtPeftKind ct_peft_p_tuning_kind = {
    .type = CT_PEFT_P_TUNING, .name = "p_tuning", .peft_type = "P_TUNING",
    .layout = p_tuning_layout, .extra_rows = extra_rows, .attach = prompt_attach, .detach = prompt_detach,
    .init = prompt_init, .prompt_embeddings = prompt_embeddings, .set_prompt_embeddings = set_prompt_embeddings,
    .to_backend = prompt_to_backend,
};
