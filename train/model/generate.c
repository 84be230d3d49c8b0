#include "train/model/generate.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "train/model/model_internal.h"
#include "train/model/peft_hooks.h"

// The buffers of a pass over `rows` rows (the cache aside).
static void alloc_rows(CtGenerator *g, int rows) {
    const CtModelConfig *c = &g->model->config;
    const CtOps *ops = g->model->ops;
    const size_t A = ops->act_bytes, R = (size_t)rows;
    g->rows = rows;
    g->x = ops->alloc(A * R * (size_t)c->d_model, "generation state");
    g->norm = ops->alloc(A * R * (size_t)c->d_model, "generation state");
    g->mean_rstd = ops->alloc(sizeof(float) * R * (size_t)(2 + c->n_head + c->n_kv_head), "generation state");
    g->qkv = ops->alloc(A * R * (size_t)ct_model_qkv_width(c), "generation state");
    g->qkv_pre = c->qk_norm ? ops->alloc(A * R * (size_t)ct_model_qkv_width(c), "generation state") : NULL;
    g->branch_pre = c->post_norms ? ops->alloc(A * R * (size_t)c->d_model, "generation state") : NULL;
    g->atty = ops->alloc(A * R * (size_t)ct_model_attn_width(c), "generation state");
    g->proj = ops->alloc(A * R * (size_t)c->d_model, "generation state");
    g->fch = ops->alloc(A * R * (size_t)ct_model_fc_width(c), "generation state");
    g->fch_act = ops->alloc(A * R * (size_t)c->d_ff, "generation state");
    g->logits = ops->alloc(A * R * (size_t)c->vocab_size, "generation logits");
    g->token_pos = ops->alloc(sizeof(int32_t) * 2 * R, "generation tokens");
    if (c->n_experts > 0) ct_model_moe_acts_alloc(g->model, rows, &g->moe);
    if (c->mtp_depth > 0) {
        const size_t RC = R * (size_t)c->d_model;
        if (c->mtp_style == CT_MTP_SEQUENTIAL) {  // a parallel head has no input of its own
            g->mtp_emb = ops->alloc(A * RC, "generation state");
            g->mtp_e = ops->alloc(A * RC, "generation state");
            g->mtp_h = ops->alloc(A * RC, "generation state");
            g->mtp_cat = ops->alloc(A * 2 * RC, "generation state");
        }
        g->mtp_x = ops->alloc(A * RC, "generation state");
    }
    g->host_logits = ops->host_memory && A == sizeof(float) ? g->logits
                                                            : ct_alloc(sizeof(float) * R * (size_t)c->vocab_size);
}

static void free_rows(CtGenerator *g) {
    const CtOps *ops = g->model->ops;
    void *buffers[] = {g->x, g->norm, g->mean_rstd, g->qkv, g->atty, g->proj, g->fch, g->fch_act, g->token_pos};
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++) ops->free(buffers[i]);
    if (g->qkv_pre) ops->free(g->qkv_pre);
    if (g->branch_pre) ops->free(g->branch_pre);
    if (g->moe.logits) ct_model_moe_acts_free(g->model, &g->moe);
    void *mtp[] = {g->mtp_emb, g->mtp_e, g->mtp_h, g->mtp_cat, g->mtp_x};
    for (size_t i = 0; i < sizeof mtp / sizeof mtp[0]; i++)
        if (mtp[i]) ops->free(mtp[i]);
    if (g->host_logits != (void *)g->logits) ct_free(g->host_logits);
    ops->free(g->logits);
    g->moe = (CtMoeActs){0};
}

int ct_generation_check(const CtModelConfig *c) {
    if (ct_model_is_encoder(c))
        return ct_error_set("%s models are encoders: they fill in masked tokens and do not generate text (generate, "
                            "chat and samples need a decoder: gpt2 or llama)", ct_arch_name(c->arch));
    return 0;
}

