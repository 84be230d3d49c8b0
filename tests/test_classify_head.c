// The sequence classifier (train/model/model_classify.h): the pooling and the cross-entropy
// against finite differences in double, and the whole model's gradient of a classification loss
// against finite differences of the float model for BERT (pooler + classifier), RoBERTa
// (classifier.dense + out_proj), with dropout, and the decoders' score head, each pooling, over
// padded rows. As tests/test_model_grad_encoder.c: per tensor, the derivative along the gradient's
// direction and at its largest entry, parameters drawn larger than at initialisation.
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "kernels/ops.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/model/model_classify.h"
#include "train/model/model_resize.h"

enum { B = 2, T = 8, LABELS = 3 };
static const int lens[B] = {T, T - 3};
static const int labels[B] = {2, 0};

static double pooled_loss(CtPooling p, const double *h, const double *wts, int C) {
    double out[B * 8];
    ct_classify_pool(p, h, B, T, C, lens, out);
    double s = 0;
    for (int i = 0; i < B * C; i++) s += wts[i] * out[i] + 0.5 * out[i] * out[i];
    return s;
}

// L = Σ w·pool(h) + ½ pool(h)²: ∂L/∂pool = w + pool, and pool_backward spreads it over h.
TEST(classify, pooling_gradients_match_finite_differences_in_double) {
    enum { C = 5 };
    CtRng rng;
    ct_rng_seed(&rng, 3);
    double h[B * T * C], w[B * C], pooled[B * C], dp[B * C], dh[B * T * C];
    for (int i = 0; i < B * T * C; i++) h[i] = ct_rng_uniform(&rng) * 2 - 1;
    for (int i = 0; i < B * C; i++) w[i] = ct_rng_uniform(&rng) * 2 - 1;
    for (int p = CT_POOL_CLS; p <= CT_POOL_LAST; p++) {
        ct_classify_pool((CtPooling)p, h, B, T, C, lens, pooled);
        for (int i = 0; i < B * C; i++) dp[i] = w[i] + pooled[i];
        ct_classify_pool_backward((CtPooling)p, dp, B, T, C, lens, dh);
        double worst = 0;
        for (int i = 0; i < B * T * C; i++) {
            const double keep = h[i], eps = 1e-6;
            h[i] = keep + eps;
            const double lp = pooled_loss((CtPooling)p, h, w, C);
            h[i] = keep - eps;
            const double lm = pooled_loss((CtPooling)p, h, w, C);
            h[i] = keep;
            worst = fmax(worst, fabs((lp - lm) / (2 * eps) - dh[i]));
        }
        CHECK_MSG(worst < 1e-8, "pooling %s: worst gradient error %.3g", ct_pooling_name((CtPooling)p), worst);
    }
    // padding is never read: a pad's hidden state gets no gradient under any pooling
    for (int p = CT_POOL_CLS; p <= CT_POOL_LAST; p++) {
        ct_classify_pool_backward((CtPooling)p, dp, B, T, C, lens, dh);
        for (int t = lens[1]; t < T; t++)
            for (int c = 0; c < C; c++) CHECK(dh[(size_t)(T + t) * C + c] == 0);
    }
}

TEST(classify, cross_entropy_gradient_matches_finite_differences) {
    float z[4] = {0.3f, -1.2f, 2.0f, 0.5f}, dz[4];
    const double scale = 0.25, loss = ct_classify_xent(z, 4, 1, scale, dz);
    double sum = 0;
    for (int k = 0; k < 4; k++) sum += exp(z[k]);
    CHECK(fabs(loss - (log(sum) - z[1])) < 1e-6);
    for (int k = 0; k < 4; k++) {
        const float keep = z[k], eps = 1e-2f;
        z[k] = keep + eps;
        const double lp = ct_classify_xent(z, 4, 1, 1, NULL);
        z[k] = keep - eps;
        const double lm = ct_classify_xent(z, 4, 1, 1, NULL);
        z[k] = keep;
        CHECK(fabs(scale * (lp - lm) / (2 * eps) - dz[k]) < 1e-4);
    }
}

// The batch: BERT's/RoBERTa's padded rows (pads in their own document), a decoder's the same tokens.
static void classify_batch(EncoderBatch *eb, const CtModelConfig *c) {
    CtModelConfig e = *c;
    if (!ct_model_is_encoder(c)) e.pad_token_id = 0, e.type_vocab_size = 1;
    tiny_encoder_batch(eb, &e, T, 7);
    eb->batch.targets = NULL;
}

static double loss_of(CtModel *m, const CtBatch *b, float *d_logits) {
    float logits[B * LABELS];
    ct_model_classify_forward(m, b, lens, logits);
    double loss = 0;
    for (int r = 0; r < B; r++)
        loss += ct_classify_xent(logits + r * LABELS, LABELS, labels[r], 1.0 / B, d_logits ? d_logits + r * LABELS : NULL) / B;
    return loss;
}

static int is_unused(const CtModel *m, const CtParamEntry *e) {
    // the LM / MLM head does not run under a classifier; nor a decoder's final norm bias-free head
    if (strstr(e->name, "cls.predictions.") || strstr(e->name, "lm_head.")) return 1;
    if (strstr(e->name, "attention.self.key.bias")) return 1;  // softmax is shift-invariant: gradient 0
    return !ct_model_is_encoder(&m->config) && strcmp(e->name, "lm_head.weight") == 0;
}

