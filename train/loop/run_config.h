// The run config: every key a ctrain run reads, in one struct, with its schema (defaults,
// ranges, docs) in train/loop/run_config.c. docs/config.md is generated from that schema
// (ctrain config --keys --markdown), and a test keeps the two equal.
#pragma once
#include <stdint.h>

#include "core/args.h"
#include "core/config.h"

#define CT_PATH_MAX 1024

typedef enum { CT_DEVICE_CPU = 0, CT_DEVICE_CUDA = 1, CT_DEVICE_AUTO = 2 } CtDeviceChoice;
typedef enum { CT_PRECISION_AUTO = 0, CT_PRECISION_FP32 = 1, CT_PRECISION_BF16 = 2 } CtPrecisionChoice;

typedef struct {
    struct {
        char out_dir[CT_PATH_MAX];
        int64_t seed;
        int threads;
        int device;     // CtDeviceChoice
        int precision;  // CtPrecisionChoice
    } run;
    // The model: a preset, and any key set here (non-zero, or not "auto") overrides it.
    // ct_model_config_from_run (train/loop/run_model.h) resolves the two into a CtModelConfig.
    struct {
        char preset[64];
        int arch;            // 0 auto (the preset's), 1 gpt2, 2 llama, 3 bert, 4 roberta
        int n_layer, n_head, n_kv_head, d_model, d_ff, vocab_size, max_seq_len;  // 0: the preset's
        float norm_eps, rope_theta;  // 0: the preset's
        int tie_embeddings;  // 0 auto, 1 true, 2 false
        float dropout;
        int recompute;       // recompute norms and MLP activations in backward instead of storing them
        // the llama variants (CtModelConfig); 0 (false, "auto") keeps the preset's
        int family;          // 0 auto, then CtFamily + 1
        int head_dim, qkv_bias, qk_norm, sliding_window, sliding_window_pattern;
        int qk_norm_over;    // 0 each head, 1 the whole projection (OLMoE)
        int gate_act;        // 0 auto, then CtGateAct + 1
        int post_norms, embed_scale;
        float rope_local_theta, query_scale, attn_softcap, final_softcap;
        struct {
            int type;        // 0 auto, then CtRopeType + 1
            float factor, low_freq_factor, high_freq_factor, beta_fast, beta_slow, mscale, mscale_all_dim,
                attention_factor;
            int original_max_position, truncate;
        } rope_scaling;
        // Mixture of Experts (CtModelConfig's fields); 0 and "" keep the preset's (dense)
        int n_experts, top_k, moe_d_ff, n_shared_experts, shared_expert_gate, moe_layer_freq;
        char router[32];     // a CtRouter by name (ct_router_from_name); "": the preset's
        float router_scale;
        int mtp_depth;       // multi-token prediction modules (CtModelConfig); 0 keeps the preset's (none)
        int mtp_style;       // CtMtpStyle: 0 sequential, 1 parallel (no effect without modules)
    } model;
    struct {
        char path[CT_PATH_MAX];       // dataset folder (ctrain shard --out)
        char tokenizer[CT_PATH_MAX];  // "" = DIR/tokenizer.json of the dataset
        int doc_masking;
        int packing;
    } data;
    struct {
        int batch_size, seq_len, grad_accum;
        int64_t max_steps;
        int eval_every, eval_batches;
        int sample_every, sample_tokens, n_samples;
        char sample_prompt[256];
        float sample_temperature;
        int save_every, keep_last;
        char init_from[CT_PATH_MAX];
        double peak_tflops;  // for MFU; 0 = measured (cpu) or known (gpu)
        int eval_exact_match;  // sft: held-out examples answered greedily at each evaluation
        // Mixture of Experts: the router losses' coefficients and DeepSeek-V3's bias rate γ
        double aux_loss_coef, router_z_loss_coef, aux_free_bias_rate;
        double mtp_weight;  // λ of the multi-token prediction loss: L_main + λ/D·Σ_k L_k
    } train;
    struct {
        int schedule;  // CtLrShape
        double lr, min_lr, weight_decay, beta1, beta2, eps, grad_clip, decay_fraction;
        int warmup_steps;
        int decay_embeddings;
        int zero;  // ZeRO stage: 0 off, 1 the AdamW moments sharded across ranks (train/dist/zero.h)
    } optim;
    struct {
        double beta, label_smoothing;
        int loss;  // CtDpoLoss
        int precompute_ref;
        char ref_checkpoint[CT_PATH_MAX];
    } dpo;
    struct {
        double center_rewards_coefficient;  // TRL's RewardConfig key; 0: off
    } reward;
    // GRPO and RLOO (train/objectives/grpo.h): TRL's GRPOConfig / RLOOConfig keys.
    struct {
        int algo;  // 0 grpo, 1 rloo
        int num_generations, max_completion_length, num_iterations, top_k;
        float temperature, top_p;
        double beta, epsilon, epsilon_high;  // beta < 0: the algorithm's default; epsilon_high < 0: = epsilon
        int loss_type;      // CtGrpoLossType
        int scale_rewards;  // CtScaleRewards
        int normalize_advantages, mask_truncated_completions;
        char reward_funcs[256], reward_weights[256], reward_regex[512], reward_command[2048];
        char reward_model[CT_PATH_MAX], answer_field[64];
        double numeric_tolerance;
        char ref_checkpoint[CT_PATH_MAX];
        int log_completions;  // completions written to samples.jsonl per evaluation
    } grpo;
    // Masked-language modelling (train/objectives/mlm_mask.h): transformers' DataCollatorForLanguageModeling names.
    struct {
        double mlm_probability, mask_replace_prob, random_replace_prob;
        int whole_word_mask;
    } mlm;
    // Sequence classification (ctrain classify; train/objectives/classify.h).
    struct {
        char val_path[CT_PATH_MAX];  // "" = val_fraction of data.path
        double val_fraction;
        char labels[4096];           // "" = the training file's sorted distinct labels
        int pooling;                 // 0 auto (the family's), 1 cls, 2 mean, 3 last
    } classify;
    // LoRA (train/model/lora.h): low-rank adapters over the frozen model of train.init_from.
    struct {
        int r;               // rank; 0 = no LoRA (every parameter trains)
        double alpha, dropout;  // doubles: written to adapter_config.json as given (0.1, not 0.100000001)
        char targets[4096];  // comma-separated module names, "all-linear", or "" (PEFT's default)
        char target_regex[1024];  // PEFT's string target_modules (a regex over full names); "" none
        char target_parameters[1024];  // PEFT's target_parameters: MoE experts' fused parameters; "" none
        char layers_to_transform[1024], layers_pattern[256];  // comma-separated
        char rank_pattern[4096], alpha_pattern[4096];         // comma-separated "regex=value"
        int rslora;
    } lora;
    // Prompt-learning adapters (train/model/peft.h): PEFT's PromptTuningConfig, PromptEncoderConfig and
    // PrefixTuningConfig names, over the frozen model of train.init_from. See docs/peft.md.
    struct {
        int type;                     // CtPeftType: 0 none, 1 prompt_tuning, 2 p_tuning, 3 prefix_tuning
        int num_virtual_tokens;
        int prompt_tuning_init;       // 0 random, 1 text
        char prompt_tuning_init_text[1024];
        int encoder_reparameterization_type;  // 0 MLP, 1 LSTM
        int encoder_hidden_size;      // 0: token_dim (PEFT's None)
        int encoder_num_layers;
        double encoder_dropout;
        int prefix_projection;
    } peft;
} CtRunConfig;

extern const CtConfigSchema ct_run_config_schema;

// Defaults, then the file (when path is not NULL), then the overrides collected in args.
// Returns 0, or -1 + error naming the file or the option.
int ct_run_config_load(CtRunConfig *cfg, const char *path, const CtArgs *args);
