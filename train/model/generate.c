#include "train/model/generate.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "data/tokenizer/tokenizer_identity.h"
#include "train/model/lora.h"

void ct_generator_init(CtGenerator *g, CtModel *model, int max_ctx) {
    memset(g, 0, sizeof *g);
    const CtModelConfig *c = &model->config;
    CT_CHECK(max_ctx >= 1 && max_ctx <= c->max_seq_len, "the cache holds at most max_seq_len tokens");
    g->model = model;
    g->max_ctx = max_ctx;
    const int HD = ct_model_head_dim(c), kv = c->n_kv_head * HD;
    const int qkv = (c->n_head + 2 * c->n_kv_head) * HD;
    const int fi = c->arch == CT_ARCH_LLAMA ? 2 * c->d_ff : c->d_ff;
    // In the ops' memory (the GPU's for a model there); logits come back to the host.
    const CtOps *ops = model->ops;
    const size_t A = ops->act_bytes;
    g->k_cache = ops->alloc(A * (size_t)c->n_layer * (size_t)max_ctx * (size_t)kv, "generation key cache");
    g->v_cache = ops->alloc(A * (size_t)c->n_layer * (size_t)max_ctx * (size_t)kv, "generation value cache");
    g->x = ops->alloc(A * (size_t)c->d_model, "generation state");
    g->norm = ops->alloc(A * (size_t)c->d_model, "generation state");
    g->mean_rstd = ops->alloc(sizeof(float) * 2, "generation state");
    g->qkv = ops->alloc(A * (size_t)qkv, "generation state");
    g->atty = ops->alloc(A * (size_t)c->d_model, "generation state");
    g->proj = ops->alloc(A * (size_t)c->d_model, "generation state");
    g->fch = ops->alloc(A * (size_t)fi, "generation state");
    g->fch_act = ops->alloc(A * (size_t)c->d_ff, "generation state");
    g->logits = ops->alloc(A * (size_t)c->vocab_size, "generation logits");
    g->token_pos = ops->alloc(sizeof(int32_t) * 2, "generation token");
    g->host_logits = ops->host_memory && A == sizeof(float) ? g->logits : ct_alloc(sizeof(float) * (size_t)c->vocab_size);
}

void ct_generator_free(CtGenerator *g) {
    const CtOps *ops = g->model->ops;
    void *buffers[] = {g->k_cache, g->v_cache, g->x, g->norm, g->mean_rstd, g->qkv, g->atty, g->proj, g->fch, g->fch_act, g->logits};
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++) ops->free(buffers[i]);
    ops->free(g->token_pos);
    if (g->host_logits != (void *)g->logits) ct_free(g->host_logits);
    memset(g, 0, sizeof *g);
}

void ct_generator_reset(CtGenerator *g) { g->n_ctx = 0; }

static void norm(const CtGenerator *g, CtAct *out, const CtAct *inp, const float *w, const float *b) {
    const CtModel *m = g->model;
    if (m->config.arch == CT_ARCH_LLAMA)
        m->ops->rmsnorm_forward(out, g->mean_rstd + 1, inp, w, 1, m->config.d_model, m->config.norm_eps);
    else
        m->ops->layernorm_forward(out, g->mean_rstd, g->mean_rstd + 1, inp, w, b, 1, m->config.d_model, m->config.norm_eps);
}

