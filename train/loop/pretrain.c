#include "train/loop/pretrain.h"

#include <cJSON.h>
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
#include "data/loader/loader.h"
#include "data/input/read_file.h"
#include "data/tokenizer/tokenizer_files.h"
#include "data/tokenizer/tokenizer_hf.h"
#include "data/tokenizer/tokenizer_identity.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/device.h"
#include "optim/clip.h"
#include "optim/schedule.h"
#include "kernels/cpu/blas_setup.h"
#include "train/interop/checkpoint_io.h"
#include "train/dist/dist.h"
#include "train/dist/dist_nccl.h"
#include "train/loop/divergence.h"
#include "train/dist/grad_buckets.h"
#include "train/loop/init_tokenizer.h"
#include "train/dist/zero.h"
#include "train/model/generate.h"
#include "train/loop/run_lora.h"
#include "train/model/lora_tokens.h"
#include "train/loop/metrics.h"
#include "train/loop/mfu_peak.h"
#include "train/model/model_resize.h"
#include "data/examples/chat_template.h"
#include "train/objectives/dpo.h"
#include "train/loop/run_dir.h"
#include "train/loop/run_lock.h"
#include "train/loop/sft_eval.h"
#include "train/objectives/step_batches.h"
#include "train/loop/train_common.h"

static volatile sig_atomic_t stop_signal;

// The dropout seed of a micro-batch (step·65536 + index): independent of every other one's.
static uint64_t dropout_seed(uint64_t seed, uint64_t step) {
    CtRng rng;
    ct_rng_seed_stream(&rng, seed, CT_RNG_STREAM_DROPOUT + step);
    return ct_rng_next(&rng);
}
static void on_stop_signal(int sig) { stop_signal = sig; }

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

typedef struct {
    const CtRunConfig *cfg;
    CtObjective objective;
    const char *name;  // "pretrain", "sft"
    CtDataset data;
    CtTokenizer tokenizer;
    int have_tokenizer;
    char tokenizer_path[CT_PATH_MAX + 32];  // the dataset's tokenizer (data.tokenizer, or data.path's tokenizer.json)
    char *tokenizer_json;
    CtModel model;
    int have_model;
    CtAdamW opt;
    CtZero zero;  // optim.zero 1: this rank's slice of the AdamW state
    int have_zero;
    CtLoader train, val;
    CtStepBatches step_batches;
    CtDpo dpo;
    int have_dpo;
    int with_docs;  // pass positions and document ids to attention
    int have_train, have_val;
    CtRng sample_rng;
    CtMetrics metrics;
    int have_metrics;
    CtRunLock lock;  // rank 0: run.out_dir, held for the whole run (train/loop/run_lock.h)
    int64_t step, tokens_seen;
    double best_val, last_val, last_loss;
    double peak_flops;
    int vocab_grown_from;
    double last_exact_match, last_dpo_accuracy;
    int32_t stop_token;  // dpo: where an answer ends (the template's end of turn, or the end of text)
    const char *config_json;
    char *chat_template_json;  // sft: from the dataset's manifest, stored in checkpoints
    char last_checkpoint[2048];
    const CtOps *ops;  // run.device's backend: the model trains in its memory
    int nccl;          // GPU gradients are all-reduced through NCCL (train/dist/dist_nccl.h)
    int overlap;       // ... in buckets, as the last micro-batch's backward finishes them
    CtGradBuckets buckets;
    int gpu;           // the device index this rank trains on
    int eval_failed;   // the validation data could not be read: the run stops with its error
    CtDivergence divergence;  // warns once when the loss or gradient norm explodes
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
    CtShardKind want = r->objective == CT_OBJECTIVE_SFT ? CT_SHARD_SFT
                     : r->objective == CT_OBJECTIVE_DPO ? CT_SHARD_DPO : CT_SHARD_TEXT;
    if (r->data.kind != want)
        return ct_error_set("%s: a %s dataset; ctrain %s reads %s datasets (shard with --format %s, or use ctrain %s)",
                            cfg->data.path, ct_shard_kind_name(r->data.kind), r->name, ct_shard_kind_name(want),
                            ct_shard_kind_name(want),
                            r->data.kind == CT_SHARD_TEXT ? "pretrain" : r->data.kind == CT_SHARD_SFT ? "sft" : "dpo");
    char path[CT_PATH_MAX + 32];
    if (cfg->data.tokenizer[0])
        snprintf(path, sizeof path, "%s", cfg->data.tokenizer);
    else
        ct_path_join(path, sizeof path, cfg->data.path, "tokenizer.json");
    snprintf(r->tokenizer_path, sizeof r->tokenizer_path, "%s", path);
    if (ct_file_exists(path) || cfg->data.tokenizer[0]) {
        if (ct_tokenizer_load(&r->tokenizer, path, NULL) != 0) return -1;
        r->have_tokenizer = 1;
        if (ct_dataset_check_tokenizer(&r->data, &r->tokenizer) != 0)
            return ct_error_prefix("data.tokenizer %s: ", path);
        r->tokenizer_json = ct_tokenizer_hf_json(&r->tokenizer);  // rank files too (data/tokenizer/bpe.h); NULL: not stored
    } else {
        ct_warn("no tokenizer (%s is missing and data.tokenizer is not set): no samples, and checkpoints will not "
                "carry a tokenizer", path);
    }
    return ct_train_verify_data(&r->data, r->name);  // every chunk of both splits, before any step
}

// The chat template an sft dataset was rendered with (its manifest's source.chat_template).
static char *dataset_chat_template(const char *dir) {
    char path[CT_PATH_MAX + 32];
    ct_path_join(path, sizeof path, dir, "dataset.json");
    size_t size;
    char *text = ct_read_whole_file(path, &size);
    if (!text) return NULL;
    cJSON *root = cJSON_Parse(text);
    ct_free(text);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "source"), "chat_template");
    char *json = cJSON_IsObject(t) ? cJSON_PrintUnformatted(t) : NULL;
    cJSON_Delete(root);
    return json;
}

