// GRPO's part of a run's setup (train/loop/train_run.h): the prompts of both splits, and the
// objective's settings from grpo.*, its reward sources, its KL reference and its buffers.
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "data/examples/chat_template.h"
#include "train/dist/dist.h"
#include "train/interop/stop_tokens.h"
#include "train/loop/train_run.h"

int ct_train_open_prompts(CtRun *r) {
    const CtRunConfig *cfg = r->cfg;
    const int G = cfg->grpo.num_generations, completions = cfg->train.batch_size * cfg->train.grad_accum;
    if (completions % G != 0)
        return ct_error_set("grpo: train.batch_size %d x train.grad_accum %d = %d completions per rank per step is not "
                            "a multiple of grpo.num_generations %d (each prompt's group is sampled whole on one rank)",
                            cfg->train.batch_size, cfg->train.grad_accum, completions, G);
    if (cfg->grpo.max_completion_length >= cfg->train.seq_len)
        return ct_error_set("grpo: grpo.max_completion_length %d leaves no room for the prompt in train.seq_len %d; "
                            "raise train.seq_len or lower grpo.max_completion_length",
                            cfg->grpo.max_completion_length, cfg->train.seq_len);
    CtPromptLoaderOptions o;
    ct_prompt_loader_default_options(&o);
    o.batch = completions / G;  // prompts per rank per step
    o.rank = ct_dist_rank();
    o.world = ct_dist_world();
    o.seed = (uint64_t)cfg->run.seed;
    o.max_prompt_tokens = cfg->train.seq_len - cfg->grpo.max_completion_length;  // a long prompt keeps its end
    if (ct_prompt_loader_open(&r->prompts, &r->data, CT_SPLIT_TRAIN, &o) != 0) return ct_error_prefix("grpo: ");
    r->have_prompts = 1;
    if (r->prompts.truncated)
        ct_warn("grpo: %llu training prompts are longer than train.seq_len - grpo.max_completion_length = %d tokens "
                "and keep their last %d", (unsigned long long)r->prompts.truncated, o.max_prompt_tokens,
                o.max_prompt_tokens);
    // Validation: read by index (ct_prompt_loader_get), the same prompts on any world size.
    o.batch = 1, o.rank = 0, o.world = 1, o.shuffle = 0;
    if (r->data.split[CT_SPLIT_VAL].n_documents > 0 && ct_prompt_loader_open(&r->val_prompts, &r->data, CT_SPLIT_VAL, &o) == 0) {
        r->have_val_prompts = 1;
        r->have_val = cfg->train.eval_exact_match > 0;
    } else {
        ct_warn("grpo: no held-out prompts (no evaluation); shard with a larger --val-min or --val-fraction");
    }
    return 0;
}

// The run's stop tokens: the starting checkpoint's end-of-sequence ids (or the tokenizer's end of
// text) and the chat template's end of turn.
static int stop_tokens(CtRun *r, CtGrpoSettings *set) {
    int32_t end_of_turn = -1;
    CtChatTemplate tmpl;
    if (r->chat_template_json && ct_chat_template_parse(&tmpl, r->chat_template_json, r->cfg->data.path) == 0) {
        end_of_turn = ct_chat_template_check(&tmpl, &r->tokenizer);
        ct_chat_template_free(&tmpl);
    }
    CtStopTokens stop;
    if (ct_stop_tokens_init(&stop, r->generation_config_json, &r->tokenizer, r->model.config.vocab_size, end_of_turn,
                            r->cfg->train.init_from[0] ? r->cfg->train.init_from : r->cfg->data.path) != 0)
        return -1;
    if ((int32_t)r->data.eot_token >= 0 && !ct_stop_tokens_has(&stop, (int32_t)r->data.eot_token) && stop.n < CT_MAX_STOP_TOKENS)
        stop.ids[stop.n++] = (int32_t)r->data.eot_token;  // what the sharder ends each example with
    set->sample.n_stop = 0;
    for (int i = 0; i < stop.n && i < (int)(sizeof set->stop / sizeof set->stop[0]); i++)
        set->stop[set->sample.n_stop++] = stop.ids[i];
    set->sample.stop = set->stop;
    return 0;
}

