#include "train/loop/run_config.h"

#include <math.h>

#include "core/error.h"
#include "optim/schedule.h"
#include "train/model/model_config.h"

static const CtConfigSection sections[] = {
    {"run", "Where a run writes, how it is seeded and what it runs on."},
    {"model", "The Transformer: a preset, and any key set here overrides the preset's value."},
    {"data", "What the model reads: a dataset folder made by ctrain shard."},
    {"train", "The training loop: batch, length, evaluation, samples and checkpoints."},
    {"optim", "AdamW and its learning-rate schedule."},
    {"dpo", "Direct Preference Optimization (ctrain dpo): the loss and the reference model."},
    {"reward", "Reward model (ctrain reward): the pair loss's options (TRL's RewardConfig names)."},
    {"grpo", "Reinforcement learning (ctrain grpo): sampling, rewards and the GRPO / RLOO loss (TRL's GRPOConfig and RLOOConfig names)."},
    {"mlm", "Masked-language modelling (ctrain mlm): which tokens are selected and what they become (transformers' DataCollatorForLanguageModeling names)."},
    {"classify", "Sequence classification (ctrain classify): validation examples, labels and pooling (see docs/encoder.md)."},
    {"lora", "LoRA: low-rank adapters over the frozen model of train.init_from (see docs/lora.md)."},
    {"peft", "Prompt learning over the frozen model of train.init_from: prompt tuning, P-tuning, prefix tuning (PEFT's names; see docs/peft.md)."},
};

