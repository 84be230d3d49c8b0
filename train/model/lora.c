// LoRA adapters in the model: which linear modules exist per family, matching PEFT's
// target_modules against them, the adapter buffer, initialisation, the forward/backward hooks
// and merging. See train/model/lora.h.
#include "train/model/lora.h"
#include "train/model/model_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/checksum.h"
#include "core/error.h"
#include "core/log.h"
#include "core/pyregex.h"
#include "core/rng.h"
#include "train/model/lora_saved.h"
#include "train/model/lora_targets.h"
#include "train/model/lora_tokens.h"

// One linear module of a block, as Hugging Face names it (relative to the block's prefix), or
// (experts > 0) one of an MoE layer's fused expert parameters, which PEFT adapts through
// target_parameters: transformers 5 holds experts.gate_up_proj [E, 2F', C] and experts.down_proj
// [E, C, F'] as 3-D parameters (Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE alike).
typedef struct {
    const char *name;
    CtLoraSite site;
    int col0, out, in, out_stride;
    int hf_transposed;
    int experts;
} Module;

#define MAX_LAYER_MODULES 12

// The linear modules of block l, in forward order, then its expert parameters. Returns the
// count (at most MAX_LAYER_MODULES).
static int block_modules(const CtModelConfig *c, int l, Module *mods) {
    const int C = c->d_model, F = c->d_ff, QKV = ct_model_qkv_width(c), FI = ct_model_fc_width(c);
    if (ct_model_is_encoder(c)) {  // BERT/RoBERTa: query|key|value fused here, nn.Linear each in HF
        mods[0] = (Module){"attention.self.query", CT_LORA_QKV, 0, C, C, QKV, 0, 0};
        mods[1] = (Module){"attention.self.key", CT_LORA_QKV, C, C, C, QKV, 0, 0};
        mods[2] = (Module){"attention.self.value", CT_LORA_QKV, 2 * C, C, C, QKV, 0, 0};
        mods[3] = (Module){"attention.output.dense", CT_LORA_ATTN_OUT, 0, C, C, C, 0, 0};
        mods[4] = (Module){"intermediate.dense", CT_LORA_FC, 0, F, C, FI, 0, 0};
        mods[5] = (Module){"output.dense", CT_LORA_FC_OUT, 0, C, F, C, 0, 0};
        return 6;
    }
    if (c->arch == CT_ARCH_GPT2) {
        mods[0] = (Module){"attn.c_attn", CT_LORA_QKV, 0, QKV, C, QKV, 1, 0};
        mods[1] = (Module){"attn.c_proj", CT_LORA_ATTN_OUT, 0, C, C, C, 1, 0};
        mods[2] = (Module){"mlp.c_fc", CT_LORA_FC, 0, F, C, FI, 1, 0};
        mods[3] = (Module){"mlp.c_proj", CT_LORA_FC_OUT, 0, C, F, C, 1, 0};
        return 4;
    }
    const int Q = c->n_head * ct_model_head_dim(c), KV = ct_model_kv_width(c);
    int n = 0;
    mods[n++] = (Module){"self_attn.q_proj", CT_LORA_QKV, 0, Q, C, QKV, 0, 0};
    mods[n++] = (Module){"self_attn.k_proj", CT_LORA_QKV, Q, KV, C, QKV, 0, 0};
    mods[n++] = (Module){"self_attn.v_proj", CT_LORA_QKV, Q + KV, KV, C, QKV, 0, 0};
    mods[n++] = (Module){"self_attn.o_proj", CT_LORA_ATTN_OUT, 0, C, Q, C, 0, 0};
    if (!ct_model_layer_is_moe(c, l)) {
        mods[n++] = (Module){"mlp.gate_proj", CT_LORA_FC, 0, F, C, FI, 0, 0};
        mods[n++] = (Module){"mlp.up_proj", CT_LORA_FC, F, F, C, FI, 0, 0};
        mods[n++] = (Module){"mlp.down_proj", CT_LORA_FC_OUT, 0, C, F, C, 0, 0};
        return n;
    }
    const int E = c->n_experts, FM = c->moe_d_ff, FS = c->n_shared_experts * c->moe_d_ff;
    if (FS > 0) {  // the shared expert: nn.Linear modules in HF (gate|up fused in ctrain)
        mods[n++] = (Module){"mlp.shared_expert.gate_proj", CT_LORA_SHARED_FC, 0, FS, C, 2 * FS, 0, 0};
        mods[n++] = (Module){"mlp.shared_expert.up_proj", CT_LORA_SHARED_FC, FS, FS, C, 2 * FS, 0, 0};
        mods[n++] = (Module){"mlp.shared_expert.down_proj", CT_LORA_SHARED_FC_OUT, 0, C, FS, C, 0, 0};
    }
    if (c->shared_expert_gate) mods[n++] = (Module){"mlp.shared_expert_gate", CT_LORA_SHARED_GATE, 0, 1, C, 1, 0, 0};
    mods[n++] = (Module){"mlp.experts.gate_up_proj", CT_LORA_EXPERTS_GATE_UP, 0, 2 * FM, C, 2 * FM, 0, E};
    mods[n++] = (Module){"mlp.experts.down_proj", CT_LORA_EXPERTS_DOWN, 0, C, FM, C, 0, E};
    return n;
}

// A multi-token prediction module's own linear layer (model_mtp.c), adaptable by name as PEFT
// would adapt DeepSeek-V3's eh_proj (nn.Linear(2C, C, bias=False)); its block's are block_modules'.
static Module eh_proj_module(const CtModelConfig *c) {
    return (Module){"eh_proj", CT_LORA_EH_PROJ, 0, c->d_model, 2 * c->d_model, c->d_model, 0, 0};
}

// The part of a module name after its last '.' ("q_proj" of "self_attn.q_proj", "eh_proj" itself).
static const char *short_name(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot ? dot + 1 : name;
}

