// Multi-token prediction (model.mtp_depth, train/model/model_mtp.c): a model without modules is
// the model it always was; the modules' parameters follow the main model's; each depth's loss
// counts the rows whose shifted target counts (masks, weights and documents shift with k); module
// 1 computes the same in a deeper model; a checkpoint with two modules saves and loads.
// The gradients of main + λ/D·Σ_k L_k are checked in tests/test_model_grad.c.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/ops.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/interop/checkpoint_io.h"
#include "train/interop/checkpoint_meta.h"

enum { B = 2, T = 8 };

static CtModelConfig mtp_config(CtArch arch, int depth) {
    CtModelConfig c = tiny_config(arch);
    c.mtp_depth = depth;
    return c;
}

// Random tokens; targets the next token of the row (the last one: a random id).
static void plain_batch(TinyBatch *tb, int V, uint64_t seed) {
    CtRng rng;
    ct_rng_seed(&rng, seed);
    memset(tb, 0, sizeof *tb);
    tb->B = B;
    tb->T = T;
    for (int n = 0; n < B * T; n++) tb->tokens[n] = (int32_t)(ct_rng_next(&rng) % (uint64_t)V);
    for (int n = 0; n < B * T; n++)
        tb->targets[n] = n % T < T - 1 ? tb->tokens[n + 1] : (int32_t)(ct_rng_next(&rng) % (uint64_t)V);
    tb->batch = (CtBatch){.tokens = tb->tokens, .targets = tb->targets, .B = B, .T = T};
}

static void depth_zero_is_the_model_without_modules(CtArch arch) {
    CtModelConfig c0 = mtp_config(arch, 0), c2 = mtp_config(arch, 2);
    CtModel m0, m2;
    CHECK(ct_model_create(&m0, &c0, ct_ops_cpu(), B, T, 0) == 0);
    CHECK(ct_model_create(&m2, &c2, ct_ops_cpu(), B, T, 0) == 0);
    if (ct_test_failed()) return;
    CHECK(m0.mtp == NULL && m0.w.mtp == NULL);
    // the main model's tensors come first, named, shaped and placed as without modules
    CHECK(m2.n_tensors > m0.n_tensors && m2.n_params > m0.n_params);
    for (int i = 0; i < m0.n_tensors; i++) {
        CHECK_MSG(strcmp(m0.table[i].name, m2.table[i].name) == 0 && m0.table[i].offset == m2.table[i].offset &&
                      m0.table[i].numel == m2.table[i].numel,
                  "tensor %d: %s vs %s", i, m0.table[i].name, m2.table[i].name);
    }
    const size_t main_floats = m0.n_params;
    ct_model_init(&m0, 5);
    ct_model_init(&m2, 5);
    CHECK(memcmp(m0.params, m2.params, main_floats * sizeof(float)) == 0);  // the same seed draws the same
    TinyBatch tb;
    plain_batch(&tb, c0.vocab_size, 9);
    ct_model_zero_grad(&m0);
    ct_model_zero_grad(&m2);
    const float l0 = ct_model_forward(&m0, &tb.batch);
    ct_model_backward(&m0);
    m2.mtp_weight = 0;  // no objective trains the modules: they do not run
    const float l2 = ct_model_forward(&m2, &tb.batch);
    ct_model_backward(&m2);
    CHECK_MSG(memcmp(&l0, &l2, sizeof l0) == 0, "main loss %.9g without modules, %.9g with", l0, l2);
    CHECK(m2.mtp_loss[0] == 0 && m2.mtp_loss_count[0] == 0);
    CHECK(memcmp(m0.grads, m2.grads, main_floats * sizeof(float)) == 0);
    int nonzero = 0;
    for (size_t i = main_floats; i < m2.n_params; i++) nonzero += m2.grads[i] != 0;
    CHECK_EQ_INT(nonzero, 0);
    // with λ the main tensors' gradients change, the main loss does not
    m2.mtp_weight = 0.3f;
    ct_model_zero_grad(&m2);
    const float l2b = ct_model_forward(&m2, &tb.batch);
    ct_model_backward(&m2);
    CHECK(memcmp(&l0, &l2b, sizeof l0) == 0);
    CHECK(m2.mtp_loss[0] > 0 && m2.mtp_loss[1] > 0);
    CHECK(memcmp(m0.grads, m2.grads, main_floats * sizeof(float)) != 0);
    // the checkpoint's config JSON of a model without modules does not name them
    char *json = ct_model_config_json(&c0);
    CHECK(json && !strstr(json, "mtp_depth"));
    free(json);
    ct_model_free(&m0);
    ct_model_free(&m2);
}
TEST(mtp, depth_zero_is_the_model_without_modules_llama) { depth_zero_is_the_model_without_modules(CT_ARCH_LLAMA); }
TEST(mtp, depth_zero_is_the_model_without_modules_gpt2) { depth_zero_is_the_model_without_modules(CT_ARCH_GPT2); }

