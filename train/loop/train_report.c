// What a run reports and writes as it goes (train/loop/train_run.h): samples, the line of each
// step (metrics.jsonl, the progress line), evaluations, checkpoints and best.h5, and the summary
// or the error it ends with.
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/timer.h"
#include "train/dist/dist.h"
#include "train/interop/checkpoint_io.h"
#include "train/loop/run_dir.h"
#include "train/loop/train_common.h"
#include "train/loop/train_run.h"

void ct_train_print_samples(CtRun *r, const char *when) {
    const CtRunConfig *cfg = r->cfg;
    if (!r->have_tokenizer || cfg->train.n_samples == 0 || !r->objective->text_samples) return;
    CtSampling s = {cfg->train.sample_temperature, 0, 1.0f};
    int32_t eot = (int32_t)r->data.eot_token;
    for (int i = 0; i < cfg->train.n_samples; i++) {
        char *text = ct_train_sample_text(&r->model, &r->tokenizer, cfg->train.sample_prompt, eot,
                                          cfg->train.sample_tokens, &s, &r->sample_rng);
        for (char *c = text; *c; c++)  // an untrained model emits any byte: keep the log readable
            if ((unsigned char)*c < 0x20 && *c != '\n') *c = ' ';
        ct_log("sample %d (%s): %s", i + 1, when, text);
        ct_free(text);
    }
}

void ct_train_record_step(CtRun *r, const CtStepResult *res, double loss, double norm, double dt, int eval_now) {
    const CtRunConfig *cfg = r->cfg;
    r->compute_time += dt;
    double tps = r->tokens_per_step / dt;
    r->ema_tps = r->step == r->first_step + 1 ? tps : 0.9 * r->ema_tps + 0.1 * tps;
    double mfu = r->peak_flops > 0 ? r->flops_per_step / dt / r->peak_flops : NAN;
    if (!r->lead) return;
    ct_metrics_train(&r->metrics, r->step, r->tokens_seen, loss, r->opt.lr, norm, tps, mfu,
                     ct_time_now() - r->start_time, &r->moe, res->mtp_loss, res->mtp_depth);
    ct_divergence_check(&r->divergence, cfg, r->step, loss, norm, r->tty);
    if (res->row.n) ct_metrics_row(&r->metrics, r->step, r->tokens_seen, &res->row);
    if (r->tty || eval_now || r->step % r->log_every == 0 || r->step == r->first_step + 1) {
        char eta[32], mem[32], imb[32] = "";
        if (r->moe.n_layers) snprintf(imb, sizeof imb, " | imb %.2f", r->moe.imbalance);  // the worst MoE layer's max/mean load
        ct_format_duration(eta, sizeof eta, (double)(cfg->train.max_steps - r->step) * r->tokens_per_step / r->ema_tps);
        ct_format_bytes(mem, sizeof mem, (double)r->ops->memory_peak());
        fprintf(stderr, "%sstep %6lld/%lld | loss %.4f%s | lr %.2e | norm %.3f%s | %.0f tok/s | MFU %.1f%% | mem %s | ETA %s%s",
                r->tty ? "\r" : "", (long long)r->step, (long long)cfg->train.max_steps, loss, res->progress, r->opt.lr,
                norm, imb,
                r->ema_tps, 100 * mfu, mem, eta, r->tty && !eval_now ? "\033[K" : "\n");
    }
}