static const char *block_prefix(const CtModelConfig *c) {
    if (ct_model_is_encoder(c)) return c->arch == CT_ARCH_ROBERTA ? "roberta.encoder.layer" : "bert.encoder.layer";
    return c->arch == CT_ARCH_GPT2 ? "transformer.h" : "model.layers";
}

// PEFT's scale of one module: alpha/r, or alpha/√r with rslora.
static float module_scale(const CtLoraSpec *spec, int r, double alpha) {
    return (float)(spec->rslora ? alpha / sqrt((double)r) : alpha / (double)r);
}

// PEFT's defaults (TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING) when no target is given.
static const char *default_targets(const CtModelConfig *c) {
    if (ct_model_is_encoder(c)) return "query,value";
    return c->arch == CT_ARCH_GPT2 ? "c_attn" : "q_proj,v_proj";
}

float ct_lora_scale(const CtLoraSpec *spec) { return module_scale(spec, spec->r, spec->alpha); }

static int in_layer_list(const CtLoraSpec *spec, int layer) {
    for (int i = 0; i < spec->n_layers; i++)
        if (spec->layers[i] == layer) return 1;
    return 0;
}

// One A and B for a module's adapter, one per expert for an expert parameter's.
static size_t adapter_copies(const CtLoraAdapter *a) { return (size_t)(a->n_experts ? a->n_experts : 1); }

// Rows of an adapter's saved x·Aᵀ: a module's sees every token once, an expert parameter's the
// N·top_k sorted rows.
static size_t adapter_rows(const CtModel *m, const CtLoraAdapter *a) {
    return (size_t)m->max_B * m->max_T * (size_t)(a->n_experts ? m->config.top_k : 1);
}

// The forward's saved x·Aᵀ, backward's dh and dropout's scratch, in the memory of `ops`. dh holds
// one product's rows at a time: N tokens, or one expert's rows (each token picks an expert once).
static void alloc_scratch(CtModel *m, const CtOps *ops) {
    CtLora *lora = m->lora;
    const size_t rows = (size_t)m->max_B * m->max_T, A = ops->act_bytes;
    size_t saved = 0;
    for (int i = 0; i < lora->n_adapters; i++) saved += adapter_rows(m, &lora->adapters[i]) * lora->adapters[i].r;
    lora->h_block = ops->alloc((saved ? saved : 1) * A, "LoRA saved activations");
    lora->dh = ops->alloc(rows * (size_t)(lora->max_r ? lora->max_r : 1) * A, "LoRA backward scratch");
    if (lora->spec.dropout > 0) {  // scratch for dropout(x) and its gradient, as wide as the widest input
        int widest = 0;
        for (int i = 0; i < lora->n_adapters; i++)
            if (lora->adapters[i].in > widest) widest = lora->adapters[i].in;
        lora->xd = ops->alloc(rows * (size_t)widest * A, "LoRA dropout scratch");
        lora->dxd = ops->alloc(rows * (size_t)widest * A, "LoRA dropout scratch");
    }
    size_t at = 0;
    for (int i = 0; i < lora->n_adapters; i++) {
        lora->adapters[i].h = ct_act_at(A, lora->h_block, at);
        at += adapter_rows(m, &lora->adapters[i]) * lora->adapters[i].r;
    }
    ct_lora_tokens_alloc(m, ops);
}

static void free_scratch(CtLora *lora, const CtOps *ops) {
    ct_lora_tokens_free(lora, ops);
    ops->free(lora->h_block);
    ops->free(lora->dh);
    ops->free(lora->xd);
    ops->free(lora->dxd);
    lora->h_block = lora->dh = lora->xd = lora->dxd = NULL;
}

// A linear module of the model by its full Hugging Face name.
typedef struct {
    Module mod;
    int layer;
    char full[128];
} Linear;

// The list entries of `list` (comma-separated) in turn: fn(entry, ctx) for each non-empty one;
// the first non-zero return stops the walk and is returned.
static int for_each_entry(const char *list, int (*fn)(const char *entry, void *ctx), void *ctx) {
    for (const char *p = list; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char entry[512];
        snprintf(entry, sizeof entry, "%.*s", (int)len, p);
        p += len + (comma ? 1 : 0);
        int rc = entry[0] ? fn(entry, ctx) : 0;
        if (rc) return rc;
    }
    return 0;
}

typedef struct {
    const CtModelConfig *c;
    const Linear *lin;
    int n;
} Choice;

// The full name of the first module (experts 0) or expert parameter (experts 1), for errors.
static const char *lin_example(const Choice *ch, int experts) {
    for (int i = 0; i < ch->n; i++)
        if ((ch->lin[i].mod.experts > 0) == experts) return ch->lin[i].full;
    return "";
}

// Names (comma-separated, layer 0's or the first MoE layer's) of the model's modules (experts 0)
// or expert parameters (experts 1), for errors.
static void short_names(const Choice *ch, int experts, char *have, size_t size) {
    have[0] = '\0';
    int layer = -1;
    for (int i = 0; i < ch->n; i++) {
        if ((ch->lin[i].mod.experts > 0) != experts) continue;
        if (layer < 0) layer = ch->lin[i].layer;
        if (ch->lin[i].layer != layer) break;
        const char *name = experts ? ch->lin[i].mod.name : short_name(ch->lin[i].mod.name);
        snprintf(have + strlen(have), size - strlen(have), "%s%s", have[0] ? ", " : "", name);
    }
}