TEST(mtp, modules_are_named_as_deepseek_v3) {
    CtModelConfig c = mtp_config(CT_ARCH_LLAMA, 2);
    CtModel m;
    CHECK(ct_model_create(&m, &c, ct_ops_cpu(), 1, 4, 0) == 0);
    if (ct_test_failed()) return;
    const char *want[] = {"model.layers.2.enorm.weight", "model.layers.2.hnorm.weight", "model.layers.2.eh_proj.weight",
                          "model.layers.2.self_attn.q_proj.weight", "model.layers.2.mlp.down_proj.weight",
                          "model.layers.2.shared_head.norm.weight", "model.layers.3.eh_proj.weight",
                          "model.layers.3.shared_head.norm.weight"};
    for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
        int found = -1;
        for (int i = 0; i < m.n_tensors; i++)
            if (strcmp(m.table[i].name, want[w]) == 0) found = i;
        CHECK_MSG(found >= 0, "no tensor %s", want[w]);
        if (found >= 0 && strstr(want[w], "eh_proj"))
            CHECK(m.table[found].shape[0] == c.d_model && m.table[found].shape[1] == 2 * c.d_model);
    }
    CHECK(strcmp(m.table[m.n_tensors - 1].name, "model.layers.3.shared_head.norm.weight") == 0);
    ct_model_free(&m);
}

// Forward of `batch` with only the targets at `keep` (a [B·T] 0/1 array) counting, by loss mask.
static float depth_loss_with_mask(CtModel *m, TinyBatch *tb, const uint8_t *keep, int k, float *count) {
    memcpy(tb->mask, keep, B * T);
    tb->batch.loss_mask = tb->mask;
    ct_model_forward(m, &tb->batch);
    tb->batch.loss_mask = NULL;
    *count = m->mtp_loss_count[k - 1];
    return m->mtp_loss[k - 1];
}

// Row i at depth k predicts target i+k: with one target j kept by the mask, depth k counts row
// j−k alone (none when j < k), and the mean over every row equals the mean of those single rows.
// With documents, a row whose i+k lies in the next document does not count.
static void check_masks_shift(const int32_t *doc_ids) {
    CtModelConfig c = mtp_config(CT_ARCH_LLAMA, 2);
    CtModel m;
    CHECK(ct_model_create(&m, &c, ct_ops_cpu(), B, T, 0) == 0);
    if (ct_test_failed()) return;
    tiny_randomize_params(&m, 7);
    m.mtp_weight = 0.3f;
    TinyBatch tb;
    plain_batch(&tb, c.vocab_size, 11);
    if (doc_ids) {
        memcpy(tb.doc_ids, doc_ids, sizeof(int32_t) * B * T);
        tb.batch.doc_ids = tb.doc_ids;
    }
    for (int k = 1; k <= 2; k++) {
        uint8_t all[B * T];
        memset(all, 1, sizeof all);
        float count_all;
        const float mean_all = depth_loss_with_mask(&m, &tb, all, k, &count_all);
        int expected = 0;
        double sum = 0;
        for (int j = 0; j < B * T; j++) {
            uint8_t one[B * T] = {0};
            one[j] = 1;
            float count;
            const float loss = depth_loss_with_mask(&m, &tb, one, k, &count);
            const int i = j % T - k;  // the row that predicts target j at depth k
            const int counts = i >= 0 && (!doc_ids || doc_ids[j] == doc_ids[j - k]);
            CHECK_MSG((int)count == counts, "depth %d, target %d: %g rows counted, %d expected", k, j, count, counts);
            if (!counts) CHECK(loss == 0);
            expected += counts;
            sum += loss;
        }
        CHECK_MSG((int)count_all == expected, "depth %d: %g rows counted, %d expected", k, count_all, expected);
        const double rel = fabs(mean_all - sum / expected) / (sum / expected);
        CHECK_MSG(rel < 1e-5, "depth %d: mean %.7g over all, %.7g over single rows", k, mean_all, sum / expected);
    }
    ct_model_free(&m);
}
TEST(mtp, masks_shift_with_depth) { check_masks_shift(NULL); }
TEST(mtp, predictions_across_a_document_boundary_do_not_count) {
    const int32_t docs[B * T] = {0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 2};
    check_masks_shift(docs);
}