// The same computation as ct_model_forward (train/model/model.c) for one row at position n_ctx.
const float *ct_generator_feed(CtGenerator *g, int32_t token) {
    CT_CHECK(g->n_ctx < g->max_ctx, "the generation cache is full (the caller stops at max_ctx)");
    const CtModel *m = g->model;
    const CtOps *ops = m->ops;
    const CtModelConfig *c = &m->config;
    const int C = c->d_model, NH = c->n_head, NKV = c->n_kv_head, HD = ct_model_head_dim(c);
    const int QKV = (NH + 2 * NKV) * HD, kv = NKV * HD, F = c->d_ff;
    const int FI = c->arch == CT_ARCH_LLAMA ? 2 * F : F;
    const int32_t pos = g->n_ctx;
    const size_t A = ops->act_bytes;
    const CtModelTensors *w = &m->w;
    const int32_t token_pos[2] = {token, pos};
    ops->upload(g->token_pos, token_pos, sizeof token_pos);
    const int32_t *d_token = g->token_pos, *d_pos = g->token_pos + 1;

    ops->embedding_forward(g->x, d_token, w->wte, 1, C, 0);
    if (w->wpe) ops->embedding_forward(g->x, d_pos, w->wpe, 1, C, 1);
    for (int l = 0; l < c->n_layer; l++) {
        const CtLayerTensors *p = &w->layers[l];
        CtAct *kc = ct_act_at(A, g->k_cache, (size_t)l * g->max_ctx * kv);
        CtAct *vc = ct_act_at(A, g->v_cache, (size_t)l * g->max_ctx * kv);
        norm(g, g->norm, g->x, p->ln1_w, p->ln1_b);
        ops->matmul_forward(g->qkv, g->norm, p->qkv_w, p->qkv_b, 1, C, QKV);
        if (m->lora) ct_lora_forward(g->model, l, CT_LORA_QKV, g->qkv, g->norm, 1);  // adapters, as in training
        if (c->arch == CT_ARCH_LLAMA) ops->rope_forward(g->qkv, g->qkv, d_pos, 1, 1, NH + NKV, HD, QKV, c->rope_theta);
        ops->copy(ct_act_at(A, kc, (size_t)pos * kv), ct_act_at(A, g->qkv, (size_t)NH * HD), A * (size_t)kv);
        ops->copy(ct_act_at(A, vc, (size_t)pos * kv), ct_act_at(A, g->qkv, (size_t)(NH + NKV) * HD), A * (size_t)kv);
        ops->attention_decode(g->atty, g->qkv, kc, vc, pos + 1, NH, NKV, HD);
        ops->matmul_forward(g->proj, g->atty, p->attn_out_w, p->attn_out_b, 1, C, C);
        if (m->lora) ct_lora_forward(g->model, l, CT_LORA_ATTN_OUT, g->proj, g->atty, 1);
        ops->residual_forward(g->x, g->x, g->proj, (size_t)C);
        norm(g, g->norm, g->x, p->ln2_w, p->ln2_b);
        ops->matmul_forward(g->fch, g->norm, p->fc_w, p->fc_b, 1, C, FI);
        if (m->lora) ct_lora_forward(g->model, l, CT_LORA_FC, g->fch, g->norm, 1);
        if (c->arch == CT_ARCH_LLAMA)
            ops->swiglu_forward(g->fch_act, g->fch, 1, F);
        else
            ops->gelu_forward(g->fch_act, g->fch, (size_t)F);
        ops->matmul_forward(g->proj, g->fch_act, p->fc_out_w, p->fc_out_b, 1, F, C);
        if (m->lora) ct_lora_forward(g->model, l, CT_LORA_FC_OUT, g->proj, g->fch_act, 1);
        ops->residual_forward(g->x, g->x, g->proj, (size_t)C);
    }
    norm(g, g->norm, g->x, w->lnf_w, w->lnf_b);
    ops->matmul_forward(g->logits, g->norm, w->lm_head, NULL, 1, C, c->vocab_size);
    if (g->host_logits != (void *)g->logits) ops->download_act(g->host_logits, g->logits, (size_t)c->vocab_size);
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

int ct_eos_token_ids_parse(const char *json, const char *source, int vocab_size, int32_t *ids, int max, int *n) {
    *n = 0;
    cJSON *root = cJSON_Parse(json);
    int rc = -1;
    if (!cJSON_IsObject(root)) {
        ct_error_set("%s: not a JSON object", source);
        goto done;
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "eos_token_id"), *item;
    if (!v || cJSON_IsNull(v)) {
        rc = 0;
        goto done;
    }
    if (!cJSON_IsNumber(v) && !cJSON_IsArray(v)) {
        ct_error_set("%s: 'eos_token_id' must be a token id or a list of token ids", source);
        goto done;
    }
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) > max) {
        ct_error_set("%s: 'eos_token_id' lists %d ids; ctrain stops at %d at most", source, cJSON_GetArraySize(v), max);
        goto done;
    }
    int entry = 0;
    for (item = cJSON_IsArray(v) ? v->child : v; item; item = cJSON_IsArray(v) ? item->next : NULL, entry++) {
        double id = cJSON_IsNumber(item) ? item->valuedouble : -1;
        if (!cJSON_IsNumber(item) || id != (double)(int32_t)id || id < 0) {
            ct_error_set("%s: 'eos_token_id' entry %d is not a token id", source, entry);
            goto done;
        }
        // transformers' GPT2Config says 50256 whatever the vocabulary: an id the model cannot
        // produce never stops it, so it is left out
        if (id >= vocab_size)
            ct_log("warning: %s: 'eos_token_id' %.0f is outside the vocabulary (%d ids); it cannot end a text", source,
                   id, vocab_size);
        else
            ids[(*n)++] = (int32_t)id;
    }
    rc = 0;
done:
    cJSON_Delete(root);
    return rc;
}

char *ct_generation_config_json(const int32_t *ids, int n) {
    cJSON *o = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(o, "eos_token_id");
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(list, cJSON_CreateNumber(ids[i]));
    char *printed = cJSON_PrintUnformatted(o), *s = ct_strdup(printed);
    free(printed);
    cJSON_Delete(o);
    return s;
}

static void add_stop(CtStopTokens *s, int32_t id) {
    if (id < 0 || ct_stop_tokens_has(s, id) || s->n == CT_MAX_STOP_TOKENS) return;
    s->ids[s->n++] = id;
}

int ct_stop_tokens_init(CtStopTokens *s, const char *generation_config_json, const CtTokenizer *tok, int vocab_size,
                        int32_t end_of_turn, const char *source) {
    memset(s, 0, sizeof *s);
    if (generation_config_json) {
        char where[1024];
        snprintf(where, sizeof where, "%s: generation_config", source);
        if (ct_eos_token_ids_parse(generation_config_json, where, vocab_size, s->ids, CT_MAX_STOP_TOKENS - 1, &s->n) != 0)
            return -1;
    }
    if (s->n == 0) add_stop(s, ct_tokenizer_special_id(tok, "<|endoftext|>"));
    add_stop(s, end_of_turn);
    return 0;
}

int ct_stop_tokens_has(const CtStopTokens *s, int32_t id) {
    for (int i = 0; i < s->n; i++)
        if (s->ids[i] == id) return 1;
    return 0;
}
