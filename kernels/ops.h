// The op API: forward and backward of every layer op of the Transformer, on plain arrays,
// backend-neutral. A backend (kernels/cpu, kernels/cuda) fills one CtOps table; the model calls
// only through it, and tests run every backend against the same checks.
//
// Conventions, the same for every op:
//   - Shapes are in the argument names: N = rows (B*T tokens), C = channels, OC = output
//     channels, V = vocabulary, NH = query heads, NKV = key/value heads, HD = head size.
//     Arrays are dense and row-major; a "[N,C]" array holds N rows of C numbers.
//   - Backward ops ADD into their gradient outputs (d* += ...), so gradients of a tensor used
//     twice (residual stream, tied embeddings) sum by themselves; the caller zeroes buffers.
//     The exceptions say so: rope_backward, xent_backward and qk_norm_backward write, and may
//     work in place; swiglu_backward and geglu_backward write too.
//   - A weight matrix is stored as [OC, C] (torch.nn.Linear's layout): out = inp · Wᵀ + b.
//   - Integer inputs (token ids, targets, positions, document ids) are int32.
//   - Activations: what flows between the layers and its gradient (typed CtAct below) are of
//     the table's activation type, act_bytes each: float (the CPU, the fp32 CUDA table) or
//     bf16 (the bf16 CUDA table: a float's upper 16 bits, rounded to nearest even, so the
//     memory traffic of every elementwise op halves). Everything else stays float: weights and
//     their gradients (fp32 masters), per-row statistics (mean, rstd, lse, losses, logprobs),
//     attention's saved state, the optimizer's arrays. Kernels load activations into float,
//     compute in float and round once when they store; a backward op that adds into a bf16
//     gradient rounds the sum.
//   - Ops never allocate model state and never do I/O; scratch they need is their own business
//     (host scratch through core/alloc.h's ct_alloc, so it counts in the memory peak).
//
// Adding an op (say foo_forward / foo_backward), file by file:
//   1. here: the field in CtOps, with its contract in a comment (shapes, adds or writes, in place).
//   2. kernels/cpu/foo.inc: the body once, in REAL, defined as
//      void F32_OR_F64(ct_cpu_foo_forward_f32, ct_cpu_foo_forward_f64)(...)  (real_begin.h);
//      its prototype the same way in kernels/cpu/ops_decl.inc; foo.inc added to both lists of
//      kernels/cpu/instantiate.c; the float wrapper and the slot in kernels/cpu/ops_table.c.
//   3. kernels/cuda/foo.cu: the kernel templated on act_t (act_io.cuh), its pair of entry points
//      in one CT_CUDA_EXPORT_PAIR(ct_cuda_foo_forward, ct_cuda_foo_forward_bf16, ...); the pair's
//      CT_CUDA_OP_PAIR in kernels/cuda/cuda_decl.h; one OP(...) line in kernels/cuda/ops_table.cu.
//   4. tests/test_ops_grad.c: the finite-difference check in double (the _f64 kernels) and the
//      float table against it; tests/test_ops_forward.c for forward-only properties.
//   5. tests/test_cuda_ops.c: both CUDA tables against the CPU (run: tests/test_cuda_emu/run.sh
//      without a GPU, make test-cuda with one).
//   6. docs/model.md's table of ops (and docs/cuda.md's file list for a new .cu).
#pragma once
#include <stddef.h>
#include <stdint.h>

// An element of an activation array: float or bf16, as the table's act_bytes says. Arrays of
// it are addressed through ct_act_at (no pointer arithmetic on them: the size is the table's).
typedef void CtAct;

// A span of a parameter buffer and whether weight decay applies to it (AdamW below).
typedef struct {
    size_t offset, count;
    int decay;
} CtParamSpan;

// The float32 scalars of one AdamW step (optim/adamw.h computes them in double, as torch does):
//   p ← p·keep;  m ← m + one_minus_b1·(g − m);  v ← b2·v + one_minus_b2·g²;
//   p ← p + (−step_size·m) / (√v / bc2_sqrt + eps)
// keep is 1 − lr·wd on decayed elements and exactly 1 elsewhere. rounding_seed seeds the
// stochastic rounding of a backend's low-precision weight copy (keep_low_precision_weights
// below); it changes every step (ct_adamw_rounding_seed) and the fp32 update ignores it.
typedef struct {
    float keep, one_minus_b1, b2, one_minus_b2, eps, step_size, bc2_sqrt;
    uint64_t rounding_seed;
} CtAdamWScalars;

