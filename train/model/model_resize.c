#include "train/model/model_resize.h"

#include <string.h>

#include "core/error.h"

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