static const CtConfigKey keys[] = {
    CT_CFG_KEY_STRING(CtRunConfig, run.out_dir, "run.out_dir", "out",
                      "Folder for checkpoints, metrics and plots; created when missing."),
    CT_CFG_KEY_INT(CtRunConfig, run.seed, "run.seed", "1337", 0, 9007199254740991.0,
                   "Seed of every random stream (initialisation, data order, dropout, sampling)."),
    CT_CFG_KEY_INT(CtRunConfig, run.threads, "run.threads", "0", 0, 4096,
                   "CPU threads for OpenMP and BLAS; 0 uses every core."),
    CT_CFG_KEY_ENUM(CtRunConfig, run.device, "run.device", "auto", "cpu|cuda|auto",
                    "Where to compute: auto picks a CUDA GPU when this build has CUDA and one is visible."),
    CT_CFG_KEY_ENUM(CtRunConfig, run.precision, "run.precision", "auto", "auto|fp32|bf16",
                    "Mixed precision on the GPU: bf16 activations in memory and bf16 products and attention on the tensor cores with fp32 accumulation, fp32 master weights (with a stochastically rounded bf16 copy) and optimizer state; or fp32 throughout (for checking). auto is bf16 on a GPU, fp32 on the CPU (which has only fp32)."),
    CT_CFG_KEY_STRING(CtRunConfig, model.preset, "model.preset", "gpt2-124m",
                      "Named model shape (gpt2-124m, gpt2-350m, gpt2-774m, gpt2-1558m, gpt2-tiny, llama-tiny, llama-42m, llama-110m, llama-1b, bert-base, bert-tiny, roberta-base, roberta-tiny)."),
    CT_CFG_KEY_ENUM(CtRunConfig, model.arch, "model.arch", "auto", "auto|gpt2|llama|bert|roberta",
                    "Family: gpt2 (learned positions, LayerNorm, GELU, biases), llama (RoPE, RMSNorm, SwiGLU, GQA), or the encoders bert and roberta (bidirectional, post-LayerNorm, token types, the masked-language-model head); auto keeps the preset's."),
    CT_CFG_KEY_INT(CtRunConfig, model.n_layer, "model.n_layer", "0", 0, 1024, "Transformer blocks; 0 keeps the preset's."),
    CT_CFG_KEY_INT(CtRunConfig, model.n_head, "model.n_head", "0", 0, 1024, "Query heads; 0 keeps the preset's."),
    CT_CFG_KEY_INT(CtRunConfig, model.n_kv_head, "model.n_kv_head", "0", 0, 1024,
                   "Key/value heads (grouped-query attention, divides n_head); 0 keeps the preset's."),
    CT_CFG_KEY_INT(CtRunConfig, model.d_model, "model.d_model", "0", 0, 65536, "Channels; 0 keeps the preset's."),
    CT_CFG_KEY_INT(CtRunConfig, model.d_ff, "model.d_ff", "0", 0, 262144, "MLP hidden size; 0 keeps the preset's."),
    CT_CFG_KEY_INT(CtRunConfig, model.vocab_size, "model.vocab_size", "0", 0, 1048576,
                   "Vocabulary size (the tokenizer's); 0 keeps the preset's."),
    CT_CFG_KEY_INT(CtRunConfig, model.max_seq_len, "model.max_seq_len", "0", 0, 1048576,
                   "Longest sequence (size of the position table for gpt2); 0 keeps the preset's."),
    CT_CFG_KEY_FLOAT(CtRunConfig, model.norm_eps, "model.norm_eps", "0", 0, 1, "Epsilon of LayerNorm/RMSNorm; 0 keeps the preset's."),
    CT_CFG_KEY_FLOAT(CtRunConfig, model.rope_theta, "model.rope_theta", "0", 0, 1e9, "RoPE base (llama); 0 keeps the preset's."),
    CT_CFG_KEY_ENUM(CtRunConfig, model.tie_embeddings, "model.tie_embeddings", "auto", "auto|true|false",
                    "Share the token embedding with the output head; auto keeps the preset's."),
    CT_CFG_KEY_FLOAT(CtRunConfig, model.dropout, "model.dropout", "0", 0, 0.99,
                     "Dropout probability on the embeddings, attention probabilities and both residual branches of every block, in training steps only."),
    CT_CFG_KEY_BOOL(CtRunConfig, model.recompute, "model.recompute", "false",
                    "Recompute norms and MLP activations in backward instead of storing them (less memory, a little more time)."),
    CT_CFG_KEY_ENUM(CtRunConfig, model.family, "model.family", "auto", "auto|llama|mistral|qwen2|qwen3|gemma2|gemma3|phi3|mixtral|qwen2_moe|qwen3_moe|olmoe",
                    "Published family of a llama model: the names, config.json and GGUF shape of its exports (the math is the keys below); auto keeps the preset's."),
    CT_CFG_KEY_INT(CtRunConfig, model.head_dim, "model.head_dim", "0", 0, 512,
                   "Head size when it is not d_model / n_head (Qwen3, Gemma); 0 keeps the preset's."),
    CT_CFG_KEY_BOOL(CtRunConfig, model.qkv_bias, "model.qkv_bias", "false", "Biases on the q, k and v projections (Qwen2)."),
    CT_CFG_KEY_BOOL(CtRunConfig, model.qk_norm, "model.qk_norm", "false",
                    "RMSNorm over each query and key head before RoPE (Qwen3, Gemma 3)."),
    CT_CFG_KEY_ENUM(CtRunConfig, model.qk_norm_over, "model.qk_norm_over", "head", "head|projection",
                    "What model.qk_norm normalises: each head (Qwen3, Gemma 3) or the whole q and k projections (OLMoE; needs n_kv_head = n_head)."),
    CT_CFG_KEY_INT(CtRunConfig, model.sliding_window, "model.sliding_window", "0", 0, 1048576,
                   "Sliding-window attention: a token sees itself and the window - 1 tokens before it (Mistral, Gemma); 0: no window."),
    CT_CFG_KEY_INT(CtRunConfig, model.sliding_window_pattern, "model.sliding_window_pattern", "0", 0, 1024,
                   "With a window, every P-th layer (layer l with (l + 1) % P == 0) is global, the others slide (Gemma: 2, Gemma 3: 6); 0: every layer slides."),
    CT_CFG_KEY_ENUM(CtRunConfig, model.gate_act, "model.gate_act", "auto", "auto|silu|gelu_tanh",
                    "Activation of the gated MLP: silu (SwiGLU) or gelu_tanh (GeGLU, Gemma); auto keeps the preset's."),
    CT_CFG_KEY_BOOL(CtRunConfig, model.post_norms, "model.post_norms", "false",
                    "RMSNorm on the attention and MLP outputs before each residual add (Gemma 2/3)."),
    CT_CFG_KEY_BOOL(CtRunConfig, model.embed_scale, "model.embed_scale", "false", "Embeddings multiplied by sqrt(d_model) (Gemma)."),
    CT_CFG_KEY_FLOAT(CtRunConfig, model.query_scale, "model.query_scale", "0", 0, 1e6,
                     "Scale of the attention scores q·k (Gemma: query_pre_attn_scalar^-1/2); 0 keeps the preset's (1/sqrt(head size))."),
    CT_CFG_KEY_FLOAT(CtRunConfig, model.attn_softcap, "model.attn_softcap", "0", 0, 1e6,
                     "Soft-capping of the attention scores, s -> cap·tanh(s/cap) (Gemma 2); 0: none."),
    CT_CFG_KEY_FLOAT(CtRunConfig, model.final_softcap, "model.final_softcap", "0", 0, 1e6,
                     "Soft-capping of the output logits, z -> cap·tanh(z/cap) (Gemma 2); 0: none."),
    CT_CFG_KEY_FLOAT(CtRunConfig, model.rope_local_theta, "model.rope_local_theta", "0", 0, 1e9,
                     "RoPE base of the sliding layers, unscaled (Gemma 3); 0: the base of every layer."),
    CT_CFG_KEY_ENUM(CtRunConfig, model.rope_scaling.type, "model.rope_type", "auto", "auto|default|linear|dynamic|yarn|llama3",
                    "RoPE frequency scaling, as transformers' rope_type; auto keeps the preset's."),
    CT_CFG_KEY_FLOAT(CtRunConfig, model.rope_scaling.factor, "model.rope_factor", "0", 0, 1e6,
                     "Scaling factor (linear, dynamic, yarn, llama3)."),
    CT_CFG_KEY_INT(CtRunConfig, model.rope_scaling.original_max_position, "model.rope_original_max_position", "0", 0, 1048576,
                   "original_max_position_embeddings (yarn, llama3; dynamic: the length past which the base grows, 0: model.max_seq_len)."),
    CT_CFG_KEY_FLOAT(CtRunConfig, model.rope_scaling.low_freq_factor, "model.rope_low_freq_factor", "0", 0, 1e6, "llama3's low_freq_factor."),
    CT_CFG_KEY_FLOAT(CtRunConfig, model.rope_scaling.high_freq_factor, "model.rope_high_freq_factor", "0", 0, 1e6, "llama3's high_freq_factor."),
    CT_CFG_KEY_FLOAT(CtRunConfig, model.rope_scaling.beta_fast, "model.rope_beta_fast", "0", 0, 1e6, "yarn's beta_fast; 0: 32."),
    CT_CFG_KEY_FLOAT(CtRunConfig, model.rope_scaling.beta_slow, "model.rope_beta_slow", "0", 0, 1e6, "yarn's beta_slow; 0: 1."),
    CT_CFG_KEY_FLOAT(CtRunConfig, model.rope_scaling.mscale, "model.rope_mscale", "0", 0, 1e6, "yarn's mscale; 0: unset."),
    CT_CFG_KEY_FLOAT(CtRunConfig, model.rope_scaling.mscale_all_dim, "model.rope_mscale_all_dim", "0", 0, 1e6, "yarn's mscale_all_dim; 0: unset."),
    CT_CFG_KEY_FLOAT(CtRunConfig, model.rope_scaling.attention_factor, "model.rope_attention_factor", "0", 0, 1e6,
                     "yarn's attention_factor; 0: derived from factor and mscale."),
    CT_CFG_KEY_BOOL(CtRunConfig, model.rope_scaling.truncate, "model.rope_truncate", "true",
                    "yarn: round the correction range to whole dimensions (transformers' default)."),
    CT_CFG_KEY_INT(CtRunConfig, model.n_experts, "model.n_experts", "0", 0, CT_MOE_MAX_EXPERTS,
                   "Mixture of Experts (llama): routed experts per MoE layer; 0 keeps the preset's (dense: every MLP is one SwiGLU of model.d_ff)."),
    CT_CFG_KEY_INT(CtRunConfig, model.top_k, "model.top_k", "0", 0, CT_MOE_MAX_TOP_K,
                   "Experts each token is routed to (every token reaches all of them: no capacity limit, no token dropped)."),
    CT_CFG_KEY_INT(CtRunConfig, model.moe_d_ff, "model.moe_d_ff", "0", 0, 262144,
                   "Hidden size of one routed expert (fine-grained experts: smaller than model.d_ff)."),
    CT_CFG_KEY_INT(CtRunConfig, model.n_shared_experts, "model.n_shared_experts", "0", 0, 1024,
                   "Shared experts every token passes through (DeepSeekMoE): one SwiGLU of hidden size n_shared_experts x moe_d_ff; 0: none."),
    CT_CFG_KEY_BOOL(CtRunConfig, model.shared_expert_gate, "model.shared_expert_gate", "false",
                    "The shared experts' output times sigmoid(x.w) of a learned gate (Qwen2-MoE)."),
    CT_CFG_KEY_INT(CtRunConfig, model.moe_layer_freq, "model.moe_layer_freq", "0", 0, 1024,
                   "Layer l is MoE when (l + 1) % moe_layer_freq == 0 (Qwen2-MoE's decoder_sparse_step), the others keep the dense MLP; 0 or 1: every layer."),
    CT_CFG_KEY_STRING(CtRunConfig, model.router, "model.router", "",
                      "Router: softmax (softmax over all experts, then top-k; Qwen2-MoE, OLMoE), softmax_norm (the same, the k weights renormalised; Qwen3-MoE), topk_softmax (top-k logits, then softmax over them; Mixtral), sigmoid or sigmoid_norm (sigmoid scores with a selection bias; DeepSeek-V3); empty: softmax."),
    CT_CFG_KEY_FLOAT(CtRunConfig, model.router_scale, "model.router_scale", "0", 0, 1e6,
                     "Factor on the routed experts' weights (DeepSeek's routed_scaling_factor); 0: 1."),
    CT_CFG_KEY_INT(CtRunConfig, model.mtp_depth, "model.mtp_depth", "0", 0, CT_MODEL_MAX_MTP_DEPTH,
                   "Multi-token prediction: D modules (model.mtp_style), module k predicting the token k+1 places "
                   "ahead through one more block of the model's family, sharing the output head; 0: none."),
    CT_CFG_KEY_ENUM(CtRunConfig, model.mtp_style, "model.mtp_style", "sequential", "sequential|parallel",
                    "How the multi-token prediction modules read the model: sequential (DeepSeek-V3: module k reads "
                    "module k-1's hidden state and the embedding of token i+k) or parallel (Gloeckle et al. 2024: "
                    "D heads of one block each beside the main model's last block, all reading its input); no effect "
                    "with model.mtp_depth 0."),
    CT_CFG_KEY_STRING(CtRunConfig, data.path, "data.path", "", "Dataset folder made by ctrain shard (holds dataset.json)."),
    CT_CFG_KEY_STRING(CtRunConfig, data.tokenizer, "data.tokenizer", "",
                      "Tokenizer for samples; empty uses the dataset's own tokenizer.json."),
    CT_CFG_KEY_BOOL(CtRunConfig, data.doc_masking, "data.doc_masking", "false",
                    "Keep attention inside each document of a packed sequence (positions restart per document)."),
    CT_CFG_KEY_BOOL(CtRunConfig, data.packing, "data.packing", "true",
                    "sft: pack several whole examples into each row (each attends only to itself); false: one per row."),
    CT_CFG_KEY_INT(CtRunConfig, train.batch_size, "train.batch_size", "8", 1, 65536, "Sequences per micro-batch (per rank)."),
    CT_CFG_KEY_INT(CtRunConfig, train.seq_len, "train.seq_len", "256", 1, 1048576, "Tokens per sequence."),
    CT_CFG_KEY_INT(CtRunConfig, train.grad_accum, "train.grad_accum", "1", 1, 65536,
                   "Micro-batches per optimizer step (their gradients are averaged)."),
    CT_CFG_KEY_INT(CtRunConfig, train.max_steps, "train.max_steps", "1000", 1, 1e15, "Optimizer steps of the run."),
    CT_CFG_KEY_INT(CtRunConfig, train.eval_every, "train.eval_every", "100", 0, 1e9,
                   "Steps between validation losses (0: only at the end)."),
    CT_CFG_KEY_INT(CtRunConfig, train.eval_batches, "train.eval_batches", "20", 1, 1e9,
                   "Validation batches per evaluation (always the same ones)."),
    CT_CFG_KEY_INT(CtRunConfig, train.sample_every, "train.sample_every", "0", 0, 1e9,
                   "Steps between printed samples (0: only before and after training)."),
    CT_CFG_KEY_INT(CtRunConfig, train.sample_tokens, "train.sample_tokens", "64", 1, 1e6, "Tokens per sample."),
    CT_CFG_KEY_INT(CtRunConfig, train.n_samples, "train.n_samples", "2", 0, 64, "Samples printed each time."),
    CT_CFG_KEY_STRING(CtRunConfig, train.sample_prompt, "train.sample_prompt", "",
                      "Text the samples continue (empty: they start from the end-of-text token)."),
    CT_CFG_KEY_FLOAT(CtRunConfig, train.sample_temperature, "train.sample_temperature", "0.8", 0, 10,
                     "Sampling temperature of the samples (0: greedy)."),
    CT_CFG_KEY_INT(CtRunConfig, train.save_every, "train.save_every", "500", 0, 1e9,
                   "Steps between checkpoints (0: only at the end); SIGINT/SIGTERM also saves one."),
    CT_CFG_KEY_INT(CtRunConfig, train.keep_last, "train.keep_last", "2", 1, 1e6,
                   "Step checkpoints kept (older ones are deleted); best.h5 (lowest validation loss) is kept apart."),
    CT_CFG_KEY_STRING(CtRunConfig, train.init_from, "train.init_from", "",
                      "Start from this checkpoint's weights (a fresh optimizer and step 0); empty: random init."),
    CT_CFG_KEY_FLOAT(CtRunConfig, train.peak_tflops, "train.peak_tflops", "0", 0, 1e6,
                     "Peak TFLOP/s that MFU divides by; 0: the GPU's published peak, or the CPU cores' vector FMA peak "
                     "(cores x 2 FMA units x vector lanes x 2 x clock, printed at start)."),
    CT_CFG_KEY_INT(CtRunConfig, train.eval_exact_match, "train.eval_exact_match", "64", 0, 1e6,
                   "sft: held-out examples answered greedily at each evaluation for exact-match accuracy (0: off)."),
    CT_CFG_KEY_FLOAT(CtRunConfig, train.aux_loss_coef, "train.aux_loss_coef", "0.01", 0, 1e3,
                     "Mixture of Experts: weight of the load-balancing loss E x sum_e f_e x P_e (Switch, Mixtral), the mean over MoE layers; 0: off."),
    CT_CFG_KEY_FLOAT(CtRunConfig, train.router_z_loss_coef, "train.router_z_loss_coef", "0.001", 0, 1e3,
                     "Mixture of Experts: weight of the router z-loss, the mean of logsumexp(router logits)^2 (ST-MoE), the mean over MoE layers; 0: off."),
    CT_CFG_KEY_FLOAT(CtRunConfig, train.aux_free_bias_rate, "train.aux_free_bias_rate", "0", 0, 1,
                     "Mixture of Experts: DeepSeek-V3's auxiliary-loss-free balancing, each expert's selection bias moved by this much (gamma, e.g. 0.001) toward the mean load after every step; needs model.router sigmoid or sigmoid_norm; 0: off."),
    CT_CFG_KEY_FLOAT(CtRunConfig, train.mtp_weight, "train.mtp_weight", "0.3", 0, 1e3,
                     "Multi-token prediction (model.mtp_depth D > 0): the loss is L_main + mtp_weight/D x sum_k L_k "
                     "(DeepSeek-V3: 0.3, later 0.1); pretraining and sft."),
    CT_CFG_KEY_ENUM(CtRunConfig, optim.schedule, "optim.schedule", "cosine", "cosine|linear|constant|wsd",
                    "Learning-rate shape after the warmup (wsd: warmup-stable-decay)."),
    CT_CFG_KEY_FLOAT(CtRunConfig, optim.lr, "optim.lr", "6e-4", 0, 10, "Peak learning rate."),
    CT_CFG_KEY_FLOAT(CtRunConfig, optim.min_lr, "optim.min_lr", "6e-5", 0, 10, "Learning rate at the end of the decay, at most optim.lr (except with the constant schedule); when not set, a tenth of optim.lr (6e-5 with the default optim.lr)."),
    CT_CFG_KEY_INT(CtRunConfig, optim.warmup_steps, "optim.warmup_steps", "100", 0, 1e9, "Linear warmup steps."),
    CT_CFG_KEY_FLOAT(CtRunConfig, optim.decay_fraction, "optim.decay_fraction", "0.2", 0.000001, 1,
                     "wsd only: the share of steps at the end over which the rate decays."),
    CT_CFG_KEY_FLOAT(CtRunConfig, optim.weight_decay, "optim.weight_decay", "0.1", 0, 10,
                     "Decoupled weight decay (not on biases and norm weights)."),
    CT_CFG_KEY_BOOL(CtRunConfig, optim.decay_embeddings, "optim.decay_embeddings", "true",
                    "Apply weight decay to token and position embeddings too (as GPT-2 and nanoGPT do)."),
    CT_CFG_KEY_FLOAT(CtRunConfig, optim.beta1, "optim.beta1", "0.9", 0, 0.999999, "AdamW beta1."),
    CT_CFG_KEY_FLOAT(CtRunConfig, optim.beta2, "optim.beta2", "0.95", 0, 0.999999, "AdamW beta2."),
    CT_CFG_KEY_FLOAT(CtRunConfig, optim.eps, "optim.eps", "1e-8", 0, 1, "AdamW epsilon."),
    CT_CFG_KEY_FLOAT(CtRunConfig, optim.grad_clip, "optim.grad_clip", "1.0", 0, 1e9,
                     "Clip the global gradient norm to this (0: no clipping)."),
    CT_CFG_KEY_INT(CtRunConfig, optim.zero, "optim.zero", "0", 0, 1,
                   "ZeRO stage under mpirun: 1 splits the AdamW moments across the ranks (each updates its slice); 0 keeps a full copy on each."),
    CT_CFG_KEY_FLOAT(CtRunConfig, dpo.beta, "dpo.beta", "0.1", 0.000001, 1000, "DPO's beta: how far the policy may move from the reference."),
    CT_CFG_KEY_ENUM(CtRunConfig, dpo.loss, "dpo.loss", "sigmoid", "sigmoid|robust|ipo|hinge",
                    "DPO loss (TRL's names); sigmoid with label_smoothing > 0 is conservative DPO."),
    CT_CFG_KEY_FLOAT(CtRunConfig, dpo.label_smoothing, "dpo.label_smoothing", "0", 0, 0.499,
                     "Assumed share of flipped preference labels (sigmoid and robust losses)."),
    CT_CFG_KEY_BOOL(CtRunConfig, dpo.precompute_ref, "dpo.precompute_ref", "false",
                    "Compute the reference log-probabilities once before training and free the reference model."),
    CT_CFG_KEY_STRING(CtRunConfig, dpo.ref_checkpoint, "dpo.ref_checkpoint", "",
                      "The reference model; empty: the starting model (train.init_from), frozen."),
    CT_CFG_KEY_FLOAT(CtRunConfig, reward.center_rewards_coefficient, "reward.center_rewards_coefficient", "0", 0, 1e6,
                     "Adds this times mean((r_chosen + r_rejected)^2) to the loss, keeping rewards centred on 0 (0: off)."),
    CT_CFG_KEY_ENUM(CtRunConfig, grpo.algo, "grpo.algo", "grpo", "grpo|rloo",
                    "grpo: GRPO's per-token clipped loss with group-normalised advantages; rloo: RLOO's sequence-level loss with the leave-one-out baseline and the KL in the reward (TRL's RLOOTrainer)."),
    CT_CFG_KEY_INT(CtRunConfig, grpo.num_generations, "grpo.num_generations", "8", 1, 4096,
                   "G: completions sampled per prompt; train.batch_size x train.grad_accum (completions per rank per step) must be a multiple of it."),
    CT_CFG_KEY_INT(CtRunConfig, grpo.max_completion_length, "grpo.max_completion_length", "128", 1, 1 << 20,
                   "Tokens a completion may have; prompts keep their last train.seq_len minus this many tokens."),
    CT_CFG_KEY_FLOAT(CtRunConfig, grpo.temperature, "grpo.temperature", "1", 0.01, 100,
                     "Sampling temperature; the loss's log-probabilities are taken at it too (as TRL's)."),
    CT_CFG_KEY_FLOAT(CtRunConfig, grpo.top_p, "grpo.top_p", "1", 0.000001, 1, "Nucleus sampling: the smallest set of tokens reaching this probability (1: off)."),
    CT_CFG_KEY_INT(CtRunConfig, grpo.top_k, "grpo.top_k", "0", 0, 1 << 24, "Sample among the k most likely tokens (0: off)."),
    CT_CFG_KEY_INT(CtRunConfig, grpo.num_iterations, "grpo.num_iterations", "1", 1, 1024,
                   "mu: optimizer steps on each batch of completions, the ratio taken against the log-probabilities they were sampled with."),
    CT_CFG_KEY_FLOAT(CtRunConfig, grpo.beta, "grpo.beta", "-1", -1, 1000,
                     "Weight of the KL to the reference (grpo: k3 per token in the loss; rloo: in the reward); -1: TRL's default, 0 for grpo (no reference loaded), 0.05 for rloo."),
    CT_CFG_KEY_FLOAT(CtRunConfig, grpo.epsilon, "grpo.epsilon", "0.2", 0, 10, "The ratio is clipped to [1 - epsilon, 1 + epsilon_high]."),
    CT_CFG_KEY_FLOAT(CtRunConfig, grpo.epsilon_high, "grpo.epsilon_high", "-1", -1, 10, "Upper clip (DAPO's clip-higher); -1: epsilon."),
    CT_CFG_KEY_ENUM(CtRunConfig, grpo.loss_type, "grpo.loss_type", "dapo", "grpo|bnpo|dr_grpo|dapo",
                    "How per-token losses are normalised (TRL's names): grpo per completion then mean, bnpo per micro-batch token, dr_grpo by batch x max_completion_length, dapo by the tokens of the whole generation batch."),
    CT_CFG_KEY_ENUM(CtRunConfig, grpo.scale_rewards, "grpo.scale_rewards", "group", "group|batch|none",
                    "GRPO: the std the centred rewards are divided by: each group's, the batch's, or none (Dr. GRPO)."),
    CT_CFG_KEY_BOOL(CtRunConfig, grpo.normalize_advantages, "grpo.normalize_advantages", "false",
                    "RLOO: normalise the advantages over the batch (mean 0, std 1)."),
    CT_CFG_KEY_BOOL(CtRunConfig, grpo.mask_truncated_completions, "grpo.mask_truncated_completions", "false",
                    "Completions cut at max_completion_length (no stop token) leave the loss."),
    CT_CFG_KEY_LIST(CtRunConfig, grpo.reward_funcs, "grpo.reward_funcs", "exact_match",
                    "Reward sources, summed with reward_weights: exact_match, numeric, regex, format, command, model (docs/grpo.md)."),
    CT_CFG_KEY_NUMBERS(CtRunConfig, grpo.reward_weights, "grpo.reward_weights", "",
                       "One weight per reward source, in grpo.reward_funcs' order; empty: 1 each."),
    CT_CFG_KEY_STRING(CtRunConfig, grpo.reward_regex, "grpo.reward_regex", "",
                      "The regex source's pattern (POSIX extended): reward 1 where the completion matches."),
    CT_CFG_KEY_STRING(CtRunConfig, grpo.reward_command, "grpo.reward_command", "",
                      "The command source: a shell command reading JSON lines {prompt, completion, fields} and printing one number per line."),
    CT_CFG_KEY_STRING(CtRunConfig, grpo.reward_model, "grpo.reward_model", "",
                      "The model source: a reward-model checkpoint (ctrain reward) with the policy's tokenizer."),
    CT_CFG_KEY_STRING(CtRunConfig, grpo.answer_field, "grpo.answer_field", "answer",
                      "The prompts' field holding the ground truth (exact_match, numeric)."),
    CT_CFG_KEY_FLOAT(CtRunConfig, grpo.numeric_tolerance, "grpo.numeric_tolerance", "1e-6", 0, 1e9,
                     "numeric: the answer counts when |x - y| <= tolerance x max(1, |y|)."),
    CT_CFG_KEY_STRING(CtRunConfig, grpo.ref_checkpoint, "grpo.ref_checkpoint", "",
                      "The KL's reference; empty: the starting model frozen (LoRA: the base with the adapters off)."),
    CT_CFG_KEY_INT(CtRunConfig, grpo.log_completions, "grpo.log_completions", "4", 0, 1 << 20,
                   "Held-out completions, with their rewards, written to samples.jsonl at each evaluation."),
    CT_CFG_KEY_FLOAT(CtRunConfig, mlm.mlm_probability, "mlm.mlm_probability", "0.15", 0, 1,
                     "The share of each row's ordinary tokens selected for prediction (special tokens and padding never are); with whole_word_mask, the share of words."),
    CT_CFG_KEY_FLOAT(CtRunConfig, mlm.mask_replace_prob, "mlm.mask_replace_prob", "0.8", 0, 1,
                     "The share of selected tokens replaced by the mask token ([MASK] or <mask>)."),
    CT_CFG_KEY_FLOAT(CtRunConfig, mlm.random_replace_prob, "mlm.random_replace_prob", "0.1", 0, 1,
                     "The share of selected tokens replaced by a random ordinary token; the rest (1 - mask_replace_prob - random_replace_prob) stay unchanged."),
    CT_CFG_KEY_BOOL(CtRunConfig, mlm.whole_word_mask, "mlm.whole_word_mask", "false",
                    "Select whole words: a word's first token is drawn and its other tokens (WordPiece ## tokens; byte-level BPE: up to the next token starting with a space) follow it."),
    CT_CFG_KEY_STRING(CtRunConfig, classify.val_path, "classify.val_path", "",
                      "Validation examples (JSON lines as data.path); empty: classify.val_fraction of data.path's."),
    CT_CFG_KEY_FLOAT(CtRunConfig, classify.val_fraction, "classify.val_fraction", "0.1", 0, 0.9,
                     "Without classify.val_path: the share of data.path's examples held out for validation (a seeded choice)."),
    CT_CFG_KEY_STRING(CtRunConfig, classify.labels, "classify.labels", "",
                      "The labels in id order, comma-separated; empty: the training file's distinct labels sorted (numbers as numbers), as transformers' run_glue.py."),
    CT_CFG_KEY_ENUM(CtRunConfig, classify.pooling, "classify.pooling", "auto", "auto|cls|mean|last",
                    "The hidden state the classifier reads: auto is the family's (cls for bert/roberta, last for gpt2/llama, as transformers' *ForSequenceClassification)."),
    CT_CFG_KEY_INT(CtRunConfig, lora.r, "lora.r", "0", 0, 4096,
                   "Adapter rank; 0 trains every parameter, > 0 trains only adapters over the frozen train.init_from."),
    CT_CFG_KEY_FLOAT(CtRunConfig, lora.alpha, "lora.alpha", "16", 0, 1e6,
                     "Adapter scale numerator: scale = alpha/r (alpha/sqrt(r) with rslora)."),
    CT_CFG_KEY_FLOAT(CtRunConfig, lora.dropout, "lora.dropout", "0", 0, 0.99,
                     "Dropout on the adapter input x in training passes (PEFT's lora_dropout; the base path sees x unchanged)."),
    CT_CFG_KEY_LIST(CtRunConfig, lora.targets, "lora.targets", "",
                    "Modules to adapt, as PEFT's target_modules list: a full name (model.layers.0.self_attn.q_proj) or a suffix after a '.' (q_proj, mlp.c_proj), or all-linear; empty: PEFT's default (q_proj,v_proj for llama, c_attn for gpt2)."),
    CT_CFG_KEY_STRING(CtRunConfig, lora.target_regex, "lora.target_regex", "",
                      "Instead of lora.targets: a Python regular expression fully matched against each module's full name (PEFT's string target_modules)."),
    CT_CFG_KEY_LIST(CtRunConfig, lora.target_parameters, "lora.target_parameters", "",
                    "MoE models: the routed experts' fused parameters to adapt, as PEFT's target_parameters (mlp.experts.gate_up_proj, mlp.experts.down_proj, or a suffix such as down_proj): one adapter per expert, in every MoE layer (layers_to_transform does not apply); needs lora.dropout 0. Alone, no module is adapted."),
    CT_CFG_KEY_LIST(CtRunConfig, lora.layers_to_transform, "lora.layers_to_transform", "",
                    "Layer indices (\"0,2\" or [\"0\", \"2\"]) where lora.targets' suffix matches apply (PEFT's layers_to_transform); empty: every layer."),
    CT_CFG_KEY_LIST(CtRunConfig, lora.layers_pattern, "lora.layers_pattern", "",
                    "Where the layer index of a name is read (PEFT's layers_pattern: layers for llama, h for gpt2); empty: the first numbered segment."),
    CT_CFG_KEY_LIST(CtRunConfig, lora.rank_pattern, "lora.rank_pattern", "",
                    "Per-module ranks as \"regex=r\" entries (PEFT's rank_pattern: the first regex matching a name's end wins), e.g. q_proj=16,mlp.down_proj=4."),
    CT_CFG_KEY_LIST(CtRunConfig, lora.alpha_pattern, "lora.alpha_pattern", "",
                    "Per-module alphas as \"regex=alpha\" entries (PEFT's alpha_pattern)."),
    CT_CFG_KEY_BOOL(CtRunConfig, lora.rslora, "lora.rslora", "false",
                    "Rank-stabilised scale alpha/sqrt(r) instead of alpha/r (PEFT's use_rslora)."),
    CT_CFG_KEY_ENUM(CtRunConfig, peft.type, "peft.type", "none", "none|prompt_tuning|p_tuning|prefix_tuning",
                    "Prompt-learning method over the frozen model of train.init_from: prompt_tuning (learned embeddings of peft.num_virtual_tokens virtual tokens before every sequence), p_tuning (the same produced by a prompt encoder), prefix_tuning (learned keys and values in every layer); none: off."),
    CT_CFG_KEY_INT(CtRunConfig, peft.num_virtual_tokens, "peft.num_virtual_tokens", "20", 1, 65536,
                   "Virtual tokens (PEFT's num_virtual_tokens); the sequence the model sees is train.seq_len + this long."),
    CT_CFG_KEY_ENUM(CtRunConfig, peft.prompt_tuning_init, "peft.prompt_tuning_init", "random", "random|text",
                    "prompt_tuning: the virtual tokens start as normal(0, 1) draws (PEFT's RANDOM, torch.nn.Embedding's init) or as the embeddings of peft.prompt_tuning_init_text's tokens, repeated or cut to num_virtual_tokens (PEFT's TEXT)."),
    CT_CFG_KEY_STRING(CtRunConfig, peft.prompt_tuning_init_text, "peft.prompt_tuning_init_text", "",
                      "The text of peft.prompt_tuning_init text, tokenized with the run's tokenizer."),
    CT_CFG_KEY_ENUM(CtRunConfig, peft.encoder_reparameterization_type, "peft.encoder_reparameterization_type", "MLP",
                    "MLP|LSTM",
                    "p_tuning: the prompt encoder, PEFT's MLP (Linear-ReLU-Linear-ReLU-Linear) or LSTM (a bidirectional LSTM, then Linear-ReLU-Linear; CPU only, encoder_dropout 0 only)."),
    CT_CFG_KEY_INT(CtRunConfig, peft.encoder_hidden_size, "peft.encoder_hidden_size", "0", 0, 1 << 20,
                   "p_tuning: the prompt encoder's hidden width; prefix_tuning with prefix_projection: the projection's. 0: the model's width (PEFT's None -> token_dim)."),
    CT_CFG_KEY_INT(CtRunConfig, peft.encoder_num_layers, "peft.encoder_num_layers", "2", 1, 64,
                   "p_tuning with LSTM: the LSTM's layers (the MLP always has PEFT's three Linear layers: only the default 2 is accepted there)."),
    CT_CFG_KEY_FLOAT(CtRunConfig, peft.encoder_dropout, "peft.encoder_dropout", "0", 0, 0.99,
                     "p_tuning with LSTM: dropout between the LSTM's layers (PEFT's MLP has none: only 0 is accepted there)."),
    CT_CFG_KEY_BOOL(CtRunConfig, peft.prefix_projection, "peft.prefix_projection", "false",
                    "prefix_tuning: the prefixes come out of PEFT's projection (Embedding, Linear-Tanh-Linear of width peft.encoder_hidden_size) instead of being trained directly."),
};

