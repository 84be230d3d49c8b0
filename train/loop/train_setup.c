// Everything a run does before its first step (train/loop/train_run.h): the dataset and its
// tokenizer, the run folder and its lock, the loaders, the model (fresh, resumed, or the
// weights of train.init_from, with LoRA adapters over them), its device and the distributed
// parts, the objective's state and the metrics file.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "data/tokenizer/tokenizer_files.h"
#include "data/tokenizer/tokenizer_hf.h"
#include "data/tokenizer/tokenizer_identity.h"
#include "kernels/device.h"
#include "train/dist/dist.h"
#include "train/interop/checkpoint_io.h"
#include "train/interop/checkpoint_meta.h"
#include "train/loop/run_lora.h"
#include "train/loop/run_peft.h"
#include "train/loop/init_tokenizer.h"
#include "train/loop/mfu_peak.h"
#include "train/loop/run_dir.h"
#include "train/loop/train_common.h"
#include "train/loop/train_run.h"
#include "train/model/lora_tokens.h"
#include "train/model/model_resize.h"
#include "train/interop/stop_tokens.h"

// Classification's examples (JSON lines, held in memory: train/objectives/classify.h) and their
// tokenizer: data.tokenizer, else train.init_from's (a checkpoint carries its tokenizer.json).
static int open_classify(CtRun *r) {
    const CtRunConfig *cfg = r->cfg;
    if (!cfg->data.path[0]) return ct_error_set("classify: data.path is not set: name a JSON-lines file of examples");
    if (cfg->data.tokenizer[0]) {
        snprintf(r->tokenizer_path, sizeof r->tokenizer_path, "%s", cfg->data.tokenizer);
        if (ct_tokenizer_load(&r->tokenizer, cfg->data.tokenizer, NULL) != 0) return -1;
    } else if (cfg->train.init_from[0] || r->resume_dir) {
        if (ct_train_checkpoint_tokenizer(r->resume_dir ? r->resume_path : cfg->train.init_from, &r->tokenizer) != 0)
            return -1;
        snprintf(r->tokenizer_path, sizeof r->tokenizer_path, "%s", r->resume_dir ? r->resume_path : cfg->train.init_from);
    } else {
        return ct_error_set("classify: no tokenizer: set data.tokenizer (a tokenizer.json), or train.init_from to a "
                            "checkpoint that carries one");
    }
    r->have_tokenizer = 1;
    r->tokenizer_json = ct_tokenizer_hf_json(&r->tokenizer);
    r->data.vocab_size = (uint32_t)ct_tokenizer_vocab_size(&r->tokenizer);  // what the model's vocabulary must hold
    r->data.tokenizer_hash = ct_tokenizer_fingerprint(&r->tokenizer);
    CtClassifyRun *c = &r->classify;
    if (ct_classify_run_init(c, cfg->data.path, cfg->classify.val_path, cfg->classify.val_fraction,
                             cfg->classify.labels, &r->tokenizer, cfg->train.seq_len, (uint64_t)cfg->run.seed) != 0)
        return -1;
    r->have_classify = 1;
    r->have_val = c->n_val > 0;
    if (c->train.truncated || c->val.truncated)
        ct_warn("classify: %llu examples are longer than train.seq_len %d and lose tokens from the ends of their texts "
                "(transformers' truncation longest_first)",
                (unsigned long long)(c->train.truncated + c->val.truncated), cfg->train.seq_len);
    return 0;
}