static void feed_virtual(CtGenerator *g);

void ct_generator_init(CtGenerator *g, CtModel *model, int max_ctx) {
    CT_CHECK(ct_generation_check(&model->config) == 0, ct_error_message());
    memset(g, 0, sizeof *g);
    const CtModelConfig *c = &model->config;
    CT_CHECK(max_ctx >= 1 && max_ctx <= c->max_seq_len, "the cache holds at most max_seq_len tokens");
    g->model = model;
    g->max_ctx = max_ctx;
    const size_t kv = (size_t)ct_model_kv_width(c), layers = (size_t)(c->n_layer + c->mtp_depth);
    // In the ops' memory (the GPU's for a model there); logits come back to the host.
    const CtOps *ops = model->ops;
    const size_t A = ops->act_bytes;
    g->k_cache = ops->alloc(A * layers * (size_t)max_ctx * kv, "generation key cache");
    g->v_cache = ops->alloc(A * layers * (size_t)max_ctx * kv, "generation value cache");
    alloc_rows(g, 1);
    feed_virtual(g);
}

void ct_generator_free(CtGenerator *g) {
    free_rows(g);
    g->model->ops->free(g->k_cache);
    g->model->ops->free(g->v_cache);
    memset(g, 0, sizeof *g);
}

// A prompt adapter's virtual tokens stay in the cache's first rows (train/model/peft.h).
void ct_generator_reset(CtGenerator *g) { g->n_ctx = g->n_virtual; }

void ct_generator_rollback(CtGenerator *g, int n_ctx) {
    CT_CHECK(n_ctx >= g->n_virtual && n_ctx <= g->n_ctx, "a rollback keeps at most the tokens in the cache (and "
             "always a prompt adapter's virtual tokens)");
    g->n_ctx = n_ctx;  // the rows past it are overwritten by the next feed
}

void ct_generator_keep_hidden(CtGenerator *g, CtAct *by_position, int after_blocks) {
    CT_CHECK(after_blocks >= 0 && after_blocks <= g->model->config.n_layer, "a hidden state after 0..L blocks");
    g->hidden = by_position;
    g->hidden_after = after_blocks;
}

const float *ct_generator_feed(CtGenerator *g, int32_t token) { return ct_generator_feed_many(g, &token, 1); }

// The buffers take n rows (grown on demand).
static void reserve_rows(CtGenerator *g, int n) {
    if (n <= g->rows) return;
    free_rows(g);
    alloc_rows(g, n);
}

// The tokens of n rows and their positions pos.. into the ops' memory (token_pos).
static void upload_tokens(CtGenerator *g, const int32_t *tokens, int pos, int n) {
    int32_t *host = ct_alloc(sizeof(int32_t) * 2 * (size_t)n);
    for (int t = 0; t < n; t++) {
        host[t] = tokens[t];
        host[n + t] = pos + t;
    }
    g->model->ops->upload(g->token_pos, host, sizeof(int32_t) * 2 * (size_t)n);
    ct_free(host);
}

// One block pass's buffers over n rows, the residual stream x updated in place into out.
static CtBlockActs block_rows(const CtGenerator *g, CtAct *x, CtAct *out, int n) {
    float *mean = g->mean_rstd, *rstd = g->mean_rstd + n;
    return (CtBlockActs){.x = x, .ln1 = g->norm, .ln1_mean = mean, .ln1_rstd = rstd, .qkv = g->qkv,
                         .qkv_pre = g->qkv_pre, .qk_rstd = g->mean_rstd + 2 * n, .atty = g->atty, .res2 = x,
                         .ln2 = g->norm, .ln2_mean = mean, .ln2_rstd = rstd, .fch = g->fch, .fch_act = g->fch_act,
                         .proj = g->proj, .attn_pre = g->branch_pre, .mlp_pre = g->branch_pre,
                         .attn_post_rstd = rstd, .mlp_post_rstd = rstd, .moe = g->moe, .out = out};
}