const CtConfigSchema ct_run_config_schema = {
    sections, (int)(sizeof sections / sizeof sections[0]), keys, (int)(sizeof keys / sizeof keys[0]),
};

// The peft section: keys that belong to another method than peft.type are refused (PEFT's configs
// have no such field, or ignore it with a warning), each naming the key.
static int check_peft_keys(const CtRunConfig *cfg, const char *source) {
    static const char *const types[] = {"none", "prompt_tuning", "p_tuning", "prefix_tuning"};
    const int t = cfg->peft.type;
    const char *type = types[t];
    const int text = cfg->peft.prompt_tuning_init == 1, mlp = cfg->peft.encoder_reparameterization_type == 0;
    if (t == 0) return 0;  // off: the other keys are not read
    if (cfg->lora.r > 0)
        return ct_error_set("%s: peft.type %s with lora.r %d: one adapter kind per run; set lora.r to 0 or peft.type "
                            "to none", source, type, cfg->lora.r);
    if (t != 1 && (text || cfg->peft.prompt_tuning_init_text[0]))
        return ct_error_set("%s: peft.prompt_tuning_init%s belongs to peft.type prompt_tuning, not %s; remove it",
                            source, text ? "" : "_text", type);
    if (t == 1 && text && !cfg->peft.prompt_tuning_init_text[0])
        return ct_error_set("%s: peft.prompt_tuning_init text needs peft.prompt_tuning_init_text (the text whose "
                            "token embeddings start the virtual tokens)", source);
    if (t == 1 && !text && cfg->peft.prompt_tuning_init_text[0])
        return ct_error_set("%s: peft.prompt_tuning_init_text is set but peft.prompt_tuning_init is random; set "
                            "peft.prompt_tuning_init to text or remove the text", source);
    if (t != 2 && (!mlp || cfg->peft.encoder_num_layers != 2 || cfg->peft.encoder_dropout != 0))
        return ct_error_set("%s: peft.%s belongs to peft.type p_tuning, not %s; remove it", source,
                            !mlp ? "encoder_reparameterization_type" : cfg->peft.encoder_num_layers != 2
                                                                          ? "encoder_num_layers" : "encoder_dropout",
                            type);
    if (cfg->peft.encoder_hidden_size && !(t == 2 || (t == 3 && cfg->peft.prefix_projection)))
        return ct_error_set("%s: peft.encoder_hidden_size applies to p_tuning and to prefix_tuning with "
                            "peft.prefix_projection, not %s%s; remove it", source, type,
                            t == 3 ? " without a projection" : "");
    if (t != 3 && cfg->peft.prefix_projection)
        return ct_error_set("%s: peft.prefix_projection belongs to peft.type prefix_tuning, not %s; remove it", source,
                            type);
    if (t == 2 && mlp && cfg->peft.encoder_num_layers != 2)
        return ct_error_set("%s: peft.encoder_num_layers %d: PEFT's MLP prompt encoder always has its three Linear "
                            "layers (the key is the LSTM's); remove it", source, cfg->peft.encoder_num_layers);
    if (t == 2 && !mlp && cfg->peft.encoder_dropout != 0)
        return ct_error_set("%s: peft.encoder_dropout %g: the LSTM prompt encoder's dropout between layers is not "
                            "implemented in ctrain; use 0 (PEFT's default)", source, cfg->peft.encoder_dropout);
    if (t == 2 && !mlp && (cfg->peft.encoder_num_layers < 1 || cfg->peft.encoder_num_layers > 3))
        return ct_error_set("%s: peft.encoder_num_layers %d: ctrain's LSTM prompt encoder takes 1 to 3 layers",
                            source, cfg->peft.encoder_num_layers);
    if (t == 2 && mlp && cfg->peft.encoder_dropout != 0)
        return ct_error_set("%s: peft.encoder_dropout %g: PEFT's MLP prompt encoder has no dropout (the key is the "
                            "LSTM's); remove it", source, cfg->peft.encoder_dropout);
    return 0;
}

