#include "train/pretrain.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/timer.h"
#include "data/loader.h"
#include "data/tokenizer_files.h"
#include "data/tokenizer_hf.h"
#include "data/tokenizer_identity.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/device.h"
#include "optim/clip.h"
#include "optim/schedule.h"
#include "train/blas_setup.h"
#include "train/checkpoint_io.h"
#include "train/generate.h"
#include "train/lora_checkpoint.h"
#include "train/metrics.h"
#include "train/run_dir.h"
#include "train/step_batches.h"
#include "train/train_common.h"

static volatile sig_atomic_t stop_signal;
static void on_stop_signal(int sig) { stop_signal = sig; }

typedef struct {
    const CtRunConfig *cfg;
    CtDataset data;
    CtTokenizer tokenizer;
    int have_tokenizer;
    char *tokenizer_json;
    CtModel model;
    int have_model;
    CtAdamW opt;
    CtLoader train, val;
    CtStepBatches step_batches;
    int with_docs;  // pass positions and document ids to attention
    int have_train, have_val;
    CtRng sample_rng;
    CtMetrics metrics;
    int have_metrics;
    int64_t step, tokens_seen;
    double best_val, last_val, last_loss;
    double peak_flops;
    const char *config_json;
    char last_checkpoint[2048];
} Run;

static int fail(void) {
    fflush(stdout);
    fprintf(stderr, "ctrain: %s\n", ct_error_message());
    return 1;
}

static int open_data(Run *r) {
    const CtRunConfig *cfg = r->cfg;
    if (!cfg->data.path[0]) return ct_error_set("data.path is not set: name a dataset folder made by ctrain shard");
    if (ct_dataset_open(&r->data, cfg->data.path) != 0) return -1;
    if (r->data.kind != CT_SHARD_TEXT)
        return ct_error_set("%s: a %s dataset; pretraining reads text datasets (use ctrain %s)", cfg->data.path,
                            ct_shard_kind_name(r->data.kind), r->data.kind == CT_SHARD_SFT ? "sft" : "dpo");
    char path[CT_PATH_MAX + 32];
    if (cfg->data.tokenizer[0])
        snprintf(path, sizeof path, "%s", cfg->data.tokenizer);
    else
        ct_path_join(path, sizeof path, cfg->data.path, "tokenizer.json");
    if (ct_file_exists(path) || cfg->data.tokenizer[0]) {
        if (ct_tokenizer_load(&r->tokenizer, path, NULL) != 0) return -1;
        r->have_tokenizer = 1;
        if (ct_dataset_check_tokenizer(&r->data, ct_tokenizer_fingerprint(&r->tokenizer)) != 0)
            return ct_error_prefix("data.tokenizer %s: ", path);
        r->tokenizer_json = ct_tokenizer_hf_json(&r->tokenizer);  // NULL for rank files: then not stored
    } else {
        ct_warn("no tokenizer (%s is missing and data.tokenizer is not set): no samples, and checkpoints will not "
                "carry a tokenizer", path);
    }
    return 0;
}

static int open_loaders(Run *r) {
    const CtRunConfig *cfg = r->cfg;
    CtLoaderOptions o;
    ct_loader_default_options(&o);
    o.batch = cfg->train.batch_size;
    o.seq_len = cfg->train.seq_len;
    o.seed = (uint64_t)cfg->run.seed;
    o.doc_masking = cfg->data.doc_masking;
    if (ct_loader_open(&r->train, &r->data, CT_SPLIT_TRAIN, &o) != 0) return -1;
    r->have_train = 1;
    o.shuffle = 0;
    if (ct_loader_open(&r->val, &r->data, CT_SPLIT_VAL, &o) == 0)
        r->have_val = 1;
    else
        ct_warn("no validation: %s", ct_error_message());
    return 0;
}