// ct_generator_keep_hidden: the stream's n rows (positions n_ctx..) to the hidden store.
static void keep_hidden(const CtGenerator *g, int n) {
    const CtOps *ops = g->model->ops;
    const size_t C = (size_t)g->model->config.d_model;
    ops->copy(ct_act_at(ops->act_bytes, g->hidden, (size_t)g->n_ctx * C), g->x, ops->act_bytes * (size_t)n * C);
}

// The rows one pass may take: a model with LoRA adapters keeps their products for max_B·max_T
// rows (train/model/lora.c's scratch), so longer feeds run in several passes.
static int rows_per_pass(const CtGenerator *g) {
    const CtModel *m = g->model;
    return m->lora ? m->max_B * m->max_T : INT_MAX;
}

// The model's own forward (train/model/model_block.c) for n rows at positions n_ctx.., the
// residual stream updated in place, each block attending to the cache and the rows before;
// the logits go to `logits` [n, V] (last_only: the last row's alone, [1, V]).
static void pass(CtGenerator *g, const int32_t *tokens, int n, CtAct *logits, int last_only) {
    CtModel *m = g->model;
    upload_tokens(g, tokens, g->n_ctx, n);
    const int32_t *d_tokens = g->token_pos, *d_pos = g->token_pos + n;
    // dynamic RoPE scaling sees a pass whose largest position is the last row's, as transformers does
    const CtBlockPass block_pass = {.B = 1, .T = n, .positions = d_pos, .rope_len = g->n_ctx + n,
                                    .k_cache = g->k_cache, .v_cache = g->v_cache, .max_ctx = g->max_ctx,
                                    .pos = g->n_ctx};
    const CtBlockActs rows = block_rows(g, g->x, g->x, n);
    ct_model_embed_forward(m, g->x, d_tokens, d_pos, n, 0.0f);
    for (int l = 0; l < m->config.n_layer; l++) {
        if (g->hidden && l == g->hidden_after) keep_hidden(g, n);
        ct_model_block_forward(m, l, &block_pass, &rows);
    }
    if (g->hidden && g->hidden_after == m->config.n_layer) keep_hidden(g, n);
    const size_t last = last_only ? (size_t)(n - 1) * (size_t)m->config.d_model : 0;
    ct_model_head_forward(m, logits, g->norm, rows.ln1_mean, rows.ln1_rstd, ct_act_at(m->ops->act_bytes, g->x, last),
                          last_only ? 1 : n);
    g->n_ctx += n;
}

// A prompt adapter's virtual tokens (prompt tuning, P-tuning) go first, at positions 0..V-1, as
// PEFT's generate prepends them: their rows of the cache are filled once. A prefix (prefix
// tuning) is written into those rows directly: it is a past_key_values, the tokens follow at P...
static void feed_virtual(CtGenerator *g) {
    const int P = ct_peft_prefix_len(g->model);
    if (P) {  // prefix tuning: the prefix's keys and values are the cache's first P rows of every layer
        CT_CHECK(P < g->max_ctx, "a prefix adapter's virtual tokens fill the whole generation context");
        ct_peft_prefix_fill_cache(g->model, g->k_cache, g->v_cache, g->max_ctx);
        g->n_ctx = g->n_virtual = P;
        return;
    }
    const int V = ct_peft_prepend_rows(g->model);
    if (V == 0) return;
    CT_CHECK(V < g->max_ctx, "a prompt adapter's virtual tokens fill the whole generation context");
    reserve_rows(g, V);
    int32_t *zeros = ct_calloc((size_t)V, sizeof(int32_t));  // any id: the adapter's rows replace their embedding
    ct_peft_set_pass(g->model, 1, V, V);
    pass(g, zeros, V, g->logits, 0);
    ct_peft_set_pass(g->model, 0, 0, 0);
    ct_free(zeros);
    g->n_virtual = V;
}

