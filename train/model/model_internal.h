// Shared between the files of the model (train/model/); not for other code.
#pragma once
#include "train/model/model.h"

// Sizes of one pass over B sequences of T tokens (N = B·T rows); FI and QKV are the fused
// products' widths (ct_model_fc_width, ct_model_qkv_width), AW the attention output's (NH·HD).
typedef struct {
    int B, T, N, C, F, FI, QKV, NH, NKV, HD, AW, V, L;
} CtModelDims;
CtModelDims ct_model_dims(const CtModel *m, int B, int T);

// ---- One transformer block, the embeddings and the head (train/model/model_block.c) ----
// The one definition of the network's forward: ct_model_forward runs it over a batch, keeping
// every activation for backward; generation (train/model/generate.c) runs it one row at a time
// over a key/value cache.

// Where one block's forward reads and writes, N rows each. Generation passes the same buffer
// for x, res2 and out (the residual stream updated in place) and for ln1 and ln2.
typedef struct {
    const CtAct *x;                    // [N,C] the block's input
    CtAct *ln1;                        // [N,C] its first norm, with the per-row statistics
    float *ln1_mean, *ln1_rstd;
    CtAct *qkv;                        // [N,QKV] after RoPE
    CtAct *qkv_pre;                    // qk_norm: [N,QKV] the product before the q/k norms
    float *qk_rstd;                    // qk_norm: [N,NH+NKV]
    CtAct *atty;                       // [N,NH·HD] attention output, before the projection
    float *att;                        // the attention's saved state (training; NULL when decoding)
    CtAct *res2;                       // [N,C] stream after the attention half
    CtAct *ln2;
    float *ln2_mean, *ln2_rstd;
    CtAct *fch;                        // [N,FI] MLP input projection
    CtAct *fch_act;                    // [N,F] after GELU / SwiGLU
    CtAct *proj;                       // [N,C] scratch: output of the two projections
    CtAct *attn_pre, *mlp_pre;         // post_norms: [N,C] each branch's output before its norm
    float *attn_post_rstd, *mlp_post_rstd;  // post_norms: [N]
    CtMoeActs moe;                     // an MoE layer's MLP activations (fch and fch_act unused there)
    CtAct *out;                        // [N,C] stream after the block
} CtBlockActs;

// How the rows of a pass see each other.
typedef struct {
    int B, T;
    const int32_t *positions;          // [B·T] in the ops' memory: RoPE's positions
    int rope_len;                      // the largest position + 1 (dynamic RoPE scaling reads it)
    const int32_t *doc_ids;            // [B·T] or NULL: attention stays inside a document
    float dropout;                     // probability of the model's dropout sites (0: none)
    int fused_gelu;                    // GPT-2's MLP may use the backend's fused product + GELU
                                       // (training; decoding keeps the separate ops)
    // Decoding (k_cache not NULL): B = 1, T rows at positions pos..pos+T−1. Their keys and values
    // are stored there in the layer's cache [L, max_ctx, NKV·HD], and row t attends to 0..pos+t.
    CtAct *k_cache, *v_cache;
    int max_ctx, pos;
} CtBlockPass;

// x = wte[tokens] (+ wpe[positions]), then dropout; N rows.
void ct_model_embed_forward(CtModel *m, CtAct *x, const int32_t *tokens, const int32_t *positions, int N,
                            float dropout);
// The encoders' embeddings (bert, roberta) over N rows, in the ops' memory:
// x = dropout(LayerNorm(sum)), sum = wte[tokens] + wpe[positions] + wtt[token_types] (positions
// already carry RoBERTa's padding offset: ct_model_stage_batch).
typedef struct {
    CtAct *x, *sum;
    float *mean, *rstd;
    const int32_t *tokens, *positions, *token_types;
} CtEncoderEmbed;
void ct_model_encoder_embed_forward(CtModel *m, const CtEncoderEmbed *e, int N, float dropout);
// Block `layer`: out = res2 + mlp(norm(res2)), res2 = x + attention(norm(x)), with the LoRA
// adapters of the block (train/model/lora.h) after each product. Encoders' post-LN block:
// res2 = LN1(x + attention(x)) and out = LN2(res2 + mlp(res2)), the sums kept in ln1 and ln2.
void ct_model_block_forward(CtModel *m, int layer, const CtBlockPass *pass, const CtBlockActs *a);
// logits = norm(x)·lm_headᵀ, N rows; lnf and its statistics are kept. Encoders: the MLM head,
// logits = LN(GELU(dense(x)))·wteᵀ + bias, the transform kept in m->act.mlm_pre/mlm_act.
void ct_model_head_forward(CtModel *m, CtAct *logits, CtAct *lnf, float *lnf_mean, float *lnf_rstd, const CtAct *x,
                           int N);
// The pieces that differ between the families, for backward (and its recompute).
void ct_model_norm_forward(const CtModel *m, CtAct *out, float *mean, float *rstd, const CtAct *inp, const float *w,
                           const float *b, int N);
