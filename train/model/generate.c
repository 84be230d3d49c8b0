#include "train/model/generate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "train/model/model_internal.h"

void ct_generator_init(CtGenerator *g, CtModel *model, int max_ctx) {
    memset(g, 0, sizeof *g);
    const CtModelConfig *c = &model->config;
    CT_CHECK(max_ctx >= 1 && max_ctx <= c->max_seq_len, "the cache holds at most max_seq_len tokens");
    g->model = model;
    g->max_ctx = max_ctx;
    const size_t kv = (size_t)ct_model_kv_width(c);
    // In the ops' memory (the GPU's for a model there); logits come back to the host.
    const CtOps *ops = model->ops;
    const size_t A = ops->act_bytes;
    g->k_cache = ops->alloc(A * (size_t)c->n_layer * (size_t)max_ctx * kv, "generation key cache");
    g->v_cache = ops->alloc(A * (size_t)c->n_layer * (size_t)max_ctx * kv, "generation value cache");
    g->x = ops->alloc(A * (size_t)c->d_model, "generation state");
    g->norm = ops->alloc(A * (size_t)c->d_model, "generation state");
    g->mean_rstd = ops->alloc(sizeof(float) * (size_t)(2 + c->n_head + c->n_kv_head), "generation state");
    g->qkv = ops->alloc(A * (size_t)ct_model_qkv_width(c), "generation state");
    g->qkv_pre = c->qk_norm ? ops->alloc(A * (size_t)ct_model_qkv_width(c), "generation state") : NULL;
    g->branch_pre = c->post_norms ? ops->alloc(A * (size_t)c->d_model, "generation state") : NULL;
    g->atty = ops->alloc(A * (size_t)ct_model_attn_width(c), "generation state");
    g->proj = ops->alloc(A * (size_t)c->d_model, "generation state");
    g->fch = ops->alloc(A * (size_t)ct_model_fc_width(c), "generation state");
    g->fch_act = ops->alloc(A * (size_t)c->d_ff, "generation state");
    g->logits = ops->alloc(A * (size_t)c->vocab_size, "generation logits");
    g->token_pos = ops->alloc(sizeof(int32_t) * 2, "generation token");
    if (c->n_experts > 0) ct_model_moe_acts_alloc(model, 1, &g->moe);
    g->host_logits = ops->host_memory && A == sizeof(float) ? g->logits : ct_alloc(sizeof(float) * (size_t)c->vocab_size);
}

void ct_generator_free(CtGenerator *g) {
    const CtOps *ops = g->model->ops;
    void *buffers[] = {g->k_cache, g->v_cache, g->x, g->norm, g->mean_rstd, g->qkv, g->atty, g->proj, g->fch, g->fch_act, g->logits};
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++) ops->free(buffers[i]);
    if (g->qkv_pre) ops->free(g->qkv_pre);
    if (g->branch_pre) ops->free(g->branch_pre);
    ops->free(g->token_pos);
    if (g->moe.logits) ct_model_moe_acts_free(g->model, &g->moe);
    if (g->host_logits != (void *)g->logits) ct_free(g->host_logits);
    memset(g, 0, sizeof *g);
}

void ct_generator_reset(CtGenerator *g) { g->n_ctx = 0; }

// The model's own forward (train/model/model_block.c) for one row at position n_ctx: the
// residual stream updated in place, each block attending to the cache.
const float *ct_generator_feed(CtGenerator *g, int32_t token) {
    CT_CHECK(g->n_ctx < g->max_ctx, "the generation cache is full (the caller stops at max_ctx)");
    CtModel *m = g->model;
    const CtOps *ops = m->ops;
    const int32_t token_pos[2] = {token, g->n_ctx};
    ops->upload(g->token_pos, token_pos, sizeof token_pos);
    const int32_t *d_token = g->token_pos, *d_pos = g->token_pos + 1;
    // dynamic RoPE scaling sees a pass whose largest position is this one, as transformers does
    const CtBlockPass pass = {.B = 1, .T = 1, .positions = d_pos, .rope_len = g->n_ctx + 1, .k_cache = g->k_cache,
                              .v_cache = g->v_cache, .max_ctx = g->max_ctx, .pos = g->n_ctx};
    float *mean = g->mean_rstd, *rstd = g->mean_rstd + 1;
    const CtBlockActs row = {.x = g->x, .ln1 = g->norm, .ln1_mean = mean, .ln1_rstd = rstd, .qkv = g->qkv,
                             .qkv_pre = g->qkv_pre, .qk_rstd = g->mean_rstd + 2, .atty = g->atty, .res2 = g->x,
                             .ln2 = g->norm, .ln2_mean = mean, .ln2_rstd = rstd, .fch = g->fch, .fch_act = g->fch_act,
                             .proj = g->proj, .attn_pre = g->branch_pre, .mlp_pre = g->branch_pre,
                             .attn_post_rstd = rstd, .mlp_post_rstd = rstd, .moe = g->moe, .out = g->x};

    ct_model_embed_forward(m, g->x, d_token, d_pos, 1, 0.0f);
    for (int l = 0; l < m->config.n_layer; l++) ct_model_block_forward(m, l, &pass, &row);
    ct_model_head_forward(m, g->logits, g->norm, mean, rstd, g->x, 1);
    if (g->host_logits != (void *)g->logits) ops->download_act(g->host_logits, g->logits, (size_t)m->config.vocab_size);
    g->n_ctx++;
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

int32_t ct_sample(const float *logits, int V, const CtSampling *s, CtRng *rng) {
    int32_t best = 0;
    for (int v = 1; v < V; v++)
        if (logits[v] > logits[best]) best = v;
    if (s->temperature <= 0) return best;
    // Softmax at the temperature, then keep the top k and the smallest set reaching top_p.
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
