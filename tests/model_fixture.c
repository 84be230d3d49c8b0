#include "tests/model_fixture.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "tests/test.h"

CtModelConfig tiny_config(CtArch arch) {
    CtModelConfig c = {.arch = arch, .n_layer = 2, .n_head = 4, .n_kv_head = arch == CT_ARCH_LLAMA ? 2 : 4,
                       .d_model = 16, .d_ff = arch == CT_ARCH_LLAMA ? 24 : 64, .vocab_size = 37, .max_seq_len = 16,
                       .norm_eps = 1e-5f, .rope_theta = 10000.0f, .tie_embeddings = arch == CT_ARCH_GPT2,
                       .dropout = 0};
    return c;
}

const char *const tiny_variant_names[] = {"qwen2", "qwen3", "olmoe_qk", "mistral", "gemma2", "gemma3",
                                          "yarn",  "llama3", "dynamic",  NULL};

CtModelConfig tiny_variant_config(const char *name) {
    CtModelConfig c = tiny_config(CT_ARCH_LLAMA);
    if (!name) return (CtModelConfig){0};
    if (strcmp(name, "qwen2") == 0) {
        c.family = CT_FAMILY_QWEN2;
        c.qkv_bias = 1;
    } else if (strcmp(name, "qwen3") == 0) {
        c.family = CT_FAMILY_QWEN3;
        c.qk_norm = 1;
        c.head_dim = 8;  // n_head·head_dim = 32 ≠ d_model
    } else if (strcmp(name, "olmoe_qk") == 0) {  // OLMoE's q/k norms: over the whole projections
        c.family = CT_FAMILY_OLMOE;
        c.qk_norm = 2;
        c.n_kv_head = c.n_head;
    } else if (strcmp(name, "mistral") == 0) {
        c.family = CT_FAMILY_MISTRAL;
        c.sliding_window = 3;
    } else if (strcmp(name, "gemma2") == 0) {
        c.family = CT_FAMILY_GEMMA2;
        c.head_dim = 8;
        c.gate_act = CT_GATE_GELU_TANH;
        c.post_norms = 1;
        c.embed_scale = 1;
        c.query_scale = 0.3f;
        c.attn_softcap = 2.0f;   // small enough that tanh bends the scores of these weights
        c.final_softcap = 3.0f;
        c.sliding_window = 3;
        c.sliding_window_pattern = 2;
        c.tie_embeddings = 1;
    } else if (strcmp(name, "gemma3") == 0) {
        c.family = CT_FAMILY_GEMMA3;
        c.head_dim = 8;
        c.qk_norm = 1;
        c.gate_act = CT_GATE_GELU_TANH;
        c.post_norms = 1;
        c.embed_scale = 1;
        c.query_scale = 0.25f;
        c.sliding_window = 3;
        c.sliding_window_pattern = 2;
        c.rope_theta = 1000000.0f;
        c.rope_local_theta = 100.0f;
        c.rope_scaling = (CtRopeScaling){.type = CT_ROPE_LINEAR, .factor = 8};
        c.tie_embeddings = 1;
    } else if (strcmp(name, "yarn") == 0) {
        c.rope_scaling = (CtRopeScaling){.type = CT_ROPE_YARN, .factor = 4, .original_max_position = 4, .truncate = 1};
    } else if (strcmp(name, "llama3") == 0) {
        c.rope_theta = 100.0f;  // wavelengths of 6 to 80 positions: low, medium and high frequencies
        c.rope_scaling = (CtRopeScaling){.type = CT_ROPE_LLAMA3, .factor = 4, .low_freq_factor = 1,
                                         .high_freq_factor = 4, .original_max_position = 40};
    } else if (strcmp(name, "dynamic") == 0) {
        c.rope_scaling = (CtRopeScaling){.type = CT_ROPE_DYNAMIC, .factor = 2, .original_max_position = 4};
    } else {
        return (CtModelConfig){0};
    }
    return c;
}

void tiny_batch(TinyBatch *tb, CtRng *rng, int B, int T, int V, int packed) {
    memset(tb, 0, sizeof *tb);
    tb->B = B;
    tb->T = T;
    for (int b = 0; b < B; b++) {
        int split = T / 2 - b;  // a different document boundary per row
        for (int t = 0; t < T; t++) {
            int n = b * T + t;
            tb->tokens[n] = (int32_t)ct_rng_below(rng, (uint32_t)V);
            tb->targets[n] = (int32_t)ct_rng_below(rng, (uint32_t)V);
            tb->doc_ids[n] = t < split ? 0 : 1;
            tb->positions[n] = t < split ? t : t - split;
            tb->mask[n] = t >= 2;  // the first two tokens play a prompt
            tb->weights[n] = 0.5f + (float)ct_rng_uniform(rng);
        }
    }
    tb->targets[3] = -1;
    tb->batch = (CtBatch){.tokens = tb->tokens, .targets = tb->targets, .B = B, .T = T};
    if (packed) {
        tb->batch.doc_ids = tb->doc_ids;
        tb->batch.positions = tb->positions;
        tb->batch.loss_mask = tb->mask;
        tb->batch.loss_weights = tb->weights;
    }
}

