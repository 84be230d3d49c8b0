#include "tests/generate_fixture.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/tokenizer/bpe.h"
#include "data/tokenizer/tokenizer_hf.h"
#include "tests/test.h"
#include "train/interop/checkpoint_io.h"
#include "train/interop/checkpoint_meta.h"
#include "train/model/generate.h"

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