int ct_train_save_checkpoint(CtRun *r, const char *path, int with_optimizer) {
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    ct_checkpoint_meta_init(&meta);
    meta.step = r->step;
    meta.tokens_seen = r->tokens_seen;
    meta.loader = r->have_prompts ? ct_prompt_loader_state(&r->prompts) : ct_loader_state(&r->train);
    memcpy(meta.rng, r->sample_rng.s, sizeof meta.rng);
    meta.train_loss = r->last_loss;
    meta.val_loss = r->last_val;
    meta.best_val_loss = r->best_val;
    meta.tokenizer_hash = r->data.tokenizer_hash;
    meta.run_config_json = (char *)r->config_json;  // borrowed: meta is not freed
    meta.tokenizer_json = r->tokenizer_json;
    meta.chat_template_json = r->chat_template_json;
    meta.generation_config_json = r->generation_config_json;
    // A model on a device: its host mirror is brought up to date, the moments copied out.
    ct_model_sync_to_host(&r->model);
    CtAdamW host_opt;
    const int device = with_optimizer && !r->opt.ops->host_memory;
    if (device) ct_adamw_host_snapshot(&r->opt, &host_opt);
    int rc = ct_checkpoint_save(path, &r->model, with_optimizer ? (device ? &host_opt : &r->opt) : NULL, &meta);
    if (device) {
        ct_free(host_opt.m);
        ct_free(host_opt.v);
    }
    if (rc == 0 && with_optimizer) snprintf(r->last_checkpoint, sizeof r->last_checkpoint, "%s", path);
    return rc;
}

// best.h5: the model with the lowest validation loss so far, the start (step 0) included, so
// a run that only gets worse keeps its starting model.
static int keep_if_best(CtRun *r) {
    if (!(r->last_val < r->best_val)) return 0;
    r->best_val = r->last_val;
    char best[2048];
    ct_path_join(best, sizeof best, r->cfg->run.out_dir, "best.h5");
    return ct_train_save_checkpoint(r, best, 0);
}

// " (perplexity P)" after a validation loss, or nothing where it means nothing (DPO's loss).
static const char *perplexity_note(const CtRun *r, char *buf, size_t size) {
    if (!r->objective->cross_entropy) return "";
    snprintf(buf, size, " (perplexity %.1f)", exp(r->last_val));
    return buf;
}

// The objective's exact match of greedy answers (sft), logged and recorded.
static void report_exact_match(CtRun *r, int show, int keep) {
    double em = r->objective->exact_match ? r->objective->exact_match(&r->obj, show) : NAN;
    if (isnan(em)) return;
    if (keep) r->last_exact_match = em;
    ct_metrics_exact_match(&r->metrics, r->step, r->tokens_seen, em);
    ct_log("step %6lld | exact match %.1f%% on held-out examples", (long long)r->step, 100 * em);
}

// " | mtp 3.1234 3.5678": each multi-token prediction depth's validation loss ("" without modules).
static void depth_note(const CtObjectiveRun *o, char *buf, size_t size) {
    buf[0] = '\0';
    for (int k = 0; k < o->val_mtp_depth; k++)
        snprintf(buf + strlen(buf), size - strlen(buf), "%s%.4f", k ? " " : " | mtp ", o->val_mtp_loss[k]);
}

int ct_train_evaluate(CtRun *r) {
    const CtRunConfig *cfg = r->cfg;
    if (!r->objective->evaluate) {  // no loss to validate (grpo): its own evaluation alone, on every rank
        double em = r->objective->exact_match(&r->obj, 0);
        if (r->grpo.eval_failed) return -1;
        if (!r->lead || isnan(em)) return 0;
        if (r->step > 0) r->last_exact_match = em;
        ct_metrics_exact_match(&r->metrics, r->step, r->tokens_seen, em);
        ct_log("step %6lld | exact match %.1f%% on held-out prompts (greedy answers)", (long long)r->step, 100 * em);
        if (r->step > 0) ct_metrics_plot(&r->metrics);
        return 0;
    }
    int failed = 0;
    r->last_val = r->objective->evaluate(&r->obj, &failed);  // every rank: its rows of the validation batches
    if (failed) return -1;
    if (!r->lead) return 0;
    ct_metrics_eval(&r->metrics, r->step, r->tokens_seen, r->last_val, r->objective->cross_entropy,
                    r->obj.val_mtp_loss, r->obj.val_mtp_depth);
    char ppl[64], depths[24 * CT_MODEL_MAX_MTP_DEPTH + 16];
    depth_note(&r->obj, depths, sizeof depths);
    if (r->step == 0) {  // the starting model
        ct_log("step %6d | val loss %.4f%s%s at %s", 0, r->last_val, perplexity_note(r, ppl, sizeof ppl), depths,
               cfg->train.init_from[0] ? "the start" : "initialisation");
        if (keep_if_best(r) != 0) return -1;
        report_exact_match(r, 3, 0);
        return 0;
    }
    ct_log("step %6lld | val loss %.4f%s%s%s", (long long)r->step, r->last_val, perplexity_note(r, ppl, sizeof ppl),
           depths, r->last_val < r->best_val ? ", best so far" : "");
    report_exact_match(r, r->step == cfg->train.max_steps ? 3 : 0, 1);
    if (keep_if_best(r) != 0) return -1;
    ct_metrics_plot(&r->metrics);
    return 0;
}

