// The Transformer: parameters in one buffer with a table of Hugging Face names, activations
// allocated once for the largest batch, and the forward/backward orchestration over the op
// table (kernels/ops.h). The math is in kernels/; here is only what runs, in which order.
//
//   GPT-2:  x = wte[tok] + wpe[pos]
//           per block: x += attn_proj(attention(qkv(LayerNorm(x))));  x += fc_proj(GELU(fc(LayerNorm(x))))
//           logits = LayerNorm(x) · wteᵀ
//   LLaMA:  x = embed[tok]
//           per block: x += o_proj(attention(RoPE(qkv(RMSNorm(x)))));  x += down(SwiGLU(gate_up(RMSNorm(x))))
//           logits = RMSNorm(x) · lm_headᵀ
//   BERT/RoBERTa (encoders, bidirectional attention; pads are kept apart by their own doc ids):
//           x = LayerNorm(word[tok] + pos[pos] + type[tt])
//           per block: x = LayerNorm(x + out(attention(qkv(x))));  x = LayerNorm(x + fc_out(GELU(fc(x))))
//           logits = LayerNorm(GELU(dense(x))) · wordᵀ + bias   (the MLM head; GELU the exact erf form)
//   The llama variants (CtModelConfig's feature fields) on top: biases on q|k|v (Qwen2); per-head
//   RMSNorm of q and k before RoPE (Qwen3, Gemma 3); a RoPE frequency table per layer
//   (train/model/rope_scaling.h); a sliding window, a query scale and soft-capped scores in the
//   attention (Mistral, Gemma); GeGLU; RMSNorm on each branch's output before its residual add
//   (Gemma's post-norms); embeddings × √d_model; logits z → cap·tanh(z/cap) (Gemma 2).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/named_tensor.h"
#include "kernels/ops.h"
#include "train/model/model_config.h"

// One tensor of the parameter table.
typedef enum { CT_INIT_NORMAL, CT_INIT_NORMAL_RESIDUAL, CT_INIT_ONES, CT_INIT_ZEROS } CtParamInit;

typedef struct {
    char name[96];      // Hugging Face name: "transformer.h.0.attn.c_attn.weight"
    int ndim;           // 1 or 2
    int64_t shape[2];   // as stored here: a weight is [out, in] (torch.nn.Linear)
    size_t offset;      // in floats, from the start of the parameter buffer
    size_t numel;
    int hf_transposed;  // 1: Hugging Face stores it as [in, out] (GPT-2's Conv1D layers)
    CtParamInit init;
} CtParamEntry;

// Pointers into a parameter-shaped buffer (the parameters, or their gradients). The fused
// tensors are adjacent entries of the table: qkv_w is q_proj|k_proj|v_proj (llama) or c_attn
// (gpt2); fc_w is gate_proj|up_proj (llama) or c_fc (gpt2). Absent tensors are NULL.
// An MoE layer (ct_model_layer_is_moe) has no fc_w/fc_out_w; its MLP is the router, the experts
// (expert e's gate|up [2F',C] at experts_w + e·3F'C, its down [C,F'] 2F'C further on) and the
// shared expert (gate|up, down, and the optional [1,C] gate).
typedef struct {
    float *ln1_w, *ln1_b;
    float *qkv_w, *qkv_b;
    float *attn_out_w, *attn_out_b;
    float *ln2_w, *ln2_b;
    float *fc_w, *fc_b;
    float *fc_out_w, *fc_out_b;
    float *q_norm_w, *k_norm_w;       // qk_norm: per-head RMSNorm weights [head_dim] (Qwen3, Gemma 3)
    float *attn_post_w, *mlp_post_w;  // post_norms: RMSNorm on the attention and MLP outputs (Gemma)
    float *router_w;                  // [E,C] mlp.gate
    float *router_bias;               // [E] sigmoid routers' selection bias (never gets a gradient)
    float *experts_w;                 // expert 0's gate_proj: the E experts' weights, 3F'C floats each
    float *shared_fc_w, *shared_fc_out_w;  // shared expert: gate|up [2·S·F',C], down [C,S·F']
    float *shared_gate_w;             // [1,C] Qwen2-MoE's shared_expert_gate
} CtLayerTensors;