// A target_modules entry must name a linear module (typos are errors), with a hint where it names
// what PEFT cannot adapt as a module: the embedding, the head, a router, an expert parameter.
static int check_module_entry(const char *entry, void *ctx) {
    const Choice *ch = ctx;
    int hit = 0;
    // an encoder's "dense" names its blocks' layers and the pooler's or MLM head's, which PEFT would
    // adapt too: refused rather than trained differently
    if (ct_model_is_encoder(ch->c)) ct_lora_outside_blocks(ch->c, entry, 0, &hit);
    if (hit)
        return ct_error_set("lora.targets: '%s' names the embeddings, the pooler or the MLM head of this %s model "
                            "(PEFT would adapt them); ctrain puts adapters on the blocks' linear layers only: name "
                            "them so that nothing else matches (query, key, value, attention.output.dense, "
                            "intermediate.dense, output.dense)", entry, ct_arch_name(ch->c->arch));
    for (int k = 0; k < ch->n && !hit; k++)
        if (!ch->lin[k].mod.experts) hit = ct_lora_name_matches(ch->lin[k].full, entry);
    if (hit) return 0;
    ct_lora_outside_blocks(ch->c, entry, 0, &hit);
    if (hit)
        return ct_error_set("lora.targets: '%s' is the embedding or the output head: ctrain puts adapters on "
                            "the blocks' linear layers only (new token rows train by themselves, see "
                            "docs/lora.md)", entry);
    for (int k = 0; k < ch->n && !hit; k++)
        if (ch->lin[k].mod.experts) hit = ct_lora_name_matches(ch->lin[k].full, entry);
    if (hit)
        return ct_error_set("lora.targets: '%s' matches no linear layer here but names the routed experts' fused "
                            "parameters (%s in transformers 5, where an MoE layer has no mlp.gate_proj/up_proj/"
                            "down_proj modules): adapt them with lora.target_parameters (PEFT's target_parameters), "
                            "e.g. mlp.experts.gate_up_proj,mlp.experts.down_proj", entry, lin_example(ch, 1));
    for (int l = 0; l < ch->c->n_layer && !hit; l++) {
        char router[64];
        snprintf(router, sizeof router, "model.layers.%d.mlp.gate", l);
        hit = ct_model_layer_is_moe(ch->c, l) && ct_lora_name_matches(router, entry);
    }
    if (hit)
        return ct_error_set("lora.targets: '%s' is an MoE layer's router (mlp.gate, a TopKRouter module in "
                            "transformers 5, not a linear layer): PEFT cannot adapt it, nor does ctrain", entry);
    char have[512];
    short_names(ch, 0, have, sizeof have);
    return ct_error_set("lora.targets: '%s' matches no linear layer of this %s model (its layers: %s, named "
                        "like %s; a full name, a suffix after a '.', or all-linear)%s", entry,
                        ct_arch_name(ch->c->arch), have, ch->lin[0].full,
                        ch->c->n_experts ? "; the routed experts' projections are parameters: lora.target_parameters"
                                         : "");
}

// A target_parameters entry must name expert parameters.
static int check_parameter_entry(const char *entry, void *ctx) {
    const Choice *ch = ctx;
    int hit = 0;
    for (int k = 0; k < ch->n && !hit; k++)
        if (ch->lin[k].mod.experts) hit = ct_lora_name_matches(ch->lin[k].full, entry);
    if (hit) return 0;
    if (!ch->c->n_experts)
        return ct_error_set("lora.target_parameters: '%s': this model has no Mixture-of-Experts layer (target_parameters "
                            "adapts the routed experts' fused parameters; use lora.targets for linear layers)", entry);
    char have[512];
    short_names(ch, 1, have, sizeof have);
    return ct_error_set("lora.target_parameters: '%s' matches no expert parameter of this model (its MoE layers "
                        "have %s, named like %s; a full name or a suffix after a '.')", entry, have,
                        lin_example(ch, 1));
}

// Which of the model's linear modules and expert parameters the spec adapts, checked as PEFT
// checks a config, with the errors a user can act on: an entry that names nothing, the
// embedding or the head, a router, an expert parameter given as a module.
static int choose_modules(const CtModelConfig *c, const CtLoraSpec *spec, const Linear *lin, int n, int *chosen) {
    CtLoraSpec s = *spec;
    const Choice ch = {c, lin, n};
    if (s.targets[0] && s.target_regex[0])
        return ct_error_set("lora: both a target list ('%s') and a target regex ('%s'): give one", s.targets,
                            s.target_regex);
    if (s.target_regex[0] && (s.n_layers || s.layers_pattern[0]))  // PEFT's LoraConfig refuses it too
        return ct_error_set("lora: layers_to_transform and layers_pattern do not apply to a target regex ('%s'): "
                            "write the layers into the regex", s.target_regex);
    if (s.target_parameters[0] && s.dropout > 0)  // PEFT's ParamWrapper: x cannot be factored out of B·A·dropout(x)
        return ct_error_set("lora.dropout = %g with lora.target_parameters: PEFT's adapters on expert parameters do "
                            "not work with dropout (lora.ParamWrapper refuses lora_dropout != 0); set lora.dropout "
                            "to 0", s.dropout);
    // PEFT's default targets apply when neither target_modules nor target_parameters is given
    if (!s.targets[0] && !s.target_regex[0] && !s.target_parameters[0])
        snprintf(s.targets, sizeof s.targets, "%s", default_targets(c));
    const int modules = s.targets[0] || s.target_regex[0];
    // PEFT's all-linear takes every nn.Linear but the output layer (a classifier's head kept in full):
    // an encoder's pooler and MLM transform too, which ctrain does not adapt
    if (ct_model_is_encoder(c) && !s.target_regex[0] && ct_lora_is_all_linear(s.targets) && (c->pooler || !c->num_labels))
        return ct_error_set("lora.targets all-linear: on this %s model PEFT adapts %s too, and ctrain puts adapters on "
                            "the blocks' linear layers only; list them: query,key,value,attention.output.dense,"
                            "intermediate.dense,output.dense", ct_arch_name(c->arch),
                            c->pooler ? "the pooler (pooler.dense)" : "the MLM head's transform (dense)");
    int hit;
    if (s.target_regex[0]) {
        if (ct_lora_outside_blocks(c, s.target_regex, 1, &hit) != 0) return -1;
        if (hit)
            return ct_error_set("lora: the target regex '%s' matches the embedding or the output head: ctrain puts "
                                "adapters on the blocks' linear layers only", s.target_regex);
    } else if (s.targets[0] && !ct_lora_is_all_linear(s.targets)) {
        if (for_each_entry(s.targets, check_module_entry, (void *)&ch) != 0) return -1;
    }
    if (for_each_entry(s.target_parameters, check_parameter_entry, (void *)&ch) != 0) return -1;
    int total = 0;
    for (int k = 0; k < n; k++) {
        chosen[k] = 0;
        if (lin[k].mod.experts) {  // every MoE layer: PEFT's target_parameters ignore layers_to_transform
            for (const char *p = s.target_parameters; *p && !chosen[k];) {
                const char *comma = strchr(p, ',');
                size_t len = comma ? (size_t)(comma - p) : strlen(p);
                char entry[512];
                snprintf(entry, sizeof entry, "%.*s", (int)len, p);
                p += len + (comma ? 1 : 0);
                chosen[k] = entry[0] && ct_lora_name_matches(lin[k].full, entry);
            }
        } else if (modules && !s.target_regex[0] && ct_lora_is_all_linear(s.targets)) {
            // every linear layer but the head (ctrain's block modules); layers_to_transform still applies
            int layer = ct_lora_layer_index(lin[k].full, s.layers_pattern);
            chosen[k] = s.n_layers == 0 || (layer >= 0 && in_layer_list(&s, layer));
        } else if (modules) {
            if (ct_lora_target_matches(&s, lin[k].full, &chosen[k]) != 0) return -1;
        }
        total += chosen[k];
    }
    if (!total)
        return ct_error_set("lora: the targets ('%s') select no linear layer of this %s model (names like %s%s)",
                            s.target_regex[0] ? s.target_regex : s.targets, ct_arch_name(c->arch), lin[0].full,
                            s.n_layers ? "; layers_to_transform leaves none" : "");
    return 0;
}

