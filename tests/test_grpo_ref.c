// GRPO's and RLOO's loss, gradient, advantages and metrics against TRL itself
// (tests/ref/grpo_trl_ref.py): the C side computes everything on the vectors of
// tests/grpo_vectors.h and writes inputs and results to a JSON file; the script runs TRL's own
// GRPOTrainer._compute_loss and RLOOTrainer._compute_loss (autograd for the gradient) and TRL's
// advantage code, read out of the installed trainer files, and compares to 1e-6. Skipped where
// torch or trl is not importable.
#include <math.h>
#include <stdio.h>

#include "tests/grpo_vectors.h"
#include "tests/hf_fixture.h"
#include "tests/test.h"
#include "train/objectives/grpo_advantages.h"
#include "train/objectives/grpo_loss.h"

enum { N = GV_B * GV_T };
static const int max_completion_length = 8;
static const double dapo_tokens = 30;

static void write_array(FILE *f, const char *name, const double *x, int n) {
    fprintf(f, "\"%s\": [", name);
    for (int i = 0; i < n; i++) fprintf(f, "%s%.17g", i ? ", " : "", x[i]);
    fprintf(f, "]");
}

static void write_metric(FILE *f, const char *name, double v) {
    if (isnan(v)) fprintf(f, ", \"%s\": null", name);
    else fprintf(f, ", \"%s\": %.17g", name, v);
}

static void write_metrics(FILE *f, const CtGrpoMetrics *m) {
    CtGrpoMetricMeans mm = ct_grpo_metrics_means(m);
    write_metric(f, "kl", mm.kl);
    write_metric(f, "clip_ratio/low_mean", mm.low_mean);
    write_metric(f, "clip_ratio/high_mean", mm.high_mean);
    write_metric(f, "clip_ratio/region_mean", mm.region_mean);
    write_metric(f, "clip_ratio/low_min", mm.low_min);
    write_metric(f, "clip_ratio/high_max", mm.high_max);
}

static void write_inputs(FILE *f, const double *old, const double *ref) {
    double mask[N];
    for (int k = 0; k < N; k++) mask[k] = gv_mask[k];
    fprintf(f, "\"B\": %d, \"T\": %d, \"G\": %d, \"epsilon\": %.17g, \"epsilon_high\": %.17g, ", GV_B, GV_T, GV_G,
            gv_eps_low, gv_eps_high);
    fprintf(f, "\"max_completion_length\": %d, \"num_items_in_batch\": %.17g,\n", max_completion_length, dapo_tokens);
    write_array(f, "rewards", gv_rewards, GV_B), fprintf(f, ",\n");
    write_array(f, "mask", mask, N), fprintf(f, ",\n");
    write_array(f, "logp", gv_logp, N), fprintf(f, ",\n");
    write_array(f, "old_logp", old, N), fprintf(f, ",\n");
    write_array(f, "ref_logp", ref, N), fprintf(f, ",\n");
}

static void write_advantages(FILE *f) {
    static const char *const scales[] = {"group", "batch", "none"};
    double adv[GV_B];
    fprintf(f, "\"advantages\": [");
    for (int s = 0; s < 3; s++) {
        double frac = ct_grpo_advantages(adv, gv_rewards, GV_GROUPS, GV_G, (CtScaleRewards)s);
        fprintf(f, "%s{\"algo\": \"grpo\", \"scale_rewards\": \"%s\", \"frac_reward_zero_std\": %.17g, ", s ? ",\n" : "",
                scales[s], frac);
        write_array(f, "values", adv, GV_B), fprintf(f, "}");
    }
    for (int norm = 0; norm < 2; norm++)
        for (int beta_i = 0; beta_i < 2; beta_i++) {
            double old[N], ref[N], r[GV_B], kl_sum = 0, kl_count = 0;
            gv_old_and_ref(old, ref);
            for (int b = 0; b < GV_B; b++) r[b] = gv_rewards[b];
            const double beta = beta_i ? 0.05 : 0;
            if (beta != 0) ct_rloo_kl_penalty(r, old, ref, gv_mask, GV_B, GV_T, beta, &kl_sum, &kl_count);
            double frac = ct_rloo_advantages(adv, r, GV_GROUPS, GV_G, norm);
            fprintf(f, ",\n{\"algo\": \"rloo\", \"normalize_advantages\": %d, \"beta\": %g, \"frac_reward_zero_std\": "
                       "%.17g", norm, beta, frac);
            write_metric(f, "kl", kl_count > 0 ? kl_sum / kl_count : NAN);
            fprintf(f, ", ");
            write_array(f, "values", adv, GV_B), fprintf(f, "}");
        }
    fprintf(f, "],\n");
}