// Options of attention_forward / attention_backward(_with_out) / attention_decode; a NULL
// pointer means all defaults (zero fields likewise), plain causal attention as in LLaMA.
typedef struct {
    float scale;    // multiplies q·k; 0: 1/√HD
    float softcap;  // 0: none; else the scaled score s becomes softcap·tanh(s/softcap) before masking and softmax
    int window;     // 0: none; else query t sees only keys t2 with t − t2 < window (on top of causal and doc_ids);
                    // bidirectional: |t − t2| < window (a symmetric band)
    // 0: causal (query t sees keys t2 <= t). 1: bidirectional, an encoder's attention (BERT):
    // query t sees every key of its sequence, or with doc_ids every key with its own id. Padding
    // is a document of its own: give the pads of a row one id that no real token has (e.g.
    // [a b c PAD PAD] with ids [0 0 0 1 1]), so real tokens never attend to pads; the pads then
    // attend among themselves, and their outputs are to be ignored (the loss masks them). Any
    // int32 is an ordinary id, negative ones included; a query always sees itself, so no row is
    // ever empty. attention_decode refuses it (fatal): encoders do not decode.
    int bidirectional;
} CtAttentionOptions;

// Rotary position embedding's frequencies (host memory; the CUDA backend passes it by value).
// Pair (i, i+HD/2) of a head at position pos rotates by the angle pos·inv_freq[i], computed as
// transformers does: (float)pos · inv_freq[i] rounded to float, then cos and sin (the double
// instantiation of the CPU ops: all in double), each multiplied by attention_factor.
// ct_rope_default fills the plain RoPE; train/model/rope_scaling.c the scaled variants.
#define CT_ROPE_MAX_PAIRS 256  // head sizes up to 512
typedef struct {
    int n_pairs;                        // HD/2
    float inv_freq[CT_ROPE_MAX_PAIRS];  // pair (i, i+HD/2) rotates by the angle pos·inv_freq[i]
    float attention_factor;             // cos and sin are multiplied by it (YaRN); 1 otherwise
} CtRope;
// The plain RoPE of base theta, as transformers computes it: inv_freq[i] = 1 / theta^(2i/HD) in
// float, attention_factor 1 (kernels/rope_table.c). HD must be even and at most 2·CT_ROPE_MAX_PAIRS.
void ct_rope_default(CtRope *rope, float theta, int HD);

// How a Mixture-of-Experts router turns a token's logits z[E] into its k experts and their
// weights (moe_route_forward); the run config's model.router names them:
//   softmax:       p = softmax(z); the k largest p; weights p (Qwen2-MoE, OLMoE)
//   softmax_norm:  as softmax, the k weights divided by their sum (Qwen3-MoE)
//   topk_softmax:  the k largest z; weights softmax over those k (Mixtral; equal to softmax_norm)
//   sigmoid:       s = sigmoid(z); the k largest s + bias (the bias chooses, never weighs); weights s
//   sigmoid_norm:  as sigmoid, the k weights divided by their sum (DeepSeek-V3)
typedef enum {
    CT_ROUTER_SOFTMAX = 0,
    CT_ROUTER_SOFTMAX_NORM,
    CT_ROUTER_TOPK_SOFTMAX,
    CT_ROUTER_SIGMOID,
    CT_ROUTER_SIGMOID_NORM,
} CtRouter;
#define CT_MOE_MAX_EXPERTS 512
#define CT_MOE_MAX_TOP_K 64
typedef struct {
    CtRouter kind;
    int E, K;       // experts, experts per token
    float scale;    // the weights are multiplied by it (1: none)
} CtMoeRouting;

