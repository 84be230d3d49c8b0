#include "train/model/model_resize.h"

#include <string.h>

#include "core/error.h"
#include "core/rng.h"

static int is_vocab_tensor(const CtParamEntry *e, int V) {
    return e->ndim == 2 && e->shape[0] == V &&
           (strstr(e->name, "wte") || strstr(e->name, "embed_tokens") || strstr(e->name, "lm_head"));
}

int ct_model_grow_vocab(CtModel *m, int new_V, int max_B, int max_T, int recompute) {
    const int old_V = m->config.vocab_size;
    if (new_V <= old_V) return ct_error_set("vocabulary can only grow (from %d to %d)", old_V, new_V);
    CtModelConfig c = m->config;
    c.vocab_size = new_V;
    CtModel grown;
    if (ct_model_create(&grown, &c, m->ops, max_B, max_T, recompute) != 0) return -1;
    CT_CHECK(grown.n_tensors == m->n_tensors, "the parameter table depends on the vocabulary only through its size");
    for (int i = 0; i < m->n_tensors; i++) {
        const CtParamEntry *from = &m->table[i], *to = &grown.table[i];
        float *dst = grown.params + to->offset;
        const float *src = m->params + from->offset;
        memcpy(dst, src, from->numel * sizeof(float));
        if (!is_vocab_tensor(from, old_V)) continue;
        const int64_t C = from->shape[1];
        for (int64_t k = 0; k < C; k++) {  // new rows: the mean of the old ones
            double mean = 0;
            for (int v = 0; v < old_V; v++) mean += src[(size_t)v * C + k];
            mean /= old_V;
            for (int v = old_V; v < new_V; v++) dst[(size_t)v * C + k] = (float)mean;
        }
    }
    ct_model_free(m);
    *m = grown;
    return 0;
}

int ct_model_add_reward_head(CtModel *m, uint64_t seed, int max_B, int max_T, int recompute) {
    if (m->config.reward_head) return ct_error_set("the model has a reward head already");
    CtModelConfig c = m->config;
    c.reward_head = 1;
    CtModel rm;
    if (ct_model_create(&rm, &c, m->ops, max_B, max_T, recompute) != 0) return -1;
    CT_CHECK(rm.n_tensors == m->n_tensors + 1, "the reward head is one tensor after all the others");
    memcpy(rm.params, m->params, m->n_params * sizeof(float));
    const int head = rm.n_tensors - 1;  // ct_model_init's stream for this tensor, normal(0, 0.02)
    CtRng rng;
    ct_rng_seed_stream(&rng, seed, CT_RNG_STREAM_MODEL_INIT + (uint64_t)head);
    ct_rng_fill_normal(&rng, rm.params + rm.table[head].offset, rm.table[head].numel, 0, 0.02f);
    ct_model_free(m);
    *m = rm;
    return 0;
}

int ct_model_add_classifier(CtModel *m, int num_labels, CtPooling pooling, uint64_t seed, int max_B, int max_T,
                            int recompute) {
    if (m->config.num_labels) return ct_error_set("the model has a classifier already");
    if (m->config.reward_head)
        return ct_error_set("a reward model (model.reward_head) cannot take a classifier: start from its language model");
    CtModelConfig c = m->config;
    c.num_labels = num_labels;
    c.cls_pooling = pooling;
    // BertForSequenceClassification reads the pooler; RobertaForSequenceClassification has none
    // (add_pooling_layer=False: its classifier.dense takes that place)
    if (ct_model_is_encoder(&c)) c.pooler = c.arch == CT_ARCH_BERT;
    CtModel cm;
    if (ct_model_create(&cm, &c, m->ops, max_B, max_T, recompute) != 0) return -1;
    ct_model_init(&cm, seed);
    for (int i = 0; i < cm.n_tensors; i++)
        for (int j = 0; j < m->n_tensors; j++)
            if (strcmp(cm.table[i].name, m->table[j].name) == 0) {
                CT_CHECK(cm.table[i].numel == m->table[j].numel, "a kept tensor changed its size");
                memcpy(cm.params + cm.table[i].offset, m->params + m->table[j].offset, cm.table[i].numel * sizeof(float));
                break;
            }
    ct_model_free(m);
    *m = cm;
    return 0;
}