// Rules between keys, which the schema's per-key ranges cannot state.
static int check_between_keys(const CtRunConfig *cfg, const char *source) {
    CtRouter router = CT_ROUTER_SOFTMAX;
    if (cfg->model.router[0] && ct_router_from_name(cfg->model.router, &router) != 0)
        return ct_error_set("%s: model.router '%s' is not a router (softmax, softmax_norm, topk_softmax, sigmoid, "
                            "sigmoid_norm)", source, cfg->model.router);
    // The rate moves the selection bias that only the sigmoid routers have. A config that names no
    // experts may start from a checkpoint's MoE model: that model is checked at setup (train_setup.c).
    if (cfg->train.aux_free_bias_rate > 0 && (cfg->model.n_experts > 0 || cfg->model.router[0]) &&
        router != CT_ROUTER_SIGMOID && router != CT_ROUTER_SIGMOID_NORM)
        return ct_error_set("%s: train.aux_free_bias_rate %g needs model.router sigmoid or sigmoid_norm (the routers "
                            "with a selection bias), not %s; set it to 0 or change the router",
                            source, cfg->train.aux_free_bias_rate, ct_router_name(router));
    if (cfg->mlm.mask_replace_prob + cfg->mlm.random_replace_prob > 1 + 1e-12)
        return ct_error_set("%s: mlm.mask_replace_prob %g + mlm.random_replace_prob %g exceed 1: they are shares of the "
                            "selected tokens (the rest stay unchanged); lower one of them", source,
                            cfg->mlm.mask_replace_prob, cfg->mlm.random_replace_prob);
    if (check_peft_keys(cfg, source) != 0) return -1;
    // The decay goes from optim.lr down to optim.min_lr: a larger min_lr makes it climb instead.
    // A constant schedule never reaches min_lr, so it may keep the default.
    if (cfg->optim.schedule != CT_LR_CONSTANT && cfg->optim.min_lr > cfg->optim.lr)
        return ct_error_set("%s: optim.min_lr %g is above optim.lr %g: the %s schedule would raise the learning rate "
                            "as it decays; set optim.min_lr at or below optim.lr (e.g. a tenth of it)",
                            source, cfg->optim.min_lr, cfg->optim.lr,
                            cfg->optim.schedule == CT_LR_LINEAR ? "linear" : cfg->optim.schedule == CT_LR_WSD ? "wsd"
                                                                                                              : "cosine");
    return 0;
}

int ct_run_config_load(CtRunConfig *cfg, const char *path, const CtArgs *args) {
    ct_config_validate_schema(&ct_run_config_schema);
    ct_config_set_defaults(&ct_run_config_schema, cfg);
    cfg->optim.min_lr = NAN;  // not set: follows optim.lr (below), so a low fine-tuning rate needs no second key
    if (path && ct_config_apply_file(&ct_run_config_schema, cfg, path) != 0) return -1;
    for (int i = 0; args && i < args->n_overrides; i++)
        if (ct_config_apply_override(&ct_run_config_schema, cfg, args->override_keys[i], args->override_values[i]) != 0)
            return -1;
    if (isnan(cfg->optim.min_lr)) cfg->optim.min_lr = cfg->optim.lr / 10;
    return check_between_keys(cfg, path ? path : "command line");
}