// feed_many, or (last_only) feed_prompt: the head over every row or the last one.
static const float *feed(CtGenerator *g, const int32_t *tokens, int n, int last_only) {
    CT_CHECK(n >= 1 && g->n_ctx + n <= g->max_ctx, "the generation cache is full (the caller stops at max_ctx)");
    reserve_rows(g, n);
    const CtOps *ops = g->model->ops;
    const size_t V = (size_t)g->model->config.vocab_size;
    const int most = rows_per_pass(g);
    for (int done = 0; done < n;) {
        const int rows = n - done < most ? n - done : most;
        pass(g, tokens + done, rows, ct_act_at(ops->act_bytes, g->logits, last_only ? 0 : (size_t)done * V), last_only);
        done += rows;
    }
    if (g->host_logits != (void *)g->logits) ops->download_act(g->host_logits, g->logits, (last_only ? 1 : (size_t)n) * V);
    return g->host_logits;
}

const float *ct_generator_feed_many(CtGenerator *g, const int32_t *tokens, int n) { return feed(g, tokens, n, 0); }

const float *ct_generator_feed_prompt(CtGenerator *g, const int32_t *tokens, int n) { return feed(g, tokens, n, 1); }

// Module k over n rows at positions pos.. (one pass), its hidden rows to h_out.
static void mtp_pass(CtGenerator *g, int k, const CtAct *h_prev, const int32_t *tokens, int pos, int n, CtAct *h_out) {
    upload_tokens(g, tokens, pos, n);
    const CtBlockPass block_pass = {.B = 1, .T = n, .positions = g->token_pos + n, .rope_len = pos + n,
                                    .k_cache = g->k_cache, .v_cache = g->v_cache, .max_ctx = g->max_ctx, .pos = pos};
    float *mean = g->mean_rstd, *rstd = g->mean_rstd + n;
    const CtModelConfig *c = &g->model->config;
    if (c->mtp_style == CT_MTP_PARALLEL) {  // head k: its block over the trunk rows (the block updates
        const CtOps *ops = g->model->ops;     // its input in place: a copy, the trunk rows stay)
        ops->copy(g->mtp_x, h_prev, ops->act_bytes * (size_t)n * (size_t)c->d_model);
        const CtBlockActs rows = block_rows(g, g->mtp_x, h_out, n);
        ct_model_block_forward(g->model, c->n_layer + k - 1, &block_pass, &rows);
        return;
    }
    const CtMtpModuleActs a = {.emb = g->mtp_emb, .e_norm = g->mtp_e, .h_norm = g->mtp_h, .e_mean = mean,
                               .e_rstd = rstd, .h_mean = mean, .h_rstd = rstd, .cat = g->mtp_cat, .x = g->mtp_x,
                               .block = block_rows(g, g->mtp_x, h_out, n)};
    ct_model_mtp_module_forward(g->model, k, &block_pass, &a, h_prev, g->token_pos);
}

const float *ct_generator_mtp_feed(CtGenerator *g, int k, const CtAct *h_prev, const int32_t *tokens, int pos, int n,
                                   CtAct *h_out) {
    CtModel *m = g->model;
    const CtModelConfig *c = &m->config;
    CT_CHECK(k >= 1 && k <= c->mtp_depth && n >= 1 && pos >= 0 && pos + n <= g->max_ctx,
             "a module's feed: depth 1..mtp_depth, rows inside the context");
    reserve_rows(g, n);
    const CtOps *ops = m->ops;
    const size_t A = ops->act_bytes, C = (size_t)c->d_model;
    const int most = rows_per_pass(g);  // LoRA adapters on the modules: their scratch's rows
    for (int done = 0; done < n;) {
        const int rows = n - done < most ? n - done : most;
        mtp_pass(g, k, ct_act_at(A, h_prev, (size_t)done * C), tokens + done, pos + done, rows,
                 ct_act_at(A, h_out, (size_t)done * C));
        done += rows;
    }
    ct_model_mtp_head_forward(m, k, g->logits, g->norm, g->mean_rstd, g->mean_rstd + 1,
                              ct_act_at(A, h_out, (size_t)(n - 1) * C), 1);
    if (g->host_logits != (void *)g->logits) ops->download_act(g->host_logits, g->logits, (size_t)c->vocab_size);
    return g->host_logits;
}

