// The reward objective with the dataset's per-pair margins (TRL's RewardTrainer "margin" column):
// pairs written with margins, served by the loader, scored by a tiny reward model through
// ct_reward_micro_step (training) and ct_reward_eval (`ctrain eval`, the run's evaluation's
// scoring), give the loss mean(−log σ(r_c − r_r − m)) computed here from the scores alone.
#include <math.h>

#include "core/error.h"
#include "data/loader/loader.h"
#include "data/shard/dataset.h"
#include "kernels/ops.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/loop/reward_eval.h"
#include "train/objectives/reward.h"
#include "train/objectives/step_batches.h"

enum { PAIRS = 8, T = 12 };

static double margin_of(int e) { return e % 4 == 0 ? 0 : (e - 3.5) * 0.75; }

// PAIRS pairs of small ids (the tiny model's vocabulary is 37), each with margin_of(e); all in train.
static int write_pairs(const char *dir, int with_margins) {
    CtDatasetSpec spec = {{CT_SHARD_DPO, 2, 37, 1, 16, 1, with_margins}, -1, 1000};
    CtDatasetWriter w;
    if (ct_dataset_writer_open(&w, dir, &spec) != 0) return -1;
    for (int e = 0; e < PAIRS; e++) {
        uint32_t p[4], c[5], r[3];
        for (int i = 0; i < 4; i++) p[i] = (uint32_t)(1 + (e * 7 + i * 3) % 36);
        for (int i = 0; i < 5; i++) c[i] = (uint32_t)(1 + (e * 5 + i * 11) % 36);
        for (int i = 0; i < 3; i++) r[i] = (uint32_t)(1 + (e * 13 + i * 5) % 36);
        if (ct_dataset_write_dpo(&w, CT_SPLIT_TRAIN, p, 2 + e % 3, c, 2 + e % 4, r, 1 + e % 3,
                                 with_margins ? margin_of(e) : 0) != 0)
            return -1;
    }
    return ct_dataset_writer_finish(&w, NULL);
}

static void reward_model(CtModel *m, int rows) {
    CtModelConfig c = tiny_config(CT_ARCH_LLAMA);
    c.reward_head = 1;
    c.reward_pad_id = -1;
    CHECK(ct_model_create(m, &c, ct_ops_cpu(), rows, T, 0) == 0);
    tiny_randomize_params(m, 17);
}

// −log σ(z) = log(1 + e^(−z)), written out here rather than through reward_loss.h.
static double minus_log_sigmoid(double z) { return z > 0 ? log1p(exp(-z)) : -z + log1p(exp(z)); }

// Micro-batch i of s scored by m: each row's score, read as the objective reads it.
static void scores_of(CtModel *m, const CtStepBatches *s, int i, float *scores) {
    int32_t seq[2 * PAIRS * T];
    int last[2 * PAIRS];
    const size_t at = (size_t)i * s->rows * T;
    ct_reward_rows(s->tokens + at, s->targets + at, s->rows, T, m->config.reward_pad_id, seq, last);
    CtBatch b = {.tokens = seq, .B = s->rows, .T = T};
    ct_model_reward_forward(m, &b, last, scores);
}

TEST(reward_margins, step_loss_is_the_mean_of_minus_log_sigmoid_of_the_gap_less_the_margin) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/pairs", ct_test_tmpdir());
    CHECK_MSG(write_pairs(dir, 1) == 0, "%s", ct_error_message());
    CtDataset d;
    CHECK_MSG(ct_dataset_open(&d, dir) == 0, "%s", ct_error_message());
    CtLoaderOptions o;
    ct_loader_default_options(&o);
    o.batch = 2;  // pairs a micro-batch; 2 micro-batches a step: 4 pairs
    o.seq_len = T;
    CtLoader l;
    CHECK_MSG(ct_loader_open(&l, &d, CT_SPLIT_TRAIN, &o) == 0, "%s", ct_error_message());
    CtModel m;
    reward_model(&m, 4);
    CtStepBatches s;
    ct_step_batches_init(&s, 2, 4, T);
    const double center = 0.03;
    for (int step = 0; step < 2; step++) {  // both steps of the epoch: all 8 pairs
        CHECK_EQ_INT(ct_step_batches_fetch(&s, &l), 0);
        CtRewardStats st;
        ct_reward_stats_init(&st);
        ct_model_zero_grad(&m);
        double want = 0, without = 0;
        for (int i = 0; i < 2; i++) {
            ct_reward_micro_step(&m, &s, i, center, 4, 1, &st);
            float sc[4];
            scores_of(&m, &s, i, sc);
            for (int p = 0; p < 2; p++) {
                const int64_t e = s.example_ids[i * 4 + 2 * p];
                CHECK(e >= 0 && e == s.example_ids[i * 4 + 2 * p + 1]);
                const double gap = (double)sc[2 * p] - sc[2 * p + 1], sum = (double)sc[2 * p] + sc[2 * p + 1];
                want += (minus_log_sigmoid(gap - margin_of((int)e)) + center * sum * sum) / 4;
                without += (minus_log_sigmoid(gap) + center * sum * sum) / 4;
            }
        }
        CHECK_MSG(fabs(st.loss_sum - want) <= 1e-12 * fmax(1, fabs(want)), "step %d: loss %.15g, formula %.15g", step,
                  st.loss_sum, want);
        CHECK_MSG(fabs(want - without) > 1e-3, "step %d: the margins change the loss by only %.3g", step, want - without);
        printf("    step %d: loss %.6f with the margins (formula %.6f), %.6f without\n", step, st.loss_sum, want, without);
    }
    ct_step_batches_free(&s);
    ct_model_free(&m);
    ct_loader_close(&l);
    ct_dataset_close(&d);
}