int ct_train_setup_grpo(CtRun *r) {
    const CtRunConfig *cfg = r->cfg;
    CtGrpoRun *g = &r->grpo;
    CtGrpoSettings *set = &g->set;
    memset(g, 0, sizeof *g);
    if (!r->have_tokenizer)
        return ct_error_set("grpo: %s has no tokenizer.json and data.tokenizer is not set: the rewards read the "
                            "completions as text", cfg->data.path);
    set->algo = (CtRlAlgo)cfg->grpo.algo;
    set->G = cfg->grpo.num_generations;
    set->num_iterations = cfg->grpo.num_iterations;
    set->sample.sampling = (CtSampling){cfg->grpo.temperature, cfg->grpo.top_k, cfg->grpo.top_p};
    set->sample.max_len = cfg->grpo.max_completion_length;
    set->beta = cfg->grpo.beta >= 0 ? cfg->grpo.beta : set->algo == CT_RL_RLOO ? 0.05 : 0.0;  // TRL's defaults
    set->loss = (CtGrpoLossConfig){
        .loss_type = (CtGrpoLossType)cfg->grpo.loss_type,
        .epsilon_low = cfg->grpo.epsilon,
        .epsilon_high = cfg->grpo.epsilon_high >= 0 ? cfg->grpo.epsilon_high : cfg->grpo.epsilon,
        .beta = set->algo == CT_RL_GRPO ? set->beta : 0,  // RLOO's KL is in the reward
        .max_completion_length = cfg->grpo.max_completion_length,
    };
    set->scale_rewards = (CtScaleRewards)cfg->grpo.scale_rewards;
    set->normalize_advantages = cfg->grpo.normalize_advantages;
    set->mask_truncated = cfg->grpo.mask_truncated_completions;
    set->log_completions = cfg->grpo.log_completions;
    snprintf(set->samples_path, sizeof set->samples_path, "%s/samples.jsonl", cfg->run.out_dir);
    if (stop_tokens(r, set) != 0) return -1;
    // Log-probabilities at the sampling temperature (TRL divides the logits by it).
    if (cfg->grpo.temperature != 1 && r->model.config.final_softcap != 0)
        return ct_error_set("grpo: grpo.temperature %g on a model with a final logit soft-cap (%g) is not supported; "
                            "sample at temperature 1", cfg->grpo.temperature, r->model.config.final_softcap);
    r->model.logit_temperature = cfg->grpo.temperature;
    const CtRewardsConfig rc = {
        .funcs = cfg->grpo.reward_funcs,
        .weights = cfg->grpo.reward_weights,
        .regex = cfg->grpo.reward_regex,
        .command = cfg->grpo.reward_command,
        .model = cfg->grpo.reward_model,
        .answer_field = cfg->grpo.answer_field,
        .numeric_tolerance = cfg->grpo.numeric_tolerance,
        .vocab_size = r->model.config.vocab_size,
        .tokenizer_hash = r->data.tokenizer_hash,
        .model_max_tokens = cfg->train.seq_len,  // a prompt and its completion: the rows' length
    };
    if (ct_rewards_init(&g->rewards, &rc) != 0) return -1;
    // The KL's reference, as DPO's: grpo.ref_checkpoint, the LoRA base, or a frozen copy of the start.
    const int rows = ct_train_rows(r), T = cfg->train.seq_len;
    if (set->beta != 0) {
        if (r->resume_dir && !cfg->grpo.ref_checkpoint[0] && !r->model.lora && !cfg->train.init_from[0])
            return ct_error_set("grpo: resuming with grpo.beta %g needs the reference the run started from: set "
                                "grpo.ref_checkpoint (or train.init_from) to it", set->beta);
        const char *ref = cfg->grpo.ref_checkpoint[0] ? cfg->grpo.ref_checkpoint
                        : r->resume_dir && !r->model.lora ? cfg->train.init_from : "";
        if (ct_dpo_init(&g->ref, CT_DPO_SIGMOID, 0, 0, &r->model, ref, rows, T) != 0) return -1;
        g->have_ref = 1;
        g->ref.ref.logit_temperature = r->model.logit_temperature;
        ct_log("grpo: KL to %s, beta %g", ref[0] ? ref : g->ref.base_as_reference ? "the frozen base (adapters off)"
                                                                                   : "the starting model (frozen)",
               set->beta);
    }
    r->obj.state = g;
    if (ct_grpo_run_init(g, &r->obj) != 0) return -1;
    if (r->resume_dir && r->step % set->num_iterations != 0 && r->lead)
        ct_warn("grpo: resumed at step %lld, inside a batch of completions that grpo.num_iterations = %d steps share; "
                "checkpoints do not keep that batch, so a new one is sampled now and the run goes on differently from "
                "an uninterrupted one (stop at a multiple of %d steps to resume to the bit)",
                (long long)r->step, set->num_iterations, set->num_iterations);
    if (r->lead) {
        char sources[512] = "";
        for (int i = 0, at = 0; i < ct_rewards_count(&g->rewards) && at < (int)sizeof sources; i++)
            at += snprintf(sources + at, sizeof sources - (size_t)at, "%s%s x %g", i ? " + " : "",
                           ct_rewards_name(&g->rewards, i), ct_rewards_weight(&g->rewards, i));
        ct_log("grpo: %s, %d prompts x %d completions per rank per step (micro-batches of %d), up to %d tokens each at "
               "temperature %g; reward = %s; loss %s", set->algo == CT_RL_RLOO ? "RLOO" : "GRPO", g->P, set->G, rows,
               set->sample.max_len, cfg->grpo.temperature, sources,
               set->algo == CT_RL_RLOO ? "sequence-level (RLOO)" : ct_grpo_loss_type_name(set->loss.loss_type));
    }
    return 0;
}
