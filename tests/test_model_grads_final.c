// The backward's progress reports (CtModel.grads_final), which data parallelism uses to start
// all-reducing gradient buckets while backward goes on: every report must be true (the
// gradients from the reported index on do not change any more in this backward), the reports
// must move toward the start of the buffer, and the last one must be 0.
#include <string.h>

#include "core/alloc.h"
#include "kernels/ops.h"
#include "tests/model_fixture.h"
#include "tests/test.h"

typedef struct {
    const CtModel *m;
    size_t from[64];
    float *snapshot[64];
    int n;
} Reports;

static void record(void *ctx, size_t final_from) {
    Reports *r = ctx;
    if (r->n == 64) return;
    r->from[r->n] = final_from;
    r->snapshot[r->n] = ct_alloc(r->m->n_params * sizeof(float));
    memcpy(r->snapshot[r->n], r->m->dev_grads, r->m->n_params * sizeof(float));
    r->n++;
}

static void reports_case_styled(CtArch arch, int tie, int mtp_depth, CtMtpStyle style) {
    CtModelConfig c = tiny_config(arch);
    c.tie_embeddings = tie;
    c.mtp_depth = mtp_depth;
    c.mtp_style = style;
    CtModel m;
    CHECK_EQ_INT(ct_model_create(&m, &c, ct_ops_cpu(), 2, 8, 0), 0);
    tiny_randomize_params(&m, 3);
    CtRng rng;
    ct_rng_seed(&rng, 4);
    TinyBatch tb;
    tiny_batch(&tb, &rng, 2, 8, c.vocab_size, 1);
    m.mtp_weight = 0.3f;  // the modules' backward runs before the head's report: their tensors follow the head's
    Reports r = {.m = &m};
    m.grads_final = record;
    m.grads_final_ctx = &r;
    ct_model_zero_grad(&m);
    ct_model_forward(&m, &tb.batch);
    ct_model_backward(&m);
    CHECK_MSG(r.n == c.n_layer + 2, "%d reports for %d blocks (want head, each block, end)", r.n, c.n_layer);
    CHECK(r.n > 0 && r.from[r.n - 1] == 0);
    for (int i = 0; i < r.n; i++) {
        if (i > 0) CHECK_MSG(r.from[i] < r.from[i - 1], "report %d (%zu) does not move toward the start", i, r.from[i]);
        size_t n = m.n_params - r.from[i];
        CHECK_MSG(memcmp(r.snapshot[i] + r.from[i], m.grads + r.from[i], n * sizeof(float)) == 0,
                  "report %d said the gradients from %zu on were final, and they changed later", i, r.from[i]);
        ct_free(r.snapshot[i]);
    }
    CHECK(r.from[0] < m.n_params);
    ct_model_free(&m);
}
static void reports_case(CtArch arch, int tie, int mtp_depth) {
    reports_case_styled(arch, tie, mtp_depth, CT_MTP_SEQUENTIAL);
}

TEST(model, backward_reports_where_gradients_are_final) {
    reports_case(CT_ARCH_GPT2, 1, 0);
    reports_case(CT_ARCH_GPT2, 0, 0);
    reports_case(CT_ARCH_LLAMA, 0, 0);
}

TEST(model, backward_reports_where_gradients_are_final_with_mtp) {
    reports_case(CT_ARCH_GPT2, 1, 2);  // the tied head (the embedding) gets every depth's gradient
    reports_case(CT_ARCH_LLAMA, 0, 2);
}

// Parallel heads add into the last block's input gradient: their backward must be over before
// the head's report, not when blocks_backward reaches that block.
TEST(model, backward_reports_where_gradients_are_final_with_parallel_heads) {
    reports_case_styled(CT_ARCH_GPT2, 1, 2, CT_MTP_PARALLEL);
    reports_case_styled(CT_ARCH_LLAMA, 0, 2, CT_MTP_PARALLEL);
}