static int open_loaders(Run *r) {
    const CtRunConfig *cfg = r->cfg;
    CtLoaderOptions o;
    ct_loader_default_options(&o);
    o.batch = cfg->train.batch_size;
    o.seq_len = cfg->train.seq_len;
    o.seed = (uint64_t)cfg->run.seed;
    o.doc_masking = cfg->data.doc_masking;
    o.packing = cfg->data.packing;
    // Data parallel: every rank computes the same global order and takes its rows of it.
    o.rank = ct_dist_rank();
    o.world = ct_dist_world();
    if (ct_loader_open(&r->train, &r->data, CT_SPLIT_TRAIN, &o) != 0) return -1;
    if (r->train.truncated_examples)
        ct_warn("%s: %llu training examples are longer than train.seq_len %d and lose tokens from the left of their "
                "prompt", r->name, (unsigned long long)r->train.truncated_examples, cfg->train.seq_len);
    r->have_train = 1;
    o.shuffle = 0;  // data parallel: the same global validation batches on any world size, each rank its rows
    if (ct_loader_open(&r->val, &r->data, CT_SPLIT_VAL, &o) == 0)
        r->have_val = 1;
    else
        ct_warn("no validation (no val loss, no best.h5): %s; shard with a larger --val-min or --val-fraction",
                ct_error_message());
    return 0;
}

