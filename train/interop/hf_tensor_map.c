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

// An expert's projection: "model.layers.L.mlp.experts.X.P.weight" (P gate_proj, up_proj or
// down_proj) -> its layer prefix "model.layers.L." (in *prefix_len), X and which P (0, 1, 2).
static int expert_part(const char *name, int *prefix_len, int *expert, int *part) {
    static const char *const parts[] = {"gate_proj.weight", "up_proj.weight", "down_proj.weight"};
    const char *mlp = strstr(name, "mlp.experts.");
    int layer = 0, n = 0;
    if (!mlp || sscanf(name, "model.layers.%d.%n", &layer, &n) != 1 || name + n != mlp) return 0;
    char rest[64];
    if (sscanf(mlp + strlen("mlp.experts."), "%d.%63s", expert, rest) != 2) return 0;
    for (int i = 0; i < 3; i++)
        if (strcmp(rest, parts[i]) == 0) {
            *prefix_len = n;
            *part = i;
            return 1;
        }
    return 0;
}

// Mixtral's names of an MoE layer's tensors (block_sparse_moe; w1 gate, w3 up, w2 down).
static int mixtral_name(const char *name, char *out, size_t size) {
    int prefix, expert, part;
    static const char *const w[] = {"w1", "w3", "w2"};
    if (expert_part(name, &prefix, &expert, &part)) {
        snprintf(out, size, "%.*sblock_sparse_moe.experts.%d.%s.weight", prefix, name, expert, w[part]);
        return 1;
    }
    const char *router = strstr(name, "mlp.gate.weight");
    if (router && strcmp(router, "mlp.gate.weight") == 0 && strncmp(name, "model.layers.", 13) == 0) {
        snprintf(out, size, "%.*sblock_sparse_moe.gate.weight", (int)(router - name), name);
        return 1;
    }
    return 0;
}

int ct_hf_fused_place_of(const CtModelConfig *c, const CtParamEntry *e, CtHfPlace *p) {
    int prefix, expert, part;
    char saved[128];
    if (c->family == CT_FAMILY_MIXTRAL && !expert_part(e->name, &prefix, &expert, &part) &&
        mixtral_name(e->name, saved, sizeof saved)) {  // the router, under transformers 5's own name
        snprintf(p->name, sizeof p->name, "%s", e->name);
        p->rows = e->shape[0], p->row0 = 0, p->offset = 0, p->experts = 0;
        return 1;
    }
    if (c->n_experts == 0 || !expert_part(e->name, &prefix, &expert, &part)) return 0;
    const int64_t F = c->moe_d_ff, C = c->d_model, E = c->n_experts;
    snprintf(p->name, sizeof p->name, "%.*smlp.experts.%s", prefix, e->name, part < 2 ? "gate_up_proj" : "down_proj");
    p->experts = E;
    p->rows = part < 2 ? E * 2 * F : E * C;
    p->row0 = part < 2 ? expert * 2 * F + part * F : expert * C;
    p->offset = 0;
    return 1;
}

void ct_hf_place_of(const CtModelConfig *c, const CtParamEntry *e, CtHfPlace *p) {
    snprintf(p->name, sizeof p->name, "%s", e->name);
    p->rows = e->shape[0];
    p->row0 = 0;
    p->offset = 0;
    p->experts = 0;
    if (c->family == CT_FAMILY_MIXTRAL && mixtral_name(e->name, p->name, sizeof p->name)) return;
    const char *part, *fused;
    if (c->family == CT_FAMILY_PHI3 && phi3_part(c, e->name, &part, &fused, &p->row0, &p->rows)) {
        size_t prefix = strlen(e->name) - strlen(part);
        snprintf(p->name, sizeof p->name, "%.*s%s", (int)prefix, e->name, fused);
    }
    if ((c->family == CT_FAMILY_GEMMA2 || c->family == CT_FAMILY_GEMMA3) && e->ndim == 1 && ends_with(e->name, "norm.weight"))
        p->offset = 1;
}

int ct_hf_is_mtp_tensor(const CtModelConfig *c, const char *name) {
    int layer = -1;
    if (sscanf(name, "model.layers.%d.", &layer) != 1 && sscanf(name, "transformer.h.%d.", &layer) != 1) return 0;
    return c->mtp_depth > 0 && layer >= c->n_layer;
}

void ct_hf_mtp_shared_name(const CtModelConfig *c, int k, int head, char *out, size_t size) {
    snprintf(out, size, "%s.%d.%s", c->arch == CT_ARCH_GPT2 ? "transformer.h" : "model.layers", c->n_layer + k - 1,
             head ? "shared_head.head.weight" : "embed_tokens.weight");
}