static int open_data(CtRun *r) {
    const CtRunConfig *cfg = r->cfg;
    if (r->objective->own_data) return open_classify(r);
    if (!cfg->data.path[0]) return ct_error_set("data.path is not set: name a dataset folder made by ctrain shard");
    if (ct_dataset_open(&r->data, cfg->data.path) != 0) return -1;
    CtShardKind want = r->objective->data_kind;
    if (r->data.kind != want)
        return ct_error_set("%s: a %s dataset; ctrain %s reads %s datasets (shard with --format %s, or use ctrain %s)",
                            cfg->data.path, ct_shard_kind_name(r->data.kind), r->name, ct_shard_kind_name(want),
                            ct_shard_kind_name(want),
                            r->data.kind == CT_SHARD_TEXT ? "pretrain"
                            : r->data.kind == CT_SHARD_SFT ? "sft"
                            : r->data.kind == CT_SHARD_DPO ? "dpo"
                                                           : "grpo");
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

int ct_train_rows(const CtRun *r) { return r->have_train ? r->train.batch.rows : r->cfg->train.batch_size; }

static int open_loaders(CtRun *r) {
    const CtRunConfig *cfg = r->cfg;
    if (r->objective->reads_prompts) return ct_train_open_prompts(r);
    if (r->objective->own_data) return 0;
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

// A resumed model: its weights, optimizer state, data position, samples' generator and losses.
static int resume_model(CtRun *r, const CtModelConfig *want, int B, int T) {
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    ct_checkpoint_meta_init(&meta);
    if (ct_checkpoint_load(r->resume_path, &r->model, ct_ops_cpu(), B, T, r->cfg->model.recompute, &r->opt, &meta) != 0)
        return -1;
    r->have_model = 1;
    // A run that started from train.init_from has that checkpoint's model, which the config's model
    // keys do not describe: only a model the config built is compared.
    if (!r->model.lora && !r->cfg->train.init_from[0] && memcmp(&r->model.config, want, sizeof *want) != 0) {
        ct_checkpoint_meta_free(&meta);
        return ct_error_set("%s: its model differs from the one the config describes; resume with the config of "
                            "that run", r->resume_path);
    }
    r->step = meta.step;
    r->tokens_seen = meta.tokens_seen;
    r->best_val = isfinite(meta.best_val_loss) ? meta.best_val_loss : INFINITY;
    r->last_val = meta.val_loss;
    memcpy(r->sample_rng.s, meta.rng, sizeof meta.rng);
    int rc = r->have_prompts ? ct_prompt_loader_restore(&r->prompts, &meta.loader)
             : r->have_train ? ct_loader_restore(&r->train, &meta.loader)
                             : 0;  // classify: its order is a function of the step
    ct_checkpoint_meta_free(&meta);  // "resumed from" is said once resume_checks has passed
    return rc;
}

// A language model becomes a reward model: its weights, and a new head (transformers'
// *ForSequenceClassification.from_pretrained of a causal LM draws `score` the same way); one that
// has the head keeps it.
static int add_reward_head(CtRun *r, const CtModelConfig *want, int B, int T) {
    if (r->model.config.reward_head) return 0;
    const int flags = (r->cfg->model.recompute ? CT_MODEL_RECOMPUTE : 0) | (r->model.frozen ? CT_MODEL_FROZEN : 0);
    if (ct_model_add_reward_head(&r->model, (uint64_t)r->cfg->run.seed, B, T, flags) != 0) return -1;
    r->model.config.reward_pad_id = want->reward_pad_id;
    ct_log("reward: added the scalar head score.weight [1, %d] to %s", r->model.config.d_model, r->cfg->train.init_from);
    return 0;
}

// LoRA reward models (PEFT's SEQ_CLS task): the head on the frozen base before the adapters, and
// trained in full beside them (CtLoraBaseHead of train/loop/run_lora.h).
static int reward_lora_head(CtModel *base, void *ctx, char *modules_to_save, size_t size) {
    const CtClassifierHead *h = ctx;
    CT_CHECK(base == &h->run->model, "a LoRA reward model's head goes on the run's model");
    if (add_reward_head(h->run, h->want, h->B, h->T) != 0) return -1;
    snprintf(modules_to_save, size, "classifier,score");
    return 0;
}

// The weights of train.init_from: the model itself, or (lora.r > 0) LoRA adapters over it frozen;
// rows added to the embedding (and head) for tokens of the dataset's tokenizer the base lacks.
static int start_from(CtRun *r, const CtModelConfig *want, int B, int T) {
    const CtRunConfig *cfg = r->cfg;
    if (ct_init_tokenizer_check(cfg->train.init_from, r->have_tokenizer ? &r->tokenizer : NULL, r->data.tokenizer_hash,
                                r->tokenizer_path) != 0)
        return -1;
    if (cfg->lora.r > 0) {  // LoRA: adapters over the frozen model of init_from (train/interop/lora_checkpoint.h)
        // a classifier or reward model: its head on the base first, trained in full beside the adapters
        // (PEFT's SEQ_CLS)
        CtClassifierHead head = {r, want, B, T};
        CtLoraBaseHead add_head = want->num_labels    ? ct_train_classifier_lora_head
                                  : want->reward_head ? reward_lora_head
                                                      : NULL;
        if (ct_lora_model_from_config(cfg, &r->model, ct_ops_cpu(), B, T, cfg->model.recompute, add_head, &head) != 0)
            return -1;
    } else if (cfg->peft.type) {  // prompt learning: an adapter over the frozen model (train/loop/run_peft.h)
        if (ct_peft_model_from_config(cfg, r->have_tokenizer ? &r->tokenizer : NULL, &r->model, B, T,
                                      cfg->model.recompute) != 0)
            return -1;
    } else {
        CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
        ct_checkpoint_meta_init(&meta);
        if (ct_checkpoint_load(cfg->train.init_from, &r->model, ct_ops_cpu(), B, T, cfg->model.recompute, NULL, &meta) !=
            0)
            return -1;
        ct_checkpoint_meta_free(&meta);
    }
    r->have_model = 1;
    ct_log("starting from the weights of %s", cfg->train.init_from);
    if (r->model.config.vocab_size >= (int)r->data.vocab_size) return 0;
    // The dataset's tokenizer has tokens the base lacks (a chat template's specials).
    int old_V = r->model.config.vocab_size;
    if (r->model.peft)
        return ct_error_set("peft: the dataset's tokenizer has %u tokens, the base %d: prompt learning keeps the base "
                            "frozen, so new token rows could not train; shard with the base's tokenizer and a template "
                            "of its tokens (or use LoRA, which trains new rows)", r->data.vocab_size, old_V);
    if (r->model.lora ? ct_lora_grow_vocab(&r->model, (int)r->data.vocab_size)  // the new rows train, as PEFT's
                                                                                 // trainable_token_indices
                      : ct_model_grow_vocab(&r->model, (int)r->data.vocab_size, B, T, cfg->model.recompute))
        return -1;
    r->vocab_grown_from = old_V;
    ct_log("%s: the dataset's tokenizer has %u tokens, the base %d: added %u rows to the embedding (and head), "
           "set to the mean embedding", r->name, r->data.vocab_size, old_V, r->data.vocab_size - (unsigned)old_V);
    return 0;
}

// What the run's checkpoints carry on from the one it starts from or resumes (path; "" for a
// fresh model): its generation_config, and its chat template where the dataset names none.
static int inherit_meta(CtRun *r, const char *path) {
    if (!path[0]) return 0;
    CtModelConfig config;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    if (ct_checkpoint_read_meta(path, &config, &meta) != 0) return -1;
    r->generation_config_json = meta.generation_config_json;
    meta.generation_config_json = NULL;
    if (!r->chat_template_json) {
        r->chat_template_json = meta.chat_template_json;
        meta.chat_template_json = NULL;
    }
    ct_checkpoint_meta_free(&meta);
    return 0;
}

// The model: resumed, started from another checkpoint's weights, or freshly initialised.
static int build_model(CtRun *r) {
    const CtRunConfig *cfg = r->cfg;
    CtModelConfig want;
    if (ct_train_model_config(cfg, &r->data, &want) != 0) return -1;
    want.reward_head = r->kind == CT_OBJECTIVE_REWARD;  // a reward model: the scalar head on top
    // where it reads its scores: the last token that is not TRL's padding id, the tokenizer's pad
    // token or else its EOS (ctrain's tokenizers name no pad token: the EOS, as `export hf` names it)
    if (want.reward_head) want.reward_pad_id = r->have_tokenizer ? ct_tokenizer_eos_special(&r->tokenizer) : -1;
    if (r->kind == CT_OBJECTIVE_CLASSIFY && ct_train_classifier_config(r, &want) != 0) return -1;
    const int B = ct_train_rows(r), T = cfg->train.seq_len;  // rows: 2 per pair for dpo
    const double lr = cfg->optim.lr, b1 = cfg->optim.beta1, b2 = cfg->optim.beta2, eps = cfg->optim.eps,
                 wd = cfg->optim.weight_decay;
    ct_adamw_init(&r->opt, 0, lr, b1, b2, eps, wd);  // moments sized once the model is known
    if (r->resume_dir) {
        if (resume_model(r, &want, B, T) != 0) return -1;
    } else if (cfg->train.init_from[0]) {
        if (start_from(r, &want, B, T) != 0) return -1;
        if (want.reward_head && add_reward_head(r, &want, B, T) != 0) return -1;
        if (want.num_labels && ct_train_add_classifier(r, &want, B, T) != 0) return -1;
    } else {
        if (cfg->lora.r > 0)
            return ct_error_set("lora.r = %d: LoRA trains adapters over an existing model; set train.init_from to "
                                "its checkpoint", cfg->lora.r);
        if (cfg->peft.type)
            return ct_error_set("peft.type: prompt learning trains an adapter over an existing model; set "
                                "train.init_from to its checkpoint");
        if (ct_model_create(&r->model, &want, ct_ops_cpu(), B, T, cfg->model.recompute) != 0) return -1;
        r->have_model = 1;
        ct_model_init(&r->model, (uint64_t)cfg->run.seed);
    }
    if (r->opt.n != r->model.n_train) {  // what the optimizer steps: every parameter, or the LoRA adapters
        ct_adamw_free(&r->opt);
        ct_adamw_init(&r->opt, r->model.n_train, lr, b1, b2, eps, wd);
    }
    if (r->model.peft) {  // HF's Trainer decays every weight of the adapter, no bias
        CtParamSpan spans[CT_PEFT_MAX_TENSORS];
        ct_peft_decay_spans(r->model.peft, spans);
        ct_adamw_set_spans(&r->opt, spans, r->model.peft->n_tensors);
    } else {
        ct_train_set_decay_spans(&r->model, &r->opt, cfg->optim.decay_embeddings);
    }
    r->opt.seed = (uint64_t)cfg->run.seed;  // the bf16 weight copy's stochastic rounding (GPU)
    return 0;
}

// DeepSeek-V3's aux-free balancing moves the router's selection bias, which the sigmoid routers
// alone have, and which LoRA's frozen base would not save. The model may be a checkpoint's: the
// config's keys (run_config.c) could not tell.
static int check_moe_balancing(CtRun *r) {
    const CtRunConfig *cfg = r->cfg;
    if (!(cfg->train.aux_free_bias_rate > 0)) return 0;
    const CtModelConfig *c = &r->model.config;
    if (!ct_model_router_has_bias(c))
        return ct_error_set("train.aux_free_bias_rate %g needs a Mixture-of-Experts model with model.router sigmoid or "
                            "sigmoid_norm (the routers with a selection bias); this model %s%s; set it to 0",
                            cfg->train.aux_free_bias_rate, c->n_experts ? "routes with " : "is dense",
                            c->n_experts ? ct_router_name(c->router) : "");
    if (r->model.lora)
        return ct_error_set("train.aux_free_bias_rate %g: the selection bias belongs to LoRA's frozen base, which "
                            "the adapters' checkpoints do not keep; set it to 0 with lora.r > 0",
                            cfg->train.aux_free_bias_rate);
    return 0;
}

// A resumed run, before anything else is said or done: a checkpoint at or past train.max_steps
// leaves nothing to do (1, said in one line); one written by another world size is refused;
// otherwise "resumed from". 0, 1, or -1 + error.
static int resume_checks(CtRun *r) {
    const CtRunConfig *cfg = r->cfg;
    if (r->step >= cfg->train.max_steps) {
        ct_log("%s: nothing to do: %s is at step %lld and train.max_steps is %lld; raise train.max_steps to train on",
               r->name, r->resume_path, (long long)r->step, (long long)cfg->train.max_steps);
        return 1;
    }
    // Data parallel: the data position counts global batches, so resuming needs the world size that wrote it
    // (its tokens per step are a multiple of this rank's).
    const int world = r->world;
    const int64_t tokens_per_step = (int64_t)ct_train_rows(r) * cfg->train.seq_len * cfg->train.grad_accum * world;
    const int64_t rank_tokens = tokens_per_step / world, saved = r->step > 0 ? r->tokens_seen / r->step : 0;
    if (r->step > 0 && saved != tokens_per_step && saved % rank_tokens == 0 && r->tokens_seen % r->step == 0)
        return ct_error_set("%s was written by a run of %lld ranks with this batch; this one has %d: resume with "
                            "mpirun -np %lld (the data position counts global batches)", r->resume_path,
                            (long long)(saved / rank_tokens), world, (long long)(saved / rank_tokens));
    ct_log("resumed from %s at step %lld (%lld tokens seen)", r->resume_path, (long long)r->step,
           (long long)r->tokens_seen);
    snprintf(r->last_checkpoint, sizeof r->last_checkpoint, "%s", r->resume_path);  // until this run writes one
    return 0;
}

// Rank 0's start for every rank; run.device cuda: built on the CPU, trained on the GPU (its
// rank's, picked by train/dist/grad_sync.h); ZeRO-1 keeps each rank's slice of the state.
static int place_model(CtRun *r) {
    const CtRunConfig *cfg = r->cfg;
    ct_dist_broadcast(r->model.params, r->model.n_params * sizeof(float), 0);  // data parallel: rank 0's start for all
    if (r->model.train_params != r->model.params)  // LoRA: the adapters too
        ct_dist_broadcast(r->model.train_params, r->model.n_train * sizeof(float), 0);
    r->sync.ops = r->ops;
    r->sync.world = r->world;
    if (!r->ops->host_memory && r->model.peft && r->model.peft->spec.type == CT_PEFT_P_TUNING &&
        r->model.peft->spec.encoder == CT_PEFT_ENCODER_LSTM && !r->model.peft->spec.inference)
        return ct_error_set("peft.encoder_reparameterization_type LSTM runs on the CPU only for now (its CUDA "
                            "kernels are not written yet); use MLP, or set run.device cpu");
    if (!r->ops->host_memory) {
        if (ct_grad_sync_pick_gpu(&r->sync, r->ops) != 0) return -1;
        // ZeRO-1 cuts the trained buffers into equal parts for NCCL: they get the padding.
        if (cfg->optim.zero) r->model.train_shards = r->world;
        ct_model_to_backend(&r->model, r->ops);
        if (!cfg->optim.zero) {  // ZeRO-1 moves only this rank's slice (ct_grad_sync_init_zero, below)
            ct_adamw_move_to(&r->opt, r->ops);
            ct_adamw_resume_weight_copy(&r->opt, r->model.train_params);  // resumed: the bf16 copy its last step wrote
        }
        ct_grad_sync_plan_overlap(&r->sync, &r->model, cfg->optim.zero);
        char gpu[256];
        size_t total = 0;
        ct_cuda_device_describe(r->sync.gpu, gpu, sizeof gpu, &total);
        ct_log("%s: training on %s (%s, %.1f GiB), %s; the model holds %.1f MiB there", r->name, r->ops->name, gpu,
               total / 1073741824.0,
               ct_ops_products_bf16(r->ops)
                   ? "matrix products and attention (head sizes 64, 128) in bf16 with fp32 accumulation, the rest fp32"
                   : "float32",
               r->ops->memory_peak() / 1048576.0);
    }
    // ZeRO-1: every rank keeps only its slice; rank 0 gathers the whole for each save
    return cfg->optim.zero ? ct_grad_sync_init_zero(&r->sync, &r->opt, &r->model) : 0;
}

// What the objective's hooks see of the run (train/objectives/objective.h).
static void metrics_row(void *ctx, const CtMetricRow *row) {
    CtRun *r = ctx;
    ct_metrics_row(&r->metrics, r->step, r->tokens_seen, row);
}

static void bind_objective(CtRun *r) {
    const CtRunConfig *cfg = r->cfg;
    CtObjectiveRun *o = &r->obj;
    o->set = (CtObjectiveSettings){
        .seed = (uint64_t)cfg->run.seed,
        .batch_size = cfg->train.batch_size,
        .seq_len = cfg->train.seq_len,
        .accum = cfg->train.grad_accum,
        .eval_batches = cfg->train.eval_batches,
        .eval_exact_match = cfg->train.eval_exact_match,
        // SFT rows hold whole examples: attention stays inside each one, positions restart.
        .with_docs = cfg->data.doc_masking || r->objective->packs_examples,
        .world = r->world,
        .aux_loss_coef = (float)cfg->train.aux_loss_coef,
        .router_z_loss_coef = (float)cfg->train.router_z_loss_coef,
    };
    o->model = &r->model;
    // multi-token prediction's λ: the language-model objectives train the modules, the others leave them be
    r->model.mtp_weight =
        r->kind == CT_OBJECTIVE_LM || r->kind == CT_OBJECTIVE_SFT ? (float)cfg->train.mtp_weight : 0.0f;
    o->val = r->have_val && r->have_train ? &r->val : NULL;
    o->prompts = r->have_prompts ? &r->prompts : NULL;
    o->val_prompts = r->have_val_prompts ? &r->val_prompts : NULL;
    o->tokenizer = r->have_tokenizer ? &r->tokenizer : NULL;
    o->batches = &r->step_batches;
    o->sync = &r->sync;
    o->metrics = (CtMetricSink){r->lead ? metrics_row : NULL, r};
    o->step = &r->step;
}

// Masked-language modelling: the masking tables of the dataset's tokenizer (its mask token).
static int setup_mlm(CtRun *r) {
    const CtRunConfig *cfg = r->cfg;
    const CtMlmRates rates = {cfg->mlm.mlm_probability, cfg->mlm.mask_replace_prob, cfg->mlm.random_replace_prob,
                              cfg->mlm.whole_word_mask};
    if (ct_mlm_run_init(&r->mlm, r->have_tokenizer ? &r->tokenizer : NULL, r->model.config.vocab_size, &rates) != 0)
        return -1;
    r->obj.state = &r->mlm;
    const CtMlmMasking *mm = &r->mlm.masking;
    ct_log("mlm: selecting %g%% of the %s of each row (never its %d special tokens); of those, %g%% become the mask "
           "token (id %d), %g%% a random one of %d ordinary tokens, %g%% stay%s%s", 100 * rates.mlm_probability,
           rates.whole_word_mask ? "words" : "tokens", r->tokenizer.n_special, 100 * rates.mask_replace_prob,
           mm->mask_id, 100 * rates.random_replace_prob, mm->n_random,
           100 * (1 - rates.mask_replace_prob - rates.random_replace_prob), rates.whole_word_mask ? "; " : "",
           rates.whole_word_mask ? mm->word_rule : "");
    return 0;
}

int ct_train_setup(CtRun *r) {
    const CtRunConfig *cfg = r->cfg;
    if (r->kind == CT_OBJECTIVE_DPO && !r->resume_dir && !cfg->train.init_from[0])
        return ct_error_set("dpo: train.init_from is not set: DPO tunes a trained model (an sft or pretrain checkpoint) "
                            "against a frozen copy of it, and from a fresh initialisation it would train random weights "
                            "against a random reference; set train.init_from to that checkpoint");
    if (r->resume_dir && ct_run_find_latest(r->resume_dir, r->resume_path, sizeof r->resume_path) != 0) return -1;
    if (open_data(r) != 0) return -1;
    if (r->lead && ct_make_dirs(cfg->run.out_dir) != 0) return -1;
    if (r->lead && ct_run_lock(&r->lock, cfg->run.out_dir) != 0) return -1;  // one run per folder; stale temporaries go
    // prompt tuning / P-tuning: the virtual tokens belong to a row's first document (PEFT never packs)
    if ((cfg->peft.type == 1 || cfg->peft.type == 2) && (cfg->data.doc_masking || (r->objective->packs_examples &&
                                                                                    cfg->data.packing)))
        return ct_error_set("peft.type %s with %s: only the first document of a row would see the virtual tokens; set "
                            "%s false (one %s per row, as PEFT trains)", cfg->peft.type == 1 ? "prompt_tuning" : "p_tuning",
                            cfg->data.doc_masking ? "data.doc_masking" : "packed examples (data.packing true)",
                            cfg->data.doc_masking ? "data.doc_masking" : "data.packing",
                            cfg->data.doc_masking ? "document" : "example");
    if (open_loaders(r) != 0) return -1;
    if (cfg->peft.type && r->kind != CT_OBJECTIVE_LM && r->kind != CT_OBJECTIVE_SFT && r->kind != CT_OBJECTIVE_DPO)
        return ct_error_set("peft.type: prompt learning trains with pretrain, sft and dpo; this objective does not "
                            "take it yet; set peft.type none");
    if (r->kind == CT_OBJECTIVE_SFT || r->kind == CT_OBJECTIVE_DPO || r->kind == CT_OBJECTIVE_REWARD ||
        r->kind == CT_OBJECTIVE_GRPO) {
        char *json = ct_objective_chat_template(cfg->data.path);  // (cJSON's memory)
        r->chat_template_json = json ? ct_strdup(json) : NULL;
        free(json);
    }
    if (inherit_meta(r, r->resume_dir ? r->resume_path : cfg->train.init_from) != 0) return -1;
    ct_rng_seed_stream(&r->sample_rng, (uint64_t)cfg->run.seed, CT_RNG_STREAM_SAMPLES);
    if (build_model(r) != 0 || check_moe_balancing(r) != 0) return -1;
    // the next-token objectives: a bidirectional encoder sees the token it would predict (mlm and classify train it)
    if (ct_model_is_encoder(&r->model.config) && r->kind != CT_OBJECTIVE_MLM && r->kind != CT_OBJECTIVE_CLASSIFY)
        return ct_error_set("%s: a %s model is an encoder: it sees every token of its sequence, so it cannot learn to "
                            "predict the next one; it trains with ctrain mlm (masked-language modelling) or ctrain "
                            "classify", r->objective->name, ct_arch_name(r->model.config.arch));
    ct_moe_step_init(&r->moe, &r->model);
    if (r->resume_dir) {
        int rc = resume_checks(r);
        if (rc != 0) return rc;
    }
    if (place_model(r) != 0) return -1;
    const int T = cfg->train.seq_len, accum = cfg->train.grad_accum;
    ct_step_batches_init(&r->step_batches, accum, ct_train_rows(r), T);
    bind_objective(r);
    if (r->kind == CT_OBJECTIVE_DPO && ct_train_setup_dpo(r, r->resume_dir != NULL) != 0) return -1;
    if (r->kind == CT_OBJECTIVE_GRPO && ct_train_setup_grpo(r) != 0) return -1;
    if (r->kind == CT_OBJECTIVE_MLM && setup_mlm(r) != 0) return -1;
    if (r->kind == CT_OBJECTIVE_CLASSIFY && ct_train_setup_classify(r) != 0) return -1;
    if (r->kind == CT_OBJECTIVE_REWARD) {
        r->reward = (CtRewardRun){cfg->reward.center_rewards_coefficient, NAN};
        r->obj.state = &r->reward;
        const int pad = r->model.config.reward_pad_id;
        if (r->lead && pad >= 0)
            ct_log("reward: each sequence is scored at its last token other than id %d (the EOS, TRL's padding: "
                   "transformers' *ForSequenceClassification reads the same one)", pad);
        else if (r->lead)
            ct_log("reward: each sequence is scored at its last token (the tokenizer names no EOS to pad with)");
        if (r->lead && r->data.dpo_margins)
            ct_log("reward: the pairs carry margins (TRL's 'margin' column): each pair's loss is "
                   "-log sigmoid(r_chosen - r_rejected - margin)");
    }
    // TRL's DPOTrainer has no margin column: a dataset made for a reward model trains DPO as it is.
    if (r->kind == CT_OBJECTIVE_DPO && r->lead && r->data.dpo_margins)
        ct_log("dpo: the pairs' margins are not used (they serve ctrain reward; TRL's DPO loss has none)");
    r->tokens_per_step = (int64_t)ct_train_rows(r) * T * accum * r->world;  // over all ranks (grpo: padded rows)
    char title[160];
    snprintf(title, sizeof title, "%s: %s, %.1fM parameters", cfg->run.out_dir, ct_arch_name(r->model.config.arch),
             r->model.n_params / 1e6);
    if (r->lead) {
        if (ct_metrics_open(&r->metrics, cfg->run.out_dir, r->resume_dir ? r->step : -1, title) != 0) return -1;
        r->have_metrics = 1;
    }
    // A peak the run cannot exceed (train/loop/mfu_peak.h); 0: unknown, no MFU
    r->peak_flops = ct_mfu_peak_flops(cfg->train.peak_tflops, r->ops, r->sync.gpu, r->threads, r->peak_how,
                                      sizeof r->peak_how);
    r->peak_flops *= r->world;  // MFU of the job: every rank's peak
    return 0;
}

void ct_train_free(CtRun *r) {
    if (r->have_metrics) ct_metrics_close(&r->metrics);
    if (r->have_train) ct_loader_close(&r->train);
    if (r->have_val && r->have_train) ct_loader_close(&r->val);
    if (r->have_prompts) ct_prompt_loader_close(&r->prompts);
    if (r->have_val_prompts) ct_prompt_loader_close(&r->val_prompts);
    if (r->objective->free) r->objective->free(&r->obj);
    if (r->have_classify) ct_classify_run_free(&r->classify);
    ct_free(r->classify_config_json);  // before the model: grpo's generator uses it
    if (r->have_model) ct_model_free(&r->model);
    ct_moe_step_free(&r->moe);
    ct_step_batches_free(&r->step_batches);
    ct_adamw_free(&r->opt);
    if (r->have_tokenizer) ct_tokenizer_free(&r->tokenizer);
    free(r->tokenizer_json);
    ct_free(r->chat_template_json);
    ct_free(r->generation_config_json);
    ct_dataset_close(&r->data);
    ct_run_unlock(&r->lock);
    ct_grad_sync_free(&r->sync);
}