// target_modules as PEFT records them: the regex, the names given, or for all-linear every short
// name of the blocks' modules (not the expert parameters: PEFT's all-linear adapts nn.Linear
// modules only); "" when only target_parameters were given.
static void record_targets(CtLora *lora, const CtModelConfig *c, const Linear *lin, int n) {
    const CtLoraSpec *s = &lora->spec;
    char *out = lora->target_modules;
    const size_t size = sizeof lora->target_modules;
    if (s->target_regex[0]) {
        snprintf(out, size, "%s", s->target_regex);
    } else if (!s->targets[0]) {
        snprintf(out, size, "%s", s->target_parameters[0] ? "" : default_targets(c));
    } else if (!ct_lora_is_all_linear(s->targets)) {
        snprintf(out, size, "%s", s->targets);
    } else {
        out[0] = '\0';
        for (int i = 0; i < n; i++) {
            if (lin[i].mod.experts) continue;
            const char *shortname = short_name(lin[i].mod.name);
            int seen = 0;  // gpt2's c_proj twice; every layer's q_proj
            for (int j = 0; j < i && !seen; j++)
                seen = !lin[j].mod.experts && strcmp(short_name(lin[j].mod.name), shortname) == 0;
            if (!seen) snprintf(out + strlen(out), size - strlen(out), "%s%s", out[0] ? "," : "", shortname);
        }
    }
}