// A multi-token prediction module's own tensors besides its block (train/model/model_mtp.c):
// the norms of the embedding and of the previous depth's hidden state, the projection of the two
// concatenated [C, 2C] (embedding half first), and the norm before the shared head. *_b: gpt2's
// LayerNorm biases (NULL for llama).
typedef struct {
    float *enorm_w, *enorm_b;
    float *hnorm_w, *hnorm_b;
    float *eh_proj;
    float *norm_w, *norm_b;
} CtMtpTensors;

typedef struct {
    float *wte, *wpe;   // wpe: gpt2, bert, roberta
    float *wtt;         // encoders: the token-type (segment) embedding [type_vocab_size, C]
    float *emb_ln_w, *emb_ln_b;      // encoders: the embeddings' LayerNorm
    float *pooler_w, *pooler_b;      // encoders with config.pooler: dense [C,C] (+ tanh) on [CLS]
    float *mlm_dense_w, *mlm_dense_b;  // encoders: the MLM head's transform, dense [C,C] (then GELU, lnf)
    float *lnf_w, *lnf_b;            // the final norm; encoders: the MLM head's LayerNorm
    float *lm_head;     // = wte when tied
    float *lm_head_b;   // encoders: the MLM decoder's bias [V] (cls.predictions.bias, lm_head.bias); else NULL
    float *score;       // reward_head: [1, C] the reward model's scalar head; a decoder's classifier [L, C]; else NULL
    // Encoders' sequence classifier (num_labels L): BERT's classifier [L, C] + [L] (after the
    // pooler), RoBERTa's classifier.dense [C, C] + [C] (cls_dense) and classifier.out_proj (cls_out)
    float *cls_dense_w, *cls_dense_b, *cls_out_w, *cls_out_b;
    CtLayerTensors *layers;  // n_layer blocks, then the mtp_depth modules' blocks
    CtMtpTensors *mtp;       // [mtp_depth] the modules' other tensors (NULL without modules)
} CtModelTensors;

// The Mixture-of-Experts activations of one MoE layer over N tokens; R = N·K (token, slot) rows,
// sorted by expert (kernels/ops.h). offsets is host memory, the rest the ops'.
typedef struct {
    CtAct *logits;                     // [N,E] router logits
    float *probs, *lse;                // [N,E], [N]
    int32_t *ids;                      // [N,K] chosen experts
    float *weights;                    // [N,K] their weights
    int32_t *offsets;                  // [E+1] HOST: expert e owns sorted rows offsets[e]..offsets[e+1]-1
    int32_t *sorted_token, *slot_of;   // [R] each sorted row's token; [R] the sorted row of (n, k)
    CtAct *xs;                         // [R,C] the gathered input rows
    CtAct *eh, *eh_act;                // [R,2F'] experts' gate|up, [R,F'] after SwiGLU
    CtAct *ey;                         // [R,C] experts' outputs
    CtAct *sh_fch, *sh_act, *sh_out;   // shared expert: [N,2FS], [N,FS], [N,C] (FS = S·F'); NULL without
    CtAct *sh_gate;                    // [N] shared gate logits; NULL without the gate
} CtMoeActs;

// What every MoE layer keeps (slices of max_B·max_T rows per MoE layer, in layer order; kept with
// recompute on too), and backward's scratch for one layer at a time.
typedef struct {
    CtMoeActs base;                    // slice 0 of each; ct_model_moe_acts finds a layer's
    int32_t *offsets;                  // HOST [moe layers × (E+1)] (base.offsets = offsets)
    CtAct *d_logits;                   // [N,E]
    float *d_weights;                  // [N,K]
    CtAct *d_rows;                     // [R,C] d experts' outputs, then d gathered rows
    CtAct *d_eh, *d_eh_act;            // [R,2F'], [R,F']
    CtAct *d_sh_fch, *d_sh_act, *d_sh_out, *d_sh_gate;  // [N,2FS], [N,FS], [N,C], [N]
    float *f;                          // HOST [E]: fractions of tokens per expert (the aux loss's f)
    double *q_mean;                    // HOST [E]: moe_router_stats's
} CtMoeActivations;

