// LoRA adapters <-> PEFT folders. See train/lora_peft.h.
#include "train/lora_peft.h"

#include <stdio.h>
#include <string.h>

#include "checkpoints/peft.h"
#include "core/alloc.h"
#include "core/error.h"
#include "train/lora.h"

int ct_lora_save_peft(const CtModel *m, const char *dir, const char *base_name) {
    const CtLora *lora = m->lora;
    if (!lora) return ct_error_set("the model has no adapters to save");
    CtPeftConfig cfg = {.r = lora->spec.r, .lora_alpha = lora->spec.alpha, .lora_dropout = lora->spec.dropout,
                        .use_rslora = lora->spec.rslora, .fan_in_fan_out = m->config.arch == CT_ARCH_GPT2};
    snprintf(cfg.target_modules, sizeof cfg.target_modules, "%s", lora->target_modules);
    snprintf(cfg.base_model_name_or_path, sizeof cfg.base_model_name_or_path, "%s",
             base_name ? base_name : lora->base_path);
    CtNamedTensor *t = ct_alloc(sizeof(CtNamedTensor) * 2 * (size_t)lora->n_adapters);
    ct_lora_named_tensors(lora, lora->params, t);
    uint64_t hash = lora->base_hash ? lora->base_hash : ct_lora_base_hash(m);
    int rc = ct_peft_write(dir, &cfg, t, 2 * lora->n_adapters, hash);
    ct_free(t);
    return rc;
}

int ct_lora_load_peft(CtModel *m, const char *dir) {
    CtPeftConfig cfg;
    if (ct_peft_read_config(dir, &cfg) != 0) return -1;
    CtLoraSpec spec = {.r = cfg.r, .alpha = (float)cfg.lora_alpha, .dropout = (float)cfg.lora_dropout,
                       .rslora = cfg.use_rslora};
    snprintf(spec.targets, sizeof spec.targets, "%s", cfg.target_modules);
    if (ct_lora_attach(m, &spec) != 0) return ct_error_prefix("%s/adapter_config.json: ", dir);
    CtLora *lora = m->lora;
    CtNamedTensor *t = ct_alloc(sizeof(CtNamedTensor) * 2 * (size_t)lora->n_adapters);
    ct_lora_named_tensors(lora, lora->params, t);
    uint64_t recorded = 0;
    int rc = ct_peft_read_tensors(dir, t, 2 * lora->n_adapters, &recorded);
    ct_free(t);
    if (rc == 0 && recorded) {
        uint64_t got = ct_lora_base_hash(m);
        if (got != recorded)
            rc = ct_error_set("%s: these adapters were trained on another base model (ctrain recorded parameter hash "
                              "%016llx; this base hashes to %016llx); load them onto the base named in "
                              "adapter_config.json (%s)", dir, (unsigned long long)recorded, (unsigned long long)got,
                              cfg.base_model_name_or_path);
        else
            lora->base_hash = recorded;
    }
    if (rc != 0) ct_lora_detach(m);
    return rc;
}