int ct_lora_attach(CtModel *m, const CtLoraSpec *spec) {
    if (m->lora) return ct_error_set("the model already has adapters");
    if (spec->r < 1) return ct_error_set("lora.r = %d: the rank must be at least 1", spec->r);
    if (!(spec->dropout >= 0 && spec->dropout < 1))
        return ct_error_set("lora.dropout = %g: must be in [0, 1)", spec->dropout);
    if (!(spec->alpha > 0)) return ct_error_set("lora.alpha = %g: must be positive", spec->alpha);
    if (spec->r > m->config.d_model)
        return ct_error_set("lora.r = %d is larger than the model's width %d: a low-rank adapter needs r < d_model",
                            spec->r, m->config.d_model);
    Module mods[MAX_LAYER_MODULES];
    // the main model's blocks, then each multi-token prediction module's eh_proj and block: they are
    // layers n_layer.. under the same prefix (DeepSeek-V3's names), so targets match them as PEFT would;
    // parallel heads (model.mtp_style parallel) are a block alone
    const int layers = m->config.n_layer + m->config.mtp_depth;
    Linear *lin = ct_calloc((size_t)layers * MAX_LAYER_MODULES, sizeof *lin);
    int n_lin = 0;
    for (int l = 0; l < layers; l++) {
        int n_mods = 0;
        if (l >= m->config.n_layer && m->config.mtp_style == CT_MTP_SEQUENTIAL)
            mods[n_mods++] = eh_proj_module(&m->config);
        n_mods += block_modules(&m->config, l, mods + n_mods);
        for (int i = 0; i < n_mods; i++, n_lin++) {
            lin[n_lin].mod = mods[i];
            lin[n_lin].layer = l;
            snprintf(lin[n_lin].full, sizeof lin[n_lin].full, "%s.%d.%s", block_prefix(&m->config), l, mods[i].name);
        }
    }
    int *chosen = ct_calloc((size_t)n_lin, sizeof *chosen), *ranks = ct_calloc((size_t)n_lin, sizeof *ranks);
    double *alphas = ct_calloc((size_t)n_lin, sizeof *alphas);
    int rc = choose_modules(&m->config, spec, lin, n_lin, chosen), n_adapters = 0;
    for (int k = 0; k < n_lin && rc == 0; k++) {
        if (!chosen[k]) continue;
        n_adapters++;
        rc = ct_lora_module_rank_alpha(spec, lin[k].full, &ranks[k], &alphas[k]);
        if (rc == 0 && (ranks[k] < 1 || ranks[k] > m->config.d_model))
            rc = ct_error_set("lora: rank_pattern gives %s rank %d: it must be in 1..%d", lin[k].full, ranks[k],
                              m->config.d_model);
        if (rc == 0 && !(alphas[k] > 0))
            rc = ct_error_set("lora: alpha_pattern gives %s alpha %g: it must be positive", lin[k].full, alphas[k]);
    }
    // the modules read the embedding and the head too, and their backward adds into the frozen
    // tables' (absent) gradients, not into the trainable rows': refused rather than trained wrong
    if (rc == 0 && spec->n_tokens > 0 && m->config.mtp_depth > 0)
        rc = ct_error_set("lora: trainable token rows (lora.trainable_token_indices) on a model with multi-token "
                          "prediction modules (model.mtp_depth %d) are not supported: the modules' share of the rows' "
                          "gradient is not computed; train the rows without modules, or full fine-tune",
                          m->config.mtp_depth);
    if (rc == 0) rc = ct_lora_tokens_check(m, spec);  // may grow the vocabulary (before anything is allocated)
    if (rc == 0) rc = ct_lora_saved_check(m, spec);
    if (rc != 0) {
        ct_free(lin), ct_free(chosen), ct_free(ranks), ct_free(alphas);
        return -1;
    }

    CtLora *lora = ct_calloc(1, sizeof *lora);
    lora->spec = *spec;
    lora->scale = ct_lora_scale(spec);
    record_targets(lora, &m->config, lin, n_lin);
    lora->n_adapters = n_adapters;
    lora->adapters = ct_calloc((size_t)(n_adapters ? n_adapters : 1), sizeof(CtLoraAdapter));
    size_t at = 0;
    for (int k = 0, j = 0; k < n_lin; k++) {
        if (!chosen[k]) continue;
        CtLoraAdapter *a = &lora->adapters[j++];
        const Module *md = &lin[k].mod;
        snprintf(a->module, sizeof a->module, "%s", lin[k].full);
        snprintf(a->a_name, sizeof a->a_name, "%s.lora_A.weight", a->module);
        snprintf(a->b_name, sizeof a->b_name, "%s.lora_B.weight", a->module);
        a->layer = lin[k].layer;
        a->site = md->site;
        a->in = md->in;
        a->out = md->out;
        a->col0 = md->col0;
        a->out_stride = md->out_stride;
        a->hf_transposed = md->hf_transposed;
        a->n_experts = md->experts;
        a->r = ranks[k];
        a->scale = module_scale(spec, ranks[k], alphas[k]);
        if (a->r > lora->max_r) lora->max_r = a->r;
        a->a_offset = at;
        at += adapter_copies(a) * a->r * a->in;
        a->b_offset = at;
        at += adapter_copies(a) * a->out * a->r;
    }
    ct_free(lin), ct_free(chosen), ct_free(ranks), ct_free(alphas);
    m->lora = lora;
    ct_lora_tokens_layout(m, &at);
    ct_lora_saved_layout(m, &at);  // the classification head trained in full (PEFT's modules_to_save)
    lora->n_params = at;
    lora->params = ct_calloc(at, sizeof(float));
    lora->grads = ct_calloc(at, sizeof(float));
    lora->dev_params = lora->params;
    lora->dev_grads = lora->grads;
    ct_lora_tokens_init(m);  // the rows start as the base's
    ct_lora_saved_init(m);   // and so does the head
    alloc_scratch(m, ct_ops_cpu());
    if (!m->ops->host_memory) {  // attached to a model already on a device
        lora->dev_params = NULL;
        lora->dev_grads = NULL;
        ct_lora_to_backend(m);
    }
    m->train_params = lora->dev_params;
    m->train_grads = lora->dev_grads;
    m->n_train = lora->n_params;
    return 0;
}

void ct_lora_to_backend(CtModel *m) {
    CtLora *lora = m->lora;
    const CtOps *ops = m->ops;
    if (!(lora->dev_params && lora->dev_params != lora->params)) {  // not there yet
        free_scratch(lora, ct_ops_cpu());
        alloc_scratch(m, ops);
        lora->dev_params = ct_model_device_buffer(ops, lora->params, lora->n_params, m->train_shards, "LoRA adapters");
        if (ops->keep_low_precision_weights) ops->keep_low_precision_weights(lora->dev_params, lora->n_params, NULL);
        lora->dev_grads = ct_model_device_buffer(ops, NULL, lora->n_params, m->train_shards, "LoRA adapter gradients");
        ct_free(lora->grads);  // gradients live on the device only
        lora->grads = NULL;
        lora->tokens.dirty = 1;  // the base on the device takes the token rows at the next forward
    }
    // What trains, in full: ct_model_to_backend has just named the frozen base's (no gradients,
    // n_train 0), and with n_train 0 the adapters' gradients were never zeroed between steps,
    // clipped or summed over ranks.
    m->train_params = lora->dev_params;
    m->train_grads = lora->dev_grads;
    m->n_train = lora->n_params;
}

void ct_lora_sync(CtModel *m, int to_device) {
    CtLora *lora = m->lora;
    if (to_device) lora->tokens.dirty = 1;  // new token rows for the base
    if (m->ops->host_memory || lora->dev_params == lora->params) return;
    if (to_device) {
        m->ops->upload(lora->dev_params, lora->params, lora->n_params * sizeof(float));
        if (m->ops->keep_low_precision_weights)
            m->ops->keep_low_precision_weights(lora->dev_params, lora->n_params, NULL);
    } else {
        m->ops->download(lora->params, lora->dev_params, lora->n_params * sizeof(float));
    }
}

// PEFT's initialisation on the host copy of the adapters.
static void init_host(CtLora *lora, uint64_t seed) {
    for (int i = 0; i < lora->n_adapters; i++)  // B = 0 (A below); the token rows keep their values
        memset(lora->params + lora->adapters[i].b_offset, 0, adapter_copies(&lora->adapters[i]) *
                                                                 lora->adapters[i].out * lora->adapters[i].r * sizeof(float));
    for (int i = 0; i < lora->n_adapters; i++) {
        // kaiming_uniform_(A, a=√5): gain √(2/(1+5)), bound gain·√(3/in) = 1/√in (an expert parameter's
        // A is PEFT's one nn.Linear(in, r·E): the same bound over all E experts' rows)
        const CtLoraAdapter *a = &lora->adapters[i];
        const float bound = 1.0f / sqrtf((float)a->in);
        CtRng rng;
        ct_rng_seed_stream(&rng, seed, CT_RNG_STREAM_LORA_INIT + (uint64_t)i);
        float *A = lora->params + a->a_offset;
        for (size_t j = 0; j < adapter_copies(a) * a->r * a->in; j++) A[j] = (2 * ct_rng_uniform(&rng) - 1) * bound;
    }
}

