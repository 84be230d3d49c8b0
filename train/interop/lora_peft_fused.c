// See lora_peft_fused.h.
#include "train/interop/lora_peft_fused.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "train/model/lora.h"

// The fused module of a part: its suffix, the fused one's, and the part's first row in it.
static int part_of(const CtModelConfig *c, const char *module, const char **fused, int64_t *row0, int64_t *rows) {
    static const char *const parts[] = {".self_attn.q_proj", ".self_attn.k_proj", ".self_attn.v_proj",
                                        ".mlp.gate_proj", ".mlp.up_proj"};
    const int64_t q = (int64_t)c->n_head * ct_model_head_dim(c), kv = ct_model_kv_width(c), F = c->d_ff;
    const int64_t starts[] = {0, q, q + kv, 0, F};
    size_t n = strlen(module);
    for (int i = 0; i < 5; i++) {
        size_t m = strlen(parts[i]);
        if (n >= m && strcmp(module + n - m, parts[i]) == 0) {
            *fused = i < 3 ? ".self_attn.qkv_proj" : ".mlp.gate_up_proj";
            *row0 = starts[i];
            *rows = i < 3 ? q + 2 * kv : 2 * F;
            return (int)(n - m);  // the prefix length ("model.layers.N")
        }
    }
    return -1;
}

// target_modules with the parts' names replaced by the fused modules' (each once).
static void fused_targets(const char *in, char *out, size_t size) {
    char list[4096];
    snprintf(list, sizeof list, "%s", in);
    out[0] = '\0';
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        const char *name = t;
        if (!strcmp(t, "q_proj") || !strcmp(t, "k_proj") || !strcmp(t, "v_proj")) name = "qkv_proj";
        if (!strcmp(t, "gate_proj") || !strcmp(t, "up_proj")) name = "gate_up_proj";
        char padded[4200], word[160];
        snprintf(padded, sizeof padded, ",%s,", out);
        snprintf(word, sizeof word, ",%s,", name);
        if (!strstr(padded, word)) snprintf(out + strlen(out), size - strlen(out), "%s%s", out[0] ? "," : "", name);
    }
}

static void add_pattern(CtPeftConfig *cfg, const char *key, int rank, double alpha) {
    snprintf(cfg->rank_pattern[cfg->n_rank_pattern].key, sizeof cfg->rank_pattern[0].key, "%s", key);
    cfg->rank_pattern[cfg->n_rank_pattern++].value = rank;
    snprintf(cfg->alpha_pattern[cfg->n_alpha_pattern].key, sizeof cfg->alpha_pattern[0].key, "%s", key);
    cfg->alpha_pattern[cfg->n_alpha_pattern++].value = alpha;
}

// One fused adapter from the adapters [first, last) that share its module. Returns its rank.
static int fuse_group(const CtModel *m, int first, int last, const char *module, CtPeftFused *f, int64_t rows) {
    const CtLora *lora = m->lora;
    int R = 0, in = lora->adapters[first].in;
    for (int i = first; i < last; i++) R += lora->adapters[i].r;
    float *A = ct_calloc((size_t)R * (size_t)in, sizeof(float)), *B = ct_calloc((size_t)rows * (size_t)R, sizeof(float));
    f->owned[f->n_owned++] = A;
    f->owned[f->n_owned++] = B;
    int col = 0;
    for (int i = first; i < last; i++) {
        const CtLoraAdapter *a = &lora->adapters[i];
        const char *fused;
        int64_t row0, total;
        part_of(&m->config, a->module, &fused, &row0, &total);
        memcpy(A + (size_t)col * in, lora->params + a->a_offset, sizeof(float) * (size_t)a->r * (size_t)in);
        for (int o = 0; o < a->out; o++)
            memcpy(B + (size_t)(row0 + o) * R + col, lora->params + a->b_offset + (size_t)o * a->r,
                   sizeof(float) * (size_t)a->r);
        col += a->r;
    }
    for (int k = 0; k < 2; k++) {
        char *name = f->names[f->n];
        snprintf(name, sizeof f->names[0], "%s.lora_%c.weight", module, k ? 'B' : 'A');
        f->tensors[f->n] = (CtNamedTensor){.name = name, .ndim = 2, .dtype = CT_DTYPE_F32, .data = k ? B : A};
        f->tensors[f->n].shape[0] = k ? rows : R;
        f->tensors[f->n].shape[1] = k ? R : in;
        f->n++;
    }
    return R;
}