// Activations of one forward pass, kept for backward. Per-layer tensors hold n_layer slices;
// with recompute on, ln1, ln2 and fch_act hold one slice that backward refills. fch and fch_act
// have a slice per dense layer only (MoE layers keep theirs in act.moe). CtAct arrays
// are of the ops' activation type (ops->act_bytes: float on the CPU, bf16 in the GPU's bf16
// table; kernels/ops.h), addressed through ct_act_at; per-row statistics are float.
typedef struct {
    CtAct *encoded;                    // [B,T,C]
    CtAct *emb_sum;                    // encoders: [B,T,C] word + position + token type, before the LayerNorm
    float *emb_mean, *emb_rstd;        // encoders: [B,T] that LayerNorm's statistics
    CtAct *mlm_pre, *mlm_act;          // encoders: [B,T,C] the MLM head's dense output, and after GELU
    int32_t *token_types;              // encoders: [B,T] zeros, for a batch that brings none (CPU)
    CtAct *ln1;                        // [L,B,T,C]
    float *ln1_mean, *ln1_rstd;        // [L,B,T], [L,B,T]
    CtAct *qkv;                        // [L,B,T,(NH+2·NKV)·HD], after RoPE
    CtAct *qkv_pre;                    // qk_norm: [L,B,T,QKV] the product, before the q/k norms
    float *qk_rstd;                    // qk_norm: [L,B,T,NH+NKV] their per-head statistics
    CtAct *atty;                       // [L,B,T,NH·HD] attention output, before the projection
    CtAct *attn_pre, *mlp_pre;         // post_norms: [L,B,T,C] each branch's output before its norm
    float *attn_post_rstd, *mlp_post_rstd;  // post_norms: [L,B,T]
    float *att;                        // [L,B,NH,T,T] attention probabilities (or the backend's saved state)
    CtAct *residual2;                  // [L,B,T,C] stream after the attention half
    // Post-LN blocks (encoders): ln1 and ln2 hold each half's residual sum, the input of its norm,
    // and residual2/residual3 that norm's output (x₁ = LN1(x + attn(x)), out = LN2(x₁ + mlp(x₁))).
    CtAct *ln2;
    float *ln2_mean, *ln2_rstd;
    CtAct *fch;                        // [L,B,T,FI] MLP input projection (FI = d_ff, or 2·d_ff for SwiGLU)
    CtAct *fch_act;                    // [L,B,T,d_ff] after GELU / SwiGLU
    CtAct *residual3;                  // [L,B,T,C] stream after the block
    CtAct *lnf;                        // [B,T,C]
    float *lnf_mean, *lnf_rstd;        // [B,T], [B,T]
    CtAct *logits;                     // [B,T,V]; backward turns it into dlogits in place
    float *losses, *logprobs, *lse;    // [B,T]
    CtAct *proj;                       // [B,T,C] scratch: output of the two projections
    int32_t *positions;                // [B,T] 0..T-1, when the batch brings none
    // gradients of one block at a time (reused down the stack)
    CtAct *d_residual, *d_norm, *d_qkv, *d_atty, *d_fch, *d_fch_act, *d_proj;
    CtAct *d_post;                     // post_norms: the gradient of a branch's output before its norm
    CtMoeActivations moe;              // Mixture-of-Experts layers (empty for a dense model)
} CtActivations;

// One batch of B sequences of T tokens. Only tokens is required.
typedef struct CtBatch {
    const int32_t *tokens;        // [B,T]
    const int32_t *targets;       // [B,T]; NULL: forward stops at the logits; -1 = ignored
    const uint8_t *loss_mask;     // [B,T] or NULL: 0 = no loss on this token (prompt, padding)
    const float *loss_weights;    // [B,T] or NULL
    const int32_t *doc_ids;       // [B,T] or NULL: attention stays inside a document
    const int32_t *positions;     // [B,T] or NULL (= t): positions restarting per document
    int B, T;
    const int32_t *token_types;   // [B,T] or NULL (= 0): encoders' token types (BERT's segments A/B); the
                                  // decoders ignore them
} CtBatch;