// The model: resumed, started from another checkpoint's weights, or freshly initialised.
static int build_model(Run *r, const char *resume_path) {
    const CtRunConfig *cfg = r->cfg;
    CtModelConfig want;
    if (ct_train_model_config(cfg, &r->data, &want) != 0) return -1;
    const int B = cfg->train.batch_size, T = cfg->train.seq_len;
    const double lr = cfg->optim.lr, b1 = cfg->optim.beta1, b2 = cfg->optim.beta2, eps = cfg->optim.eps,
                 wd = cfg->optim.weight_decay;
    ct_adamw_init(&r->opt, 0, lr, b1, b2, eps, wd);  // moments sized once the model is known
    CtCheckpointMeta meta;
    if (resume_path) {
        if (ct_checkpoint_load(resume_path, &r->model, ct_ops_cpu(), B, T, cfg->model.recompute, &r->opt, &meta) != 0)
            return -1;
        r->have_model = 1;
        if (!r->model.lora && memcmp(&r->model.config, &want, sizeof want) != 0)
            return ct_error_set("%s: its model differs from the one the config describes; resume with the config of "
                                "that run", resume_path);
        r->step = meta.step;
        r->tokens_seen = meta.tokens_seen;
        r->best_val = isfinite(meta.best_val_loss) ? meta.best_val_loss : INFINITY;
        r->last_val = meta.val_loss;
        memcpy(r->sample_rng.s, meta.rng, sizeof meta.rng);
        if (ct_loader_restore(&r->train, &meta.loader) != 0) {
            ct_checkpoint_meta_free(&meta);
            return -1;
        }
        ct_checkpoint_meta_free(&meta);
        ct_log("resumed from %s at step %lld (%lld tokens seen)", resume_path, (long long)r->step,
               (long long)r->tokens_seen);
    } else if (cfg->train.init_from[0]) {
        if (cfg->lora.r > 0) {  // LoRA: adapters over the frozen model of init_from (train/lora_checkpoint.h)
            if (ct_lora_model_from_config(cfg, &r->model, ct_ops_cpu(), B, T, cfg->model.recompute) != 0) return -1;
        } else {
            if (ct_checkpoint_load(cfg->train.init_from, &r->model, ct_ops_cpu(), B, T, cfg->model.recompute, NULL,
                                   &meta) != 0)
                return -1;
            ct_checkpoint_meta_free(&meta);
        }
        r->have_model = 1;
        if (r->model.config.vocab_size < (int)r->data.vocab_size)
            return ct_error_set("%s: its vocabulary (%d) is smaller than the dataset's (%u)", cfg->train.init_from,
                                r->model.config.vocab_size, r->data.vocab_size);
        ct_log("starting from the weights of %s", cfg->train.init_from);
    } else {
        if (cfg->lora.r > 0)
            return ct_error_set("lora.r = %d: LoRA trains adapters over an existing model; set train.init_from to "
                                "its checkpoint", cfg->lora.r);
        if (ct_model_create(&r->model, &want, ct_ops_cpu(), B, T, cfg->model.recompute) != 0) return -1;
        r->have_model = 1;
        ct_model_init(&r->model, (uint64_t)cfg->run.seed);
    }
    if (r->opt.n != r->model.n_train) {  // what the optimizer steps: every parameter, or the LoRA adapters
        ct_adamw_free(&r->opt);
        ct_adamw_init(&r->opt, r->model.n_train, lr, b1, b2, eps, wd);
    }
    if (!r->model.lora)  // adapters: every A and B is decayed, as PEFT under HF's Trainer does
        ct_train_set_decay_spans(&r->model, &r->opt, cfg->optim.decay_embeddings);
    return 0;
}

static CtBatch model_batch(const CtLoaderBatch *b, int doc_masking) {
    CtBatch mb = {.tokens = b->tokens, .targets = b->targets, .loss_mask = b->loss_mask, .B = b->rows, .T = b->T};
    if (doc_masking) {
        mb.doc_ids = b->doc_ids;
        mb.positions = b->positions;
    }
    return mb;
}

// The mean loss over the fixed validation batches (the same ones every time).
static double evaluate(Run *r) {
    CtLoaderState start = {(uint64_t)r->cfg->run.seed, 0, 0};
    ct_loader_restore(&r->val, &start);
    uint64_t n = (uint64_t)r->cfg->train.eval_batches;
    if (n > r->val.steps_per_epoch) n = r->val.steps_per_epoch;
    double sum = 0, count = 0;
    for (uint64_t i = 0; i < n; i++) {
        const CtLoaderBatch *b;
        if (ct_loader_next(&r->val, &b) != 0) return NAN;
        CtBatch mb = model_batch(b, r->cfg->data.doc_masking);
        float loss = ct_model_forward(&r->model, &mb);
        sum += (double)loss * r->model.loss_count;
        count += r->model.loss_count;
    }
    return count > 0 ? sum / count : NAN;
}