void ct_model_norm_backward(const CtModel *m, CtAct *dinp, float *dw, float *db, const CtAct *dout, const CtAct *inp,
                            const float *w, const float *mean, const float *rstd, int N);
void ct_model_mlp_activation_forward(const CtModel *m, CtAct *out, const CtAct *fch, int N);
// Writes d fch[N, fc width] (zeroing it first for GELU, whose backward adds).
void ct_model_mlp_activation_backward(const CtModel *m, CtAct *dfch, const CtAct *fch, const CtAct *dout, int N);
// The same gated activation (SwiGLU, or GeGLU) for a product of hidden size F: the experts' own;
// its backward writes dgate_up.
void ct_model_glu_forward(const CtModel *m, CtAct *out, const CtAct *gate_up, int N, int F);
void ct_model_glu_backward(const CtModel *m, CtAct *dgate_up, const CtAct *gate_up, const CtAct *dout, int N, int F);
// The llama variants' per-layer pieces: RoPE's table of layer l for a pass whose largest position
// is rope_len - 1 (train/model/rope_scaling.h), and the attention's options (window, query scale,
// soft-capping; the encoders' bidirectional attention), NULL where all are the defaults.
void ct_model_layer_rope(const CtModel *m, int layer, int rope_len, CtRope *rope);
const CtAttentionOptions *ct_model_attention_options(const CtModel *m, int layer, CtAttentionOptions *opt);
// RMSNorm of a branch's output before its residual add (post_norms).
void ct_model_post_norm_forward(const CtModel *m, CtAct *out, float *rstd, const CtAct *inp, const float *w, int N);
// The dropout mask seed of site `site` for the forward's seed. 0: embeddings; for block l,
// 1 + 3·l: attention probabilities, 2 + 3·l and 3 + 3·l: the attention and MLP branches.
uint64_t ct_model_dropout_seed(const CtModel *m, int site);

// The parameter layout walk (train/model/model_params.c).
void ct_model_layout_count(const CtModelConfig *c, int *n_tensors, size_t *n_floats);
void ct_model_layout_table(const CtModelConfig *c, CtParamEntry *table);
void ct_model_layout_bind(const CtModelConfig *c, float *base, CtModelTensors *t);

// Backward of block l (its MLP half, then its attention half) from m->act.d_residual, the
// gradient of the block's output, which it turns into the gradient of its input x; the weights'
// gradients add into m->g.layers[l]. Uses m->act's one-block scratch (d_norm, d_qkv, ...).
void ct_model_block_backward(CtModel *m, int l, const CtBlockActs *s, const CtModelDims *d);
// A sequence classifier's trunk (model.c): the forward of `batch` up to the hidden states the
// classifier pools ([N,C], ops' memory); where the gradient of those states goes ([N,C], to be
// written whole); and the backward from there down (gradients added).
const CtAct *ct_model_classify_trunk_forward(CtModel *m, const CtBatch *batch);
CtAct *ct_model_classify_trunk_grad(CtModel *m);
void ct_model_classify_trunk_backward(CtModel *m);

// ---- Multi-token prediction (train/model/model_mtp.c) ----
// Module k's buffers for N rows: its input, the block's activations (block.x is the projection
// eh_proj·[enorm(e) | hnorm(h)], block.out its hidden state h^k) and its head's. A parallel head
// has no input of its own (emb … x NULL): its block.x is the trunk state.
typedef struct {
    CtAct *emb;                        // [N,C] wte[t_{i+k}]
    CtAct *e_norm, *h_norm;            // [N,C] the two norms' outputs
    float *e_mean, *e_rstd, *h_mean, *h_rstd;  // [N] (mean: gpt2's LayerNorm only)
    CtAct *cat;                        // [N,2C] e_norm | h_norm, the projection's input
    CtAct *x;                          // [N,C] eh_proj·cat, the block's input (block.x)
    CtBlockActs block;
    CtAct *lnf;                        // [N,C] shared_head.norm(h^k)
    float *lnf_mean, *lnf_rstd;
    float *losses, *logprobs, *lse;    // [N] the cross-entropy's
    int32_t *tokens, *targets;         // [N] in the ops' memory: t_{i+k}, and target i+k or -1
    uint8_t *loss_mask;                // [N] shifted, or NULL when the batch has none
    float *loss_weights;               // [N] shifted, or NULL
} CtMtpModuleActs;

struct CtMtp {
    CtMtpModuleActs module[CT_MODEL_MAX_MTP_DEPTH];
    void *block;                       // the one allocation (ops' memory) behind the modules' buffers
    size_t bytes;
    CtAct *d_h0, *d_carry;             // [N,C] d h^0 (the main head's and module 1's), d h^k between modules;
                                       // parallel: d z (the heads' part), d h^0 (the main head's)
    CtAct *d_cat, *d_e, *d_h, *d_emb;  // [N,2C], [N,C] ×3: backward's scratch (sequential only)
    int has_mask, has_weights;         // the last forward's batch had a loss mask, loss weights
    int32_t *h_tokens, *h_targets;     // HOST [N]: a module's shifted inputs and targets, built before upload
    uint8_t *h_mask;                   // HOST [N]
    float *h_weights, *h_losses;       // HOST [N]
};
// Module k's forward (1 ≤ k ≤ D) over the rows of `pass`: h^k = Block_{L+k−1}(eh_proj·[norm_e(wte[tokens])
// | norm_h(h_prev)]) into a->block.out; tokens (ops' memory) are t_{i+k}. Generation may run it
// one row at a time with a pass that names the key/value cache of layer L+k−1.
void ct_model_mtp_module_forward(CtModel *m, int k, const CtBlockPass *pass, const CtMtpModuleActs *a,
                                 const CtAct *h_prev, const int32_t *tokens);