typedef struct CtOps {
    const char *name;  // "cpu", "cuda"

    // ---- memory: where the arrays every op below reads and writes live ----
    // host_memory 1: ordinary host memory (the CPU; alloc is ct_calloc). 0: device memory, which
    // the host must not touch except through upload/download/copy/zero.
    int host_memory;
    // Bytes of one activation element: 4 (float: the CPU, the fp32 CUDA table) or 2 (bf16).
    size_t act_bytes;
    void *(*alloc)(size_t bytes, const char *what);  // zeroed; out of memory is fatal, naming `what`
    void (*free)(void *p);                           // NULL is fine
    void (*zero)(void *p, size_t bytes);
    void (*upload)(void *dst, const void *src_host, size_t bytes);
    void (*download)(void *dst_host, const void *src, size_t bytes);
    void (*copy)(void *dst, const void *src, size_t bytes);
    // Activations (the CtAct arrays below) to and from host floats: n elements, converted to
    // and from the table's activation type (a plain copy where it is float).
    void (*upload_act)(CtAct *dst, const float *src_host, size_t n);
    void (*download_act)(float *dst_host, const CtAct *src, size_t n);
    size_t (*memory_peak)(void);  // the most bytes this backend's memory held at once
    void (*synchronize)(void);    // waits until every queued op has finished (timing; CPU: nothing)
    // Floats the `att` argument of attention_forward/backward must hold: B·NH·T·T where the
    // probabilities are stored (CPU), less where backward recomputes them (CUDA).
    size_t (*attention_saved_floats)(int B, int T, int NH);

    // ---- optimizer: global-norm clipping and AdamW over one flat buffer ----
    // Σ x[i]² in double (the CUDA backend sums in a fixed order: the same bits every run).
    double (*sum_squares)(const float *x, size_t n);
    void (*scale)(float *x, size_t n, float s);  // x[i] *= s
    // One AdamW update of params[n] from grads with moments m, v. spans (host array, sorted or
    // not, not overlapping) say where weight decay is off; elements no span covers are decayed.
    void (*adamw_update)(float *params, const float *grads, float *m, float *v, size_t n, const CtParamSpan *spans,
                         int n_spans, const CtAdamWScalars *s);
    // Optional (NULL where the products read the fp32 weights: the CPU, the fp32 CUDA table).
    // params[n] are weights the products will read: the backend may keep a low-precision copy
    // for them. rounding_seed NULL: the copy is rounded to nearest (a fresh or frozen model);
    // otherwise stochastically, as adamw_update with that CtAdamWScalars.rounding_seed writes it
    // (a resumed run re-creates the copy its last step left). adamw_update on the buffer, or a
    // slice of it, refreshes the copy from the new weights; declaring again refreshes it after
    // host edits were uploaded; freeing the buffer forgets it.
    void (*keep_low_precision_weights)(const float *params, size_t n, const uint64_t *rounding_seed);

    // out[N,C] = table[ids[n], :], or out += table[ids[n], :] when accumulate is 1 (token
    // embedding, then learned position embedding on top of it).
    void (*embedding_forward)(CtAct *out, const int32_t *ids, const float *table, int N, int C, int accumulate);
    // dtable[ids[n], :] += dout[n, :]
    void (*embedding_backward)(float *dtable, const CtAct *dout, const int32_t *ids, int N, int C);

    // LayerNorm over C: out = (inp - mean) * rstd * weight + bias; saves mean[N], rstd[N].
    void (*layernorm_forward)(CtAct *out, float *mean, float *rstd, const CtAct *inp, const float *weight,
                              const float *bias, int N, int C, float eps);
    void (*layernorm_backward)(CtAct *dinp, float *dweight, float *dbias, const CtAct *dout, const CtAct *inp,
                               const float *weight, const float *mean, const float *rstd, int N, int C);

    // RMSNorm over C: out = inp * rstd * weight, rstd = 1/sqrt(mean(inp²) + eps); saves rstd[N].
    void (*rmsnorm_forward)(CtAct *out, float *rstd, const CtAct *inp, const float *weight, int N, int C, float eps);
    void (*rmsnorm_backward)(CtAct *dinp, float *dweight, const CtAct *dout, const CtAct *inp, const float *weight,
                             const float *rstd, int N, int C);

    // out[N,OC] = inp[N,C] · weight[OC,C]ᵀ + bias[OC] (bias may be NULL).
    void (*matmul_forward)(CtAct *out, const CtAct *inp, const float *weight, const float *bias, int N, int C, int OC);
    // dinp += dout·W, dweight += doutᵀ·inp, dbias += Σ_n dout. Any of dinp, dweight, dbias may
    // be NULL: that gradient is not wanted (frozen weights, the first layer's input).
    void (*matmul_backward)(CtAct *dinp, float *dweight, float *dbias, const CtAct *dout, const CtAct *inp,
                            const float *weight, int N, int C, int OC);
    // Optional (NULL where a backend has no fused form; the caller then runs the ops above):
    // GPT-2's MLP products with GELU fused into them. The GELU is the tanh form of gelu_forward,
    // possibly computed with an approximate tanh (a backend offers these only where that is
    // within its precision).
    // pre[N,OC] = inp·Wᵀ + b (bias may be NULL), saved for backward, and out[N,OC] = gelu(pre).
    void (*matmul_bias_gelu_forward)(CtAct *out, CtAct *pre, const CtAct *inp, const float *weight, const float *bias,
                                     int N, int C, int OC);
    // The backward of a product whose input is inp = gelu(pre), with GELU's derivative fused:
    //   dpre = gelu'(pre) ⊙ (dout·W)  WRITTEN, not added (valid only when nothing else adds into
    //   the gradient of inp); dweight += doutᵀ·inp, dbias += Σ_n dout (either may be NULL).
    // inp, pre, dpre [N,C]; weight [OC,C]; dout [N,OC].
    void (*matmul_backward_dgelu)(CtAct *dpre, float *dweight, float *dbias, const CtAct *dout, const CtAct *inp,
                                  const CtAct *pre, const float *weight, int N, int C, int OC);

    // Causal self-attention with grouped-query heads (bidirectional with opt->bidirectional).
    // qkv[B,T,(NH+2·NKV)·HD] holds per token the NH query heads, then NKV key heads, then NKV
    // value heads; query head h reads key/value head h / (NH/NKV). out[B,T,NH·HD]; att[B,NH,T,T] saves the probabilities for backward.
    // doc_ids[B,T] (may be NULL): a token attends only to earlier tokens with the same id (any
    // token with the same id when bidirectional), so attention never crosses a document
    // boundary inside a packed sequence, nor a padding boundary.
    // dropout_p > 0 drops attention probabilities: the weight of key t2 for query t of head h
    // in sequence b is kept when ct_dropout_uniform(dropout_seed, ((b·NH + h)·T + t)·T + t2)
    // >= dropout_p (its index in att) and scaled by 1/(1-p); att keeps the undropped P.
    // opt (NULL: defaults, see CtAttentionOptions): the score of query t and key t2 is
    // s = scale·q·k, then softcap·tanh(s/softcap) with a soft cap; with a window, key t2 is
    // visible only when t − t2 < window (|t − t2| < window when bidirectional). Backward takes
    // the forward's options; through the cap d s = d s_capped · (1 − (s_capped/softcap)²).
    void (*attention_forward)(CtAct *out, float *att, const CtAct *qkv, const int32_t *doc_ids, float dropout_p,
                              uint64_t dropout_seed, int B, int T, int NH, int NKV, int HD,
                              const CtAttentionOptions *opt);
    void (*attention_backward)(CtAct *dqkv, const CtAct *dout, const CtAct *qkv, const float *att,
                               float dropout_p, uint64_t dropout_seed, int B, int T,
                               int NH, int NKV, int HD, const CtAttentionOptions *opt);
    // Optional (NULL: call attention_backward): the same op given the forward's output out[B,T,NH·HD].
    // A backend that recomputes the probabilities (CUDA) then gets D = rowsum(P ⊙ dP) as dO·O, a dot
    // product per row, instead of one more pass over the keys.
    void (*attention_backward_with_out)(CtAct *dqkv, const CtAct *dout, const CtAct *out, const CtAct *qkv,
                                        const float *att, float dropout_p, uint64_t dropout_seed, int B, int T,
                                        int NH, int NKV, int HD, const CtAttentionOptions *opt);
    // Optional (NULL: the backend has none; the CPU and both CUDA tables have it). Attention with a prefix of
    // P learned keys and values in front of every sequence (prefix tuning, P-tuning v2; Hugging
    // Face's past_key_values of length P): prefix_kv[P, prefix_stride] (the same for every
    // sequence) holds in row j the NKV key heads, then the NKV value heads (2·NKV·HD numbers; the
    // rest of the stride is not read). Keys are numbered as positions: prefix row j is key j,
    // token t2 is key P + t2, query t sits at P + t and sees key j when j <= P + t (causal; every
    // j when bidirectional), inside the window (P + t − j < window), and, for token keys, in its
    // document; every document sees the whole prefix. Prefix keys are used as given (no RoPE:
    // they are a cache's keys, stored rotated). att must hold attention_saved_floats(B, T + P, NH)
    // floats; it saves [B,NH,T,P+T]. Dropout indexes att's layout (row length P + T). P = 0 is
    // attention_forward/backward, bit for bit. Backward adds dprefix_kv (same layout, summed over
    // the batch) as well as dqkv.
    void (*attention_prefix_forward)(CtAct *out, float *att, const CtAct *qkv, const CtAct *prefix_kv, int P,
                                     int prefix_stride, const int32_t *doc_ids, float dropout_p,
                                     uint64_t dropout_seed, int B, int T, int NH, int NKV, int HD,
                                     const CtAttentionOptions *opt);
    void (*attention_prefix_backward)(CtAct *dqkv, CtAct *dprefix_kv, const CtAct *dout, const CtAct *qkv,
                                      const CtAct *prefix_kv, int P, int prefix_stride, const float *att,
                                      float dropout_p, uint64_t dropout_seed, int B, int T, int NH, int NKV, int HD,
                                      const CtAttentionOptions *opt);
    // Attention of T new tokens over a key/value cache (generation, and a speculative decoder's
    // check of T drafts): k_cache and v_cache hold n_ctx rows ([n_ctx, NKV·HD] each), the new
    // tokens' own keys and values included as the last T. Query t (row t of q, q_stride numbers
    // apart: a qkv row's q heads, NH·HD) is position n_ctx − T + t and attends to rows
    // 0..n_ctx − T + t; out[T, NH·HD]. Same scores and softmax as attention_forward with the same
    // options: with a window, row r is visible to query position p when p − r < window.
    // opt->bidirectional is refused (fatal): decoding is causal by nature.
    void (*attention_decode)(CtAct *out, const CtAct *q, int q_stride, const CtAct *k_cache, const CtAct *v_cache,
                             int n_ctx, int T, int NH, int NKV, int HD, const CtAttentionOptions *opt);

    // Rotary position embedding (the rotate-half convention of Hugging Face's LLaMA): in each
    // row of `row_stride` numbers, the first n_heads·HD are n_heads vectors of size HD; pair
    // (i, i+HD/2) is rotated by the angle pos·rope->inv_freq[i] and scaled by
    // rope->attention_factor (CtRope above; rope->n_pairs must be HD/2). positions[B,T] may be
    // NULL (pos = t). out may equal inp; numbers past n_heads·HD in a row are not touched.
    void (*rope_forward)(CtAct *out, const CtAct *inp, const int32_t *positions, int B, int T, int n_heads, int HD,
                         int row_stride, const CtRope *rope);
    // dinp = attention_factor · R(−angle)·dout (writes, does not add); dinp may equal dout.
    void (*rope_backward)(CtAct *dinp, const CtAct *dout, const int32_t *positions, int B, int T, int n_heads,
                          int HD, int row_stride, const CtRope *rope);

    // Per-head RMSNorm of queries and keys (Qwen3, Gemma 3). In each row of
    // qkv[N,(NH+2·NKV)·HD]: each of the NH query heads is RMS-normalised over its HD numbers
    // (rstd = 1/sqrt(mean(x²) + eps)) and multiplied by q_weight[HD], each of the NKV key heads
    // likewise with k_weight[HD]; the value part is copied unchanged. rstd[N·(NH+NKV)] is saved
    // (row n's heads at n·(NH+NKV), queries first). out must not alias inp.
    void (*qk_norm_forward)(CtAct *out, float *rstd, const CtAct *inp, const float *q_weight, const float *k_weight,
                            int N, int NH, int NKV, int HD, float eps);
    // dinp: the gradient through the norm of dout's query and key heads, dout's value part copied
    // (WRITES; dinp may equal dout). dq_weight, dk_weight += (either may be NULL: frozen).
    void (*qk_norm_backward)(CtAct *dinp, float *dq_weight, float *dk_weight, const CtAct *dout, const CtAct *inp,
                             const float *q_weight, const float *k_weight, const float *rstd, int N, int NH, int NKV,
                             int HD);

    // GELU, tanh approximation (GPT-2): out = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
    void (*gelu_forward)(CtAct *out, const CtAct *inp, size_t n);
    void (*gelu_backward)(CtAct *dinp, const CtAct *inp, const CtAct *dout, size_t n);

    // GELU, exact (BERT's "gelu", torch's default): out = x·Φ(x) = ½·x·(1 + erf(x/√2)).
    void (*gelu_erf_forward)(CtAct *out, const CtAct *inp, size_t n);
    void (*gelu_erf_backward)(CtAct *dinp, const CtAct *inp, const CtAct *dout, size_t n);
    // out = tanh(inp) (BERT's pooler). Backward reads the forward's output: dinp += dout·(1 − out²).
    void (*tanh_forward)(CtAct *out, const CtAct *inp, size_t n);
    void (*tanh_backward)(CtAct *dinp, const CtAct *out, const CtAct *dout, size_t n);
    // out = max(inp, 0) (P-tuning's prompt encoder, torch.nn.ReLU); dinp += dout where inp > 0.
    void (*relu_forward)(CtAct *out, const CtAct *inp, size_t n);
    void (*relu_backward)(CtAct *dinp, const CtAct *inp, const CtAct *dout, size_t n);
    // One direction of one torch.nn.LSTM layer over V steps (P-tuning's LSTM prompt encoder), the
    // recurrence only: xg [V,4H] = x·W_ihᵀ + b_ih is the caller's matmul. Gates i, f, g, o (torch's
    // order); z_t = xg_t + W_hh·h_prev + b_hh, c_t = σ(z_f)⊙c_prev + σ(z_i)⊙tanh(z_g),
    // h_t = σ(z_o)⊙tanh(c_t), h_prev = h_{t-1} (h_{t+1} when reverse), 0 at the start.
    // Forward WRITES h [V, ldh] (H columns of each row), c [V,H], gates [V,4H] (activated).
    // Backward WRITES dxg [V,4H] and dc [V,H] (scratch), ADDS dw_hh [4H,H], db_hh [4H], and
    // consumes dh [V, ldh] (the gradient of h from above; the recurrent part is added into it).
    // fp32 buffers (the adapter's). Optional: NULL in the CUDA tables (kernels/cpu/lstm.inc).
    void (*lstm_forward)(float *h, float *c, float *gates, const float *xg, const float *w_hh, const float *b_hh, int V,
                         int H, int ldh, int reverse);
    void (*lstm_backward)(float *dxg, float *dw_hh, float *db_hh, float *dh, float *dc, const float *h, const float *c,
                          const float *gates, const float *w_hh, int V, int H, int ldh, int reverse);

    // SwiGLU: gate_up[N,2F] holds per row the gate half then the up half;
    // out[N,F] = silu(gate) · up, silu(g) = g·σ(g).
    void (*swiglu_forward)(CtAct *out, const CtAct *gate_up, int N, int F);
    // Backward WRITES dgate_up[N,2F] (nothing else adds into the gradient of a product's output:
    // writing spares the caller zeroing it and the op reading the zeros back).
    void (*swiglu_backward)(CtAct *dgate_up, const CtAct *dout, const CtAct *gate_up, int N, int F);
    // GeGLU (Gemma's MLP), laid out as SwiGLU: out[N,F] = gelu(gate) · up with gelu the tanh form
    // of gelu_forward (torch's gelu_pytorch_tanh). Backward writes dgate_up[N,2F], as swiglu's.
    void (*geglu_forward)(CtAct *out, const CtAct *gate_up, int N, int F);
    void (*geglu_backward)(CtAct *dgate_up, const CtAct *dout, const CtAct *gate_up, int N, int F);

    // x = cap·tanh(x/cap) over n elements, in place (Gemma 2's soft-capping of the final logits;
    // xent_backward's softcap argument is its backward).
    void (*softcap_forward)(CtAct *x, size_t n, float cap);
    // x *= s over n elements, in place: Gemma's √C embedding scale in forward, and the same
    // scale on its gradient in backward.
    void (*act_scale)(CtAct *x, size_t n, float s);

    // out = a + b (out may equal a). No backward op: the gradient is dout for both a and b.
    void (*residual_forward)(CtAct *out, const CtAct *a, const CtAct *b, size_t n);

    // Fused softmax + cross-entropy over the vocabulary. For each row n of logits[N,V]:
    //   lse[n] = log Σ_v exp(logits[n,v]),  logprobs[n] = logits[n, targets[n]] - lse[n],
    //   losses[n] = -w_n · logprobs[n],  w_n = mask[n] · weights[n]
    // mask (uint8, may be NULL = all 1) and weights (may be NULL = all 1) select and weigh
    // tokens; a negative target also masks its row (logprobs[n] = 0 then). No softmax is stored.
    void (*xent_forward)(float *losses, float *logprobs, float *lse, const CtAct *logits, const int32_t *targets,
                         const uint8_t *mask, const float *weights, int N, int V);
    // The gradient of scale · Σ_n losses[n] with respect to the logits, written IN PLACE over
    // them (logits_to_dlogits holds the logits on entry and their gradient on return):
    //   dlogits[n,v] = scale · w_n · (softmax(logits[n])[v] - [v == targets[n]]).
    // DPO and other objectives pass their own d loss / d logprob through `weights` (with sign).
    // softcap > 0: the logits y hold softcap·tanh(z/softcap) on entry (softcap_forward ran after
    // the head) and the gradient written is with respect to z: the above times 1 − (y/softcap)².
    // 0: no cap.
    void (*xent_backward)(CtAct *logits_to_dlogits, const float *lse, const int32_t *targets, const uint8_t *mask,
                          const float *weights, float scale, int N, int V, float softcap);
    // Optional (NULL: the caller runs the two above): xent_forward, then xent_backward with the
    // same targets, mask and weights, in one pass over the logits, for a training step whose
    // backward is known when its forward runs. Writes what xent_forward writes, and the logits'
    // gradient over them as xent_backward does; reads the [N,V] logits from memory once, not twice.
    void (*xent_forward_backward)(float *losses, float *logprobs, float *lse, CtAct *logits_to_dlogits,
                                  const int32_t *targets, const uint8_t *mask, const float *weights, float scale, int N,
                                  int V, float softcap);

    // LoRA's low-rank update on top of a linear layer's output (matmul_forward computed the
    // base): y = x·Wᵀ + scale·(x·Aᵀ)·Bᵀ, inp[N,C], A[R,C], B[OC,R]. Adds into out[N,OC] whose
    // rows have stride out_stride (an adapter on a column block of a fused output, e.g. k_proj
    // inside q|k|v); saves h = inp·Aᵀ [N,R] for backward.
    void (*lora_forward)(CtAct *out, CtAct *h, const CtAct *inp, const float *A, const float *B, float scale, int N,
                         int C, int R, int OC, int out_stride);
    // With h = x·Aᵀ: dB += scale·doutᵀ·h, dh = scale·dout·B (written into the scratch dh[N,R]),
    // dA += dhᵀ·inp, dinp += dh·A. dout rows have stride dout_stride. dinp, dA, dB may be NULL.
    void (*lora_backward)(CtAct *dinp, float *dA, float *dB, CtAct *dh, const CtAct *dout, const CtAct *inp,
                          const CtAct *h, const float *A, const float *B, float scale, int N, int C, int R, int OC,
                          int dout_stride);

    // ---- Mixture of Experts (kernels/cpu/moe.inc, kernels/cuda/moe.cu) ----
    // One MoE layer over N tokens, each sent to K of E experts (r: CtMoeRouting above):
    //   logits = x·routerᵀ (matmul_forward) → moe_route_forward → moe_permute → moe_gather_forward
    //   → grouped_matmul (gate|up) → swiglu → grouped_matmul (down) → moe_combine_forward.
    // The N·K (token, slot) pairs are processed sorted by expert ("sorted rows"): expert e owns
    // sorted rows offsets[e] .. offsets[e+1]-1, in the order of (token, slot). Every op here is
    // deterministic: no atomics on floats, fixed summation orders.
    //
    // The router. For each token n, from logits[n, 0..E) (bias[E] NULL unless r->kind is a
    // sigmoid kind, and then may still be NULL = zeros):
    //   probs[n,E] (float): softmax(z) for the softmax kinds and topk_softmax, sigmoid(z) for the
    //     sigmoid kinds;  lse[n] = log Σ_e exp(z_e) (every kind: the z-loss reads it);
    //   expert_ids[n,K]: the K experts with the largest selection score — probs (softmax kinds),
    //     z (topk_softmax), probs + bias (sigmoid kinds) — in decreasing order of it, ties to the
    //     lower index;
    //   weights[n,K] (float): per CtRouter's comment, times r->scale.
    void (*moe_route_forward)(int32_t *expert_ids, float *weights, float *probs, float *lse, const CtAct *logits,
                              const float *bias, int N, const CtMoeRouting *r);
    // The router's backward: dlogits[N,E] is WRITTEN (activation type) with the gradient of
    //   Σ_{n,k} dweights[n,k]·weights[n,k]                      (what moe_combine_backward gives)
    //   + aux_coef · E · Σ_e f[e] · P_e,  P_e = (1/N) Σ_n q[n,e]  (the load-balancing loss; f[e] a
    //     constant: the fraction of the N tokens that chose e, Σ_e f = K; q = probs for the softmax
    //     kinds and topk_softmax, q = s / Σ_e s (each token's sigmoid scores normalised) for the
    //     sigmoid kinds, as DeepSeek-V3's sequence-wise loss defines it)
    //   + z_coef · (1/N) Σ_n lse[n]²                               (the router z-loss)
    // with respect to the logits. f is host memory (E floats; NULL when aux_coef is 0). The
    // selection itself has no gradient.
    void (*moe_route_backward)(CtAct *dlogits, const float *dweights, const CtAct *logits, const float *probs,
                               const float *lse, const int32_t *expert_ids, const float *weights, const float *f,
                               float aux_coef, float z_coef, int N, const CtMoeRouting *r);
    // The two statistics the losses above are made of, for reporting (host doubles, summed in a
    // fixed order): q_mean[e] = (1/N) Σ_n q[n,e] (q as in moe_route_backward), *lse_sq_mean =
    // (1/N) Σ_n lse[n]².
    void (*moe_router_stats)(double *q_mean, double *lse_sq_mean, const float *probs, const float *lse, int N,
                             const CtMoeRouting *r);
    // Sorts the N·K (token, slot) pairs of expert_ids[N,K] by expert, stably: offsets[E+1] (HOST
    // memory: the products below launch per expert) counts them, sorted_token[N·K] is each
    // sorted row's token, slot_of[n·K + k] the sorted row of (n, k).
    void (*moe_permute)(int32_t *offsets, int32_t *sorted_token, int32_t *slot_of, const int32_t *expert_ids, int N,
                        int E, int K);
    // out[j,:] = inp[sorted_token[j],:] for the R = N·K sorted rows (WRITES).
    void (*moe_gather_forward)(CtAct *out, const CtAct *inp, const int32_t *sorted_token, int R, int C);
    // dinp[n,:] += Σ_k dout[slot_of[n·K + k],:], k in order.
    void (*moe_gather_backward)(CtAct *dinp, const CtAct *dout, const int32_t *slot_of, int N, int K, int C);
    // The experts' products over the sorted rows: rows offsets[e] .. offsets[e+1]-1 of inp[R,C]
    // are multiplied by expert e's weight, weight + e·expert_stride as [OC,C] (torch.nn.Linear's
    // layout): out[j,:] = inp[j,:]·W_eᵀ (WRITES; no bias). offsets: host memory, E+1 entries,
    // offsets[0] = 0; experts with no rows are skipped.
    void (*grouped_matmul_forward)(CtAct *out, const CtAct *inp, const float *weight, size_t expert_stride,
                                   const int32_t *offsets, int E, int C, int OC);
    // dinp += dout·W_e and dweight_e += doutᵀ·inp over each expert's rows (dweight + e·expert_stride);
    // either may be NULL. An expert with no rows adds nothing.
    void (*grouped_matmul_backward)(CtAct *dinp, float *dweight, const CtAct *dout, const CtAct *inp,
                                    const float *weight, size_t expert_stride, const int32_t *offsets, int E, int C,
                                    int OC);
    // out[n,:] = Σ_k weights[n,k]·expert_out[slot_of[n·K+k],:]  (k in order)
    //          + g_n·shared[n,:]  where shared is not NULL; g_n = sigmoid(shared_gate[n]) where
    //            shared_gate (the [N,1] logits of Qwen2-MoE's shared expert gate) is not NULL, else 1.
    // WRITES out[N,C].
    void (*moe_combine_forward)(CtAct *out, const CtAct *expert_out, const float *weights, const int32_t *slot_of,
                                const CtAct *shared, const CtAct *shared_gate, int N, int K, int C);
    // Its backward, all WRITTEN: dexpert_out[N·K,C] (row slot_of[n·K+k] = weights[n,k]·dout[n]),
    // dweights[N,K] (= dout[n]·expert_out[slot_of[n·K+k]]), dshared[N,C] (= g_n·dout[n]; NULL when
    // shared is) and dshared_gate[N] (= g_n(1−g_n)·dout[n]·shared[n]; NULL when shared_gate is).
    void (*moe_combine_backward)(CtAct *dexpert_out, float *dweights, CtAct *dshared, CtAct *dshared_gate,
                                 const CtAct *dout, const CtAct *expert_out, const float *weights,
                                 const int32_t *slot_of, const CtAct *shared, const CtAct *shared_gate, int N, int K,
                                 int C);

    // Dropout with a counter-based mask: element i is kept when u(seed, i) >= p, where u is a
    // fixed hash of (seed, i) to [0, 1) (ct_dropout_uniform below), and kept elements are scaled
    // by 1/(1-p). No mask is stored: backward recomputes it from the seed, and every backend
    // and thread count draws the same mask. out may equal inp.
    void (*dropout_forward)(CtAct *out, const CtAct *inp, size_t n, float p, uint64_t seed);
    // dinp = mask ⊙ dout / (1-p) (writes, does not add); dinp may equal dout.
    void (*dropout_backward)(CtAct *dinp, const CtAct *dout, size_t n, float p, uint64_t seed);
} CtOps;

// The uniform number of dropout's mask for element i: splitmix64's finaliser of
// seed + (i+1)·golden ratio, top 24 bits. Every backend must draw exactly this.
static inline float ct_dropout_uniform(uint64_t seed, uint64_t i) {
    uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)(z >> 40) * 0x1.0p-24f;
}

// Element i of the activation array `base` of a table whose elements are act_bytes each.
static inline CtAct *ct_act_at(size_t act_bytes, const CtAct *base, size_t i) {
    return (char *)(uintptr_t)base + i * act_bytes;
}

// The CPU backend (OpenMP; matrix products through CBLAS or the portable fallback).
const CtOps *ct_ops_cpu(void);