void ct_lora_init(CtModel *m, uint64_t seed) {
    CtLora *lora = m->lora;
    init_host(lora, seed);
    ct_lora_sync(m, 1);
}

void ct_lora_detach(CtModel *m) {
    CtLora *lora = m->lora;
    if (!lora) return;
    free_scratch(lora, m->ops);
    if (lora->dev_params != lora->params) {
        m->ops->free(lora->dev_params);
        m->ops->free(lora->dev_grads);
    }
    ct_free(lora->tokens.original);
    ct_free(lora->adapters);
    ct_free(lora->params);
    ct_free(lora->grads);
    ct_free(lora);
    m->lora = NULL;
    m->train_params = m->dev_params;
    m->train_grads = m->dev_grads;
    m->n_train = m->dev_grads ? m->n_params : 0;
}

// The adapters of (layer, site): a contiguous run of the table (it is in layer, site order).
static int site_range(const CtLora *lora, int layer, CtLoraSite site, int *first) {
    int n = 0;
    *first = 0;
    for (int i = 0; i < lora->n_adapters; i++) {
        const CtLoraAdapter *a = &lora->adapters[i];
        if (a->layer == layer && a->site == site) {
            if (!n) *first = i;
            n++;
        } else if (n || a->layer > layer) {
            break;
        }
    }
    return n;
}

int ct_lora_has_adapter(const CtModel *m, int layer, CtLoraSite site) {
    int first;
    return m->lora && site_range(m->lora, layer, site, &first) > 0;
}

// The dropout mask's key of adapter i in this micro-batch (the op hashes it per element).
static uint64_t lora_dropout_key(const CtModel *m, int i) {
    return m->dropout_seed * CT_DROPOUT_LORA_SEED_MIX + (uint64_t)(i + 1) * CT_DROPOUT_LORA_ADAPTER_MIX;
}

void ct_lora_forward(CtModel *m, int layer, CtLoraSite site, CtAct *out, const CtAct *inp, int N) {
    CtLora *lora = m->lora;
    int first, n = site_range(lora, layer, site, &first);
    const float p = (float)lora->spec.dropout;
    lora->dropout_on = m->training && p > 0;
    for (int i = first; i < first + n; i++) {
        CtLoraAdapter *a = &lora->adapters[i];
        const CtAct *x = inp;
        if (lora->dropout_on) {  // x̃ = dropout(x): the adapter's input only, its own mask
            m->ops->dropout_forward(lora->xd, inp, (size_t)N * a->in, p, lora_dropout_key(m, i));
            x = lora->xd;
        }
        CtAct *out_block = ct_act_at(m->ops->act_bytes, out, (size_t)a->col0);  // the adapter's columns
        m->ops->lora_forward(out_block, a->h, x, lora->dev_params + a->a_offset, lora->dev_params + a->b_offset,
                             a->scale, N, a->in, a->r, a->out, a->out_stride);
    }
}

void ct_lora_backward(CtModel *m, int layer, CtLoraSite site, CtAct *dinp, const CtAct *dout, const CtAct *inp, int N) {
    CtLora *lora = m->lora;
    const float p = (float)lora->spec.dropout;
    int first, n = site_range(lora, layer, site, &first);
    for (int i = first; i < first + n; i++) {
        CtLoraAdapter *a = &lora->adapters[i];
        const float *A = lora->dev_params + a->a_offset, *B = lora->dev_params + a->b_offset;
        float *dA = lora->dev_grads + a->a_offset, *dB = lora->dev_grads + a->b_offset;
        const CtAct *dout_block = ct_act_at(m->ops->act_bytes, dout, (size_t)a->col0);  // the adapter's columns
        if (!lora->dropout_on) {
            m->ops->lora_backward(dinp, dA, dB, lora->dh, dout_block, inp, a->h, A, B, a->scale, N, a->in, a->r,
                                  a->out, a->out_stride);
            continue;
        }
        // the forward's mask again: dA = dhᵀ·x̃, then dx += (dh·A)⊙mask/(1-p)
        const size_t nx = (size_t)N * a->in;
        m->ops->dropout_forward(lora->xd, inp, nx, p, lora_dropout_key(m, i));
        m->ops->zero(lora->dxd, nx * m->ops->act_bytes);
        m->ops->lora_backward(dinp ? lora->dxd : NULL, dA, dB, lora->dh, dout_block, lora->xd, a->h, A, B,
                              a->scale, N, a->in, a->r, a->out, a->out_stride);
        if (dinp) {  // the op writes (in place is allowed), so through dxd and then added
            m->ops->dropout_backward(lora->dxd, lora->dxd, nx, p, lora_dropout_key(m, i));
            m->ops->residual_forward(dinp, dinp, lora->dxd, nx);  // dinp += dxd
        }
    }
}

// Expert e's A [r, in] and B [out, r] of an expert parameter's adapter, in `buffer`'s layout.
static const float *expert_a(const CtLoraAdapter *a, const float *buffer, int e) {
    return buffer + a->a_offset + (size_t)e * a->r * a->in;
}
static const float *expert_b(const CtLoraAdapter *a, const float *buffer, int e) {
    return buffer + a->b_offset + (size_t)e * a->out * a->r;
}