// Module k's head over N rows of its hidden state h: logits = lm_head · norm_k(h) (the soft-cap
// after), the norm into lnf with its statistics.
void ct_model_mtp_head_forward(CtModel *m, int k, CtAct *logits, CtAct *lnf, float *mean, float *rstd, const CtAct *h,
                               int N);
// Every module over the last forward's batch (host arrays in `batch`, staged ones in m->batch),
// from h0: sequential, the main model's last hidden state before its final norm; parallel, the
// trunk state (the input of the main model's last block), which the heads keep reading (their
// block.x). The losses go to m->mtp_loss. Uses m->act.logits as scratch: run before the main head.
void ct_model_mtp_forward(CtModel *m, const CtBatch *batch, const CtBlockPass *pass, const CtAct *h0);
// Sequential modules: backward of mtp_weight/D·Σ_k L_k: the modules' weights, the shared
// embedding and head, and d h^0 added into dh0. Uses m->act.logits (free after the main head's
// backward) and the block scratch, m->act.d_residual included.
void ct_model_mtp_backward(CtModel *m, const CtAct *h0, CtAct *dh0);
// Parallel heads: the same loss's backward: the heads' weights, the shared head, and the heads'
// d z (z: the trunk state) written to d_trunk. Uses the same scratch.
void ct_model_mtp_heads_backward(CtModel *m, CtAct *d_trunk);
// The modules' buffers, sized for max_B·max_T rows in the ops' memory (with the activations), and their release.
void ct_model_mtp_alloc(CtModel *m);
void ct_model_mtp_free(CtModel *m);

// ---- Mixture of Experts (train/model/model_moe.c) ----
// The MoE MLP of layer l: out[N,C] = Σ_k w·expert(x) + shared(x), from x = the second norm's output.
void ct_model_moe_forward(CtModel *m, int l, const CtMoeActs *a, const CtAct *x, CtAct *out, int N);
// Its backward: adds d x into dx and the weights' gradients into m->g, with the router losses'
// terms (m->moe.aux_coef, z_coef, each over the MoE layers).
void ct_model_moe_backward(CtModel *m, int l, const CtMoeActs *a, const CtAct *x, const CtAct *dout, CtAct *dx, int N);
// Adds the last forward's routing (every MoE layer's counts and losses) to m->moe.
void ct_model_moe_record(CtModel *m, int N);
// m->moe's shape and sums (ct_model_create), and their memory (ct_model_free).
void ct_model_moe_stats_create(CtModel *m);
void ct_model_moe_stats_free(CtModel *m);
// Ordinal of layer l among the MoE layers (those before it), and among the dense ones.
int ct_model_moe_index(const CtModelConfig *c, int l);
static inline int ct_model_dense_index(const CtModelConfig *c, int l) { return l - ct_model_moe_index(c, l); }
// Buffers of one MoE layer for N rows, in the ops' memory (offsets on the host): generation's.
void ct_model_moe_acts_alloc(const CtModel *m, int N, CtMoeActs *a);
void ct_model_moe_acts_free(const CtModel *m, CtMoeActs *a);

// Activations (train/model/model_activations.c).
void ct_model_activations_alloc(CtModel *m);
// Frees them (the ops' block and the host arrays beside it).
void ct_model_activations_free(CtModel *m);
// MoE layer l's slices of act.moe.
CtMoeActs ct_model_moe_acts(const CtModel *m, int layer);
// Per-layer slices; with recompute the recomputed tensors have one slice for every layer.
CtAct *ct_act_ln1(const CtModel *m, int layer);
CtAct *ct_act_ln2(const CtModel *m, int layer);
CtAct *ct_act_fch_act(const CtModel *m, int layer);

// Device backends (train/model/model_backend.c). The batch in the ops' memory, with positions
// 0..T-1 when it brings none (on the CPU: the batch itself, positions filled in act.positions).
CtBatch ct_model_stage_batch(CtModel *m, const CtBatch *batch);
// Frees what lives in the ops' memory (activations; on a device also parameters, gradients
// and staging buffers).
void ct_model_free_backend(CtModel *m);
// A device buffer of n floats, uploaded from host (zeros when NULL), with room for `shards`
// equal parts (CtModel.train_shards): the padding past n is zeros.
float *ct_model_device_buffer(const CtOps *ops, const float *host, size_t n, int shards, const char *what);