static void write_losses(FILE *f, const double *old, const double *ref) {
    static const char *const types[] = {"grpo", "bnpo", "dr_grpo", "dapo"};
    double adv[GV_B], dlogp[N];
    ct_grpo_advantages(adv, gv_rewards, GV_GROUPS, GV_G, CT_SCALE_REWARDS_GROUP);
    fprintf(f, "\"losses\": [");
    int first = 1;
    for (int t = 0; t < 4; t++)
        for (int beta_i = 0; beta_i < 2; beta_i++)
            for (int mu = 1; mu <= 2; mu++) {
                CtGrpoLossConfig c = {(CtGrpoLossType)t, gv_eps_low, gv_eps_high, beta_i ? 0.04 : 0,
                                      max_completion_length};
                CtGrpoMetrics m;
                ct_grpo_metrics_init(&m);
                double loss = ct_grpo_loss(&c, dlogp, gv_logp, mu == 2 ? old : NULL, ref, adv, gv_mask, GV_B, GV_T,
                                           dapo_tokens, &m);
                fprintf(f, "%s{\"algo\": \"grpo\", \"loss_type\": \"%s\", \"beta\": %g, \"num_iterations\": %d, "
                           "\"loss\": %.17g",
                        first ? "" : ",\n", types[t], c.beta, mu, loss);
                write_metrics(f, &m);
                fprintf(f, ", ");
                write_array(f, "advantages", adv, GV_B), fprintf(f, ", ");
                write_array(f, "grad", dlogp, N), fprintf(f, "}");
                first = 0;
            }
    double rloo_adv[GV_B], old_seq[GV_B];
    ct_rloo_advantages(rloo_adv, gv_rewards, GV_GROUPS, GV_G, 0);
    for (int b = 0; b < GV_B; b++) {
        old_seq[b] = 0;
        for (int t = 0; t < GV_T; t++) old_seq[b] += gv_mask[b * GV_T + t] ? old[b * GV_T + t] : 0;
    }
    for (int mu = 1; mu <= 2; mu++) {
        CtGrpoLossConfig c = {CT_GRPO_LOSS_GRPO, gv_eps_low, gv_eps_high, 0, max_completion_length};
        CtGrpoMetrics m;
        ct_grpo_metrics_init(&m);
        double loss = ct_rloo_loss(&c, dlogp, gv_logp, mu == 2 ? old_seq : NULL, rloo_adv, gv_mask, GV_B, GV_T, &m);
        fprintf(f, ",\n{\"algo\": \"rloo\", \"num_iterations\": %d, \"loss\": %.17g", mu, loss);
        write_metrics(f, &m);
        fprintf(f, ", ");
        write_array(f, "advantages", rloo_adv, GV_B), fprintf(f, ", ");
        write_array(f, "grad", dlogp, N), fprintf(f, "}");
    }
    fprintf(f, "]\n");
}

TEST(grpo_ref, loss_gradient_advantages_and_metrics_equal_trls_own_code) {
    double old[N], ref[N];
    gv_old_and_ref(old, ref);
    const char *path = ct_test_path("grpo_cases.json");
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fprintf(f, "{");
    write_inputs(f, old, ref);
    write_advantages(f);
    write_losses(f, old, ref);
    fprintf(f, "}\n");
    CHECK(fclose(f) == 0);
    char args[4096];
    snprintf(args, sizeof args, "'%s'", path);
    hf_fixture_ref("grpo_trl_ref.py", args);
}
