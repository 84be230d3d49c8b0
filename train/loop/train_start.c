// What a run says before its first step (the model, the data, the MFU peak, where it writes),
// then for a new run samples and the evaluation of the starting model at step 0; and the
// loop's running state (schedule, divergence watch, FLOPs per step, progress).
#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include "core/log.h"
#include "core/timer.h"
#include "kernels/cpu/blas_setup.h"
#include "train/loop/train_common.h"
#include "train/loop/train_run.h"
#include "train/model/lora.h"
#include "train/model/peft_hooks.h"

// "12.34M parameters"; for a Mixture of Experts also the active ones, what a token passes through:
// all but the E − K routed experts (3·moe_d_ff·d_model each: gate, up, down) it is not routed to in
// each MoE layer, and the experts' layout.
static void describe_parameters(const CtModel *m, char *buf, size_t size) {
    const CtModelConfig *c = &m->config;
    if (c->n_experts == 0) {
        snprintf(buf, size, "%.2fM parameters", m->n_params / 1e6);
        return;
    }
    const double idle = (double)ct_model_moe_layers(c) * (c->n_experts - c->top_k) * 3.0 * c->moe_d_ff * c->d_model;
    snprintf(buf, size, "%.2fM parameters, %.2fM active (MoE: %d experts, top-%d, %d shared, router %s)",
             m->n_params / 1e6, ((double)m->n_params - idle) / 1e6, c->n_experts, c->top_k, c->n_shared_experts,
             ct_router_name(c->router));
}

static void describe_run(CtRun *r) {
    const CtRunConfig *cfg = r->cfg;
    char line[512];
    ct_blas_describe(line, sizeof line);
    // What the model is: the config's preset only when the config built it (not a checkpoint's model).
    char origin[2100];
    if (r->resume_dir)
        snprintf(origin, sizeof origin, "from %s", r->resume_path);
    else if (cfg->train.init_from[0])
        snprintf(origin, sizeof origin, "from %s", cfg->train.init_from);
    else
        snprintf(origin, sizeof origin, "preset %s", cfg->model.preset);
    char params[160];
    describe_parameters(&r->model, params, sizeof params);
    // (the CPU line ends with the thread count)
    ct_log("%s: %s (%s), %s, %d layers, d_model %d; %s", r->name, ct_arch_name(r->model.config.arch), origin, params,
           r->model.config.n_layer, r->model.config.d_model, line);
    if (r->have_prompts) {  // grpo: prompts, each batch of completions serving num_iterations steps
        const uint64_t per_batch = (uint64_t)r->prompts.opt.batch * (uint64_t)r->world;
        const double batches = ceil((double)cfg->train.max_steps / cfg->grpo.num_iterations);
        ct_log("%s: %s: %llu train prompts, %llu held-out; %llu prompts per batch of completions, %lld steps on %.0f "
               "batches (%.2f epochs)", r->name, cfg->data.path, (unsigned long long)r->prompts.n_prompts,
               (unsigned long long)(r->have_val_prompts ? r->val_prompts.n_prompts : 0), (unsigned long long)per_batch,
               (long long)cfg->train.max_steps, batches, batches * (double)per_batch / (double)r->prompts.n_prompts);
    } else if (r->have_classify) {  // classify: examples, not token shards
        const double epochs = (double)cfg->train.max_steps * ct_train_rows(r) * cfg->train.grad_accum * r->world /
                              (double)r->classify.n_train;
        ct_log("%s: %s: %d train examples, %d val; batch %d x %d (padded to each batch's longest, at most %d tokens), "
               "%lld steps (%.2f epochs)", r->name, cfg->data.path, r->classify.n_train, r->classify.n_val,
               ct_train_rows(r), cfg->train.grad_accum * r->world, cfg->train.seq_len, (long long)cfg->train.max_steps,
               epochs);
} else {
        ct_log("%s: %s: %llu train tokens, %llu val tokens; batch %d rows x %d x %d = %lld tokens per step, %lld steps "
               "(%.2f epochs)",
               r->name, cfg->data.path, (unsigned long long)r->data.split[CT_SPLIT_TRAIN].n_tokens,
               (unsigned long long)r->data.split[CT_SPLIT_VAL].n_tokens, r->train.batch.rows, cfg->train.seq_len,
               cfg->train.grad_accum, (long long)r->tokens_per_step, (long long)cfg->train.max_steps,
               (double)cfg->train.max_steps * r->tokens_per_step / (double)r->data.split[CT_SPLIT_TRAIN].n_tokens);
    }
    r->unigram = r->objective->text_samples ? ct_train_unigram_entropy(&r->data) : NAN;
    if (isfinite(r->unigram))
        ct_log("pretrain: unigram entropy of the training tokens %.4f nats/token (what a model that ignores context "
               "reaches)", r->unigram);
    ct_log("%s: %s%s", r->name, r->peak_how, r->world > 1 ? "; per rank (MFU divides by every rank's)" : "");
    ct_log("%s: writing %s/metrics.jsonl, %s/loss.svg and checkpoints to %s", r->name, cfg->run.out_dir,
           cfg->run.out_dir, cfg->run.out_dir);
}

int ct_train_start(CtRun *r) {
    const CtRunConfig *cfg = r->cfg;
    describe_run(r);
    ct_train_catch_signals(1);
    if (r->step == 0) {
        if (r->lead) ct_train_print_samples(r, "before training");
        if (r->have_val && ct_train_evaluate(r) != 0) return -1;  // every rank: its rows of the validation batches
    }
    // DPO's loss is no cross-entropy: only its gradient norm is watched.
    ct_divergence_init(&r->divergence, r->objective->cross_entropy ? r->model.config.vocab_size : 0);
    r->sched = ct_train_schedule(cfg);
    // LoRA: the frozen base's products forward and for the inputs' gradients, and the adapters'
    // own (each adapter weight in one product per token: 2 FLOP forward, 4 backward).
    const double lora_flops = r->model.lora ? 6.0 * (double)r->model.lora->n_params : 0;
    // A prompt adapter: the frozen base over seq_len + V rows per sequence (its encoder is negligible).
    const int T = cfg->train.seq_len + ct_peft_prepend_rows(&r->model);
    r->flops_per_step = (ct_model_flops_per_token(&r->model.config, T, r->model.lora || r->model.peft) *
                             (double)T / cfg->train.seq_len + lora_flops) * (double)r->tokens_per_step;
    r->tty = isatty(fileno(stderr));
    r->log_every = cfg->train.max_steps / 50 > 1 ? cfg->train.max_steps / 50 : 1;
    r->compute_time = 0, r->start_time = ct_time_now(), r->ema_tps = 0;
    r->first_step = r->step;
    return 0;
}