int ct_train_step_failed(CtRun *r) {
    char cause[2048];
    snprintf(cause, sizeof cause, "%s", ct_error_message());
    if (r->last_checkpoint[0])
        ct_error_set("%s; stopped before step %lld; the last checkpoint %s is intact (continue with --resume %s)", cause,
                     (long long)r->step + 1, r->last_checkpoint, r->cfg->run.out_dir);
    else
        ct_error_set("%s; stopped before step %lld, before any checkpoint was written", cause, (long long)r->step + 1);
    return 1;
}

int ct_train_non_finite(CtRun *r, double loss, double norm) {
    char causes[400];
    ct_divergence_causes(r->cfg, causes, sizeof causes);
    ct_error_set("step %lld: the %s is %s; stopping (%s). Likely cause: %s; or check the data", (long long)r->step + 1,
                 isfinite(loss) ? "gradient norm" : "loss", isnan(isfinite(loss) ? norm : loss) ? "NaN" : "infinite",
                 r->last_checkpoint[0] ? r->last_checkpoint : "no checkpoint was written yet", causes);
    return 1;
}

// The error of a run stopped by a failed metrics or plot write: what failed, and what was saved
// (checkpoint_error: why the last checkpoint could not be written, or NULL when it was).
static void report_write_failure(CtRun *r, const char *checkpoint_error) {
    char saved[2400];
    if (checkpoint_error)
        snprintf(saved, sizeof saved, "no checkpoint of step %lld either (%s); the last one is %s", (long long)r->step,
                 checkpoint_error, r->last_checkpoint[0] ? r->last_checkpoint : "none: nothing was saved");
    else
        snprintf(saved, sizeof saved, "checkpoint %s", r->last_checkpoint[0] ? r->last_checkpoint : "none");
    char failure[sizeof r->metrics.failure];
    snprintf(failure, sizeof failure, "%s", r->metrics.failure);
    ct_error_set("%s; stopped at step %lld, %s; free space and continue with --resume %s", failure, (long long)r->step,
                 saved, r->cfg->run.out_dir);
}

int ct_train_save(CtRun *r, int write_failed) {
    ct_grad_sync_gather_state(&r->sync, &r->opt);  // ZeRO-1: the whole state on rank 0
    if (r->lead) {
        char path[2048];
        ct_run_checkpoint_path(path, sizeof path, r->cfg->run.out_dir, r->step);
        if (ct_train_save_checkpoint(r, path, 1) != 0) {
            if (write_failed) report_write_failure(r, ct_error_message());
            return -1;
        }
        ct_run_prune(r->cfg->run.out_dir, r->cfg->train.keep_last);
    }
    ct_grad_sync_release_state(&r->sync, &r->opt);  // the gathered copy was for the file
    return 0;
}