struct CtLora;  // train/model/lora.h
struct CtPeft;  // train/model/peft.h
struct CtMtp;   // train/model/model_internal.h: the multi-token prediction modules' activations

// Mixture of Experts (train/model/model_moe.c): the router losses' coefficients that backward
// applies, and what the forwards since the last ct_model_moe_reset observed (host memory).
// The losses are means over the MoE layers; neither is part of ct_model_forward's return value.
typedef struct {
    float aux_coef, z_coef;     // d (aux_coef·aux_loss + z_coef·z_loss) is added by ct_model_backward;
                                // the objective sets them (train.* × the micro-batch's share of the step)
    int n_layers, E;            // MoE layers, experts per layer (0, 0 for a dense model)
    double *load;               // [n_layers × E] (token, slot) pairs routed to each expert, summed over forwards
    double aux_loss_sum;        // Σ over forwards of the layer-mean E·Σ_e f_e·q_e (K when balanced)
    double z_loss_sum;          // Σ over forwards of the layer-mean of (1/N) Σ_n lse_n²
    int n_forwards;
} CtMoeStats;

// Flags of ct_model_create (its last argument; 0 and 1 keep their old meaning of recompute).
#define CT_MODEL_RECOMPUTE 1  // see CtActivations
#define CT_MODEL_FROZEN 2     // no gradient buffer for the parameters (LoRA's frozen base): backward
                              // passes gradients through them but computes none for them

// CtModel.head_grad: where the last forward left the gradient of its loss over the logits.
enum { CT_HEAD_GRAD_NONE, CT_HEAD_GRAD_ASKED, CT_HEAD_GRAD_WRITTEN };

