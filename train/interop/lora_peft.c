// LoRA adapters <-> PEFT folders. See train/interop/lora_peft.h.
#include "train/interop/lora_peft.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "checkpoints/peft.h"
#include "checkpoints/safetensors.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "train/interop/lora_peft_experts.h"
#include "train/interop/lora_peft_fused.h"
#include "train/model/lora.h"
#include "train/model/lora_targets.h"

_Static_assert(CT_PEFT_MAX_PATTERNS == CT_LORA_MAX_PATTERNS && CT_PEFT_MAX_TOKENS == CT_LORA_MAX_TOKENS &&
                   CT_PEFT_MAX_LAYERS == CT_LORA_MAX_LAYERS,
               "PEFT's config and the LoRA spec hold as many entries");

static const char *embedding_name(const CtModel *m) {
    return m->config.arch == CT_ARCH_GPT2 ? "transformer.wte" : "model.embed_tokens";
}

int ct_lora_save_peft(const CtModel *m, const char *dir, const char *base_name) {
    const CtLora *lora = m->lora;
    if (!lora) return ct_error_set("the model has no adapters to save");
    const CtLoraSpec *s = &lora->spec;
    CtPeftConfig *cfg = ct_calloc(1, sizeof *cfg);
    *cfg = (CtPeftConfig){.r = s->r, .lora_alpha = s->alpha, .lora_dropout = s->dropout, .use_rslora = s->rslora,
                          .fan_in_fan_out = m->config.arch == CT_ARCH_GPT2, .target_is_regex = s->target_regex[0] != 0,
                          .n_layers = s->n_layers, .n_rank_pattern = s->n_rank_pattern,
                          .n_alpha_pattern = s->n_alpha_pattern, .n_tokens = s->n_tokens};
    snprintf(cfg->target_modules, sizeof cfg->target_modules, "%s", lora->target_modules);
    snprintf(cfg->target_parameters, sizeof cfg->target_parameters, "%s", s->target_parameters);
    memcpy(cfg->layers_to_transform, s->layers, sizeof s->layers);
    snprintf(cfg->layers_pattern, sizeof cfg->layers_pattern, "%s", s->layers_pattern);
    for (int i = 0; i < s->n_rank_pattern; i++) {
        snprintf(cfg->rank_pattern[i].key, sizeof cfg->rank_pattern[i].key, "%s", s->rank_pattern[i].key);
        cfg->rank_pattern[i].value = s->rank_pattern[i].value;
    }
    for (int i = 0; i < s->n_alpha_pattern; i++) {
        snprintf(cfg->alpha_pattern[i].key, sizeof cfg->alpha_pattern[i].key, "%s", s->alpha_pattern[i].key);
        cfg->alpha_pattern[i].value = s->alpha_pattern[i].value;
    }
    memcpy(cfg->token_ids, s->token_ids, sizeof s->token_ids);
    if (lora->tokens.head) {  // an untied head: both modules by name, as PEFT's dict form
        cfg->n_token_modules = 2;
        snprintf(cfg->token_modules[0], sizeof cfg->token_modules[0], "%s", embedding_name(m));
        snprintf(cfg->token_modules[1], sizeof cfg->token_modules[1], "lm_head");
    }
    snprintf(cfg->base_model_name_or_path, sizeof cfg->base_model_name_or_path, "%s",
             base_name ? base_name : lora->base_path);
    // a sequence classifier: PEFT's SEQ_CLS task, its head saved whole (modules_to_save)
    const int head = m->config.num_labels || m->config.reward_head;
    snprintf(cfg->task_type, sizeof cfg->task_type, "%s", head ? "SEQ_CLS" : "CAUSAL_LM");
    snprintf(cfg->modules_to_save, sizeof cfg->modules_to_save, "%s", s->modules_to_save);
    uint64_t hash = lora->base_hash ? lora->base_hash : ct_lora_base_hash(m);
    int rc;
    if (m->config.family == CT_FAMILY_PHI3) {  // PEFT's modules are the fused ones (lora_peft_fused.h)
        CtPeftFused fused;
        rc = ct_peft_fuse_phi3(m, cfg, &fused);
        if (rc == 0) rc = ct_peft_write(dir, cfg, fused.tensors, fused.n, hash);
        ct_peft_fused_free(&fused);
    } else {  // the experts' adapters under PEFT's names and layout (lora_peft_experts.h), the rest as they are
        CtPeftExperts t;
        ct_peft_experts_tensors(m, &t);
        rc = ct_peft_write(dir, cfg, t.tensors, t.n, hash);
        ct_peft_experts_free(&t);
    }
    ct_free(cfg);
    return rc;
}