// What stopped the run, as the ranks received it: "SIGINT", or under mpirun "SIGTERM (received
// by 2 of 2 ranks; ...)". mpirun does not pass SIGINT on: a Ctrl-C (or kill -INT) to mpirun
// reaches the ranks as SIGTERM, which is what they report.
static void describe_stop(char *buf, size_t size, int64_t n_sigint, int64_t n_sigterm, int world) {
    const char *name = n_sigint && n_sigterm ? "SIGINT and SIGTERM" : n_sigint ? "SIGINT" : "SIGTERM";
    if (world == 1) {
        snprintf(buf, size, "%s", name);
        return;
    }
    int n = snprintf(buf, size, "%s (received by %lld of %d ranks", name, (long long)(n_sigint + n_sigterm), world);
    if (n > 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n, "%s)",
                 n_sigterm ? "; mpirun passes a Ctrl-C or SIGINT it receives on to the ranks as SIGTERM, as does a "
                             "scheduler that ends the job"
                           : "");
}

// The summary of a run that reached train.max_steps.
static void report_done(CtRun *r) {
    const CtRunConfig *cfg = r->cfg;
    if (r->lead) ct_train_print_samples(r, "after training");
    char val[64] = "";
    if (r->objective->evaluate) snprintf(val, sizeof val, ", val loss %.4f", r->last_val);  // (grpo validates no loss)
    ct_log("done: %lld steps, %lld tokens in %.1f s of compute (%.0f tokens/s); final train loss %.4f%s",
           (long long)r->step, (long long)r->tokens_seen, r->compute_time,
           r->compute_time > 0 ? (double)(r->step - r->first_step) * r->tokens_per_step / r->compute_time : 0.0,
           r->last_loss, val);
    if (isfinite(r->unigram) && isfinite(r->last_val))
        ct_log("done: validation loss %.4f vs unigram entropy %.4f nats/token", r->last_val, r->unigram);
    if (isfinite(r->last_exact_match))
        ct_log("done: exact match %.1f%% on held-out examples", 100 * r->last_exact_match);
    if (r->objective->report_done) r->objective->report_done(&r->obj);
    char best[2100] = "";
    if (isfinite(r->best_val)) snprintf(best, sizeof best, ", best %s/best.h5", cfg->run.out_dir);
    ct_log("done: checkpoint %s%s, loss plot %s/loss.svg", r->last_checkpoint, best, cfg->run.out_dir);
}

int ct_train_finish(CtRun *r, int stopping, int stopped_early, int write_failed) {
    const CtRunConfig *cfg = r->cfg;
    if (r->tty && r->lead) fputc('\n', stderr);
    if (r->lead && !write_failed) ct_metrics_plot(&r->metrics);
    if (r->lead && r->metrics.failed && !write_failed) write_failed = 1;  // the last plot
    if (ct_dist_any(write_failed)) {
        if (r->lead)
            report_write_failure(r, NULL);
        else
            ct_error_set("rank %d: stopped with rank 0, which could not write its metrics", ct_dist_rank());
        return 1;
    }
    if (stopping) {
        char by[300];
        describe_stop(by, sizeof by, r->stop_by[0], r->stop_by[1], r->world);
        ct_log("interrupted at step %lld by %s; checkpoint %s; continue with --resume %s", (long long)r->step, by,
               r->last_checkpoint, cfg->run.out_dir);
        return r->stop_by[0] ? 130 : 143;
    }
    if (stopped_early) {
        ct_log("stopped after %lld steps as asked (--stop-after) at step %lld; checkpoint %s; continue with --resume %s",
               (long long)r->stop_after, (long long)r->step, r->last_checkpoint, cfg->run.out_dir);
        return 0;
    }
    if (r->world > 1) {  // data parallel: the ranks must have taken the same steps
        if (!ct_dist_same_everywhere(ct_model_train_params_host(&r->model), r->model.n_train * sizeof(float))) {
            ct_error_set("data parallel: the parameters differ between ranks after %lld steps (a bug: please report it)",
                         (long long)r->step);
            return 1;
        }
        ct_log("data parallel: parameters identical on all %d ranks", r->world);
    }
    report_done(r);
    return 0;
}