static void print_samples(Run *r, const char *when) {
    const CtRunConfig *cfg = r->cfg;
    if (!r->have_tokenizer || cfg->train.n_samples == 0) return;
    CtSampling s = {cfg->train.sample_temperature, 0, 1.0f};
    int32_t eot = (int32_t)r->data.eot_token;
    for (int i = 0; i < cfg->train.n_samples; i++) {
        char *text = ct_train_sample_text(&r->model, &r->tokenizer, cfg->train.sample_prompt, eot, cfg->train.sample_tokens,
                                          &s, &r->sample_rng);
        for (char *c = text; *c; c++)  // an untrained model emits any byte: keep the log readable
            if ((unsigned char)*c < 0x20 && *c != '\n') *c = ' ';
        ct_log("sample %d (%s): %s", i + 1, when, text);
        free(text);
    }
}

static int save_checkpoint(Run *r, const char *path, int with_optimizer) {
    CtCheckpointMeta meta;
    ct_checkpoint_meta_init(&meta);
    meta.step = r->step;
    meta.tokens_seen = r->tokens_seen;
    meta.loader = ct_loader_state(&r->train);
    memcpy(meta.rng, r->sample_rng.s, sizeof meta.rng);
    meta.train_loss = r->last_loss;
    meta.val_loss = r->last_val;
    meta.best_val_loss = r->best_val;
    meta.tokenizer_hash = r->data.tokenizer_hash;
    meta.run_config_json = (char *)r->config_json;  // borrowed: meta is not freed
    meta.tokenizer_json = r->tokenizer_json;
    int rc = ct_checkpoint_save(path, &r->model, with_optimizer ? &r->opt : NULL, &meta);
    if (rc == 0 && with_optimizer) snprintf(r->last_checkpoint, sizeof r->last_checkpoint, "%s", path);
    return rc;
}

static void free_run(Run *r) {
    if (r->have_metrics) ct_metrics_close(&r->metrics);
    if (r->have_train) ct_loader_close(&r->train);
    if (r->have_val) ct_loader_close(&r->val);
    if (r->have_model) ct_model_free(&r->model);
    ct_step_batches_free(&r->step_batches);
    ct_adamw_free(&r->opt);
    if (r->have_tokenizer) ct_tokenizer_free(&r->tokenizer);
    free(r->tokenizer_json);
    ct_dataset_close(&r->data);
}