// Module 1 of a two-module model computes what the one module of a one-module model with the same
// parameters computes: each depth's loss is its own forward's.
TEST(mtp, first_module_is_the_same_in_a_deeper_model) {
    CtModelConfig c1 = mtp_config(CT_ARCH_LLAMA, 1), c2 = mtp_config(CT_ARCH_LLAMA, 2);
    CtModel m1, m2;
    CHECK(ct_model_create(&m1, &c1, ct_ops_cpu(), B, T, 0) == 0);
    CHECK(ct_model_create(&m2, &c2, ct_ops_cpu(), B, T, 0) == 0);
    if (ct_test_failed()) return;
    tiny_randomize_params(&m2, 3);
    memcpy(m1.params, m2.params, m1.n_params * sizeof(float));  // m1's layout is m2's first part
    m1.mtp_weight = m2.mtp_weight = 0.3f;
    TinyBatch tb;
    plain_batch(&tb, c1.vocab_size, 13);
    const float main1 = ct_model_forward(&m1, &tb.batch), first1 = m1.mtp_loss[0];
    const float main2 = ct_model_forward(&m2, &tb.batch), first2 = m2.mtp_loss[0];
    CHECK(main1 == main2);
    CHECK_MSG(first1 == first2, "module 1: %.9g alone, %.9g with a second", first1, first2);
    CHECK(m2.mtp_loss[1] > 0 && m2.mtp_loss[1] != first2);
    CHECK(m1.mtp_loss_count[0] == B * (T - 1) && m2.mtp_loss_count[1] == B * (T - 2));
    ct_model_free(&m1);
    ct_model_free(&m2);
}

TEST(mtp, checkpoint_with_two_modules_saves_and_loads) {
    CtModelConfig c = mtp_config(CT_ARCH_LLAMA, 2);
    CtModel m, back;
    CHECK(ct_model_create(&m, &c, ct_ops_cpu(), B, T, 0) == 0);
    if (ct_test_failed()) return;
    tiny_randomize_params(&m, 17);
    m.mtp_weight = 0.3f;
    TinyBatch tb;
    plain_batch(&tb, c.vocab_size, 19);
    const float loss = ct_model_forward(&m, &tb.batch), d1 = m.mtp_loss[0], d2 = m.mtp_loss[1];
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    const char *path = ct_test_path("mtp.h5");
    CHECK_MSG(ct_checkpoint_save(path, &m, NULL, &meta) == 0, "%s", ct_error_message());
    CtCheckpointMeta read = CT_CHECKPOINT_META_INIT;
    CHECK_MSG(ct_checkpoint_load(path, &back, ct_ops_cpu(), B, T, 0, NULL, &read) == 0, "%s", ct_error_message());
    ct_checkpoint_meta_free(&read);
    if (ct_test_failed()) return;
    CHECK_EQ_INT(back.config.mtp_depth, 2);
    back.mtp_weight = 0.3f;  // λ is the objective's, not the checkpoint's
    CHECK(back.n_params == m.n_params && memcmp(back.params, m.params, m.n_params * sizeof(float)) == 0);
    const float loss2 = ct_model_forward(&back, &tb.batch);
    CHECK(loss2 == loss && back.mtp_loss[0] == d1 && back.mtp_loss[1] == d2);
    ct_model_free(&m);
    ct_model_free(&back);
}

TEST(mtp, config_without_the_key_reads_as_no_modules) {
    CtModelConfig c = mtp_config(CT_ARCH_LLAMA, 2), back;
    char *json = ct_model_config_json(&c);
    CHECK(json && strstr(json, "\"mtp_depth\":2"));
    CHECK(ct_model_config_parse_json(json, &back, "test") == 0 && back.mtp_depth == 2);
    free(json);
    c.mtp_depth = 0;
    json = ct_model_config_json(&c);
    CHECK(ct_model_config_parse_json(json, &back, "test") == 0 && back.mtp_depth == 0);
    free(json);
    c.mtp_depth = CT_MODEL_MAX_MTP_DEPTH + 1;
    CHECK(ct_model_config_validate(&c) != 0);
    CHECK_CONTAINS(ct_error_message(), "model.mtp_depth");
}
