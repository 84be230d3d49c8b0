// The weights of the Mixture-of-Experts families in Hugging Face folders, without Python: the
// export writes each family's saved names (Mixtral's block_sparse_moe.experts.E.w1/w3/w2,
// the others' mlp.experts.E.gate_proj/up_proj/down_proj, Qwen2-MoE's dense layers, shared expert
// and its gate) and the import reads them back to the bit; transformers 5's in-memory form (each
// layer's experts as 3-D gate_up_proj [E, 2F, C] and down_proj [E, C, F], Mixtral's router as
// mlp.gate) imports as the same parameters; a missing, misshapen or extra expert tensor is
// refused in one line naming the folder or file, the tensor and the problem.
// (config.json's MoE keys: test_hf_families.c; against transformers itself: test_hf_moe_ref.c.)
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoints/safetensors.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "tests/hf_fixture.h"
#include "tests/test.h"
#include "train/interop/hf_interop.h"

enum { MIXTRAL, QWEN2_MOE, QWEN3_MOE, OLMOE, N_FAMILIES };

// A tiny model of each MoE family's shape (2 layers of 16 channels, 4 experts, top 2). Mixtral's
// and OLMoE's config.json have one MLP width, the experts' (intermediate_size): d_ff is theirs.
static CtModelConfig moe_config(int family) {
    CtModelConfig c = hf_fixture_config(CT_ARCH_LLAMA, 0);
    c.n_experts = 4;
    c.top_k = 2;
    c.moe_d_ff = 8;
    c.router = CT_ROUTER_SOFTMAX;
    if (family == MIXTRAL) {
        c.family = CT_FAMILY_MIXTRAL;
        c.router = CT_ROUTER_TOPK_SOFTMAX;
        c.moe_d_ff = c.d_ff = 12;
    } else if (family == QWEN2_MOE) {  // layer 0 dense, layer 1 MoE with a gated shared expert
        c.family = CT_FAMILY_QWEN2_MOE;
        c.qkv_bias = 1;
        c.n_shared_experts = 2;
        c.shared_expert_gate = 1;
        c.moe_layer_freq = 2;
    } else if (family == QWEN3_MOE) {
        c.family = CT_FAMILY_QWEN3_MOE;
        c.router = CT_ROUTER_SOFTMAX_NORM;
        c.qk_norm = 1;
        c.moe_layer_freq = 1;  // decoder_sparse_step 1 reads back as 1 (0, the same: every layer, would not)
    } else {
        c.family = CT_FAMILY_OLMOE;
        c.qk_norm = 2;
        c.n_kv_head = c.n_head;  // ctrain's whole-projection q/k norms
        c.d_ff = c.moe_d_ff;
    }
    return c;
}

// A random checkpoint of `c` as src.h5 (in m, loaded back) exported to the test's folder `name`.
static int export_random(const CtModelConfig *c, const char *name, CtModel *m, CtCheckpointMeta *meta) {
    const char *ckpt = ct_test_path("src.h5");
    CtHfExportOptions opt = {0};
    if (hf_fixture_checkpoint(ckpt, c, 11) != 0 || ct_hf_export(ckpt, ct_test_path(name), &opt) != 0) return -1;
    return hf_fixture_load(ckpt, m, meta);
}

static const CtParamEntry *entry(const CtModel *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m->table[i].name, name) == 0) return &m->table[i];
    return NULL;
}