// PEFT's ParamWrapper adds s·B_e·A_e to expert e's weight; over expert e's sorted rows that is
// the lora_forward op on the row block (x_e·(W_e + s·B_e·A_e)ᵀ = x_e·W_eᵀ + s·(x_e·A_eᵀ)·B_eᵀ), h
// saved at the same rows.
void ct_lora_experts_forward(CtModel *m, int layer, CtLoraSite site, CtAct *out, const CtAct *inp,
                             const int32_t *offsets) {
    CtLora *lora = m->lora;
    const size_t A = m->ops->act_bytes;
    int first, n = site_range(lora, layer, site, &first);
    for (int i = first; i < first + n; i++) {
        CtLoraAdapter *a = &lora->adapters[i];
        for (int e = 0; e < a->n_experts; e++) {
            const int r0 = offsets[e], rows = offsets[e + 1] - offsets[e];
            if (rows == 0) continue;
            m->ops->lora_forward(ct_act_at(A, out, (size_t)r0 * a->out_stride), ct_act_at(A, a->h, (size_t)r0 * a->r),
                                 ct_act_at(A, inp, (size_t)r0 * a->in), expert_a(a, lora->dev_params, e),
                                 expert_b(a, lora->dev_params, e), a->scale, rows, a->in, a->r, a->out, a->out_stride);
        }
    }
}

// Each expert's rows: dB_e += s·doutᵀ·h, dA_e += dhᵀ·x, dx += dh·A_e (the op on the row block).
void ct_lora_experts_backward(CtModel *m, int layer, CtLoraSite site, CtAct *dinp, const CtAct *dout,
                              const CtAct *inp, const int32_t *offsets) {
    CtLora *lora = m->lora;
    const size_t A = m->ops->act_bytes;
    int first, n = site_range(lora, layer, site, &first);
    for (int i = first; i < first + n; i++) {
        CtLoraAdapter *a = &lora->adapters[i];
        for (int e = 0; e < a->n_experts; e++) {
            const int r0 = offsets[e], rows = offsets[e + 1] - offsets[e];
            if (rows == 0) continue;
            m->ops->lora_backward(dinp ? ct_act_at(A, dinp, (size_t)r0 * a->in) : NULL,
                                  (float *)expert_a(a, lora->dev_grads, e), (float *)expert_b(a, lora->dev_grads, e),
                                  lora->dh, ct_act_at(A, dout, (size_t)r0 * a->out_stride),
                                  ct_act_at(A, inp, (size_t)r0 * a->in), ct_act_at(A, a->h, (size_t)r0 * a->r),
                                  expert_a(a, lora->dev_params, e), expert_b(a, lora->dev_params, e), a->scale, rows,
                                  a->in, a->r, a->out, a->out_stride);
        }
    }
}

// The base weight of a site in block `layer` (the model holds every weight as [out, in]).
static float *site_weight(CtModel *m, int layer, CtLoraSite site) {
    const CtLayerTensors *p = &m->w.layers[layer];
    switch (site) {
    case CT_LORA_QKV: return p->qkv_w;
    case CT_LORA_ATTN_OUT: return p->attn_out_w;
    case CT_LORA_FC: return p->fc_w;
    case CT_LORA_FC_OUT: return p->fc_out_w;
    case CT_LORA_SHARED_FC: return p->shared_fc_w;
    case CT_LORA_SHARED_FC_OUT: return p->shared_fc_out_w;
    case CT_LORA_SHARED_GATE: return p->shared_gate_w;
    case CT_LORA_EH_PROJ: return m->w.mtp[layer - m->config.n_layer].eh_proj;
    case CT_LORA_EXPERTS_GATE_UP: return p->experts_w;                                  // expert 0's gate|up
    default: return p->experts_w + 2 * (size_t)m->config.moe_d_ff * m->config.d_model;  // expert 0's down
    }
}

void ct_lora_merge(CtModel *m) {
    CtLora *lora = m->lora;
    if (!lora) return;
    ct_model_sync_to_host(m);  // merged on the host copy (a device model gets it back below)
    // an expert's weights: 3F'C floats apart (gate|up [2F',C], then down [C,F'])
    const size_t expert_stride = 3 * (size_t)m->config.moe_d_ff * m->config.d_model;
    for (int i = 0; i < lora->n_adapters; i++) {
        const CtLoraAdapter *a = &lora->adapters[i];
        for (int e = 0; e < (int)adapter_copies(a); e++) {
            // rows col0.. of the fused [out_stride, in] weight: W[col0 + j, c] += s·Σ_k B[j,k]·A[k,c]
            float *W = m->params + (site_weight(m, a->layer, a->site) - m->dev_params) + (size_t)e * expert_stride +
                       (size_t)a->col0 * a->in;
            const float *A = expert_a(a, lora->params, e), *B = expert_b(a, lora->params, e);
            const int r = a->r;
#pragma omp parallel for schedule(static)
            for (int j = 0; j < a->out; j++) {
                float *w = W + (size_t)j * a->in;
                for (int k = 0; k < r; k++) {
                    const float bk = a->scale * B[(size_t)j * r + k];
                    const float *ak = A + (size_t)k * a->in;
                    for (int c = 0; c < a->in; c++) w[c] += bk * ak[c];
                }
            }
        }
    }
    ct_lora_tokens_merge(m);  // the trained token rows replace the base's
    ct_lora_saved_merge(m);   // and the head trained in full its tensors
    ct_lora_detach(m);
    ct_model_sync_to_device(m);
}