// PEFT's config as a LoRA spec for this model: the names of trainable_token_indices' modules
// are matched as PEFT matches them (the module's name ends with the key).
static int spec_from_peft(const CtModel *m, const CtPeftConfig *cfg, CtLoraSpec *spec, const char *path) {
    memset(spec, 0, sizeof *spec);
    *spec = (CtLoraSpec){.r = cfg->r, .alpha = cfg->lora_alpha, .dropout = cfg->lora_dropout,
                         .rslora = cfg->use_rslora, .n_layers = cfg->n_layers, .n_rank_pattern = cfg->n_rank_pattern,
                         .n_alpha_pattern = cfg->n_alpha_pattern, .n_tokens = cfg->n_tokens};
    if (cfg->target_is_regex)
        snprintf(spec->target_regex, sizeof spec->target_regex, "%s", cfg->target_modules);
    else
        snprintf(spec->targets, sizeof spec->targets, "%s", cfg->target_modules);
    snprintf(spec->target_parameters, sizeof spec->target_parameters, "%s", cfg->target_parameters);
    memcpy(spec->layers, cfg->layers_to_transform, sizeof spec->layers);
    // PEFT's SEQ_CLS model adds its classifier names to modules_to_save whatever the file says
    const int seq_cls = strcmp(cfg->task_type, "SEQ_CLS") == 0;
    snprintf(spec->modules_to_save, sizeof spec->modules_to_save, "%s", cfg->modules_to_save);
    for (int i = 0; seq_cls && i < 2; i++) {
        const char *name = i ? "score" : "classifier";
        char padded[300], list[300];
        snprintf(list, sizeof list, ",%s,", spec->modules_to_save);
        snprintf(padded, sizeof padded, ",%s,", name);
        const size_t len = strlen(spec->modules_to_save);
        if (!strstr(list, padded))
            snprintf(spec->modules_to_save + len, sizeof spec->modules_to_save - len, "%s%s", len ? "," : "", name);
    }
    if (seq_cls && !m->config.num_labels && !m->config.reward_head)
        return ct_error_set("%s: a sequence classifier's adapter (task_type SEQ_CLS) on a base without a "
                            "classification head: load it onto the classifier it was made on (ctrain import hf of "
                            "its *ForSequenceClassification)", path);
    snprintf(spec->layers_pattern, sizeof spec->layers_pattern, "%s", cfg->layers_pattern);
    for (int i = 0; i < cfg->n_rank_pattern; i++) {
        snprintf(spec->rank_pattern[i].key, sizeof spec->rank_pattern[i].key, "%s", cfg->rank_pattern[i].key);
        spec->rank_pattern[i].value = cfg->rank_pattern[i].value;
    }
    for (int i = 0; i < cfg->n_alpha_pattern; i++) {
        snprintf(spec->alpha_pattern[i].key, sizeof spec->alpha_pattern[i].key, "%s", cfg->alpha_pattern[i].key);
        spec->alpha_pattern[i].value = cfg->alpha_pattern[i].value;
    }
    // PEFT keeps the ids as given; ctrain's rows are ascending
    for (int i = 0; i < cfg->n_tokens; i++) spec->token_ids[i] = cfg->token_ids[i];
    for (int i = 1; i < spec->n_tokens; i++)
        for (int j = i; j > 0 && spec->token_ids[j] < spec->token_ids[j - 1]; j--) {
            int32_t tmp = spec->token_ids[j];
            spec->token_ids[j] = spec->token_ids[j - 1];
            spec->token_ids[j - 1] = tmp;
        }
    int has_embedding = cfg->n_token_modules == 0;
    for (int i = 0; i < cfg->n_token_modules; i++) {
        const char *key = cfg->token_modules[i];
        size_t nk = strlen(key), ne = strlen(embedding_name(m));
        if (nk <= ne && strcmp(embedding_name(m) + ne - nk, key) == 0)
            has_embedding = 1;
        else if (nk <= 7 && strcmp("lm_head" + 7 - nk, key) == 0)
            spec->token_head = 1;
        else
            return ct_error_set("%s: trainable_token_indices names '%s', which is neither this model's embedding (%s) "
                                "nor its output head (lm_head)", path, key, embedding_name(m));
    }
    if (spec->n_tokens && !has_embedding)
        return ct_error_set("%s: trainable_token_indices trains the output head's rows alone; ctrain trains the "
                            "embedding's rows (and the head's beside them)", path);
    return 0;
}

