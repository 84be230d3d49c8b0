// ctrain pretrain, sft, dpo, reward, grpo and mlm: the training run of train/loop/pretrain.h over a text dataset
// (next-token loss on everything), an SFT dataset (loss on response tokens only) or DPO pairs.
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/error.h"
#include "train/cli/commands.h"
#include "train/loop/pretrain.h"
#include "train/loop/run_config.h"

static const CtOption options[] = {
    {"resume", "DIR", "continue from the newest complete checkpoint in DIR (the run's out_dir)", 0},
    {"stop-after", "N", "save a checkpoint and stop after N steps of this invocation (for time-limited jobs)", 0},
};

static const CtOption grpo_options[] = {
    {"resume", "DIR", "continue from the newest complete checkpoint in DIR (the run's out_dir)", 0},
    {"stop-after", "N", "save a checkpoint and stop after N steps of this invocation (for time-limited jobs)", 0},
    {"algo", "grpo|rloo", "the algorithm (the same as --grpo.algo=...)", 0},
};

static int run_training(const CtArgs *args, CtObjectiveKind objective, const CtCommand *cmd) {
    CtRunConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    if (ct_run_config_load(&cfg, args->positionals[0], args) != 0) return ct_cli_fail();
    const char *algo = cmd == &ct_cmd_grpo ? ct_args_get(args, "algo") : NULL;
    if (algo && ct_config_apply_override(&ct_run_config_schema, &cfg, "grpo.algo", algo) != 0) return ct_cli_fail();
    long stop_after;
    if (ct_args_get_long(args, "stop-after", 0, &stop_after) != 0 || stop_after < 0)
        return ct_cli_usage_error(cmd, "--stop-after expects a number of steps");
    char *json = ct_config_to_json(&ct_run_config_schema, &cfg);
    CtPretrainJob job = {objective, &cfg, json, ct_args_get(args, "resume"), stop_after};
    int status = ct_pretrain(&job);
    free(json);
    return status;
}

static int run_pretrain(const CtArgs *args) { return run_training(args, CT_OBJECTIVE_LM, &ct_cmd_pretrain); }
static int run_sft(const CtArgs *args) { return run_training(args, CT_OBJECTIVE_SFT, &ct_cmd_sft); }
static int run_dpo(const CtArgs *args) { return run_training(args, CT_OBJECTIVE_DPO, &ct_cmd_dpo); }
static int run_reward(const CtArgs *args) { return run_training(args, CT_OBJECTIVE_REWARD, &ct_cmd_reward); }
static int run_grpo(const CtArgs *args) { return run_training(args, CT_OBJECTIVE_GRPO, &ct_cmd_grpo); }
static int run_mlm(const CtArgs *args) { return run_training(args, CT_OBJECTIVE_MLM, &ct_cmd_mlm); }

const CtCommand ct_cmd_pretrain = {
    .name = "pretrain",
    .summary = "train a GPT from scratch on a text dataset (next-token cross-entropy)",
    .usage = "ctrain pretrain CONFIG [--resume DIR] [--stop-after N] [--section.key=value...]",
    .description = "Trains the model of CONFIG (see ctrain config --keys and docs/training.md) on data.path, a folder\n"
                   "made by ctrain shard. Prints a progress line (loss, learning rate, gradient norm, tokens/s, MFU,\n"
                   "memory, ETA), validation loss every train.eval_every steps and samples; writes\n"
                   "OUT/metrics.jsonl, OUT/loss.svg and checkpoints (OUT/ckpt-step*.h5, OUT/best.h5).\n"
                   "Ctrl-C (or SIGTERM) saves a checkpoint and stops; --resume OUT continues to the bit.",
    .options = options,
    .n_options = (int)(sizeof options / sizeof options[0]),
    .allow_overrides = 1,
    .min_positionals = 1,
    .max_positionals = 1,
    .run = run_pretrain,
};

const CtCommand ct_cmd_sft = {
    .name = "sft",
    .summary = "supervised fine-tuning on instructions and chats (loss on responses only)",
    .usage = "ctrain sft CONFIG [--resume DIR] [--stop-after N] [--section.key=value...]",
    .description = "Fine-tunes train.init_from (or a fresh model) on data.path, an sft dataset made by\n"
                   "ctrain shard --format sft: cross-entropy only over the tokens the chat template trains\n"
                   "(assistant turns and their end-of-turn token), averaged over those tokens across the whole\n"
                   "step. Examples are packed into rows and attend only to themselves. Each evaluation\n"
                   "reports the masked validation loss and the exact-match accuracy of greedy answers on\n"
                   "held-out examples (train.eval_exact_match). Template tokens the base lacks get new\n"
                   "embedding rows set to the mean embedding. See docs/sft.md.",
    .options = options,
    .n_options = (int)(sizeof options / sizeof options[0]),
    .allow_overrides = 1,
    .min_positionals = 1,
    .max_positionals = 1,
    .run = run_sft,
};

