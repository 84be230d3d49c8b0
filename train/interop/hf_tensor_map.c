// See hf_tensor_map.h.
#include "train/interop/hf_tensor_map.h"

#include <stdio.h>
#include <string.h>

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

// Phi-3's fused tensors: the part's suffix, the fused tensor's suffix, and where the part starts.
static int phi3_part(const CtModelConfig *c, const char *name, const char **part, const char **fused, int64_t *row0,
                     int64_t *rows) {
    const int64_t q = (int64_t)c->n_head * ct_model_head_dim(c), kv = ct_model_kv_width(c), F = c->d_ff;
    static const char *const parts[] = {"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
                                        "mlp.gate_proj.weight", "mlp.up_proj.weight"};
    const int64_t starts[] = {0, q, q + kv, 0, F};
    for (int i = 0; i < 5; i++)
        if (ends_with(name, parts[i])) {
            *part = parts[i];
            *fused = i < 3 ? "self_attn.qkv_proj.weight" : "mlp.gate_up_proj.weight";
            *row0 = starts[i];
            *rows = i < 3 ? q + 2 * kv : 2 * F;
            return 1;
        }
    return 0;
}

void ct_hf_place_of(const CtModelConfig *c, const CtParamEntry *e, CtHfPlace *p) {
    snprintf(p->name, sizeof p->name, "%s", e->name);
    p->rows = e->shape[0];
    p->row0 = 0;
    p->offset = 0;
    const char *part, *fused;
    if (c->family == CT_FAMILY_PHI3 && phi3_part(c, e->name, &part, &fused, &p->row0, &p->rows)) {
        size_t prefix = strlen(e->name) - strlen(part);
        snprintf(p->name, sizeof p->name, "%.*s%s", (int)prefix, e->name, fused);
    }
    if ((c->family == CT_FAMILY_GEMMA2 || c->family == CT_FAMILY_GEMMA3) && e->ndim == 1 && ends_with(e->name, "norm.weight"))
        p->offset = 1;
}