// The adapters of the multi-token prediction modules' layers (n_layer..) that the folder lacks
// (an adapter made on the main model alone, as PEFT makes it on transformers' model): they keep
// B = A = 0, no effect, as PEFT leaves a missing key at its start (B = 0); the rest of `t` (n
// tensors) is copied into `read` (*n_read) for reading.
static int skip_absent_module_adapters(const CtModel *m, const char *dir, const CtNamedTensor *t, int n,
                                       CtNamedTensor *read, int *n_read) {
    *n_read = 0;
    CtSafetensors f = {0};
    char path[4200];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    if (m->config.mtp_depth > 0 && ct_st_open(&f, path) != 0) return -1;
    int skipped = 0;
    for (int i = 0; i < n; i++) {
        int layer = -1;
        if (m->config.mtp_depth > 0 && sscanf(t[i].name, "model.layers.%d.", &layer) != 1)
            sscanf(t[i].name, "transformer.h.%d.", &layer);
        char full[512];
        snprintf(full, sizeof full, "%s%s", CT_PEFT_PREFIX, t[i].name);
        if (layer >= m->config.n_layer && !ct_st_find(&f, full)) {
            memset(t[i].data, 0, ct_named_tensor_bytes(&t[i]));
            skipped++;
            continue;
        }
        read[(*n_read)++] = t[i];
    }
    if (m->config.mtp_depth > 0) ct_st_close(&f);
    if (skipped)
        ct_log("%s: %d adapter tensors of the multi-token prediction modules' layers (%d..%d) are not in the folder: "
               "those adapters start at zero (no effect), as PEFT leaves a missing key", dir, skipped,
               m->config.n_layer, m->config.n_layer + m->config.mtp_depth - 1);
    return 0;
}

// ct_peft_read_tensors of what the folder has of the modules' adapters (above) and all the rest.
static int read_tensors(const CtModel *m, const char *dir, const CtNamedTensor *t, int n, uint64_t *recorded) {
    CtNamedTensor *read = ct_alloc(sizeof *read * (size_t)(n ? n : 1));
    int n_read = 0;
    int rc = skip_absent_module_adapters(m, dir, t, n, read, &n_read);
    if (rc == 0) rc = ct_peft_read_tensors(dir, read, n_read, recorded);
    ct_free(read);
    return rc;
}

int ct_lora_load_peft(CtModel *m, const char *dir) {
    CtPeftConfig *cfg = ct_alloc(sizeof *cfg);
    CtLoraSpec *spec = ct_alloc(sizeof *spec);
    char path[4200];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    int rc = ct_peft_read_config(dir, cfg);
    // Phi-3's PEFT modules are fused: their parts are attached, and read by splitting
    const int fused = rc == 0 && m->config.family == CT_FAMILY_PHI3 && ct_peft_unfuse_phi3_config(cfg);
    if (rc == 0) rc = spec_from_peft(m, cfg, spec, path);
    const uint64_t got = ct_lora_base_hash(m);  // before token rows may grow the vocabulary
    if (rc == 0 && ct_lora_attach(m, spec) != 0) rc = ct_error_prefix("%s: ", path);
    if (rc == 0) {
        CtLora *lora = m->lora;
        uint64_t recorded = 0;
        if (fused) {
            CtPeftFused want;
            rc = ct_peft_fused_want_phi3(m, &want);
            if (rc == 0) rc = read_tensors(m, dir, want.tensors, want.n, &recorded);
            if (rc == 0) ct_peft_split_phi3(m, &want);
            ct_peft_fused_free(&want);
        } else {
            CtPeftExperts t;
            ct_peft_experts_tensors(m, &t);
            rc = read_tensors(m, dir, t.tensors, t.n, &recorded);
            if (rc == 0) ct_peft_experts_gather(m, &t);
            ct_peft_experts_free(&t);
        }
        if (rc == 0 && recorded && got != recorded)
            rc = ct_error_set("%s: these adapters were trained on another base model (ctrain recorded parameter hash "
                              "%016llx; this base hashes to %016llx); load them onto the base named in "
                              "adapter_config.json (%s)", dir, (unsigned long long)recorded, (unsigned long long)got,
                              cfg->base_model_name_or_path);
        if (rc == 0) {
            lora->base_hash = recorded ? recorded : got;
            ct_lora_sync(m, 1);  // the token rows read: the base takes them
        } else {
            ct_lora_detach(m);
        }
    }
    ct_free(cfg);
    ct_free(spec);
    return rc;
}