const CtCommand ct_cmd_dpo = {
    .name = "dpo",
    .summary = "preference tuning on (prompt, chosen, rejected) pairs against a frozen reference",
    .usage = "ctrain dpo CONFIG [--resume DIR] [--stop-after N] [--section.key=value...]",
    .description = "Tunes train.init_from (required: DPO starts from a trained model) on data.path, a dpo dataset\n"
                   "(ctrain shard --format dpo), so that it prefers the chosen completions: loss\n"
                   "-logsigmoid(beta*((pc - rc) - (pr - rr))) over completion log-probabilities (or robust, ipo,\n"
                   "hinge: dpo.loss), against the starting model frozen as the\n"
                   "reference (or dpo.ref_checkpoint; dpo.precompute_ref computes it once). train.batch_size counts\n"
                   "pairs. Logs TRL's rewards/chosen, rewards/rejected, rewards/accuracies, rewards/margins,\n"
                   "logps/chosen and logps/rejected. See docs/dpo.md.",
    .options = options,
    .n_options = (int)(sizeof options / sizeof options[0]),
    .allow_overrides = 1,
    .min_positionals = 1,
    .max_positionals = 1,
    .run = run_dpo,
};

const CtCommand ct_cmd_reward = {
    .name = "reward",
    .summary = "train a reward model (a scalar head on the LM) on (prompt, chosen, rejected) pairs",
    .usage = "ctrain reward CONFIG [--resume DIR] [--stop-after N] [--section.key=value...]",
    .description = "Trains a reward model on data.path, a dpo dataset (ctrain shard --format dpo): the model of\n"
                   "train.init_from (or a fresh one) with a scalar head score.weight [1, d_model] read at the last\n"
                   "token of each sequence that is not the padding id (the EOS, as TRL pads), as transformers'\n"
                   "*ForSequenceClassification (num_labels 1) reads it. Loss as TRL's\n"
                   "RewardTrainer: -logsigmoid(r_chosen - r_rejected), plus\n"
                   "reward.center_rewards_coefficient * mean((r_chosen + r_rejected)^2). train.batch_size counts pairs.\n"
                   "Logs TRL's accuracy, margin, mean_reward, min_reward and max_reward. See docs/reward.md.",
    .options = options,
    .n_options = (int)(sizeof options / sizeof options[0]),
    .allow_overrides = 1,
    .min_positionals = 1,
    .max_positionals = 1,
    .run = run_reward,
};

const CtCommand ct_cmd_grpo = {
    .name = "grpo",
    .summary = "reinforcement learning from rewards of sampled completions (GRPO, or RLOO with --algo rloo)",
    .usage = "ctrain grpo CONFIG [--algo grpo|rloo] [--resume DIR] [--stop-after N] [--section.key=value...]",
    .description = "Tunes train.init_from on data.path, a prompts dataset (ctrain shard --format prompts), as TRL's\n"
                   "GRPOTrainer (or RLOOTrainer): each step samples grpo.num_generations completions per prompt\n"
                   "with the key/value cache, scores them with grpo.reward_funcs (exact_match, numeric, regex,\n"
                   "format, a command, a reward model; weighted by grpo.reward_weights), and trains on the\n"
                   "advantages with the clipped loss of grpo.loss_type. train.batch_size counts completions per\n"
                   "micro-batch. Logs TRL's reward, reward_std, rewards/<source>/mean, frac_reward_zero_std, kl,\n"
                   "entropy, clip_ratio/* and completions/*; evaluates greedy answers on held-out prompts and\n"
                   "writes a few completions with their rewards to samples.jsonl. See docs/grpo.md.",
    .options = grpo_options,
    .n_options = (int)(sizeof grpo_options / sizeof grpo_options[0]),
    .allow_overrides = 1,
    .min_positionals = 1,
    .max_positionals = 1,
    .run = run_grpo,
};

const CtCommand ct_cmd_mlm = {
    .name = "mlm",
    .summary = "masked-language-model pretraining (BERT's objective) on a text dataset",
    .usage = "ctrain mlm CONFIG [--resume DIR] [--stop-after N] [--section.key=value...]",
    .description = "Trains the model of CONFIG (or train.init_from; LoRA with lora.r) on data.path, a text dataset whose\n"
                   "tokenizer has a mask token ([MASK] or <mask>): each step selects mlm.mlm_probability of every\n"
                   "row's ordinary tokens (special tokens never; whole words with mlm.whole_word_mask), replaces\n"
                   "mlm.mask_replace_prob of them with the mask token and mlm.random_replace_prob with random tokens,\n"
                   "and trains the model to give back the original token at each selected position (cross-entropy\n"
                   "there only, no shift). Logs mlm_acc (accuracy on the selected tokens), and at each evaluation\n"
                   "val_loss and val_mlm_acc over a fixed mask of the validation batches, beside the unigram\n"
                   "baseline. See docs/encoder.md.",
    .options = options,
    .n_options = (int)(sizeof options / sizeof options[0]),
    .allow_overrides = 1,
    .min_positionals = 1,
    .max_positionals = 1,
    .run = run_mlm,
};
