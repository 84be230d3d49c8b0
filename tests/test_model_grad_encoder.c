// The encoder models (model.arch bert / roberta, issue #26): the parameter table, and the whole
// model's gradient of a masked-language-model loss against finite differences of the float model,
// over padded batches (pads in a document of their own, no loss on them), with token types, with
// dropout. As tests/test_model_grad.c: per tensor, the derivative along the gradient's direction
// and at its three largest entries, parameters drawn larger than at initialisation.
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/ops.h"
#include "tests/model_fixture.h"
#include "train/model/model_internal.h"  // ct_model_layout_count: a table without allocating bert-base
#include "tests/test.h"

enum { B = 2, T = 8 };

static double directional_fd(CtModel *m, const CtBatch *b, float *p, const float *u, size_t n, float h) {
    float *keep = ct_alloc(n * sizeof(float));
    memcpy(keep, p, n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = keep[i] + h * u[i];
    const double lp = ct_model_forward(m, b);
    for (size_t i = 0; i < n; i++) p[i] = keep[i] - h * u[i];
    const double lm = ct_model_forward(m, b);
    memcpy(p, keep, n * sizeof(float));
    ct_free(keep);
    return (lp - lm) / (2.0 * h);
}

static int is_pooler(const CtParamEntry *e) { return strstr(e->name, ".pooler.") != NULL; }
// A key bias adds q·b to every score of a query's row, which the softmax does not see: its
// gradient is 0 up to rounding (transformers' BERT has one all the same).
static int is_key_bias(const CtParamEntry *e) { return strstr(e->name, ".attention.self.key.bias") != NULL; }

static void check_encoder_gradients(CtModelConfig cfg, float dropout) {
    cfg.dropout = dropout;
    CtModel m;
    CHECK(ct_model_create(&m, &cfg, ct_ops_cpu(), B, T, 0) == 0);
    tiny_randomize_params(&m, 26);
    ct_model_set_dropout(&m, 1, 4321);  // every forward below draws the same masks
    EncoderBatch eb;
    tiny_encoder_batch(&eb, &cfg, T, 7);
    ct_model_zero_grad(&m);
    ct_model_forward(&m, &eb.batch);
    CHECK(m.loss_count > 4 && isfinite(m.loss));
    ct_model_backward(&m);
    float *grads = ct_alloc(m.n_params * sizeof(float));
    memcpy(grads, m.grads, m.n_params * sizeof(float));

    // The embedding LayerNorm's curvature: steps of 1e-2 err by 1-3% on BERT's embedding tables
    // (truncation: 0.2-0.3% at 3e-3, 0.05-0.1% at 1e-3), far above float noise at 3e-3 still.
    const float h = 3e-3f;
    double worst_dir = 0, worst_entry = 0;
    int checked = 0;
    for (int i = 0; i < m.n_tensors; i++) {
        const CtParamEntry *e = &m.table[i];
        float *p = m.params + e->offset, *g = grads + e->offset;
        double norm = 0;
        for (size_t j = 0; j < e->numel; j++) norm += (double)g[j] * g[j];
        norm = sqrt(norm);
        if (is_pooler(e)) {  // the pooler reads [CLS] for classification; the MLM loss never reaches it
            CHECK_MSG(norm == 0, "%s: the MLM loss gave the pooler a gradient (norm %.3g)", e->name, norm);
            continue;
        }
        if (is_key_bias(e)) {
            CHECK_MSG(norm < 1e-6, "%s: a key bias got a gradient of norm %.3g (softmax is shift-invariant)", e->name,
                      norm);
            continue;
        }
        CHECK_MSG(norm > 1e-4, "%s: gradient norm %.3g is too small to check (or wrongly zero)", e->name, norm);
        float *u = ct_alloc(e->numel * sizeof(float));
        for (size_t j = 0; j < e->numel; j++) u[j] = (float)(g[j] / norm);
        const double fd = directional_fd(&m, &eb.batch, p, u, e->numel, h), rel = fabs(fd - norm) / norm;
        if (rel > worst_dir) worst_dir = rel;
        CHECK_MSG(rel < 1e-2, "%s: along the gradient: finite differences %.6g, analytic %.6g (rel %.3g)", e->name, fd,
                  norm, rel);
        for (int k = 0; k < 3 && (size_t)k < e->numel; k++) {  // the three largest entries, each alone
            size_t best = 0;
            for (size_t j = 1; j < e->numel; j++)
                if (fabsf(g[j]) > fabsf(g[best])) best = j;
            memset(u, 0, e->numel * sizeof(float));
            u[best] = 1;
            const double fd1 = directional_fd(&m, &eb.batch, p, u, e->numel, h);
            const double err = fabs(fd1 - g[best]) / fmax(fabs(g[best]), 1e-3);
            if (err > worst_entry) worst_entry = err;
            CHECK_MSG(err < 3e-2, "%s[%zu]: finite differences %.6g, analytic %.6g", e->name, best, fd1, g[best]);
            g[best] = 0;
        }
        ct_free(u);
        checked++;
    }
    printf("    %s%s (padded rows): worst directional error %.2g, worst entry error %.2g over %d tensors\n",
           ct_arch_name(cfg.arch), dropout > 0 ? " (dropout)" : "", worst_dir, worst_entry, checked);
    ct_free(grads);
    ct_model_free(&m);
}

TEST(model, gradient_check_bert) { check_encoder_gradients(tiny_encoder_config(CT_ARCH_BERT), 0); }
TEST(model, gradient_check_bert_dropout) { check_encoder_gradients(tiny_encoder_config(CT_ARCH_BERT), 0.3f); }
TEST(model, gradient_check_roberta) { check_encoder_gradients(tiny_encoder_config(CT_ARCH_ROBERTA), 0); }
TEST(model, gradient_check_roberta_dropout) { check_encoder_gradients(tiny_encoder_config(CT_ARCH_ROBERTA), 0.3f); }

// transformers' names, so that export is a write of the table; the decoder is the word embedding.
TEST(model, bert_and_roberta_tables_use_transformers_names) {
    CtModel m;
    CtModelConfig c = tiny_encoder_config(CT_ARCH_BERT);
    CHECK(ct_model_create(&m, &c, ct_ops_cpu(), 1, 4, 0) == 0);
    CHECK_STR_EQ(m.table[0].name, "bert.embeddings.word_embeddings.weight");
    CHECK_STR_EQ(m.table[1].name, "bert.embeddings.position_embeddings.weight");
    CHECK_STR_EQ(m.table[2].name, "bert.embeddings.token_type_embeddings.weight");
    CHECK_STR_EQ(m.table[5].name, "bert.encoder.layer.0.attention.self.query.weight");
    CHECK_STR_EQ(m.table[m.n_tensors - 1].name, "cls.predictions.bias");
    CHECK(m.w.lm_head == m.w.wte);
    CHECK_EQ_INT((int)m.table[1].shape[0], c.max_seq_len);
    ct_model_free(&m);
    c = tiny_encoder_config(CT_ARCH_ROBERTA);
    CHECK(ct_model_create(&m, &c, ct_ops_cpu(), 1, 4, 0) == 0);
    CHECK_STR_EQ(m.table[0].name, "roberta.embeddings.word_embeddings.weight");
    CHECK_EQ_INT((int)m.table[1].shape[0], c.max_seq_len + c.pad_token_id + 1);  // max_position_embeddings
    CHECK_STR_EQ(m.table[m.n_tensors - 1].name, "lm_head.bias");
    ct_model_free(&m);
}

// The bert-base preset without its pooler is BertForMaskedLM's 109,514,298 parameters (what
// transformers counts for bert-base-uncased's MLM model); with it, 590,592 more (768² + 768).
TEST(model, bert_base_preset_counts_bert_for_masked_lm) {
    CtModelConfig c;
    CHECK(ct_model_preset("bert-base", &c) == 0);
    int n_tensors;
    size_t with_pooler, without;
    ct_model_layout_count(&c, &n_tensors, &with_pooler);
    c.pooler = 0;
    ct_model_layout_count(&c, &n_tensors, &without);
    CHECK_EQ_INT((long long)without, 109514298LL);
    CHECK_EQ_INT((long long)(with_pooler - without), 768LL * 768 + 768);
}

TEST(model, encoders_refuse_recompute_and_decoder_features) {
    CtModel m;
    CtModelConfig c = tiny_encoder_config(CT_ARCH_BERT);
    CHECK(ct_model_create(&m, &c, ct_ops_cpu(), 1, 4, CT_MODEL_RECOMPUTE) != 0);
    CHECK(strstr(ct_error_message(), "recompute") != NULL);
    c.tie_embeddings = 0;
    CHECK(ct_model_config_validate(&c) != 0);
    c = tiny_encoder_config(CT_ARCH_ROBERTA);
    c.type_vocab_size = 0;
    CHECK(ct_model_config_validate(&c) != 0);
    c = tiny_encoder_config(CT_ARCH_BERT);
    c.qkv_bias = 1;  // a llama variant
    CHECK(ct_model_config_validate(&c) != 0);
    CtModelConfig g = tiny_config(CT_ARCH_GPT2);
    g.type_vocab_size = 2;  // an encoder's field on a decoder
    CHECK(ct_model_config_validate(&g) != 0);
}

// The logits [B·T, V] of one forward (a copy).
static float *logits_of(CtModel *m, const CtBatch *b) {
    ct_model_forward(m, b);
    const size_t n = (size_t)b->B * b->T * m->config.vocab_size;
    float *out = ct_alloc(n * sizeof(float));
    memcpy(out, ct_model_logits(m), n * sizeof(float));
    return out;
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

// Bidirectional: the first token's logits depend on the last real token of its row; padding in a
// document of its own: no real token's logits depend on what the pads hold (tokens or types).
TEST(model, encoder_tokens_see_later_tokens_and_never_pads) {
    CtModelConfig c = tiny_encoder_config(CT_ARCH_BERT);
    CtModel m;
    CHECK(ct_model_create(&m, &c, ct_ops_cpu(), B, T, 0) == 0);
    tiny_randomize_params(&m, 3);
    EncoderBatch eb;
    tiny_encoder_batch(&eb, &c, T, 11);
    const size_t V = (size_t)c.vocab_size, row = (size_t)T * V;
    float *base = logits_of(&m, &eb.batch);
    eb.tokens[T + T - 4] = (eb.tokens[T + T - 4] + 5) % c.vocab_size;  // row 1's last real token
    float *later = logits_of(&m, &eb.batch);
    CHECK_MSG(max_abs_diff(base + row, later + row, V) > 1e-4, "row 1's first token does not see its last one");
    for (int t = T - 3; t < T; t++) eb.tokens[T + t] = 7 + t, eb.types[T + t] = 1;  // other pads, still pads
    float *pads = logits_of(&m, &eb.batch);
    CHECK_MSG(max_abs_diff(later, pads, row + (size_t)(T - 3) * V) == 0, "a real token's logits depend on the pads");
    ct_free(base);
    ct_free(later);
    ct_free(pads);
    ct_model_free(&m);
}

// RoBERTa: a row followed by pads has the logits of the same row alone (its positions start after
// the padding row either way, and the pads are out of its sight); with left padding too, where
// transformers' positions count the tokens that are not pads.
TEST(model, roberta_padded_row_has_the_logits_of_the_row_alone) {
    CtModelConfig c = tiny_encoder_config(CT_ARCH_ROBERTA);
    CtModel m;
    CHECK(ct_model_create(&m, &c, ct_ops_cpu(), 1, T, 0) == 0);
    tiny_randomize_params(&m, 4);
    const size_t V = (size_t)c.vocab_size;
    int32_t alone[5] = {5, 9, 2, 30, 17}, right[T], left[T], docs_right[T], docs_left[T];
    for (int t = 0; t < T; t++) {
        right[t] = t < 5 ? alone[t] : c.pad_token_id;
        docs_right[t] = t >= 5;
        left[t] = t < T - 5 ? c.pad_token_id : alone[t - (T - 5)];
        docs_left[t] = t < T - 5;
    }
    float *a = logits_of(&m, &(CtBatch){.tokens = alone, .B = 1, .T = 5});
    float *r = logits_of(&m, &(CtBatch){.tokens = right, .doc_ids = docs_right, .B = 1, .T = T});
    float *l = logits_of(&m, &(CtBatch){.tokens = left, .doc_ids = docs_left, .B = 1, .T = T});
    const double dr = max_abs_diff(a, r, 5 * V), dl = max_abs_diff(a, l + (size_t)(T - 5) * V, 5 * V);
    CHECK_MSG(dr < 1e-5 && dl < 1e-5, "padded right %.3g, left %.3g away from the row alone", dr, dl);
    ct_free(a);
    ct_free(r);
    ct_free(l);
    ct_model_free(&m);
}
