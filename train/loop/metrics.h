// What a run records: one JSON object per line in OUT/metrics.jsonl (a "train" line per step,
// an "eval" line per evaluation), and OUT/loss.svg, the train and validation loss against
// tokens seen, redrawn as training goes (a browser shows it; reload to update).
#pragma once
#include <stdint.h>
#include <stdio.h>

#include "train/loop/moe_step.h"
#include "train/objectives/objective.h"

typedef struct {
    double tokens, loss;
} CtCurvePoint;

// Multi-token prediction's depth curves beside the main ones: depth k's train (mtp_loss/k) and
// validation (val_mtp_loss/k) losses, k = 1..depth, at train[k-1] (n_train[k-1] points) and val[k-1].
typedef struct {
    int depth;
    CtCurvePoint *train[CT_MODEL_MAX_MTP_DEPTH], *val[CT_MODEL_MAX_MTP_DEPTH];
    int n_train[CT_MODEL_MAX_MTP_DEPTH], n_val[CT_MODEL_MAX_MTP_DEPTH];
    int cap_train[CT_MODEL_MAX_MTP_DEPTH], cap_val[CT_MODEL_MAX_MTP_DEPTH];
} CtDepthCurves;

typedef struct {
    char *jsonl_path, *svg_path;
    int fd;          // metrics.jsonl, opened for appending
    int failed;      // a write failed: nothing more is written, and `failure` says what
    char failure[1024];
    CtCurvePoint *train, *val;
    int n_train, n_val, cap_train, cap_val;
    CtDepthCurves depths;
    char title[128];
} CtMetrics;

// Every write is checked. A line goes out whole or not at all: one that cannot be written
// whole (a full disk) is cut back off the file, so metrics.jsonl always ends with a complete
// line. The first failure is kept in `failed`/`failure` and every later write is skipped; the
// writers return 0, or -1 once failed. The loop checks `failed` after each step and stops.
//
// Opens OUT/metrics.jsonl for appending. With resume_step >= 0, lines of later steps (from a
// run that went on past the checkpoint being resumed) are dropped first, and the curves are
// reloaded from what remains. 0, or -1 + error.
int ct_metrics_open(CtMetrics *m, const char *out_dir, int64_t resume_step, const char *title);
void ct_metrics_close(CtMetrics *m);
// moe: a Mixture-of-Experts model's routing over the step (aux_loss, router_z_loss, expert_load
// [layers][E], expert_load_max_over_mean [layers], moe_imbalance); NULL or a dense model's: none.
// mtp_loss[mtp_depth]: multi-token prediction's per-depth losses, written as "mtp_loss/1".."mtp_loss/D".
int ct_metrics_train(CtMetrics *m, int64_t step, int64_t tokens, double loss, double lr, double grad_norm,
                     double tokens_per_s, double mfu, double elapsed_s, const CtMoeStep *moe, const double *mtp_loss,
                     int mtp_depth);
// val_ppl = exp(val_loss) with with_perplexity (not for DPO, whose loss is no cross-entropy);
// val_mtp_loss[mtp_depth]: the per-depth validation losses, written as "val_mtp_loss/1".."/D".
int ct_metrics_eval(CtMetrics *m, int64_t step, int64_t tokens, double val_loss, int with_perplexity,
                    const double *val_mtp_loss, int mtp_depth);
// An objective's own line (train/objectives/objective.h), e.g. DPO's TRL metrics for a step
// ("train") or an evaluation ("eval"): rewards/chosen, rewards/rejected, rewards/accuracies,
// rewards/margins, logps/chosen, logps/rejected.
int ct_metrics_row(CtMetrics *m, int64_t step, int64_t tokens, const CtMetricRow *row);
// SFT: the share of held-out examples answered exactly (an "eval" line with exact_match).
int ct_metrics_exact_match(CtMetrics *m, int64_t step, int64_t tokens, double exact_match);
// Rewrites OUT/loss.svg (atomically; the old plot stays where the new one cannot be written).
// 0, or -1 (recorded in `failed` as a line write's failure is).
int ct_metrics_plot(CtMetrics *m);
// The SVG text for the given curves (free with ct_free()); used by ct_metrics_plot and tests.
// depths: the multi-token prediction depths' curves, drawn dashed beside the main ones (NULL: none).
char *ct_loss_svg(const CtCurvePoint *train, int n_train, const CtCurvePoint *val, int n_val,
                  const CtDepthCurves *depths, const char *title);