typedef struct CtModel {
    CtModelConfig config;
    const CtOps *ops;
    int recompute;
    int frozen;                // CT_MODEL_FROZEN: grads is NULL and so is every pointer of g

    CtParamEntry *table;
    int n_tensors;
    size_t n_params;
    // Parameters and gradients in host memory: what checkpoints, exports and tests read and
    // write. On a device backend (ops->host_memory 0, after ct_model_to_backend) params is a
    // mirror, current after ct_model_sync_to_host (push host edits with ct_model_sync_to_device),
    // and grads is NULL: gradients live on the device only.
    float *params, *grads;
    // What the ops read and write (w and g point into these): params and grads themselves on
    // the CPU, device buffers otherwise.
    float *dev_params, *dev_grads;
    CtModelTensors w, g;
    // What the optimizer steps, in the ops' memory: dev_params/dev_grads (n_params), or the
    // LoRA adapters' buffers.
    float *train_params, *train_grads;
    size_t n_train;
    // Set before ct_model_to_backend (or attaching LoRA on a device): the device buffers of
    // train_params and train_grads then hold n_train rounded up to a multiple of this many
    // floats, zeros past n_train, so ZeRO-1 can cut them into equal parts (optim/zero.h). 0 or 1: exact.
    int train_shards;
    struct CtLora *lora;       // adapters (train/model/lora.h), or NULL
    struct CtPeft *peft;       // a prompt-learning adapter (train/model/peft.h), or NULL; never with lora
    // Keys beyond max_T that the saved attention state (act.att) has room for per row: prefix
    // tuning's P (train/model/peft_prefix.c sizes it when it attaches); 0 otherwise.
    int att_extra_keys;
    CtMoeStats moe;            // Mixture of Experts: losses' coefficients and routing statistics
    // Multi-token prediction (config.mtp_depth = D > 0; train/model/model_mtp.c). With
    // mtp_weight = λ > 0 (the objective sets it; 0, the default: the modules do not run), a
    // forward with targets also runs the D modules and keeps their mean losses (index k−1 for
    // depth k) over the tokens each counted; its return value stays the main loss. Backward adds
    // the gradient of λ/D · Σ_k mtp_loss[k].
    float mtp_weight;
    float mtp_loss[CT_MODEL_MAX_MTP_DEPTH];
    float mtp_loss_count[CT_MODEL_MAX_MTP_DEPTH];
    struct CtMtp *mtp;         // the modules' activations (NULL without modules)

    int max_B, max_T;
    CtActivations act;
    void *act_block;           // the one allocation behind act
    size_t activation_bytes;
    size_t recompute_saved_bytes;  // what recompute saves (0 when off)

    // Dropout (config.dropout > 0, and LoRA's lora.dropout on adapter inputs) applies only in
    // training mode (ct_model_set_dropout), with masks that are a pure function of dropout_seed:
    // embeddings, the attention probabilities and the output of both residual branches of every block.
    int training;
    uint64_t dropout_seed;     // the mask seed of the next forward
    int dropout_applied;       // the last forward applied dropout with dropout_seed
    CtBatch batch;             // the last forward's batch, in the ops' memory (backward reads it)
    int rope_len;              // its largest position + 1 (RoPE's table for dynamic scaling)
    // The temperature τ the loss's log-probabilities are taken at: log softmax(logits/τ) (GRPO:
    // TRL scores completions at the temperature they were sampled with). 0 or 1: none. A model
    // with final_softcap takes none (the soft-cap's backward reads the unscaled values).
    float logit_temperature;
    // The loss's gradient fused into the forward (ct_model_forward_train): CT_HEAD_GRAD_ASKED
    // while that forward runs, CT_HEAD_GRAD_WRITTEN once it has written the gradient over the
    // logits (backends with ops->xent_forward_backward), CT_HEAD_GRAD_NONE otherwise.
    int head_grad;
    float loss_count;          // tokens that counted in the last loss
    float loss;                // mean loss of the last forward (0 without targets)
    // The last forward's per-token losses and log-probabilities [B·T], in host memory (on the
    // CPU these are act.losses and act.logprobs; on a device, copies made after the forward).
    float *losses, *logprobs;
    float *host_logits;        // ct_model_logits's host copy on a device (NULL until asked)
    int *classify_len;         // the last classifier forward's row lengths (host; train/model/model_classify.h)
    // Called by backward (when set) each time the gradients from index final_from of dev_grads
    // on are final for this backward: after the head and final norm, after each block, and with
    // 0 at the end (parameters are laid out embeddings, blocks in order, final norm, head, so
    // backward finishes them from the end of the buffer toward its start). Data parallelism
    // starts all-reducing those buckets while backward goes on. Not called for LoRA models.
    void (*grads_final)(void *ctx, size_t final_from);
    void *grads_final_ctx;
    // Device backends: the batch's arrays are uploaded here before each forward.
    struct {
        int32_t *tokens, *targets, *doc_ids, *positions, *token_types;
        uint8_t *loss_mask;
        float *loss_weights;
        int32_t *host_positions;   // host scratch: positions 0..T-1 when the batch brings none (RoBERTa's offset)
        int32_t *host_token_types; // host scratch: zeros for an encoder's batch without token types
    } staged;
} CtModel;

// Builds the parameter table and allocates parameters, gradients (not with CT_MODEL_FROZEN)
// and activations for batches up to max_B × max_T. flags: CT_MODEL_RECOMPUTE | CT_MODEL_FROZEN.
// Returns 0, or -1 + error.
int ct_model_create(CtModel *m, const CtModelConfig *config, const CtOps *ops, int max_B, int max_T, int flags);
void ct_model_free(CtModel *m);
// Re-sizes the activations (CPU) for sequences of up to max_T rows (≤ max_seq_len): what a prompt
// adapter's virtual rows need (train/model/peft.h). 0, or -1 + error.
int ct_model_set_max_T(CtModel *m, int max_T);

// Moves the model (parameters, gradients, activations, LoRA adapters) into the memory of
// `ops`, a device backend, which runs every later forward and backward. Build, initialise or
// load the model on the CPU first. params stays as the host mirror; grads (host) is freed.
void ct_model_to_backend(CtModel *m, const CtOps *ops);
// Device backends: copy the parameters (and adapters) device → host mirror, or host → device
// after editing the mirror. No-ops on the CPU.
void ct_model_sync_to_host(CtModel *m);
void ct_model_sync_to_device(CtModel *m);
// The trainable parameters (params, or the LoRA adapters) in host memory, synced first.
const float *ct_model_train_params_host(CtModel *m);