// Whether dir's model.safetensors holds `name`, with the values of the model's `param` (NULL:
// any values).
static int holds(const char *dir, const char *name, const CtModel *m, const char *param) {
    char path[1200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CtSafetensors f;
    if (ct_st_open(&f, path) != 0) return 0;
    const CtStTensor *t = ct_st_find(&f, name);
    const CtParamEntry *e = param ? entry(m, param) : NULL;
    if (!param) {
        ct_st_close(&f);
        return t != NULL;
    }
    int same = t && e && t->numel == e->numel;
    float *v = same ? ct_alloc(t->numel * sizeof(float)) : NULL;
    same = same && ct_st_read_f32(&f, t, v) == 0 && memcmp(v, m->params + e->offset, e->numel * sizeof(float)) == 0;
    ct_free(v);
    ct_st_close(&f);
    return same;
}

// Imports dir and compares the parameters and shape with m's: 1 when equal to the bit.
static int imports_as(const char *dir, const CtModel *m) {
    CtHfImportOptions opt = {0};
    const char *back = ct_test_path("back.h5");
    if (ct_hf_import(dir, back, &opt) != 0) return 0;
    CtModel b;
    CtCheckpointMeta meta;
    if (hf_fixture_load(back, &b, &meta) != 0) return 0;
    int same = b.n_params == m->n_params && memcmp(&b.config, &m->config, sizeof b.config) == 0 &&
               memcmp(b.params, m->params, m->n_params * sizeof(float)) == 0;
    ct_model_free(&b);
    ct_checkpoint_meta_free(&meta);
    return same;
}

TEST(hf_moe, each_family_exports_under_its_saved_names_and_imports_to_the_bit) {
    ct_log_set_level(CT_LOG_QUIET);
    // per family: a saved name and the parameter it holds, and a name its files never hold
    static const char *const names[N_FAMILIES][5] = {
        {"model.layers.1.block_sparse_moe.experts.2.w3.weight", "model.layers.1.mlp.experts.2.up_proj.weight",
         "model.layers.0.block_sparse_moe.gate.weight", "model.layers.0.mlp.gate.weight",
         "model.layers.1.mlp.experts.2.up_proj.weight"},
        {"model.layers.1.mlp.shared_expert.down_proj.weight", "model.layers.1.mlp.shared_expert.down_proj.weight",
         "model.layers.1.mlp.shared_expert_gate.weight", "model.layers.1.mlp.shared_expert_gate.weight",
         "model.layers.0.mlp.experts.0.up_proj.weight"},
        {"model.layers.0.mlp.experts.3.down_proj.weight", "model.layers.0.mlp.experts.3.down_proj.weight",
         "model.layers.1.self_attn.k_norm.weight", "model.layers.1.self_attn.k_norm.weight",
         "model.layers.0.mlp.experts.gate_up_proj"},
        {"model.layers.1.mlp.experts.0.gate_proj.weight", "model.layers.1.mlp.experts.0.gate_proj.weight",
         "model.layers.0.self_attn.q_norm.weight", "model.layers.0.self_attn.q_norm.weight",
         "model.layers.0.mlp.gate_proj.weight"},
    };
    for (int f = 0; f < N_FAMILIES; f++) {
        CtModelConfig c = moe_config(f);
        CtModel m;
        CtCheckpointMeta meta;
        char name[32];
        snprintf(name, sizeof name, "hf-%d", f);
        CHECK_MSG(export_random(&c, name, &m, &meta) == 0, "%s: %s", ct_family_name(c.family), ct_error_message());
        char dir[1024];
        snprintf(dir, sizeof dir, "%s", ct_test_path(name));
        CHECK_MSG(holds(dir, names[f][0], &m, names[f][1]) && holds(dir, names[f][2], &m, names[f][3]),
                  "%s: the export does not hold %s and %s as ctrain's %s and %s", ct_family_name(c.family),
                  names[f][0], names[f][2], names[f][1], names[f][3]);
        CHECK_MSG(!holds(dir, names[f][4], &m, NULL), "%s: the export holds %s", ct_family_name(c.family),
                  names[f][4]);
        if (f == QWEN2_MOE) {  // the dense layer keeps its MLP, d_ff wide
            CHECK(holds(dir, "model.layers.0.mlp.up_proj.weight", &m, "model.layers.0.mlp.up_proj.weight"));
            CHECK(entry(&m, "model.layers.0.mlp.up_proj.weight")->shape[0] == c.d_ff);
        }
        CHECK_MSG(imports_as(dir, &m), "%s: the import of the export is not the model: %s", ct_family_name(c.family),
                  ct_error_message());
        ct_model_free(&m);
        ct_checkpoint_meta_free(&meta);
    }
}

// Rewrites dir/model.safetensors with m's parameters in transformers 5's in-memory form: the
// experts of each MoE layer as 3-D mlp.experts.gate_up_proj [E, 2F, C] (expert e's gate rows,
// then its up rows) and mlp.experts.down_proj [E, C, F]; every other tensor under ctrain's name
// (which is that form's: Mixtral's router is mlp.gate there). `drop`: a tensor left out (NULL:
// none); `extra`: a tensor added with the values of the first parameter (NULL: none).
static int write_fused(const char *dir, const CtModel *m, const char *drop, const char *extra) {
    const CtModelConfig *c = &m->config;
    const int64_t E = c->n_experts, F = c->moe_d_ff, C = c->d_model;
    CtNamedTensor *all = ct_calloc((size_t)m->n_tensors + 2 * (size_t)c->n_layer + 1, sizeof *all);
    ct_model_named_tensors(m, 0, all);
    int n = 0;
    for (int i = 0; i < m->n_tensors; i++)  // everything but the per-expert tensors
        if (!strstr(all[i].name, ".mlp.experts.") && !(drop && strcmp(all[i].name, drop) == 0)) all[n++] = all[i];
    static char names[16][64];
    float *fused = ct_alloc((size_t)(c->n_layer * E * 3 * F * C) * sizeof(float));
    for (int l = 0; l < c->n_layer; l++) {
        if (!ct_model_layer_is_moe(c, l)) continue;
        float *gate_up = fused + (size_t)(l * E * 3 * F * C), *down = gate_up + E * 2 * F * C;
        for (int e = 0; e < E; e++) {
            const char *parts[] = {"gate_proj", "up_proj", "down_proj"};
            float *dst[] = {gate_up + (e * 2) * F * C, gate_up + (e * 2 + 1) * F * C, down + e * C * F};
            for (int p = 0; p < 3; p++) {
                char name[128];
                snprintf(name, sizeof name, "model.layers.%d.mlp.experts.%d.%s.weight", l, e, parts[p]);
                const CtParamEntry *pe = entry(m, name);
                memcpy(dst[p], m->params + pe->offset, pe->numel * sizeof(float));
            }
        }
        for (int p = 0; p < 2; p++) {
            snprintf(names[2 * l + p], sizeof names[0], "model.layers.%d.mlp.experts.%s", l,
                     p ? "down_proj" : "gate_up_proj");
            if (drop && strcmp(names[2 * l + p], drop) == 0) continue;
            all[n++] = (CtNamedTensor){.name = names[2 * l + p], .ndim = 3, .shape = {E, p ? C : 2 * F, p ? F : C},
                                       .dtype = CT_DTYPE_F32, .data = p ? down : gate_up};
        }
    }
    if (extra) all[n++] = (CtNamedTensor){.name = extra, .ndim = 1, .shape = {4}, .dtype = CT_DTYPE_F32,
                                          .data = m->params};
    char path[1200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int rc = ct_st_write(path, all, n, NULL, 0);
    ct_free(fused);
    ct_free(all);
    return rc;
}

// A checkpoint saved from a transformers 5 model's state_dict holds the fused form: its experts
// are row ranges of the 3-D tensors, and the import reads them to the bit (Mixtral: the router
// under mlp.gate too; Qwen2-MoE: beside a dense layer and the shared expert, which stay 2-D).
TEST(hf_moe, experts_fused_as_transformers_5_holds_them_import_to_the_bit) {
    ct_log_set_level(CT_LOG_QUIET);
    for (int f = 0; f < N_FAMILIES; f++) {
        CtModelConfig c = moe_config(f);
        CtModel m;
        CtCheckpointMeta meta;
        char name[32], dir[1024];
        snprintf(name, sizeof name, "fused-%d", f);
        snprintf(dir, sizeof dir, "%s", ct_test_path(name));
        CHECK_MSG(export_random(&c, name, &m, &meta) == 0, "%s", ct_error_message());
        CHECK_MSG(write_fused(dir, &m, NULL, NULL) == 0, "%s", ct_error_message());
        CHECK_MSG(holds(dir, "model.layers.1.mlp.experts.gate_up_proj", &m, NULL) &&
                      !holds(dir, "model.layers.1.mlp.experts.0.gate_proj.weight", &m, NULL),
                  "the rewritten folder is not in the fused form");
        CHECK_MSG(imports_as(dir, &m), "%s: the fused experts import as other parameters: %s",
                  ct_family_name(c.family), ct_error_message());
        ct_model_free(&m);
        ct_checkpoint_meta_free(&meta);
    }
}

// The import's error for dir: one line that holds `needle`.
static const char *import_error(const char *dir) {
    CtHfImportOptions opt = {0};
    if (ct_hf_import(dir, ct_test_path("refused.h5"), &opt) == 0) return "(imported)";
    return ct_error_message();
}

#define CHECK_IMPORT_REFUSED(dir, needle)                      \
    do {                                                       \
        const char *m_ = import_error(dir);                    \
        CHECK_CONTAINS(m_, needle);                            \
        CHECK_MSG(!strchr(m_, '\n'), "not one line: %s", m_);  \
    } while (0)

// Sets the key of config.json in the test's folder `name` to an integer.
static int set_config_int(const char *name, const char *key, int value) {
    char path[1200];
    snprintf(path, sizeof path, "%s/config.json", name);
    char *text = ct_test_read(ct_test_path(path), NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!root) return -1;
    cJSON_ReplaceItemInObjectCaseSensitive(root, key, cJSON_CreateNumber(value));
    char *out = cJSON_Print(root);
    ct_test_write(path, out);
    free(out);
    cJSON_Delete(root);
    return 0;
}

TEST(hf_moe, missing_misshapen_or_extra_expert_tensors_are_refused_naming_the_tensor) {
    ct_log_set_level(CT_LOG_QUIET);
    CtModelConfig c = moe_config(MIXTRAL);
    CtModel m;
    CtCheckpointMeta meta;
    CHECK_MSG(export_random(&c, "mixtral", &m, &meta) == 0, "%s", ct_error_message());
    char dir[1024], want[2048];
    snprintf(dir, sizeof dir, "%s", ct_test_path("mixtral"));
    // an expert's projection left out of the saved files: named as Mixtral's files name it
    CHECK(write_fused(dir, &m, "model.layers.1.mlp.experts.down_proj", NULL) == 0);
    snprintf(want, sizeof want, "%s: tensor 'model.layers.1.block_sparse_moe.experts.0.w2.weight' is missing from "
                                "model.safetensors (and so is 'model.layers.1.mlp.experts.down_proj', transformers "
                                "5's in-memory form that would hold it)", dir);
    CHECK_IMPORT_REFUSED(dir, want);
    // an expert beyond num_local_experts has no place
    CHECK(write_fused(dir, &m, NULL, "model.layers.0.mlp.experts.4.gate_proj.weight") == 0);
    CHECK_IMPORT_REFUSED(dir, "model.safetensors: tensor 'model.layers.0.mlp.experts.4.gate_proj.weight' has no place "
                              "in a llama model of this config (ctrain would drop it)");
    // experts fused 3-D whose width is not the config's
    CHECK(write_fused(dir, &m, NULL, NULL) == 0 && set_config_int("mixtral", "intermediate_size", 10) == 0);
    snprintf(want, sizeof want, "model.safetensors: tensor 'model.layers.0.mlp.experts.gate_up_proj' has shape "
                                "[4, 24, 16]; %s/config.json implies [4, 20, 16]", dir);
    CHECK_IMPORT_REFUSED(dir, want);
    // a per-expert tensor of another shape, and a router for other experts
    CtModelConfig q = moe_config(QWEN3_MOE);
    CtModel m3;
    CtCheckpointMeta meta3;
    CHECK_MSG(export_random(&q, "qwen3_moe", &m3, &meta3) == 0, "%s", ct_error_message());
    snprintf(dir, sizeof dir, "%s", ct_test_path("qwen3_moe"));
    CHECK(set_config_int("qwen3_moe", "moe_intermediate_size", 6) == 0);
    snprintf(want, sizeof want, "model.safetensors: tensor 'model.layers.0.mlp.experts.0.gate_proj.weight' has shape "
                                "[8, 16]; %s/config.json implies [6, 16]", dir);
    CHECK_IMPORT_REFUSED(dir, want);
    CHECK(set_config_int("qwen3_moe", "moe_intermediate_size", 8) == 0 &&
          set_config_int("qwen3_moe", "num_experts", 3) == 0);
    snprintf(want, sizeof want, "model.safetensors: tensor 'model.layers.0.mlp.gate.weight' has shape [4, 16]; "
                                "%s/config.json implies [3, 16]", dir);
    CHECK_IMPORT_REFUSED(dir, want);
    ct_model_free(&m);
    ct_checkpoint_meta_free(&meta);
    ct_model_free(&m3);
    ct_checkpoint_meta_free(&meta3);
}