void ct_lora_named_tensors(const CtLora *lora, const float *buffer, CtNamedTensor *out) {
    for (int i = 0; i < lora->n_adapters; i++) {
        const CtLoraAdapter *a = &lora->adapters[i];
        const int x = a->n_experts ? 1 : 0;  // an expert parameter's: [E, r, in] and [E, out, r]
        out[2 * i] = (CtNamedTensor){.name = a->a_name, .ndim = 2 + x, .dtype = CT_DTYPE_F32,
                                     .data = (void *)(buffer + a->a_offset)};
        out[2 * i + 1] = (CtNamedTensor){.name = a->b_name, .ndim = 2 + x, .dtype = CT_DTYPE_F32,
                                         .data = (void *)(buffer + a->b_offset)};
        out[2 * i].shape[0] = out[2 * i + 1].shape[0] = a->n_experts;
        out[2 * i].shape[x] = a->r;
        out[2 * i].shape[x + 1] = a->in;
        out[2 * i + 1].shape[x] = a->out;
        out[2 * i + 1].shape[x + 1] = a->r;
    }
    ct_lora_tokens_named_tensors(lora, buffer, out + 2 * lora->n_adapters);
    ct_lora_saved_named_tensors(lora, buffer, out + 2 * lora->n_adapters + ct_lora_tokens_n_tensors(lora));
}

const float *ct_lora_params_host(const CtModel *m) { return m->lora->params; }

int ct_lora_n_tensors(const CtLora *lora) {
    return 2 * lora->n_adapters + ct_lora_tokens_n_tensors(lora) + ct_lora_saved_n_tensors(lora);
}

static int lora_min_r(const CtLora *lora) {
    int r = lora->max_r;
    for (int i = 0; i < lora->n_adapters; i++)
        if (lora->adapters[i].r < r) r = lora->adapters[i].r;
    return r;
}

uint64_t ct_lora_base_hash(const CtModel *m) {
    return ct_fnv1a64(m->params, m->n_params * sizeof(float));
}

void ct_lora_report(const CtModel *m) {
    const CtLora *lora = m->lora;
    const CtLoraTokens *t = &lora->tokens;
    const size_t n_train = lora->n_params - (t->n ? t->in_offset - t->sink_offset : 0);  // not the sink row
    char trainable[32], total[32], saved[32], patterns[96] = "", rows[160] = "", head[160] = "";
    ct_format_count(trainable, sizeof trainable, (double)n_train);
    const double all = (double)(m->n_params + n_train - ct_lora_saved_numel(lora));  // the head is the base's own
    ct_format_count(total, sizeof total, all);
    // full fine-tuning keeps a gradient and two AdamW moments (float32) for every base parameter;
    // LoRA keeps the adapters, their gradients and moments instead (16 bytes per adapter value)
    const double saving = 12.0 * (double)m->n_params - 16.0 * (double)lora->n_params;
    ct_format_bytes(saved, sizeof saved, fabs(saving));
    if (lora->spec.n_rank_pattern || lora->spec.n_alpha_pattern || lora->spec.n_layers)
        snprintf(patterns, sizeof patterns, " (ranks %d..%d%s%s)", lora_min_r(lora), lora->max_r,
                 lora->spec.n_alpha_pattern ? ", alpha_pattern" : "", lora->spec.n_layers ? ", layers_to_transform" : "");
    if (t->n)
        snprintf(rows, sizeof rows, " + %d token rows (ids %d..%d) of the embedding%s", t->n, lora->spec.token_ids[0],
                 lora->spec.token_ids[t->n - 1], t->head ? " and of the output head" : "");
    if (lora->saved.n)  // PEFT's modules_to_save
        snprintf(head, sizeof head, " + the classification head in full (%s: %d tensors)", lora->spec.modules_to_save,
                 lora->saved.n);
    ct_log("lora: r %d, alpha %g, scale %g, targets %s: %d adapters%s%s%s; trainable %s of %s parameters (%.3f%%); "
           "no gradients or optimizer state for the frozen base: %s %s memory than full fine-tuning",
           lora->spec.r, lora->spec.alpha, (double)lora->scale, lora->target_modules, lora->n_adapters, patterns, rows,
           head, trainable, total, 100.0 * (double)n_train / all, saved, saving >= 0 ? "less" : "more");
}

int ct_lora_grow_vocab(CtModel *m, int new_V) {
    CtLora *lora = m->lora;
    const int old_V = m->config.vocab_size;
    if (lora->spec.n_tokens)
        return ct_error_set("lora: the adapters already train token rows; the vocabulary cannot grow again");
    if (lora->saved.n)  // (their values would move: the token rows go before the head's in the buffer)
        return ct_error_set("lora: a classifier's adapters (the head trained in full) over a base whose vocabulary "
                            "lacks tokens of the tokenizer: use the base's tokenizer");
    if (new_V - old_V > CT_LORA_MAX_TOKENS)
        return ct_error_set("lora: the dataset's tokenizer has %d tokens more than the base; at most %d new token "
                            "rows can train beside the adapters", new_V - old_V, CT_LORA_MAX_TOKENS);
    CtLoraSpec *spec = ct_alloc(sizeof *spec);
    *spec = lora->spec;
    for (int i = 0; i < new_V - old_V; i++) spec->token_ids[i] = old_V + i;
    spec->n_tokens = new_V - old_V;
    spec->token_head = 1;
    // the adapters keep their values: the same layout, the token rows after them
    const size_t n = lora->n_params;
    float *keep = ct_alloc(n * sizeof(float));
    ct_lora_sync(m, 0);
    memcpy(keep, lora->params, n * sizeof(float));
    char base_path[sizeof lora->base_path];
    snprintf(base_path, sizeof base_path, "%s", lora->base_path);
    const uint64_t base_hash = lora->base_hash;
    ct_lora_detach(m);
    int rc = ct_lora_attach(m, spec);
    if (rc == 0) {
        memcpy(m->lora->params, keep, n * sizeof(float));
        snprintf(m->lora->base_path, sizeof m->lora->base_path, "%s", base_path);
        m->lora->base_hash = base_hash;
        ct_lora_sync(m, 1);
        ct_log("lora: the vocabulary grew from %d to %d tokens: their %d new rows of the embedding%s train beside the "
               "adapters (PEFT's trainable_token_indices); every other base weight stays frozen", old_V, new_V,
               new_V - old_V, m->lora->tokens.head ? " and of the output head" : "");
        ct_lora_report(m);
    }
    ct_free(spec);
    ct_free(keep);
    return rc;
}
