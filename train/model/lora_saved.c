// The classification head trained in full beside LoRA adapters (PEFT's modules_to_save). See
// train/model/lora_saved.h.
#include "train/model/lora_saved.h"

#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "train/model/lora_hooks.h"
#include "train/model/model_internal.h"

// A tensor's module is saved when the module or one of its parents (the name up to a '.') ends
// with an entry, as PEFT's _set_trainable matches (key.endswith(target_key), no '.' asked).
static int module_saved(const char *tensor, const char *list) {
    char module[96];
    snprintf(module, sizeof module, "%s", tensor);
    char *dot = strrchr(module, '.');  // the parameter's own name ("weight") is not a module
    if (!dot) return 0;
    *dot = '\0';
    for (;;) {
        const size_t len = strlen(module);
        for (const char *p = list; *p;) {
            const char *comma = strchr(p, ',');
            const size_t n = comma ? (size_t)(comma - p) : strlen(p);
            if (n && n <= len && strncmp(module + len - n, p, n) == 0) return 1;
            p += n + (comma ? 1 : 0);
        }
        if (!(dot = strrchr(module, '.'))) return 0;
        *dot = '\0';
    }
}

// The classification head's tensors (model_classify.c reads them): those a saved module may hold.
static int is_head_tensor(const CtModel *m, size_t offset) {
    const CtModelTensors *w = &m->w;
    if (!m->config.num_labels && !m->config.reward_head) return 0;
    const float *head[] = {w->pooler_w, w->pooler_b, w->cls_dense_w, w->cls_dense_b, w->cls_out_w, w->cls_out_b, w->score};
    for (size_t i = 0; i < sizeof head / sizeof head[0]; i++)
        if (head[i] && (size_t)(head[i] - m->dev_params) == offset) return 1;
    return 0;
}

int ct_lora_saved_check(const CtModel *m, const CtLoraSpec *spec) {
    const char *list = spec->modules_to_save;
    if (!list[0]) return 0;
    int n = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const CtParamEntry *e = &m->table[i];
        if (!module_saved(e->name, list)) continue;
        if (!is_head_tensor(m, e->offset))
            return ct_error_set("lora: modules_to_save '%s' matches %s: ctrain trains the classification head in full "
                                "beside the adapters (classifier, score, pooler), not other modules%s", list, e->name,
                                m->config.num_labels || m->config.reward_head ? "" : " (this model has no classification head)");
        n++;
    }
    if (n > CT_LORA_MAX_SAVED) return ct_error_set("lora: modules_to_save matches %d tensors, at most %d", n, CT_LORA_MAX_SAVED);
    if (!n)
        return ct_error_set("lora: modules_to_save '%s' matches nothing in this %s model%s", list,
                            ct_arch_name(m->config.arch),
                            m->config.num_labels || m->config.reward_head
                                ? ""
                                : " (it has no classification head: a sequence classifier's adapters need the base with "
                                  "its classifier)");
    return 0;
}

void ct_lora_saved_layout(CtModel *m, size_t *at) {
    CtLoraSaved *s = &m->lora->saved;
    memset(s, 0, sizeof *s);
    if (!m->lora->spec.modules_to_save[0]) return;
    for (int i = 0; i < m->n_tensors && s->n < CT_LORA_MAX_SAVED; i++) {
        const CtParamEntry *e = &m->table[i];
        if (!module_saved(e->name, m->lora->spec.modules_to_save)) continue;
        snprintf(s->t[s->n].name, sizeof s->t[s->n].name, "%s", e->name);
        s->t[s->n].base_offset = e->offset;
        s->t[s->n].offset = *at;
        s->t[s->n].numel = e->numel;
        s->t[s->n].ndim = e->ndim;
        memcpy(s->t[s->n].shape, e->shape, sizeof e->shape);
        *at += e->numel;
        s->n++;
    }
}

void ct_lora_saved_init(CtModel *m) {
    const CtLoraSaved *s = &m->lora->saved;
    for (int i = 0; i < s->n; i++)
        memcpy(m->lora->params + s->t[i].offset, m->params + s->t[i].base_offset, s->t[i].numel * sizeof(float));
}

void ct_lora_saved_merge(CtModel *m) {
    const CtLoraSaved *s = &m->lora->saved;
    for (int i = 0; i < s->n; i++)
        memcpy(m->params + s->t[i].base_offset, m->lora->params + s->t[i].offset, s->t[i].numel * sizeof(float));
}

const float *ct_lora_saved_tensor(const CtModel *m, const float *base, float **grad) {
    const CtLoraSaved *s = m->lora ? &m->lora->saved : NULL;
    for (int i = 0; s && base && i < s->n; i++)
        if ((size_t)(base - m->dev_params) == s->t[i].base_offset) {
            *grad = m->lora->dev_grads ? m->lora->dev_grads + s->t[i].offset : NULL;
            return m->lora->dev_params + s->t[i].offset;
        }
    return base;
}

int ct_lora_saved_n_tensors(const CtLora *lora) { return lora->saved.n; }

void ct_lora_saved_named_tensors(const CtLora *lora, const float *buffer, CtNamedTensor *out) {
    const CtLoraSaved *s = &lora->saved;
    for (int i = 0; i < s->n; i++) {
        out[i] = (CtNamedTensor){.name = s->t[i].name, .ndim = s->t[i].ndim, .dtype = CT_DTYPE_F32,
                                 .data = (void *)(buffer + s->t[i].offset)};
        memcpy(out[i].shape, s->t[i].shape, sizeof s->t[i].shape);
    }
}

size_t ct_lora_saved_numel(const CtLora *lora) {
    size_t n = 0;
    for (int i = 0; i < lora->saved.n; i++) n += lora->saved.t[i].numel;
    return n;
}