// The model: resumed, started from another checkpoint's weights, or freshly initialised.
static int build_model(Run *r, const char *resume_path) {
    const CtRunConfig *cfg = r->cfg;
    CtModelConfig want;
    if (ct_train_model_config(cfg, &r->data, &want) != 0) return -1;
    const int B = r->train.batch.rows, T = cfg->train.seq_len;  // rows: 2 per pair for dpo
    const double lr = cfg->optim.lr, b1 = cfg->optim.beta1, b2 = cfg->optim.beta2, eps = cfg->optim.eps,
                 wd = cfg->optim.weight_decay;
    ct_adamw_init(&r->opt, 0, lr, b1, b2, eps, wd);  // moments sized once the model is known
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    ct_checkpoint_meta_init(&meta);  // freed below on every path, LoRA's (which fills none) included
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
        ct_checkpoint_meta_free(&meta);  // "resumed from" is said once resume_checks has passed
    } else if (cfg->train.init_from[0]) {
        if (ct_init_tokenizer_check(cfg->train.init_from, r->have_tokenizer ? &r->tokenizer : NULL,
                                    r->data.tokenizer_hash, r->tokenizer_path) != 0)
            return -1;
        if (cfg->lora.r > 0) {  // LoRA: adapters over the frozen model of init_from (train/interop/lora_checkpoint.h)
            if (ct_lora_model_from_config(cfg, &r->model, ct_ops_cpu(), B, T, cfg->model.recompute) != 0) return -1;
        } else {
            if (ct_checkpoint_load(cfg->train.init_from, &r->model, ct_ops_cpu(), B, T, cfg->model.recompute, NULL,
                                   &meta) != 0)
                return -1;
            ct_checkpoint_meta_free(&meta);
        }
        r->have_model = 1;
        ct_checkpoint_meta_free(&meta);
        ct_log("starting from the weights of %s", cfg->train.init_from);
        if (r->model.config.vocab_size < (int)r->data.vocab_size) {
            // The dataset's tokenizer has tokens the base lacks (a chat template's specials).
            int old_V = r->model.config.vocab_size;
            if (r->model.lora ? ct_lora_grow_vocab(&r->model, (int)r->data.vocab_size)  // the new rows train, as PEFT's
                                                                                         // trainable_token_indices
                              : ct_model_grow_vocab(&r->model, (int)r->data.vocab_size, B, T, cfg->model.recompute))
                return -1;
            r->vocab_grown_from = old_V;
            ct_log("%s: the dataset's tokenizer has %u tokens, the base %d: added %u rows to the embedding (and head), "
                   "set to the mean embedding", r->name, r->data.vocab_size, old_V, r->data.vocab_size - (unsigned)old_V);
        }
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
    r->opt.seed = (uint64_t)cfg->run.seed;  // the bf16 weight copy's stochastic rounding (GPU)
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

// The model's backward reports how far its gradients are final (CtModel.grads_final): the
// buckets wholly past that point start their all-reduce on NCCL's stream at once.
static void buckets_ready(void *ctx, size_t final_from) {
    Run *r = ctx;
    ct_nccl_buckets_ready_from(&r->buckets, r->model.train_grads, final_from, CT_NCCL_SUM);
}

// Without NCCL each rank still takes its own GPU (its node-local rank modulo the GPUs) and
// the gradients go through the host; every rank stops when one cannot.
static int pick_gpu(Run *r) {
    char why[256] = "";
    int count = ct_cuda_device_count(why, sizeof why);
    r->gpu = count > 0 ? ct_dist_local_rank() % count : 0;
    int failed = count > 0 && ct_cuda_use_device(r->gpu, why, sizeof why) != 0;
    if (ct_dist_any(failed))
        return ct_error_set("rank %d: %s", ct_dist_rank(), failed ? why : "another rank could not pick its GPU");
    return 0;
}

// Data parallel: the gradients summed over ranks: NCCL on GPUs; MPI on host buffers, so a GPU
// build without NCCL goes through the host.
static void allreduce_grads(Run *r) {
    CtModel *m = &r->model;
    if (r->nccl) {
        ct_nccl_allreduce_sum_f32(m->train_grads, m->n_train);
        return;
    }
    if (r->ops->host_memory) {
        ct_dist_allreduce_sum_f32(m->train_grads, m->n_train);
        return;
    }
    float *host = ct_alloc(m->n_train * sizeof(float));
    r->ops->download(host, m->train_grads, m->n_train * sizeof(float));
    ct_dist_allreduce_sum_f32(host, m->n_train);
    r->ops->upload(m->train_grads, host, m->n_train * sizeof(float));
    ct_free(host);
}

static void log_dpo(Run *r, const char *split, const CtDpoStats *st) {
    if (!r->have_metrics) return;  // data parallel: ranks other than 0 write no metrics
    ct_metrics_dpo(&r->metrics, r->step, r->tokens_seen, split, st->reward_chosen, st->reward_rejected, st->accuracy,
                   st->logp_chosen, st->logp_rejected);
}

// Data parallel: the sums of a step's DPO metrics over every rank's pairs (TRL gathers them).
static void dpo_stats_allreduce(CtDpoStats *st) {
    double sums[6] = {st->reward_chosen, st->reward_rejected, st->accuracy, st->logp_chosen, st->logp_rejected,
                      (double)st->pairs};
    ct_dist_allreduce_sum_f64(sums, 6);
    st->reward_chosen = sums[0], st->reward_rejected = sums[1], st->accuracy = sums[2];
    st->logp_chosen = sums[3], st->logp_rejected = sums[4], st->pairs = (int64_t)sums[5];
}

// A validation batch could not be read (a shard changed on disk since the start's check):
// the run stops with the reader's error rather than logging a NaN loss.
static double eval_failed(Run *r) {
    ct_error_prefix("validation: ");
    r->eval_failed = 1;
    return NAN;
}

// DPO on the fixed validation pairs: the loss, and TRL's reward metrics (logged).
static double evaluate_dpo(Run *r) {
    CtLoaderState start = {(uint64_t)r->cfg->run.seed, 0, 0};
    ct_loader_restore(&r->val, &start);
    uint64_t n = (uint64_t)r->cfg->train.eval_batches;
    if (n > r->val.steps_per_epoch) n = r->val.steps_per_epoch;
    CtStepBatches s;
    ct_step_batches_init(&s, 1, r->val.batch.rows, r->cfg->train.seq_len);
    CtDpoStats st;
    memset(&st, 0, sizeof st);
    for (uint64_t i = 0; i < n; i++) {
        if (ct_step_batches_fetch(&s, &r->val) != 0) {
            ct_step_batches_free(&s);
            return eval_failed(r);
        }
        ct_dpo_micro_step(&r->dpo, &r->model, &s, 0, (int64_t)n * r->cfg->train.batch_size * ct_dist_world(), CT_SPLIT_VAL,
                          0, &st);
    }
    ct_step_batches_free(&s);
    // Data parallel: the sums over every rank's pairs.
    double sums[6] = {st.loss, st.reward_chosen, st.reward_rejected, st.accuracy, st.logp_chosen, st.logp_rejected};
    ct_dist_allreduce_sum_f64(sums, 6);
    ct_dist_allreduce_sum_i64(&st.pairs, 1);
    st = (CtDpoStats){sums[0], sums[1], sums[2], sums[3], sums[4], sums[5], st.pairs};
    ct_dpo_stats_finish(&st);
    log_dpo(r, "eval", &st);
    ct_log("step %6lld | dpo val: rewards/accuracies %.3f  rewards/margins %.4f  rewards/chosen %.4f  rewards/rejected "
           "%.4f  logps/chosen %.2f  logps/rejected %.2f", (long long)r->step, st.accuracy,
           st.reward_chosen - st.reward_rejected, st.reward_chosen, st.reward_rejected, st.logp_chosen, st.logp_rejected);
    r->last_dpo_accuracy = st.accuracy;
    if (r->cfg->train.eval_exact_match > 0 && r->have_metrics) {  // greedy answers: rank 0 alone
        double match = ct_dpo_chosen_match(&r->model, &r->val, r->cfg->train.eval_exact_match, r->stop_token);
        ct_metrics_exact_match(&r->metrics, r->step, r->tokens_seen, match);
        ct_log("step %6lld | dpo val: greedy answers equal to the chosen completion: %.1f%%", (long long)r->step,
               100 * match);
        r->last_exact_match = match;
    }
    return st.loss;
}

// The mean loss over the fixed validation batches (the same ones every time, whatever the
// number of ranks): every rank takes its rows of each global batch, and the sums of losses
// and of predicted tokens are added over the ranks. Every rank must call it.
static double evaluate(Run *r) {
    if (r->objective == CT_OBJECTIVE_DPO) return evaluate_dpo(r);
    CtLoaderState start = {(uint64_t)r->cfg->run.seed, 0, 0};
    ct_loader_restore(&r->val, &start);
    uint64_t n = (uint64_t)r->cfg->train.eval_batches;
    if (n > r->val.steps_per_epoch) n = r->val.steps_per_epoch;
    double sum = 0, count = 0;
    for (uint64_t i = 0; i < n; i++) {
        const CtLoaderBatch *b;
        if (ct_loader_next(&r->val, &b) != 0) return eval_failed(r);
        CtBatch mb = model_batch(b, r->with_docs);  // as the step sees it: sft's packed examples apart
        float loss = ct_model_forward(&r->model, &mb);
        sum += (double)loss * r->model.loss_count;
        count += r->model.loss_count;
    }
    double sums[2] = {sum, count};
    ct_dist_allreduce_sum_f64(sums, 2);
    return sums[1] > 0 ? sums[0] / sums[1] : NAN;
}

static void print_samples(Run *r, const char *when) {
    const CtRunConfig *cfg = r->cfg;
    if (!r->have_tokenizer || cfg->train.n_samples == 0 || r->objective != CT_OBJECTIVE_LM) return;
    CtSampling s = {cfg->train.sample_temperature, 0, 1.0f};
    int32_t eot = (int32_t)r->data.eot_token;
    for (int i = 0; i < cfg->train.n_samples; i++) {
        char *text = ct_train_sample_text(&r->model, &r->tokenizer, cfg->train.sample_prompt, eot, cfg->train.sample_tokens,
                                          &s, &r->sample_rng);
        for (char *c = text; *c; c++)  // an untrained model emits any byte: keep the log readable
            if ((unsigned char)*c < 0x20 && *c != '\n') *c = ' ';
        ct_log("sample %d (%s): %s", i + 1, when, text);
        ct_free(text);
    }
}

// SFT: exact match of greedy answers on held-out examples (NAN when off or impossible).
static double exact_match(Run *r, int show) {
    if (r->objective != CT_OBJECTIVE_SFT || !r->have_val || r->cfg->train.eval_exact_match == 0) return NAN;
    CtExactMatch em = ct_sft_exact_match(&r->model, &r->val, r->cfg->train.eval_exact_match,
                                         r->have_tokenizer ? &r->tokenizer : NULL, show);
    return em.examples ? (double)em.correct / em.examples : NAN;
}

static int save_checkpoint(Run *r, const char *path, int with_optimizer) {
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
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
    meta.chat_template_json = r->chat_template_json;
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
static int keep_if_best(Run *r) {
    if (!(r->last_val < r->best_val)) return 0;
    r->best_val = r->last_val;
    char best[2048];
    ct_path_join(best, sizeof best, r->cfg->run.out_dir, "best.h5");
    return save_checkpoint(r, best, 0);
}

// " (perplexity P)" after a validation loss, or nothing where it means nothing (DPO's loss).
static const char *perplexity_note(const Run *r, char *buf, size_t size) {
    if (r->objective == CT_OBJECTIVE_DPO) return "";
    snprintf(buf, size, " (perplexity %.1f)", exp(r->last_val));
    return buf;
}

// The reference of a DPO run: dpo.ref_checkpoint, or the starting model (train.init_from, or the
// fresh model itself) frozen; with dpo.precompute_ref its log-probabilities of every pair are
// computed once and the reference model is freed.
static int setup_dpo(Run *r, int resuming) {
    const CtRunConfig *cfg = r->cfg;
    const char *ref = cfg->dpo.ref_checkpoint[0] ? cfg->dpo.ref_checkpoint : cfg->train.init_from;
    if (resuming && !ref[0])
        return ct_error_set("resuming a dpo run needs its reference: set dpo.ref_checkpoint or train.init_from");
    if (ct_dpo_init(&r->dpo, (CtDpoLoss)cfg->dpo.loss, cfg->dpo.beta, cfg->dpo.label_smoothing, &r->model,
                    resuming ? ref : cfg->dpo.ref_checkpoint, r->train.batch.rows, cfg->train.seq_len) != 0)
        return -1;
    r->have_dpo = 1;
    r->stop_token = (int32_t)r->data.eot_token;
    char *tmpl_json = dataset_chat_template(cfg->data.path);
    CtChatTemplate tmpl;
    if (tmpl_json && r->have_tokenizer && ct_chat_template_parse(&tmpl, tmpl_json, cfg->data.path) == 0) {
        int32_t id = ct_chat_template_check(&tmpl, &r->tokenizer);
        if (id >= 0) r->stop_token = id;
        ct_chat_template_free(&tmpl);
    }
    free(tmpl_json);
    ct_log("dpo: %s loss, beta %g, reference %s%s", cfg->dpo.loss == CT_DPO_SIGMOID ? "sigmoid"
                                                   : cfg->dpo.loss == CT_DPO_ROBUST ? "robust"
                                                   : cfg->dpo.loss == CT_DPO_IPO    ? "ipo (per-token mean log-probabilities)"
                                                                                    : "hinge",
           cfg->dpo.beta,
           cfg->dpo.ref_checkpoint[0] ? cfg->dpo.ref_checkpoint
           : r->dpo.base_as_reference ? "the frozen base with the adapters off"
                                      : "the starting model (frozen copy)",
           cfg->dpo.precompute_ref ? ", precomputed once" : "");
    if (!cfg->dpo.precompute_ref) return 0;
    for (int s = 0; s < CT_N_SPLITS; s++) {
        if (s == CT_SPLIT_VAL && !r->have_val) continue;
        CtLoaderOptions o;
        ct_loader_default_options(&o);
        o.batch = 1;
        o.seq_len = cfg->train.seq_len;
        o.shuffle = 0;
        o.seed = (uint64_t)cfg->run.seed;
        CtLoader pairs;
        if (ct_loader_open(&pairs, &r->data, (CtSplit)s, &o) != 0) return -1;
        int rc = ct_dpo_precompute(&r->dpo, &r->model, &pairs, (CtSplit)s);
        ct_loader_close(&pairs);
        if (rc != 0) return -1;
    }
    ct_dpo_drop_model(&r->dpo);
    return 0;
}

// A resumed run, before anything else is said or done: a checkpoint at or past train.max_steps
// leaves nothing to do (*nothing_to_do, said in one line); one written by another world size is
// refused; otherwise "resumed from". 0, or -1 + error.
static int resume_checks(Run *r, const char *resume_path, int *nothing_to_do) {
    const CtRunConfig *cfg = r->cfg;
    if (r->step >= cfg->train.max_steps) {
        ct_log("%s: nothing to do: %s is at step %lld and train.max_steps is %lld; raise train.max_steps to train on",
               r->name, resume_path, (long long)r->step, (long long)cfg->train.max_steps);
        *nothing_to_do = 1;
        return 0;
    }
    // Data parallel: the data position counts global batches, so resuming needs the world size that wrote it
    // (its tokens per step are a multiple of this rank's).
    const int world = ct_dist_world();
    const int64_t tokens_per_step = (int64_t)r->train.batch.rows * cfg->train.seq_len * cfg->train.grad_accum * world;
    const int64_t rank_tokens = tokens_per_step / world, saved = r->step > 0 ? r->tokens_seen / r->step : 0;
    if (r->step > 0 && saved != tokens_per_step && saved % rank_tokens == 0 && r->tokens_seen % r->step == 0)
        return ct_error_set("%s was written by a run of %lld ranks with this batch; this one has %d: resume with "
                            "mpirun -np %lld (the data position counts global batches)", resume_path,
                            (long long)(saved / rank_tokens), world, (long long)(saved / rank_tokens));
    ct_log("resumed from %s at step %lld (%lld tokens seen)", resume_path, (long long)r->step,
           (long long)r->tokens_seen);
    snprintf(r->last_checkpoint, sizeof r->last_checkpoint, "%s", resume_path);  // until this run writes one
    return 0;
}

// The error of a run stopped by a failed metrics or plot write: what failed, and what was saved
// (checkpoint_error: why the last checkpoint could not be written, or NULL when it was).
static void report_write_failure(Run *r, const char *checkpoint_error) {
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

static void free_run(Run *r) {
    if (r->have_metrics) ct_metrics_close(&r->metrics);
    if (r->have_train) ct_loader_close(&r->train);
    if (r->have_val) ct_loader_close(&r->val);
    if (r->have_model) ct_model_free(&r->model);
    ct_step_batches_free(&r->step_batches);
    if (r->have_dpo) ct_dpo_free(&r->dpo);
    ct_adamw_free(&r->opt);
    if (r->have_zero) ct_zero_free(&r->zero);
    if (r->have_tokenizer) ct_tokenizer_free(&r->tokenizer);
    free(r->tokenizer_json);
    free(r->chat_template_json);
    ct_dataset_close(&r->data);
    ct_run_unlock(&r->lock);
}

int ct_pretrain(const CtPretrainJob *job) {
    const CtRunConfig *cfg = job->config;
    Run r;
    memset(&r, 0, sizeof r);
    r.cfg = cfg;
    r.objective = job->objective;
    r.name = job->objective == CT_OBJECTIVE_SFT ? "sft" : job->objective == CT_OBJECTIVE_DPO ? "dpo" : "pretrain";
    r.best_val = INFINITY;
    r.last_val = r.last_loss = r.last_exact_match = r.last_dpo_accuracy = NAN;
    r.config_json = job->config_json;
    int status = 1;
    char resume_path[2048];
    // Data parallel (train/dist/dist.h): every rank runs this loop; rank 0 alone prints and writes.
    if (ct_dist_init() != 0) return fail();
    const int lead = ct_dist_rank() == 0, world = ct_dist_world();
    if (!lead) ct_log_set_level(CT_LOG_QUIET);
    if (!(r.ops = ct_train_select_ops(cfg))) return fail();
    int threads = ct_cpu_set_threads(cfg->run.threads);
    if (r.objective == CT_OBJECTIVE_DPO && !job->resume_dir && !cfg->train.init_from[0]) {
        ct_error_set("dpo: train.init_from is not set: DPO tunes a trained model (an sft or pretrain checkpoint) "
                     "against a frozen copy of it, and from a fresh initialisation it would train random weights "
                     "against a random reference; set train.init_from to that checkpoint");
        goto done;
    }
    if (open_data(&r) != 0) goto done;
    if (job->resume_dir && ct_run_find_latest(job->resume_dir, resume_path, sizeof resume_path) != 0) goto done;
    if (lead && ct_make_dirs(cfg->run.out_dir) != 0) goto done;
    if (lead && ct_run_lock(&r.lock, cfg->run.out_dir) != 0) goto done;  // one run per folder; stale temporaries go
    if (open_loaders(&r) != 0) goto done;
    if (r.objective == CT_OBJECTIVE_SFT) r.chat_template_json = dataset_chat_template(cfg->data.path);
    ct_rng_seed_stream(&r.sample_rng, (uint64_t)cfg->run.seed, CT_RNG_STREAM_SAMPLES);
    if (build_model(&r, job->resume_dir ? resume_path : NULL) != 0) goto done;
    if (job->resume_dir) {
        int nothing_to_do = 0;
        if (resume_checks(&r, resume_path, &nothing_to_do) != 0) goto done;
        if (nothing_to_do) {
            status = 0;
            goto done;
        }
    }
    ct_dist_broadcast(r.model.params, r.model.n_params * sizeof(float), 0);  // data parallel: rank 0's start for all
    if (r.model.train_params != r.model.params)  // LoRA: the adapters too
        ct_dist_broadcast(r.model.train_params, r.model.n_train * sizeof(float), 0);
    if (!r.ops->host_memory) {  // run.device cuda: built on the CPU, trained on the GPU
        // NCCL carries the gradients between GPUs (one rank too: the same code runs); it picks
        // this rank's GPU from its node-local rank, so it starts before anything is allocated there.
        if (ct_nccl_built()) {
            if (ct_nccl_init() != 0) goto done;
            r.nccl = 1;
            r.gpu = ct_nccl_device();
        } else if (pick_gpu(&r) != 0) {
            goto done;
        }
        // ZeRO-1 cuts the trained buffers into equal parts for NCCL: they get the padding.
        if (cfg->optim.zero) r.model.train_shards = world;
        ct_model_to_backend(&r.model, r.ops);
        if (!cfg->optim.zero) {  // ZeRO-1 moves only this rank's slice (ct_zero_init, below)
            ct_adamw_move_to(&r.opt, r.ops);
            ct_adamw_resume_weight_copy(&r.opt, r.model.train_params);  // resumed: the bf16 copy its last step wrote
        }
        // Full training (not LoRA: its few adapter gradients go in one call) overlaps the
        // all-reduce with backward. ZeRO-1 reduce-scatters after backward instead.
        r.overlap = r.nccl && !r.model.lora && !cfg->optim.zero;
        if (r.overlap) ct_grad_buckets_init(&r.buckets, r.model.n_train, 0);
        char gpu[256];
        size_t total = 0;
        ct_cuda_device_describe(r.gpu, gpu, sizeof gpu, &total);
        ct_log("%s: training on %s (%s, %.1f GiB), %s; the model holds %.1f MiB there", r.name, r.ops->name, gpu,
               total / 1073741824.0,
               ct_ops_products_bf16(r.ops)
                   ? "matrix products and attention (head sizes 64, 128) in bf16 with fp32 accumulation, the rest fp32"
                   : "float32",
               r.ops->memory_peak() / 1048576.0);
    }
    if (cfg->optim.zero) {  // ZeRO-1: every rank keeps only its slice; rank 0 gathers the whole for each save
        if (ct_zero_init(&r.zero, &r.opt, r.ops) != 0) goto done;
        r.have_zero = 1;
        ct_zero_refresh_weight_copy(&r.zero, r.model.train_params);  // resumed: the bf16 copy its last step wrote
        ct_zero_release_state(&r.opt);
    }
    const int B = cfg->train.batch_size, T = cfg->train.seq_len, accum = cfg->train.grad_accum;
    if (r.objective == CT_OBJECTIVE_DPO && setup_dpo(&r, job->resume_dir != NULL) != 0) goto done;
    const int64_t tokens_per_step = (int64_t)r.train.batch.rows * T * accum * world;  // over all ranks
    // SFT rows hold whole examples: attention stays inside each one, positions restart.
    r.with_docs = cfg->data.doc_masking || r.objective == CT_OBJECTIVE_SFT;
    ct_step_batches_init(&r.step_batches, accum, r.train.batch.rows, T);
    char title[160];
    snprintf(title, sizeof title, "%s: %s, %.1fM parameters", cfg->run.out_dir, ct_arch_name(r.model.config.arch),
             r.model.n_params / 1e6);
    if (lead) {
        if (ct_metrics_open(&r.metrics, cfg->run.out_dir, job->resume_dir ? r.step : -1, title) != 0) goto done;
        r.have_metrics = 1;
    }
    char peak_how[400];  // a peak the run cannot exceed (train/loop/mfu_peak.h); 0: unknown, no MFU
    r.peak_flops = ct_mfu_peak_flops(cfg->train.peak_tflops, r.ops, r.gpu, threads, peak_how, sizeof peak_how);
    r.peak_flops *= world;  // MFU of the job: every rank's peak

    char line[512];
    ct_blas_describe(line, sizeof line);
    // What the model is: the config's preset only when the config built it (not a checkpoint's model).
    char origin[2100];
    if (job->resume_dir)
        snprintf(origin, sizeof origin, "from %s", resume_path);
    else if (cfg->train.init_from[0])
        snprintf(origin, sizeof origin, "from %s", cfg->train.init_from);
    else
        snprintf(origin, sizeof origin, "preset %s", cfg->model.preset);
    ct_log("%s: %s (%s), %.2fM parameters, %d layers, d_model %d; %d threads; %s", r.name,
           ct_arch_name(r.model.config.arch), origin, r.model.n_params / 1e6, r.model.config.n_layer,
           r.model.config.d_model, threads, line);
    ct_log("%s: %s: %llu train tokens, %llu val tokens; batch %d rows x %d x %d = %lld tokens per step, %lld steps "
           "(%.2f epochs)",
           r.name, cfg->data.path, (unsigned long long)r.data.split[CT_SPLIT_TRAIN].n_tokens,
           (unsigned long long)r.data.split[CT_SPLIT_VAL].n_tokens, r.train.batch.rows, T, accum, (long long)tokens_per_step,
           (long long)cfg->train.max_steps,
           (double)cfg->train.max_steps * tokens_per_step / (double)r.data.split[CT_SPLIT_TRAIN].n_tokens);
    double unigram = r.objective == CT_OBJECTIVE_LM ? ct_train_unigram_entropy(&r.data) : NAN;
    if (isfinite(unigram))
        ct_log("pretrain: unigram entropy of the training tokens %.4f nats/token (what a model that ignores context "
               "reaches)", unigram);
    ct_log("%s: %s%s", r.name, peak_how, world > 1 ? "; per rank (MFU divides by every rank's)" : "");
    ct_log("%s: writing %s/metrics.jsonl, %s/loss.svg and checkpoints to %s", r.name, cfg->run.out_dir,
           cfg->run.out_dir, cfg->run.out_dir);

    signal(SIGINT, on_stop_signal);
    signal(SIGTERM, on_stop_signal);
    if (r.step == 0) {
        if (lead) print_samples(&r, "before training");
        if (r.have_val) r.last_val = evaluate(&r);  // every rank: its rows of the validation batches
        if (r.eval_failed) goto done;
        if (r.have_val && lead) {
            ct_metrics_eval(&r.metrics, 0, 0, r.last_val, r.objective != CT_OBJECTIVE_DPO);
            char ppl[64];
            ct_log("step %6d | val loss %.4f%s at %s", 0, r.last_val, perplexity_note(&r, ppl, sizeof ppl),
                   cfg->train.init_from[0] ? "the start" : "initialisation");
            if (keep_if_best(&r) != 0) goto done;
            double em = exact_match(&r, 3);
            if (!isnan(em)) {
                ct_metrics_exact_match(&r.metrics, 0, 0, em);
                ct_log("step %6d | exact match %.1f%% on held-out examples", 0, 100 * em);
            }
        }
    }
    // DPO's loss is no cross-entropy: only its gradient norm is watched.
    ct_divergence_init(&r.divergence, r.objective == CT_OBJECTIVE_DPO ? 0 : r.model.config.vocab_size);
    CtLrSchedule sched = ct_train_schedule(cfg);
    // LoRA: the frozen base's products forward and for the inputs' gradients, and the adapters'
    // own (each adapter weight in one product per token: 2 FLOP forward, 4 backward).
    const double lora_flops = r.model.lora ? 6.0 * (double)r.model.lora->n_params : 0;
    const double flops_per_step =
        (ct_model_flops_per_token(&r.model.config, T, r.model.lora != NULL) + lora_flops) * (double)tokens_per_step;
    const int tty = isatty(fileno(stderr));
    const int64_t log_every = cfg->train.max_steps / 50 > 1 ? cfg->train.max_steps / 50 : 1;
    double compute_time = 0, start = ct_time_now(), ema_tps = 0;
    int64_t first_step = r.step;
    int stopped_early = 0;
    // How many ranks received SIGINT and SIGTERM, summed over the ranks after each step, so that
    // every rank stops after the same step (never on its own flag, which a signal may set later).
    int64_t stop_by[2] = {0, 0};
    int stopping = 0, write_failed = 0;
    while (r.step < cfg->train.max_steps && !stopping && !stopped_early && !write_failed) {
        double t0 = ct_time_now();
        r.opt.lr = ct_lr_at(&sched, (long)r.step);
        ct_model_zero_grad(&r.model);
        if (ct_step_batches_fetch(&r.step_batches, &r.train) != 0) goto done;
        double loss = 0;  // the step's mean: micro-batch losses are already weighted by their share
        int reduced = 0;  // the gradients were all-reduced in buckets during the last backward
        CtDpoStats dpo_train = {0};
        // Dropout masks (model.dropout > 0): a stream per step, so a resumed run draws the same ones.
        ct_model_set_dropout(&r.model, 1, dropout_seed((uint64_t)cfg->run.seed, (uint64_t)r.step * 65536));
        if (r.objective == CT_OBJECTIVE_DPO) {
            CtDpoStats st;
            memset(&st, 0, sizeof st);
            for (int a = 0; a < accum; a++)
                ct_dpo_micro_step(&r.dpo, &r.model, &r.step_batches, a, (int64_t)world * accum * B, CT_SPLIT_TRAIN, 1,
                                  &st);
            loss = st.loss;
            if (world > 1) dpo_stats_allreduce(&st);
            ct_dpo_stats_finish(&st);
            dpo_train = st;  // logged with this step's number, as its loss is (TRL's rows)
        } else {
            int64_t total = r.step_batches.total;  // data parallel: the mean is over every rank's targets
            ct_dist_allreduce_sum_i64(&total, 1);
            ct_step_batches_normalise(&r.step_batches, total);
            for (int a = 0; a < accum; a++) {
                CtBatch mb = ct_step_batch(&r.step_batches, a, r.with_docs);
                ct_model_set_dropout(&r.model, 1, dropout_seed((uint64_t)cfg->run.seed, (uint64_t)r.step * 65536 + a));
                loss += ct_model_forward(&r.model, &mb);
                if (r.overlap && a == accum - 1) {  // the gradients are complete as this backward finishes them
                    ct_grad_buckets_restart(&r.buckets);
                    r.model.grads_final = buckets_ready;
                    r.model.grads_final_ctx = &r;
                }
                ct_model_backward(&r.model);
                r.model.grads_final = NULL;
            }
            // Every bucket is out now (the last report is 0); no MPI collective may come before this.
            if (r.overlap) {
                ct_nccl_wait_all();
                reduced = 1;
            }
        }
        // Data parallel: each rank's loss and gradients are its share of the global mean; their sums are the step's.
        ct_dist_allreduce_sum_f64(&loss, 1);
        if (!r.have_zero && !reduced && (world > 1 || r.nccl)) allreduce_grads(&r);
        ct_model_set_dropout(&r.model, 0, 0);  // evaluation and samples see the whole model
        double norm = r.have_zero ? ct_zero_reduce_clip(&r.zero, r.model.train_grads, cfg->optim.grad_clip)
                                  : ct_clip_grad_norm_on(r.ops, r.model.train_grads, r.model.n_train, cfg->optim.grad_clip);
        if (!isfinite(loss) || !isfinite(norm)) {
            char causes[400];
            ct_divergence_causes(cfg, causes, sizeof causes);
            ct_error_set("step %lld: the %s is %s; stopping (%s). Likely cause: %s; or check the data",
                         (long long)r.step + 1, isfinite(loss) ? "gradient norm" : "loss",
                         isnan(isfinite(loss) ? norm : loss) ? "NaN" : "infinite",
                         r.last_checkpoint[0] ? r.last_checkpoint : "no checkpoint was written yet", causes);
            goto done;
        }
        if (r.have_zero)
            ct_zero_update(&r.zero, r.model.train_params, r.model.train_grads, r.opt.lr);
        else
            ct_adamw_step(&r.opt, r.model.train_params, r.model.train_grads);
        ct_lora_tokens_mark_changed(&r.model);  // LoRA's trainable token rows: the base reads them anew
        r.step++;
        stop_by[0] = stop_signal == SIGINT, stop_by[1] = stop_signal == SIGTERM;
        ct_dist_allreduce_sum_i64(stop_by, 2);
        stopping = stop_by[0] + stop_by[1] > 0;
        stopped_early = job->stop_after > 0 && r.step - first_step >= job->stop_after && r.step < cfg->train.max_steps;
        r.tokens_seen += tokens_per_step;
        r.last_loss = loss;
        double dt = ct_time_now() - t0;
        compute_time += dt;
        double tps = tokens_per_step / dt;
        ema_tps = r.step == first_step + 1 ? tps : 0.9 * ema_tps + 0.1 * tps;
        double mfu = r.peak_flops > 0 ? flops_per_step / dt / r.peak_flops : NAN;
        if (lead) ct_metrics_train(&r.metrics, r.step, r.tokens_seen, loss, r.opt.lr, norm, tps, mfu, ct_time_now() - start);
        if (lead) ct_divergence_check(&r.divergence, cfg, r.step, loss, norm, tty);
        if (r.objective == CT_OBJECTIVE_DPO) log_dpo(&r, "train", &dpo_train);
        int eval_now = r.have_val && ((cfg->train.eval_every && r.step % cfg->train.eval_every == 0) ||
                                       r.step == cfg->train.max_steps);
        if (lead && (tty || eval_now || r.step % log_every == 0 || r.step == first_step + 1)) {
            char eta[32], mem[32];
            ct_format_duration(eta, sizeof eta, (double)(cfg->train.max_steps - r.step) * tokens_per_step / ema_tps);
            ct_format_bytes(mem, sizeof mem, (double)r.ops->memory_peak());
            fprintf(stderr, "%sstep %6lld/%lld | loss %.4f | lr %.2e | norm %.3f | %.0f tok/s | MFU %.1f%% | mem %s | ETA %s%s",
                    tty ? "\r" : "", (long long)r.step, (long long)cfg->train.max_steps, loss, r.opt.lr, norm, ema_tps,
                    100 * mfu, mem, eta, tty && !eval_now ? "\033[K" : "\n");
        }
        if (eval_now) r.last_val = evaluate(&r);  // every rank: its rows of the validation batches
        if (r.eval_failed) goto done;
        if (eval_now && lead) {
            ct_metrics_eval(&r.metrics, r.step, r.tokens_seen, r.last_val, r.objective != CT_OBJECTIVE_DPO);
            char ppl[64];
            ct_log("step %6lld | val loss %.4f%s%s", (long long)r.step, r.last_val, perplexity_note(&r, ppl, sizeof ppl),
                   r.last_val < r.best_val ? ", best so far" : "");
            double em = exact_match(&r, r.step == cfg->train.max_steps ? 3 : 0);
            if (!isnan(em)) {
                r.last_exact_match = em;
                ct_metrics_exact_match(&r.metrics, r.step, r.tokens_seen, em);
                ct_log("step %6lld | exact match %.1f%% on held-out examples", (long long)r.step, 100 * em);
            }
            if (keep_if_best(&r) != 0) goto done;
            ct_metrics_plot(&r.metrics);
        }
        if (lead && cfg->train.sample_every && r.step % cfg->train.sample_every == 0) {
            if (tty) fputc('\n', stderr);
            print_samples(&r, "during training");
        }
        // A metrics or plot write that failed (a full disk) stops the run after a last checkpoint, if one fits.
        write_failed = ct_dist_any(lead && r.metrics.failed);
        int save_now = (cfg->train.save_every && r.step % cfg->train.save_every == 0) || r.step == cfg->train.max_steps ||
                       stopping || stopped_early || write_failed;
        if (save_now && r.have_zero) ct_zero_gather_state(&r.zero, &r.opt, 0);  // ZeRO-1: the whole state on rank 0
        if (lead && save_now) {
            char path[2048];
            ct_run_checkpoint_path(path, sizeof path, cfg->run.out_dir, r.step);
            if (save_checkpoint(&r, path, 1) != 0) {
                if (write_failed) report_write_failure(&r, ct_error_message());
                goto done;
            }
            ct_run_prune(cfg->run.out_dir, cfg->train.keep_last);
        }
        if (save_now && r.have_zero) ct_zero_release_state(&r.opt);  // the gathered copy was for the file
    }
    if (tty && lead) fputc('\n', stderr);
    if (lead && !write_failed) ct_metrics_plot(&r.metrics);
    if (lead && r.metrics.failed && !write_failed) write_failed = 1;  // the last plot
    if (ct_dist_any(write_failed)) {
        if (lead)
            report_write_failure(&r, NULL);
        else
            ct_error_set("rank %d: stopped with rank 0, which could not write its metrics", ct_dist_rank());
        goto done;
    }
    if (stopping) {
        char by[300];
        describe_stop(by, sizeof by, stop_by[0], stop_by[1], world);
        ct_log("interrupted at step %lld by %s; checkpoint %s; continue with --resume %s", (long long)r.step, by,
               r.last_checkpoint, cfg->run.out_dir);
        status = stop_by[0] ? 130 : 143;
        goto done;
    }
    if (stopped_early) {
        ct_log("stopped after %lld steps as asked (--stop-after) at step %lld; checkpoint %s; continue with --resume %s",
               (long long)job->stop_after, (long long)r.step, r.last_checkpoint, cfg->run.out_dir);
        status = 0;
        goto done;
    }
    if (world > 1) {  // data parallel: the ranks must have taken the same steps
        if (!ct_dist_same_everywhere(ct_model_train_params_host(&r.model), r.model.n_train * sizeof(float))) {
            ct_error_set("data parallel: the parameters differ between ranks after %lld steps (a bug: please report it)",
                         (long long)r.step);
            goto done;
        }
        ct_log("data parallel: parameters identical on all %d ranks", world);
    }
    if (lead) print_samples(&r, "after training");
    ct_log("done: %lld steps, %lld tokens in %.1f s of compute (%.0f tokens/s); final train loss %.4f, val loss %.4f%s",
           (long long)r.step, (long long)r.tokens_seen, compute_time,
           compute_time > 0 ? (double)(r.step - first_step) * tokens_per_step / compute_time : 0.0, r.last_loss, r.last_val,
           isfinite(unigram) ? "" : "");
    if (isfinite(unigram) && isfinite(r.last_val))
        ct_log("done: validation loss %.4f vs unigram entropy %.4f nats/token", r.last_val, unigram);
    if (isfinite(r.last_exact_match))
        ct_log("done: exact match %.1f%% on held-out examples%s", 100 * r.last_exact_match,
               r.objective == CT_OBJECTIVE_DPO ? " (greedy answer = chosen completion)" : "");
    if (isfinite(r.last_dpo_accuracy))
        ct_log("done: held-out rewards/accuracies %.3f", r.last_dpo_accuracy);
    char best[2100] = "";
    if (isfinite(r.best_val)) snprintf(best, sizeof best, ", best %s/best.h5", cfg->run.out_dir);
    ct_log("done: checkpoint %s%s, loss plot %s/loss.svg", r.last_checkpoint, best, cfg->run.out_dir);
    status = 0;
done:
    if (status == 1) fail();
    if (status == 1 && world > 1) ct_dist_abort(1);  // the other ranks would wait for this one forever
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    free_run(&r);
    if (r.nccl) ct_nccl_finalize();
    ct_dist_finalize();
    return status;
}