int ct_peft_fuse_phi3(const CtModel *m, CtPeftConfig *cfg, CtPeftFused *f) {
    const CtLora *lora = m->lora;
    const CtLoraSpec *s = &lora->spec;
    memset(f, 0, sizeof *f);
    if (s->target_regex[0] || s->n_rank_pattern || s->n_alpha_pattern)
        return ct_error_set("Phi-3's PEFT modules fuse q/k/v (qkv_proj) and gate/up (gate_up_proj): ctrain fuses "
                            "adapters of a target list without rank or alpha patterns; merge these adapters into the "
                            "model instead (ctrain lora merge)");
    const int n_all = ct_lora_n_tensors(lora);
    CtNamedTensor *parts = ct_alloc(sizeof(CtNamedTensor) * (size_t)n_all);
    ct_lora_named_tensors(lora, lora->params, parts);
    f->tensors = ct_alloc(sizeof(CtNamedTensor) * (size_t)n_all);
    f->names = ct_alloc(sizeof *f->names * (size_t)n_all);
    f->owned = ct_calloc((size_t)n_all, sizeof(float *));
    int ranks[2] = {0, 0}, rc = 0;  // the fused rank of qkv_proj and of gate_up_proj
    for (int i = 0; i < lora->n_adapters && rc == 0;) {
        const char *fused;
        int64_t row0, rows;
        int prefix = part_of(&m->config, lora->adapters[i].module, &fused, &row0, &rows);
        if (prefix < 0) {  // not a part: as it is
            f->tensors[f->n++] = parts[2 * i];
            f->tensors[f->n++] = parts[2 * i + 1];
            i++;
            continue;
        }
        char module[128];
        snprintf(module, sizeof module, "%.*s%s", prefix, lora->adapters[i].module, fused);
        int last = i + 1;  // the parts of one fused module are adjacent adapters
        for (const char *g; last < lora->n_adapters; last++) {
            int64_t r0, n_rows;
            int p = part_of(&m->config, lora->adapters[last].module, &g, &r0, &n_rows);
            if (p != prefix || strncmp(lora->adapters[last].module, module, (size_t)prefix) != 0 || strcmp(g, fused) != 0)
                break;
        }
        int R = fuse_group(m, i, last, module, f, rows), *seen = &ranks[strstr(fused, "gate_up") != NULL];
        if (*seen && *seen != R)
            rc = ct_error_set("Phi-3 adapters: %s has rank %d where another layer's has %d; PEFT's fused module "
                              "needs one (merge the adapters into the model instead)", module, R, *seen);
        *seen = R;
        i = last;
    }
    for (int i = 2 * lora->n_adapters; i < n_all; i++) f->tensors[f->n++] = parts[i];  // token rows
    ct_free(parts);
    if (rc != 0) return -1;
    fused_targets(lora->target_modules, cfg->target_modules, sizeof cfg->target_modules);
    const char *keys[2] = {"qkv_proj", "gate_up_proj"};
    for (int k = 0; k < 2; k++)
        if (ranks[k]) add_pattern(cfg, keys[k], ranks[k], lora->scale * (s->rslora ? sqrt(ranks[k]) : ranks[k]));
    return 0;
}

void ct_peft_fused_free(CtPeftFused *f) {
    for (int i = 0; i < f->n_owned; i++) ct_free(f->owned[i]);
    ct_free(f->owned);
    ct_free(f->names);
    ct_free(f->tensors);
    memset(f, 0, sizeof *f);
}