void tiny_randomize_params(CtModel *m, uint64_t seed) {
    CtRng rng;
    ct_rng_seed(&rng, seed);
    for (int i = 0; i < m->n_tensors; i++) {
        const CtParamEntry *e = &m->table[i];
        float *p = m->params + e->offset;
        for (size_t j = 0; j < e->numel; j++) {
            double r = ct_rng_normal(&rng);
            p[j] = (float)(e->init == CT_INIT_ONES ? 1 + 0.1 * r : e->init == CT_INIT_ZEROS ? 0.1 * r : 0.3 * r);
        }
    }
}

CtModelConfig tiny_encoder_config(CtArch arch) {
    const int roberta = arch == CT_ARCH_ROBERTA;
    return (CtModelConfig){.arch = arch, .n_layer = 2, .n_head = 4, .n_kv_head = 4, .d_model = 16, .d_ff = 32,
                           .vocab_size = 37, .max_seq_len = 16, .norm_eps = 1e-5f, .tie_embeddings = 1,
                           .type_vocab_size = roberta ? 1 : 2, .pad_token_id = roberta ? 1 : 0, .pooler = 1};
}

void tiny_encoder_batch(EncoderBatch *eb, const CtModelConfig *c, int T, uint64_t seed) {
    enum { B = 2, PADS = 3 };
    memset(eb, 0, sizeof *eb);
    CtRng rng;
    ct_rng_seed(&rng, seed);
    const int V = c->vocab_size;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const int n = b * T + t, is_pad = b == 1 && t >= T - PADS;
            const int32_t tok = (int32_t)(2 + ct_rng_below(&rng, (uint32_t)(V - 2)));  // never a pad id (0 or 1)
            eb->tokens[n] = is_pad ? c->pad_token_id : tok;
            eb->targets[n] = !is_pad && (t % 2 == b % 2 || t == 1) ? (int32_t)ct_rng_below(&rng, (uint32_t)V) : -1;
            eb->doc_ids[n] = is_pad;
            eb->types[n] = c->type_vocab_size > 1 && t >= T / 2;
        }
    eb->batch = (CtBatch){.tokens = eb->tokens, .targets = eb->targets, .doc_ids = eb->doc_ids, .B = B, .T = T,
                          .token_types = c->type_vocab_size > 1 ? eb->types : NULL};
}

void tiny_check_device_grads(const CtOps *ops, const CtModel *cpu, const CtModel *gpu, double tol) {
    float *g = ct_alloc(cpu->n_params * sizeof(float));
    ops->download(g, gpu->dev_grads, cpu->n_params * sizeof(float));
    double largest = 0;
    for (size_t i = 0; i < cpu->n_params; i++) largest = fmax(largest, fabs(cpu->grads[i]));
    for (int i = 0; i < cpu->n_tensors; i++) {
        const CtParamEntry *e = &cpu->table[i];
        double norm = 0, worst = 0;
        for (size_t k = 0; k < e->numel; k++) norm = fmax(norm, fabs(cpu->grads[e->offset + k]));
        for (size_t k = 0; k < e->numel; k++) worst = fmax(worst, fabs(g[e->offset + k] - cpu->grads[e->offset + k]));
        const double r = norm > 1e-3 * largest ? worst / norm : worst / largest;
        CHECK_MSG(r < tol * 10, "%s: GPU gradient differs from the CPU's by %.3g", e->name, r);
    }
    ct_free(g);
}

double tiny_directional_fd(CtModel *m, const CtBatch *b, float *p, const float *u, size_t n, float h) {
    float *keep = ct_alloc(n * sizeof(float));
    memcpy(keep, p, n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = keep[i] + h * u[i];
    double lp = ct_model_forward(m, b);
    for (size_t i = 0; i < n; i++) p[i] = keep[i] - h * u[i];
    double lm = ct_model_forward(m, b);
    memcpy(p, keep, n * sizeof(float));
    ct_free(keep);
    return (lp - lm) / (2.0 * h);
}