// GPT-2 initialisation: normal(0, 0.02), residual projections normal(0, 0.02/sqrt(2·n_layer)),
// norm weights 1, biases 0. Each tensor draws from its own stream of `seed`, so the result
// does not depend on thread counts.
void ct_model_init(CtModel *m, uint64_t seed);

// Training mode turns dropout on (when config.dropout > 0) with masks drawn from `seed`; give
// every step (and micro-batch, and rank) its own seed. Backward reuses the last forward's masks.
// Evaluation mode (training = 0, the default) applies no dropout.
void ct_model_set_dropout(CtModel *m, int training, uint64_t seed);

// Forward pass. With targets, returns the mean loss over counted tokens,
//   loss = Σ_n w_n·(-log p(target_n)) / #{n : w_n ≠ 0}
// (w_n = loss_mask·loss_weights, 0 for ignored targets); per-token values stay in
// m->act.losses and m->act.logprobs. Without targets returns 0 and leaves the logits.
float ct_model_forward(CtModel *m, const CtBatch *batch);

// A training step's forward, for a backward of its own loss that follows with nothing between
// that reads the logits or changes the loss weights (ct_model_logits, ct_model_set_loss_weights
// refuse then): the same loss and per-token values as ct_model_forward. Where the backend fuses
// the cross-entropy's two passes (ops->xent_forward_backward: the CPU), the gradient is written
// over the logits as they are read, and ct_model_backward starts after it.
float ct_model_forward_train(CtModel *m, const CtBatch *batch);

// The logits [B·T, V] of the last forward (one without targets: backward overwrites them) as
// host floats: the activations themselves on the CPU, else converted into a host copy that
// the model owns (valid until the next call).
const float *ct_model_logits(CtModel *m);

// Replaces the per-token loss weights [B·T] (host memory) of the last forward before its backward:
// objectives such as DPO set them from the forward's log-probabilities.
void ct_model_set_loss_weights(CtModel *m, const float *weights);

// Backward of the last forward's loss: adds d loss / d params into m->grads, and into the
// adapters' gradients when the model has LoRA adapters (call ct_model_zero_grad first).
// Consumes the logits (they become their gradient).
void ct_model_backward(CtModel *m);
void ct_model_zero_grad(CtModel *m);

// A reward model (config.reward_head): the forward of `batch` (targets are not read) up to the
// final norm, and each row r's score, lnf[r, last[r]] · score, into scores[B] (host memory).
// Its backward adds the gradients of a loss L given d_scores[r] = ∂L/∂scores[r] (host memory).
void ct_model_reward_forward(CtModel *m, const CtBatch *batch, const int *last, float *scores);
void ct_model_reward_backward(CtModel *m, const int *last, const float *d_scores);

// The parameter table as named tensors for checkpoint and safetensors code.
// out must hold m->n_tensors entries; data points into m->params (or m->grads).
void ct_model_named_tensors(const CtModel *m, int gradients, CtNamedTensor *out);

// Mixture of Experts. Clears m->moe's sums (load, loss sums, n_forwards); the coefficients stay.
void ct_model_moe_reset(CtModel *m);
// DeepSeek-V3's auxiliary-loss-free balancing, after an optimizer step: every MoE layer's selection
// bias moves by rate·sign(mean load − load_e) per expert e, from load[n_layers × E] (the step's
// counts summed over micro-batches and ranks, so every rank moves identically). Updates the
// parameters in the ops' memory and the host mirror. Needs a sigmoid router (the bias exists).
void ct_model_moe_update_bias(CtModel *m, const double *load, float rate);

// FLOPs of one training step (forward + backward) per token at sequence length T:
// 6·N_matmul + 6·n_layer·T·d_model (causal attention: QKᵀ and P·V each 2·T·C/2 per token
// forward, twice that backward). N_matmul counts the weights of every matrix product,
// the output head included (a reward model's: score, [1, C]); embeddings and norms are not products. An MoE layer counts the
// weights a token runs through: the router, top_k experts and the shared expert (its active
// parameters, not all E experts). weights_frozen (LoRA's
// base): 4·N_matmul, backward computing the inputs' gradients but not the weights'.
double ct_model_flops_per_token(const CtModelConfig *c, int T, int weights_frozen);