typedef struct {
    float p;
    int32_t id;
} Candidate;

static int by_probability(const void *a, const void *b) {
    const Candidate *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return x->id - y->id;  // ties: lower id first, so the order is total and reproducible
}

// The tokens sampling keeps: softmax at the temperature (unnormalised, c[].p), then the top k and
// the smallest set reaching top_p. Returns the candidates (ct_free them); the kept ones are
// c[0..*n), their mass *sum. Needs temperature > 0.
static Candidate *kept_candidates(const float *logits, int V, const CtSampling *s, int *n_kept, double *sum_kept) {
    int32_t best = 0;
    for (int v = 1; v < V; v++)
        if (logits[v] > logits[best]) best = v;
    Candidate *c = ct_alloc(sizeof(Candidate) * (size_t)V);
    double sum = 0;
    for (int v = 0; v < V; v++) {
        c[v].id = v;
        c[v].p = expf((logits[v] - logits[best]) / s->temperature);
        sum += c[v].p;
    }
    int n = V;
    if ((s->top_k > 0 && s->top_k < V) || s->top_p < 1) {
        qsort(c, (size_t)V, sizeof *c, by_probability);
        if (s->top_k > 0 && s->top_k < n) n = s->top_k;
        if (s->top_p < 1) {
            double kept = 0, total = 0;
            for (int i = 0; i < n; i++) total += c[i].p;
            for (int i = 0; i < n; i++) {
                kept += c[i].p;
                if (kept >= s->top_p * total) {
                    n = i + 1;
                    break;
                }
            }
        }
        sum = 0;
        for (int i = 0; i < n; i++) sum += c[i].p;
    }
    *n_kept = n;
    *sum_kept = sum;
    return c;
}

int32_t ct_sample(const float *logits, int V, const CtSampling *s, CtRng *rng) {
    if (s->temperature <= 0) {
        int32_t best = 0;
        for (int v = 1; v < V; v++)
            if (logits[v] > logits[best]) best = v;
        return best;
    }
    int n;
    double sum;
    Candidate *c = kept_candidates(logits, V, s, &n, &sum);
    double r = ct_rng_uniform(rng) * sum, acc = 0;
    int32_t pick = c[n - 1].id;
    for (int i = 0; i < n; i++) {
        acc += c[i].p;
        if (r < acc) {
            pick = c[i].id;
            break;
        }
    }
    ct_free(c);
    return pick;
}

void ct_sampling_probs(const float *logits, int V, const CtSampling *s, float *probs) {
    CT_CHECK(s->temperature > 0, "a sampling distribution needs a temperature above 0");
    int n;
    double sum;
    Candidate *c = kept_candidates(logits, V, s, &n, &sum);
    for (int v = 0; v < V; v++) probs[v] = 0;
    for (int i = 0; i < n; i++) probs[c[i].id] = (float)(c[i].p / sum);
    ct_free(c);
}

int32_t ct_sample_probs(const float *probs, int V, CtRng *rng) {
    double total = 0;
    for (int v = 0; v < V; v++) total += probs[v];
    double r = ct_rng_uniform(rng) * total, acc = 0;
    int32_t last = 0;
    for (int v = 0; v < V; v++) {
        if (probs[v] <= 0) continue;
        last = v;
        acc += probs[v];
        if (r < acc) return v;
    }
    return last;  // r fell past the sum by rounding: the last token with any mass
}
