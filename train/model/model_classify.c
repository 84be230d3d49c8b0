#include "train/model/model_classify.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "train/model/lora_hooks.h"
#include "train/model/model_internal.h"

// Dropout sites of the head's two dropouts: apart from the blocks' (3·l + 1..3) and the embeddings' (0).
enum { DROP_SITE_IN = 1 << 20, DROP_SITE_OUT = (1 << 20) + 1 };

void ct_classify_pool(CtPooling pooling, const double *h, int B, int T, int C, const int *len, double *out) {
    for (int r = 0; r < B; r++) {
        double *o = out + (size_t)r * C;
        const double *row = h + (size_t)r * T * C;
        if (pooling == CT_POOL_MEAN) {
            memset(o, 0, sizeof(double) * (size_t)C);
            for (int t = 0; t < len[r]; t++)
                for (int c = 0; c < C; c++) o[c] += row[(size_t)t * C + c];
            for (int c = 0; c < C; c++) o[c] /= len[r];
        } else {
            const int t = pooling == CT_POOL_LAST ? len[r] - 1 : 0;
            memcpy(o, row + (size_t)t * C, sizeof(double) * (size_t)C);
        }
    }
}

void ct_classify_pool_backward(CtPooling pooling, const double *dout, int B, int T, int C, const int *len, double *dh) {
    memset(dh, 0, sizeof(double) * (size_t)B * T * C);
    for (int r = 0; r < B; r++) {
        const double *d = dout + (size_t)r * C;
        double *row = dh + (size_t)r * T * C;
        if (pooling == CT_POOL_MEAN) {
            for (int t = 0; t < len[r]; t++)
                for (int c = 0; c < C; c++) row[(size_t)t * C + c] = d[c] / len[r];
        } else {
            const int t = pooling == CT_POOL_LAST ? len[r] - 1 : 0;
            memcpy(row + (size_t)t * C, d, sizeof(double) * (size_t)C);
        }
    }
}

double ct_classify_xent(const float *z, int L, int label, double scale, float *dz) {
    double mx = z[0];
    for (int k = 1; k < L; k++) mx = fmax(mx, z[k]);
    double sum = 0;
    for (int k = 0; k < L; k++) sum += exp(z[k] - mx);
    const double lse = mx + log(sum);
    if (dz)
        for (int k = 0; k < L; k++) dz[k] = (float)(scale * (exp(z[k] - lse) - (k == label)));
    return lse - z[label];
}

// The head's tensors for the family (see the header), and its activations: slots of [B,C] (and
// [B,L]) carved from the LM logits' buffer, which a classifier's forward leaves unused.
typedef struct {
    const float *dense_w, *dense_b, *out_w, *out_b;
    float *g_dense_w, *g_dense_b, *g_out_w, *g_out_b;
    int drop_in, drop_out;  // RoBERTa drops the pooled vector; both encoders the tanh's output
} Head;

typedef struct {
    CtAct *pooled, *dropped_in, *dense, *act, *dropped, *logits, *g1, *g2, *d_logits;
} HeadActs;

static Head head_of(const CtModel *m) {
    const CtModelConfig *c = &m->config;
    const CtModelTensors *w = &m->w, *g = &m->g;
    const int drop = m->dropout_applied, bert = c->arch == CT_ARCH_BERT, roberta = c->arch == CT_ARCH_ROBERTA;
    Head h = bert      ? (Head){w->pooler_w, w->pooler_b, w->cls_out_w, w->cls_out_b, g->pooler_w, g->pooler_b,
                                g->cls_out_w, g->cls_out_b, 0, drop}
             : roberta ? (Head){w->cls_dense_w, w->cls_dense_b, w->cls_out_w, w->cls_out_b, g->cls_dense_w,
                                g->cls_dense_b, g->cls_out_w, g->cls_out_b, drop, drop}
                       : (Head){NULL, NULL, w->score, NULL, NULL, NULL, g->score, NULL, 0, 0};
    // LoRA: the head's modules that train in full (PEFT's modules_to_save) live in the adapters' buffer
    h.dense_w = ct_lora_saved_tensor(m, h.dense_w, &h.g_dense_w);
    h.dense_b = ct_lora_saved_tensor(m, h.dense_b, &h.g_dense_b);
    h.out_w = ct_lora_saved_tensor(m, h.out_w, &h.g_out_w);
    h.out_b = ct_lora_saved_tensor(m, h.out_b, &h.g_out_b);
    return h;
}

static HeadActs head_acts(const CtModel *m, int B) {
    const size_t BC = (size_t)B * m->config.d_model, BL = (size_t)B * m->config.num_labels, A = m->ops->act_bytes;
    const size_t need = 8 * BC + 2 * BL, have = (size_t)m->max_B * m->max_T * m->config.vocab_size;
    CT_CHECK(need <= have, "the classifier's activations do not fit the logits' buffer (tiny vocab and sequence)");
    CtAct *base = m->act.logits;
    size_t at = 0;
    HeadActs h;
    CtAct **slots[] = {&h.pooled, &h.dropped_in, &h.dense, &h.act, &h.dropped, &h.g1, &h.g2};
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++, at += BC) *slots[i] = ct_act_at(A, base, at);
    h.logits = ct_act_at(A, base, at);
    h.d_logits = ct_act_at(A, base, at + BL);
    return h;
}

