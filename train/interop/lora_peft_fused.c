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

// One fused adapter from the adapters [first, last) that share its module (copy 0: scratch of the
// fused shape for reading, the parts' rank each). Returns its rank.
static int fuse_group(const CtModel *m, int first, int last, const char *module, CtPeftFused *f, int64_t rows,
                      int copy) {
    const CtLora *lora = m->lora;
    int R = 0, in = lora->adapters[first].in;
    for (int i = first; i < last; i++) R += copy ? lora->adapters[i].r : 0;
    if (!copy) R = lora->adapters[first].r;
    f->group_first[f->n_groups] = first;
    f->group_last[f->n_groups++] = last;
    float *A = ct_calloc((size_t)R * (size_t)in, sizeof(float)), *B = ct_calloc((size_t)rows * (size_t)R, sizeof(float));
    f->owned[f->n_owned++] = A;
    f->owned[f->n_owned++] = B;
    int col = 0;
    for (int i = first; i < last && copy; i++) {
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

// The adapters of m as PEFT's tensors, the parts of each fused module as one (copy 1: the fused
// values; 0: scratch to read into). ranks: the fused rank of qkv_proj and of gate_up_proj.
static int walk_groups(const CtModel *m, CtPeftFused *f, int copy, int ranks[2]) {
    const CtLora *lora = m->lora;
    const int n_all = ct_lora_n_tensors(lora);
    CtNamedTensor *parts = ct_alloc(sizeof(CtNamedTensor) * (size_t)n_all);
    ct_lora_named_tensors(lora, lora->params, parts);
    f->tensors = ct_alloc(sizeof(CtNamedTensor) * (size_t)n_all);
    f->names = ct_alloc(sizeof *f->names * (size_t)n_all);
    f->owned = ct_calloc((size_t)n_all, sizeof(float *));
    f->group_first = ct_calloc((size_t)lora->n_adapters + 1, sizeof(int));
    f->group_last = ct_calloc((size_t)lora->n_adapters + 1, sizeof(int));
    int rc = 0;
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
        int R = fuse_group(m, i, last, module, f, rows, copy), *seen = &ranks[strstr(fused, "gate_up") != NULL];
        if (*seen && *seen != R)
            rc = ct_error_set("Phi-3 adapters: %s has rank %d where another layer's has %d; PEFT's fused module "
                              "needs one (merge the adapters into the model instead)", module, R, *seen);
        *seen = R;
        i = last;
    }
    for (int i = 2 * lora->n_adapters; i < n_all; i++) f->tensors[f->n++] = parts[i];  // token rows
    ct_free(parts);
    return rc;
}

int ct_peft_fuse_phi3(const CtModel *m, CtPeftConfig *cfg, CtPeftFused *f) {
    const CtLora *lora = m->lora;
    const CtLoraSpec *s = &lora->spec;
    memset(f, 0, sizeof *f);
    if (s->target_regex[0] || s->n_rank_pattern || s->n_alpha_pattern)
        return ct_error_set("Phi-3's PEFT modules fuse q/k/v (qkv_proj) and gate/up (gate_up_proj): ctrain fuses "
                            "adapters of a target list without rank or alpha patterns; merge these adapters into the "
                            "model instead (ctrain lora merge)");
    int ranks[2] = {0, 0};  // the fused rank of qkv_proj and of gate_up_proj
    if (walk_groups(m, f, 1, ranks) != 0) return -1;
    fused_targets(lora->target_modules, cfg->target_modules, sizeof cfg->target_modules);
    const char *keys[2] = {"qkv_proj", "gate_up_proj"};
    for (int k = 0; k < 2; k++)
        if (ranks[k]) add_pattern(cfg, keys[k], ranks[k], lora->scale * (s->rslora ? sqrt(ranks[k]) : ranks[k]));
    return 0;
}

// `text` with every `from` replaced by `to`.
static void replace_all(char *text, size_t size, const char *from, const char *to) {
    char out[4096] = "";
    for (const char *p = text, *hit; *p; p = hit + strlen(from)) {
        hit = strstr(p, from);
        if (!hit) {
            snprintf(out + strlen(out), sizeof out - strlen(out), "%s", p);
            break;
        }
        snprintf(out + strlen(out), sizeof out - strlen(out), "%.*s%s", (int)(hit - p), p, to);
    }
    snprintf(text, size, "%s", out);
}

int ct_peft_unfuse_phi3_config(CtPeftConfig *cfg) {
    if (!strstr(cfg->target_modules, "qkv_proj") && !strstr(cfg->target_modules, "gate_up_proj")) return 0;
    if (!cfg->target_is_regex) {
        replace_all(cfg->target_modules, sizeof cfg->target_modules, "qkv_proj", "q_proj,k_proj,v_proj");
        replace_all(cfg->target_modules, sizeof cfg->target_modules, "gate_up_proj", "gate_proj,up_proj");
    } else {
        replace_all(cfg->target_modules, sizeof cfg->target_modules, "qkv_proj", "[qkv]_proj");
        replace_all(cfg->target_modules, sizeof cfg->target_modules, "gate_up_proj", "(gate|up)_proj");
    }
    CtPeftPattern *lists[2] = {cfg->rank_pattern, cfg->alpha_pattern};
    const int counts[2] = {cfg->n_rank_pattern, cfg->n_alpha_pattern};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < counts[k]; i++) {
            replace_all(lists[k][i].key, sizeof lists[k][i].key, "qkv_proj", "[qkv]_proj");
            replace_all(lists[k][i].key, sizeof lists[k][i].key, "gate_up_proj", "(gate|up)_proj");
        }
    return 1;
}

int ct_peft_fused_want_phi3(const CtModel *m, CtPeftFused *f) {
    memset(f, 0, sizeof *f);
    int ranks[2] = {0, 0};
    return walk_groups(m, f, 0, ranks);
}

void ct_peft_split_phi3(const CtModel *m, const CtPeftFused *f) {
    const CtLora *lora = m->lora;
    for (int g = 0; g < f->n_groups; g++) {
        const float *A = f->owned[2 * g], *B = f->owned[2 * g + 1];
        for (int i = f->group_first[g]; i < f->group_last[g]; i++) {
            const CtLoraAdapter *a = &lora->adapters[i];
            const char *fused;
            int64_t row0, rows;
            part_of(&m->config, a->module, &fused, &row0, &rows);
            memcpy(lora->params + a->a_offset, A, sizeof(float) * (size_t)a->r * (size_t)a->in);
            for (int o = 0; o < a->out; o++)
                memcpy(lora->params + a->b_offset + (size_t)o * a->r, B + (size_t)(row0 + o) * a->r,
                       sizeof(float) * (size_t)a->r);
        }
    }
}

void ct_peft_fused_free(CtPeftFused *f) {
    for (int i = 0; i < f->n_owned; i++) ct_free(f->owned[i]);
    ct_free(f->owned);
    ct_free(f->group_first);
    ct_free(f->group_last);
    ct_free(f->names);
    ct_free(f->tensors);
    memset(f, 0, sizeof *f);
}