// The gradient follows the margin: the score head's gradient from the objective equals the one
// from d loss/d score = ∓σ(−(r_c − r_r − m))/pairs, pushed back by the model on its own.
TEST(reward_margins, step_gradient_is_that_of_the_margin_loss) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/pairs", ct_test_tmpdir());
    CHECK_MSG(write_pairs(dir, 1) == 0, "%s", ct_error_message());
    CtDataset d;
    CHECK_MSG(ct_dataset_open(&d, dir) == 0, "%s", ct_error_message());
    CtLoaderOptions o;
    ct_loader_default_options(&o);
    o.batch = 4;
    o.seq_len = T;
    CtLoader l;
    CHECK_MSG(ct_loader_open(&l, &d, CT_SPLIT_TRAIN, &o) == 0, "%s", ct_error_message());
    CtModel m;
    reward_model(&m, 8);
    CtStepBatches s;
    ct_step_batches_init(&s, 1, 8, T);
    CHECK_EQ_INT(ct_step_batches_fetch(&s, &l), 0);
    CtRewardStats st;
    ct_reward_stats_init(&st);
    ct_model_zero_grad(&m);
    ct_reward_micro_step(&m, &s, 0, 0, 4, 1, &st);
    float *objective = malloc(m.n_params * sizeof(float));
    memcpy(objective, m.grads, m.n_params * sizeof(float));
    float sc[8], d_scores[8];
    int32_t seq[8 * T];
    int last[8];
    ct_reward_rows(s.tokens, s.targets, 8, T, -1, seq, last);
    CtBatch b = {.tokens = seq, .B = 8, .T = T};
    ct_model_zero_grad(&m);
    ct_model_reward_forward(&m, &b, last, sc);
    for (int p = 0; p < 4; p++) {
        const double z = (double)sc[2 * p] - sc[2 * p + 1] - margin_of((int)s.example_ids[2 * p]);
        const double sig = 1 / (1 + exp(z));  // σ(−z)
        d_scores[2 * p] = (float)(-sig / 4), d_scores[2 * p + 1] = (float)(sig / 4);
    }
    ct_model_reward_backward(&m, last, d_scores);
    double worst = 0, norm = 0;
    for (size_t k = 0; k < m.n_params; k++) {
        worst = fmax(worst, fabs((double)objective[k] - m.grads[k]));
        norm = fmax(norm, fabs((double)m.grads[k]));
    }
    CHECK_MSG(norm > 1e-4 && worst <= 1e-6 * norm, "largest gradient difference %.3g (largest entry %.3g)", worst, norm);
    free(objective);
    ct_step_batches_free(&s);
    ct_model_free(&m);
    ct_loader_close(&l);
    ct_dataset_close(&d);
}

// `ctrain eval --checkpoint RM --data PAIRS` (and so the loss a run's evaluation logs): every pair
// in file order, the loss with each pair's margin; TRL's "margin" metric stays mean(r_c − r_r).
// A dataset without margins gives the plain loss.
TEST(reward_margins, evaluation_loss_uses_each_pairs_margin) {
    CtModel m;
    reward_model(&m, 2);
    for (int with = 0; with < 2; with++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/pairs%d", ct_test_tmpdir(), with);
        CHECK_MSG(write_pairs(dir, with) == 0, "%s", ct_error_message());
        CtDataset d;
        CHECK_MSG(ct_dataset_open(&d, dir) == 0, "%s", ct_error_message());
        CHECK_EQ_INT(d.dpo_margins, with);
        CtRewardMetrics got;
        CHECK_MSG(ct_reward_eval(&m, &d, CT_SPLIT_TRAIN, T, 0, &got) == 0, "%s", ct_error_message());
        CHECK_EQ_INT(got.pairs, PAIRS);
        // the same pairs in file order, one at a time, scored here
        CtLoaderOptions o;
        ct_loader_default_options(&o);
        o.batch = 1;
        o.seq_len = T;
        o.shuffle = 0;
        CtLoader l;
        CHECK_EQ_INT(ct_loader_open(&l, &d, CT_SPLIT_TRAIN, &o), 0);
        CtStepBatches s;
        ct_step_batches_init(&s, 1, 2, T);
        double loss = 0, gap_sum = 0;
        for (int e = 0; e < PAIRS; e++) {
            CHECK_EQ_INT(ct_step_batches_fetch(&s, &l), 0);
            CHECK_EQ_INT(s.example_ids[0], e);
            float sc[2];
            scores_of(&m, &s, 0, sc);
            const double gap = (double)sc[0] - sc[1];
            loss += minus_log_sigmoid(gap - (with ? margin_of(e) : 0)) / PAIRS;
            gap_sum += gap;
        }
        CHECK_NEAR(got.loss, loss, 1e-12);
        CHECK_NEAR(got.margin, gap_sum / PAIRS, 1e-12);
        printf("    %s margins: evaluation loss %.6f, mean score gap %.6f\n", with ? "with" : "without", got.loss,
               got.margin);
        ct_step_batches_free(&s);
        ct_loader_close(&l);
        ct_dataset_close(&d);
    }
    ct_model_free(&m);
}