static void check_classifier_gradients(CtModelConfig cfg, CtPooling pooling, float dropout) {
    cfg.dropout = dropout;
    CtModel m;
    CHECK(ct_model_create(&m, &cfg, ct_ops_cpu(), B, T, 0) == 0);
    CHECK(ct_model_add_classifier(&m, LABELS, pooling, 5, B, T, 0) == 0);
    tiny_randomize_params(&m, 26);
    ct_model_set_dropout(&m, 1, 4321);
    EncoderBatch eb;
    classify_batch(&eb, &m.config);
    float d_logits[B * LABELS];
    ct_model_zero_grad(&m);
    loss_of(&m, &eb.batch, d_logits);
    ct_model_classify_backward(&m, d_logits);
    float *grads = ct_alloc(m.n_params * sizeof(float));
    memcpy(grads, m.grads, m.n_params * sizeof(float));
    const float h = 3e-3f;
    double worst = 0;
    int checked = 0;
    for (int i = 0; i < m.n_tensors; i++) {
        const CtParamEntry *e = &m.table[i];
        float *p = m.params + e->offset, *g = grads + e->offset;
        double norm = 0;
        for (size_t j = 0; j < e->numel; j++) norm += (double)g[j] * g[j];
        norm = sqrt(norm);
        if (is_unused(&m, e)) {
            CHECK_MSG(norm < 1e-6, "%s: a tensor the classifier does not read got a gradient (%.3g)", e->name, norm);
            continue;
        }
        CHECK_MSG(norm > 1e-5, "%s: gradient norm %.3g is too small to check (or wrongly zero)", e->name, norm);
        float *u = ct_alloc(e->numel * sizeof(float));
        for (size_t j = 0; j < e->numel; j++) u[j] = (float)(g[j] / norm);
        float *keep = ct_alloc(e->numel * sizeof(float));
        memcpy(keep, p, e->numel * sizeof(float));
        for (size_t j = 0; j < e->numel; j++) p[j] = keep[j] + h * u[j];
        const double lp = loss_of(&m, &eb.batch, NULL);
        for (size_t j = 0; j < e->numel; j++) p[j] = keep[j] - h * u[j];
        const double lm = loss_of(&m, &eb.batch, NULL);
        memcpy(p, keep, e->numel * sizeof(float));
        const double fd = (lp - lm) / (2.0 * h), rel = fabs(fd - norm) / fmax(norm, 1e-3);
        worst = fmax(worst, rel);
        CHECK_MSG(rel < 2e-2, "%s: along the gradient: finite differences %.6g, analytic %.6g (rel %.3g)", e->name, fd,
                  norm, rel);
        ct_free(u);
        ct_free(keep);
        checked++;
    }
    printf("    %s, %s pooling%s: worst directional error %.2g over %d tensors\n", ct_arch_name(cfg.arch),
           ct_pooling_name(pooling), dropout > 0 ? ", dropout" : "", worst, checked);
    ct_free(grads);
    ct_model_free(&m);
}

TEST(classify, gradient_check_bert_cls) { check_classifier_gradients(tiny_encoder_config(CT_ARCH_BERT), CT_POOL_CLS, 0); }
TEST(classify, gradient_check_bert_cls_dropout) {
    check_classifier_gradients(tiny_encoder_config(CT_ARCH_BERT), CT_POOL_CLS, 0.3f);
}
TEST(classify, gradient_check_bert_mean) { check_classifier_gradients(tiny_encoder_config(CT_ARCH_BERT), CT_POOL_MEAN, 0); }
TEST(classify, gradient_check_roberta_cls_dropout) {
    check_classifier_gradients(tiny_encoder_config(CT_ARCH_ROBERTA), CT_POOL_CLS, 0.3f);
}
TEST(classify, gradient_check_roberta_mean) {
    check_classifier_gradients(tiny_encoder_config(CT_ARCH_ROBERTA), CT_POOL_MEAN, 0);
}
TEST(classify, gradient_check_llama_last) { check_classifier_gradients(tiny_config(CT_ARCH_LLAMA), CT_POOL_LAST, 0); }
TEST(classify, gradient_check_gpt2_mean) { check_classifier_gradients(tiny_config(CT_ARCH_GPT2), CT_POOL_MEAN, 0); }

// A padded row's logits are those of the row alone (pads in their own document, pooled over the
// real tokens only): what lets batches pad to their longest row.
TEST(classify, padded_row_has_the_logits_of_the_row_alone) {
    for (int arch = CT_ARCH_BERT; arch <= CT_ARCH_ROBERTA; arch++)
        for (int p = CT_POOL_CLS; p <= CT_POOL_LAST; p++) {
            CtModelConfig cfg = tiny_encoder_config((CtArch)arch);
            CtModel m;
            CHECK(ct_model_create(&m, &cfg, ct_ops_cpu(), B, T, 0) == 0);
            CHECK(ct_model_add_classifier(&m, LABELS, (CtPooling)p, 5, B, T, 0) == 0);
            tiny_randomize_params(&m, 9);
            EncoderBatch eb;
            classify_batch(&eb, &m.config);
            float both[B * LABELS], alone[LABELS];
            ct_model_classify_forward(&m, &eb.batch, lens, both);
            CtBatch one = {.tokens = eb.tokens + T, .doc_ids = eb.doc_ids + T, .B = 1, .T = lens[1],
                           .token_types = eb.batch.token_types ? eb.types + T : NULL};
            ct_model_classify_forward(&m, &one, &lens[1], alone);
            for (int k = 0; k < LABELS; k++)
                CHECK_MSG(fabsf(both[LABELS + k] - alone[k]) < 1e-5, "%s %s: label %d: %.7g padded, %.7g alone",
                          ct_arch_name(cfg.arch), ct_pooling_name((CtPooling)p), k, both[LABELS + k], alone[k]);
            ct_model_free(&m);
        }
}
