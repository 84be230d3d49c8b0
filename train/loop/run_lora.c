// LoRA runs: a run config's lora section as adapters over the base of train.init_from. See
// train/loop/run_lora.h.
#include "train/loop/run_lora.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "train/interop/checkpoint_io.h"
#include "train/interop/lora_checkpoint.h"

// "regex=value,..." (a config's lora.rank_pattern) into patterns. 0, or -1 + error.
static int parse_pattern_list(const char *list, const char *key, int integers, CtLoraPattern *out, int *n) {
    *n = 0;
    for (const char *p = list; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char entry[300];
        snprintf(entry, sizeof entry, "%.*s", (int)len, p);
        p += len + (comma ? 1 : 0);
        char *eq = strrchr(entry, '='), *end = NULL;
        double v = eq ? strtod(eq + 1, &end) : 0;
        if (!eq || eq == entry || end == eq + 1 || *end || !(v > 0) || (integers && v != (double)(int)v))
            return ct_error_set("%s: '%s' is not \"module regex=%s\"", key, entry, integers ? "rank" : "alpha");
        if (*n >= CT_LORA_MAX_PATTERNS) return ct_error_set("%s: more than %d entries", key, CT_LORA_MAX_PATTERNS);
        *eq = '\0';
        snprintf(out[*n].key, sizeof out[*n].key, "%s", entry);
        out[(*n)++].value = v;
    }
    return 0;
}

int ct_lora_spec_from_config(const CtRunConfig *cfg, CtLoraSpec *spec) {
    memset(spec, 0, sizeof *spec);
    spec->r = cfg->lora.r;
    spec->alpha = cfg->lora.alpha;
    spec->dropout = cfg->lora.dropout;
    spec->rslora = cfg->lora.rslora;
    snprintf(spec->targets, sizeof spec->targets, "%s", cfg->lora.targets);
    snprintf(spec->target_regex, sizeof spec->target_regex, "%s", cfg->lora.target_regex);
    snprintf(spec->target_parameters, sizeof spec->target_parameters, "%s", cfg->lora.target_parameters);
    snprintf(spec->layers_pattern, sizeof spec->layers_pattern, "%s", cfg->lora.layers_pattern);
    for (const char *p = cfg->lora.layers_to_transform; *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || (*end && *end != ',') || spec->n_layers >= CT_LORA_MAX_LAYERS)
            return ct_error_set("lora.layers_to_transform = '%s': layer indices separated by commas",
                                cfg->lora.layers_to_transform);
        spec->layers[spec->n_layers++] = (int)v;
        p = *end ? end + 1 : end;
    }
    if (parse_pattern_list(cfg->lora.rank_pattern, "lora.rank_pattern", 1, spec->rank_pattern, &spec->n_rank_pattern) ||
        parse_pattern_list(cfg->lora.alpha_pattern, "lora.alpha_pattern", 0, spec->alpha_pattern,
                           &spec->n_alpha_pattern))
        return -1;
    return 0;
}

int ct_lora_model_from_config(const CtRunConfig *cfg, CtModel *m, const CtOps *ops, int max_B, int max_T, int flags,
                              CtLoraBaseHead add_head, void *ctx) {
    CtLoraSpec spec;
    if (ct_lora_spec_from_config(cfg, &spec) != 0) return -1;
    if (!cfg->train.init_from[0])
        return ct_error_set("lora.r = %d: LoRA trains adapters over an existing model; set train.init_from to its "
                            "checkpoint (ctrain import hf makes one from a Hugging Face model)", cfg->lora.r);
    if (ct_lora_load_base(cfg->train.init_from, 0, "train.init_from", m, ops, max_B, max_T, flags | CT_MODEL_FROZEN) != 0)
        return -1;
    const uint64_t hash = ct_lora_base_hash(m);  // the base as its file holds it, before any head
    if ((add_head && add_head(m, ctx, spec.modules_to_save, sizeof spec.modules_to_save) != 0) ||
        ct_lora_attach(m, &spec) != 0) {
        ct_model_free(m);
        return -1;
    }
    ct_lora_init(m, (uint64_t)cfg->run.seed);
    ct_lora_record_base(m->lora, cfg->train.init_from, hash);
    ct_lora_report(m);
    return 0;
}
