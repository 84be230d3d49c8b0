#include "tests/generate_fixture.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/tokenizer/bpe.h"
#include "data/tokenizer/tokenizer_hf.h"
#include "kernels/ops.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/interop/checkpoint_io.h"
#include "train/interop/checkpoint_meta.h"
#include "train/model/generate.h"
#include "train/model/lora.h"

char *generate_fixture_byte_tokenizer_json(const char *special) {
    CtTokenizer t;
    ct_tokenizer_init(&t, CT_PATTERN_GPT2, CT_MERGES_BY_LIST);
    for (int b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        ct_tokenizer_add(&t, b, &byte, 1, CT_TOKEN_NORMAL);
    }
    ct_tokenizer_add(&t, 256, (const uint8_t *)special, strlen(special), CT_TOKEN_SPECIAL);
    char *json = ct_tokenizer_finish(&t) == 0 ? ct_tokenizer_hf_json(&t) : NULL;
    ct_tokenizer_free(&t);
    return json;
}

void generate_fixture_save(const char *path, const CtModel *m, const char *special) {
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    char *json = generate_fixture_byte_tokenizer_json(special);
    meta.tokenizer_json = ct_strdup(json);
    free(json);
    CHECK_MSG(ct_checkpoint_save(path, m, NULL, &meta) == 0, "%s", ct_error_message());
    ct_checkpoint_meta_free(&meta);
}

void generate_fixture_exact_pairs(CtModel *m, const int32_t *prompt, int n, const CtSampling *s, double *joint) {
    const int V = m->config.vocab_size;
    float *p1 = ct_alloc(sizeof(float) * (size_t)V), *p2 = ct_alloc(sizeof(float) * (size_t)V);
    CtGenerator g;
    ct_generator_init(&g, m, m->config.max_seq_len);
    for (int a = 0; a < V; a++) {
        ct_generator_reset(&g);
        const float *logits = ct_generator_feed_many(&g, prompt, n) + (size_t)(n - 1) * V;
        ct_sampling_probs(logits, V, s, p1);
        ct_sampling_probs(ct_generator_feed(&g, a), V, s, p2);
        for (int b = 0; b < V; b++) joint[a * V + b] = (double)p1[a] * p2[b];
    }
    ct_generator_free(&g);
    ct_free(p1);
    ct_free(p2);
}

void generate_fixture_model(CtModel *m, CtModelConfig c, int max_T, uint64_t seed, const char *lora_targets) {
    CHECK_EQ_INT(ct_model_create(m, &c, ct_ops_cpu(), 1, max_T, 0), 0);
    tiny_randomize_params(m, seed);
    if (!lora_targets) return;
    CtLoraSpec spec = {.r = 2, .alpha = 4};
    snprintf(spec.targets, sizeof spec.targets, "%s", lora_targets);
    CHECK_EQ_INT(ct_lora_attach(m, &spec), 0);
    CtRng init;
    ct_rng_seed(&init, 9);
    ct_rng_fill_normal(&init, m->lora->params, m->lora->n_params, 0, 0.5f);
}