int ct_pretrain(const CtPretrainJob *job) {
    const CtRunConfig *cfg = job->config;
    Run r;
    memset(&r, 0, sizeof r);
    r.cfg = cfg;
    r.best_val = INFINITY;
    r.last_val = r.last_loss = NAN;
    r.config_json = job->config_json;
    int status = 1;
    char resume_path[2048];
    if (ct_train_check_device(cfg) != 0) return fail();
    int threads = ct_cpu_set_threads(cfg->run.threads);
    if (open_data(&r) != 0) goto done;
    if (job->resume_dir && ct_run_find_latest(job->resume_dir, resume_path, sizeof resume_path) != 0) goto done;
    if (ct_make_dirs(cfg->run.out_dir) != 0) goto done;
    if (open_loaders(&r) != 0) goto done;
    ct_rng_seed_stream(&r.sample_rng, (uint64_t)cfg->run.seed, 0x5A4D);
    if (build_model(&r, job->resume_dir ? resume_path : NULL) != 0) goto done;
    const int B = cfg->train.batch_size, T = cfg->train.seq_len, accum = cfg->train.grad_accum;
    const int64_t tokens_per_step = (int64_t)B * T * accum;
    r.with_docs = cfg->data.doc_masking;
    ct_step_batches_init(&r.step_batches, accum, r.train.batch.rows, T);
    char title[160];
    snprintf(title, sizeof title, "%s: %s, %.1fM parameters", cfg->run.out_dir, ct_arch_name(r.model.config.arch),
             r.model.n_params / 1e6);
    if (ct_metrics_open(&r.metrics, cfg->run.out_dir, job->resume_dir ? r.step : -1, title) != 0) goto done;
    r.have_metrics = 1;
    r.peak_flops = cfg->train.peak_tflops > 0 ? cfg->train.peak_tflops * 1e12 : ct_train_measure_cpu_peak(r.model.ops);

    char line[512];
    ct_blas_describe(line, sizeof line);
    ct_log("pretrain: %s %s, %.2fM parameters, %d layers, d_model %d; %d threads; %s", ct_arch_name(r.model.config.arch),
           cfg->model.preset, r.model.n_params / 1e6, r.model.config.n_layer, r.model.config.d_model, threads, line);
    ct_log("pretrain: %s: %llu train tokens, %llu val tokens; batch %d x %d x %d = %lld tokens per step, %lld steps "
           "(%.2f epochs)",
           cfg->data.path, (unsigned long long)r.data.split[CT_SPLIT_TRAIN].n_tokens,
           (unsigned long long)r.data.split[CT_SPLIT_VAL].n_tokens, B, T, accum, (long long)tokens_per_step,
           (long long)cfg->train.max_steps,
           (double)cfg->train.max_steps * tokens_per_step / (double)r.data.split[CT_SPLIT_TRAIN].n_tokens);
    double unigram = ct_train_unigram_entropy(&r.data);
    if (isfinite(unigram))
        ct_log("pretrain: unigram entropy of the training tokens %.4f nats/token (what a model that ignores context "
               "reaches)", unigram);
    ct_log("pretrain: writing %s/metrics.jsonl, %s/loss.svg and checkpoints to %s", cfg->run.out_dir, cfg->run.out_dir,
           cfg->run.out_dir);

    signal(SIGINT, on_stop_signal);
    signal(SIGTERM, on_stop_signal);
    if (r.step == 0) {
        print_samples(&r, "before training");
        if (r.have_val) {
            r.last_val = evaluate(&r);
            ct_metrics_eval(&r.metrics, 0, 0, r.last_val);
            ct_log("step %6d | val loss %.4f (perplexity %.1f) at initialisation", 0, r.last_val, exp(r.last_val));
        }
    }
    CtLrSchedule sched = ct_train_schedule(cfg);
    const double flops_per_step = ct_model_flops_per_token(&r.model.config, T) * (double)tokens_per_step;
    const int tty = isatty(fileno(stderr));
    const int64_t log_every = cfg->train.max_steps / 50 > 1 ? cfg->train.max_steps / 50 : 1;
    double compute_time = 0, start = ct_time_now(), ema_tps = 0;
    int64_t first_step = r.step;
    int stopped_early = 0;
    while (r.step < cfg->train.max_steps && !stop_signal && !stopped_early) {
        double t0 = ct_time_now();
        r.opt.lr = ct_lr_at(&sched, (long)r.step);
        ct_model_zero_grad(&r.model);
        if (ct_step_batches_fetch(&r.step_batches, &r.train) != 0) goto done;
        ct_step_batches_normalise(&r.step_batches, r.step_batches.total);
        double loss = 0;  // the step's mean: micro-batch losses are already weighted by their share
        r.model.training = 1;  // dropout (LoRA adapters) in training passes only; masks keyed by (seed, step, micro-batch)
        for (int a = 0; a < accum; a++) {
            CtBatch mb = ct_step_batch(&r.step_batches, a, r.with_docs);
            r.model.dropout_key = ((uint64_t)cfg->run.seed << 32) ^ ((uint64_t)r.step * (uint64_t)accum + (uint64_t)a);
            loss += ct_model_forward(&r.model, &mb);
            ct_model_backward(&r.model);
        }
        r.model.training = 0;
        double norm = ct_clip_grad_norm(r.model.train_grads, r.model.n_train, cfg->optim.grad_clip);
        if (!isfinite(loss) || !isfinite(norm)) {
            ct_error_set("step %lld: the %s is %s; stopping (%s). Lower optim.lr, raise optim.warmup_steps or check "
                         "the data", (long long)r.step + 1, isfinite(loss) ? "gradient norm" : "loss",
                         isnan(isfinite(loss) ? norm : loss) ? "NaN" : "infinite",
                         r.last_checkpoint[0] ? r.last_checkpoint : "no checkpoint was written yet");
            goto done;
        }
        ct_adamw_step(&r.opt, r.model.train_params, r.model.train_grads);
        r.step++;
        stopped_early = job->stop_after > 0 && r.step - first_step >= job->stop_after && r.step < cfg->train.max_steps;
        r.tokens_seen += tokens_per_step;
        r.last_loss = loss;
        double dt = ct_time_now() - t0;
        compute_time += dt;
        double tps = tokens_per_step / dt;
        ema_tps = r.step == first_step + 1 ? tps : 0.9 * ema_tps + 0.1 * tps;
        double mfu = r.peak_flops > 0 ? flops_per_step / dt / r.peak_flops : NAN;
        ct_metrics_train(&r.metrics, r.step, r.tokens_seen, loss, r.opt.lr, norm, tps, mfu, ct_time_now() - start);
        int eval_now = r.have_val && ((cfg->train.eval_every && r.step % cfg->train.eval_every == 0) ||
                                      r.step == cfg->train.max_steps);
        if (tty || eval_now || r.step % log_every == 0 || r.step == first_step + 1) {
            char eta[32], mem[32];
            ct_format_duration(eta, sizeof eta, (double)(cfg->train.max_steps - r.step) * tokens_per_step / ema_tps);
            ct_format_bytes(mem, sizeof mem, (double)ct_mem_peak());
            fprintf(stderr, "%sstep %6lld/%lld | loss %.4f | lr %.2e | norm %.3f | %.0f tok/s | MFU %.1f%% | mem %s | ETA %s%s",
                    tty ? "\r" : "", (long long)r.step, (long long)cfg->train.max_steps, loss, r.opt.lr, norm, ema_tps,
                    100 * mfu, mem, eta, tty && !eval_now ? "\033[K" : "\n");
        }
        if (eval_now) {
            r.last_val = evaluate(&r);
            ct_metrics_eval(&r.metrics, r.step, r.tokens_seen, r.last_val);
            ct_log("step %6lld | val loss %.4f (perplexity %.1f)%s", (long long)r.step, r.last_val, exp(r.last_val),
                   r.last_val < r.best_val ? ", best so far" : "");
            if (r.last_val < r.best_val) {
                r.best_val = r.last_val;
                char best[2048];
                ct_path_join(best, sizeof best, cfg->run.out_dir, "best.h5");
                if (save_checkpoint(&r, best, 0) != 0) goto done;
            }
            ct_metrics_plot(&r.metrics);
        }
        if (cfg->train.sample_every && r.step % cfg->train.sample_every == 0) {
            if (tty) fputc('\n', stderr);
            print_samples(&r, "during training");
        }
        if ((cfg->train.save_every && r.step % cfg->train.save_every == 0) || r.step == cfg->train.max_steps ||
            stop_signal || stopped_early) {
            char path[2048];
            ct_run_checkpoint_path(path, sizeof path, cfg->run.out_dir, r.step);
            if (save_checkpoint(&r, path, 1) != 0) goto done;
            ct_run_prune(cfg->run.out_dir, cfg->train.keep_last);
        }
    }
    if (tty) fputc('\n', stderr);
    ct_metrics_plot(&r.metrics);
    if (stop_signal) {
        ct_log("interrupted at step %lld by %s; checkpoint %s; continue with --resume %s", (long long)r.step,
               stop_signal == SIGINT ? "SIGINT" : "SIGTERM", r.last_checkpoint, cfg->run.out_dir);
        status = stop_signal == SIGINT ? 130 : 143;
        goto done;
    }
    if (stopped_early) {
        ct_log("stopped after %lld steps as asked (--stop-after) at step %lld; checkpoint %s; continue with --resume %s",
               (long long)job->stop_after, (long long)r.step, r.last_checkpoint, cfg->run.out_dir);
        status = 0;
        goto done;
    }
    print_samples(&r, "after training");
    ct_log("done: %lld steps, %lld tokens in %.1f s of compute (%.0f tokens/s); final train loss %.4f, val loss %.4f%s",
           (long long)r.step, (long long)r.tokens_seen, compute_time,
           compute_time > 0 ? (double)(r.step - first_step) * tokens_per_step / compute_time : 0.0, r.last_loss, r.last_val,
           isfinite(unigram) ? "" : "");
    if (isfinite(unigram) && isfinite(r.last_val))
        ct_log("done: validation loss %.4f vs unigram entropy %.4f nats/token", r.last_val, unigram);
    ct_log("done: checkpoint %s, best %s/best.h5, loss plot %s/loss.svg", r.last_checkpoint, cfg->run.out_dir,
           cfg->run.out_dir);
    status = 0;
done:
    if (status == 1) fail();
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    free_run(&r);
    return status;
}