void ct_model_classify_forward(CtModel *m, const CtBatch *batch, const int *len, float *logits) {
    const CtModelConfig *c = &m->config;
    CT_CHECK(c->num_labels > 0, "ct_model_classify_forward needs a model with model.num_labels");
    const CtOps *ops = m->ops;
    const int B = batch->B, T = batch->T, C = c->d_model, L = c->num_labels;
    for (int r = 0; r < B; r++) CT_CHECK(len[r] >= 1 && len[r] <= T, "a classified row's length lies outside the batch");
    const CtAct *hidden = ct_model_classify_trunk_forward(m, batch);
    // pool on the host: [N,C] down, [B,C] up
    const size_t NC = (size_t)B * T * C, BC = (size_t)B * C;
    float *hf = ct_alloc(sizeof(float) * NC);
    double *hd = ct_alloc(sizeof(double) * NC), *pd = ct_alloc(sizeof(double) * BC);
    ops->download_act(hf, hidden, NC);
    for (size_t i = 0; i < NC; i++) hd[i] = hf[i];
    ct_classify_pool(c->cls_pooling, hd, B, T, C, len, pd);
    for (size_t i = 0; i < BC; i++) hf[i] = (float)pd[i];
    const Head hw = head_of(m);
    const HeadActs a = head_acts(m, B);
    ops->upload_act(a.pooled, hf, BC);
    ct_free(hf);
    ct_free(hd);
    ct_free(pd);
    const CtAct *x = a.pooled;
    if (hw.drop_in) {
        ops->dropout_forward(a.dropped_in, x, BC, c->dropout, ct_model_dropout_seed(m, DROP_SITE_IN));
        x = a.dropped_in;
    }
    if (hw.dense_w) {
        ops->matmul_forward(a.dense, x, hw.dense_w, hw.dense_b, B, C, C);
        ops->tanh_forward(a.act, a.dense, BC);
        x = a.act;
        if (hw.drop_out) {
            ops->dropout_forward(a.dropped, x, BC, c->dropout, ct_model_dropout_seed(m, DROP_SITE_OUT));
            x = a.dropped;
        }
    }
    ops->matmul_forward(a.logits, x, hw.out_w, hw.out_b, B, C, L);
    ops->download_act(logits, a.logits, (size_t)B * L);
    if (!m->classify_len) m->classify_len = ct_alloc(sizeof(int) * (size_t)m->max_B);
    memcpy(m->classify_len, len, sizeof(int) * (size_t)B);
}

// Down the head (each product's backward adds: its input gradient is zeroed first), then the
// pooled vectors' gradient spread over the tokens they read, then the trunk.
void ct_model_classify_backward(CtModel *m, const float *d_logits) {
    const CtModelConfig *c = &m->config;
    const CtOps *ops = m->ops;
    const int B = m->batch.B, T = m->batch.T, C = c->d_model, L = c->num_labels;
    const size_t BC = (size_t)B * C, NC = (size_t)B * T * C, A = ops->act_bytes;
    const Head hw = head_of(m);
    const HeadActs a = head_acts(m, B);
    ops->upload_act(a.d_logits, d_logits, (size_t)B * L);
    const CtAct *x_in = hw.drop_in ? a.dropped_in : a.pooled;  // the dense layer's input
    const CtAct *y = !hw.dense_w ? a.pooled : hw.drop_out ? a.dropped : a.act;  // the output product's input
    ops->zero(a.g1, BC * A);
    ops->matmul_backward(a.g1, hw.g_out_w, hw.g_out_b, a.d_logits, y, hw.out_w, B, C, L);
    if (hw.dense_w) {
        if (hw.drop_out) ops->dropout_backward(a.g1, a.g1, BC, c->dropout, ct_model_dropout_seed(m, DROP_SITE_OUT));
        ops->zero(a.g2, BC * A);
        ops->tanh_backward(a.g2, a.act, a.g1, BC);  // d dense = (1 − tanh²) · d act
        ops->zero(a.g1, BC * A);
        ops->matmul_backward(a.g1, hw.g_dense_w, hw.g_dense_b, a.g2, x_in, hw.dense_w, B, C, C);
        if (hw.drop_in) ops->dropout_backward(a.g1, a.g1, BC, c->dropout, ct_model_dropout_seed(m, DROP_SITE_IN));
    }
    float *f = ct_alloc(sizeof(float) * NC);
    double *dp = ct_alloc(sizeof(double) * BC), *dh = ct_alloc(sizeof(double) * NC);
    ops->download_act(f, a.g1, BC);
    for (size_t i = 0; i < BC; i++) dp[i] = f[i];
    ct_classify_pool_backward(c->cls_pooling, dp, B, T, C, m->classify_len, dh);
    for (size_t i = 0; i < NC; i++) f[i] = (float)dh[i];
    ops->upload_act(ct_model_classify_trunk_grad(m), f, NC);
    ct_free(f);
    ct_free(dp);
    ct_free(dh);
    ct_model_classify_trunk_backward(m);
}
