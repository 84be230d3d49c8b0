// Adapters as PEFT folders, dispatched on peft_type. See train/interop/peft_folder.h.
#include "train/interop/peft_folder.h"

#include <stdio.h>
#include <string.h>

#include "checkpoints/peft_prompt.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "train/interop/lora_peft.h"
#include "train/model/lora.h"
#include "train/model/peft.h"

// What PEFT's _prepare_prompt_learning_config fills in from the base's config: the hidden size,
// heads and layers; for prefix tuning on a model with key/value heads, the key/value width
// (num_key_value_heads · head_dim) and those heads.
static void model_fields(const CtModelConfig *c, CtPeftType type, CtPromptAdapterConfig *out) {
    out->token_dim = c->d_model;
    out->num_attention_heads = c->n_head;
    out->num_layers = c->n_layer;
    if (type == CT_PEFT_PREFIX_TUNING && c->arch != CT_ARCH_GPT2) {
        const int hd = c->head_dim ? c->head_dim : c->d_model / c->n_head;
        out->token_dim = c->n_kv_head * hd;
        out->num_attention_heads = c->n_kv_head;
    }
}

int ct_peft_save_folder(CtModel *m, const char *dir, const char *base_name) {
    const CtPeft *p = m->peft;
    if (!p) return ct_error_set("the model has no prompt-learning adapter to export");
    CtPromptAdapterConfig cfg = {0};
    snprintf(cfg.peft_type, sizeof cfg.peft_type, "%s", p->kind->peft_type);
    cfg.num_virtual_tokens = p->spec.num_virtual_tokens;
    model_fields(&m->config, p->spec.type, &cfg);
    snprintf(cfg.base_model_name_or_path, sizeof cfg.base_model_name_or_path, "%s", base_name ? base_name : p->base_path);
    snprintf(cfg.prompt_tuning_init, sizeof cfg.prompt_tuning_init, "%s",
             p->spec.init == CT_PEFT_INIT_TEXT ? "TEXT" : "RANDOM");
    snprintf(cfg.prompt_tuning_init_text, sizeof cfg.prompt_tuning_init_text, "%s", p->spec.init_text);
    if (p->spec.init == CT_PEFT_INIT_TEXT)  // the tokenizer the text was encoded with: the base's
        snprintf(cfg.tokenizer_name_or_path, sizeof cfg.tokenizer_name_or_path, "%s", cfg.base_model_name_or_path);
    snprintf(cfg.encoder_reparameterization_type, sizeof cfg.encoder_reparameterization_type, "%s",
             p->spec.encoder == CT_PEFT_ENCODER_LSTM ? "LSTM" : "MLP");
    cfg.encoder_hidden_size = p->spec.encoder_hidden_size ? p->spec.encoder_hidden_size
                              : p->spec.type == CT_PEFT_P_TUNING ? m->config.d_model : 0;
    cfg.encoder_num_layers = p->spec.encoder_num_layers ? p->spec.encoder_num_layers : 2;
    cfg.encoder_dropout = p->spec.encoder_dropout;
    cfg.prefix_projection = p->spec.prefix_projection;
    int64_t shape[2];
    ct_model_sync_to_host(m);
    float *emb = p->kind->prompt_embeddings(m, shape);
    int rc = ct_prompt_adapter_write(dir, &cfg, emb, shape[0], shape[1], ct_lora_base_hash(m));
    ct_free(emb);
    return rc;
}

static int load_prompt_folder(CtModel *m, const char *dir) {
    CtPromptAdapterConfig cfg;
    if (ct_prompt_adapter_read_config(dir, &cfg) != 0) return -1;
    const CtPeftKind *kind = ct_peft_kind_by_name(cfg.peft_type);
    if (!kind) return ct_error_set("%s: peft_type %s is not built in this ctrain", dir, cfg.peft_type);
    CtPromptAdapterConfig want = {0};
    model_fields(&m->config, kind->type, &want);
    if (cfg.token_dim != want.token_dim || (cfg.num_layers && cfg.num_layers != want.num_layers))
        return ct_error_set("%s: adapter_config.json has token_dim %d and num_layers %d; this base needs %d and %d (an "
                            "adapter of another base model?)", dir, cfg.token_dim, cfg.num_layers, want.token_dim,
                            want.num_layers);
    CtPeftSpec spec = {.type = kind->type, .num_virtual_tokens = cfg.num_virtual_tokens, .inference = 1,
                       .encoder_hidden_size = cfg.encoder_hidden_size, .encoder_num_layers = cfg.encoder_num_layers,
                       .encoder_dropout = cfg.encoder_dropout, .prefix_projection = cfg.prefix_projection};
    spec.init = strcmp(cfg.prompt_tuning_init, "TEXT") == 0 ? CT_PEFT_INIT_TEXT : CT_PEFT_INIT_RANDOM;
    snprintf(spec.init_text, sizeof spec.init_text, "%s", cfg.prompt_tuning_init_text);
    spec.encoder = strcmp(cfg.encoder_reparameterization_type, "LSTM") == 0 ? CT_PEFT_ENCODER_LSTM : CT_PEFT_ENCODER_MLP;
    if (ct_peft_attach(m, &spec) != 0) return ct_error_prefix("%s: ", dir);
    const CtPeftTensor *t = &m->peft->tensors[0];
    float *data = NULL;
    uint64_t hash = 0;
    int rc = ct_prompt_adapter_read_embeddings(dir, t->shape[0], t->shape[1], &data, &hash);
    if (rc == 0 && hash && hash != ct_lora_base_hash(m))
        rc = ct_error_set("%s: this adapter was trained by ctrain on another base (its parameters hash to %016llx, "
                          "this base's to %016llx)", dir, (unsigned long long)hash,
                          (unsigned long long)ct_lora_base_hash(m));
    const int64_t shape[2] = {t->shape[0], t->shape[1]};
    if (rc == 0) rc = m->peft->kind->set_prompt_embeddings(m, data, shape);
    ct_free(data);
    if (rc != 0) {
        ct_peft_detach(m);
        return -1;
    }
    ct_log("peft: %s adapter %s: %d virtual tokens", kind->name, dir, spec.num_virtual_tokens);
    return 0;
}

int ct_peft_load_folder(CtModel *m, const char *dir) {
    char type[32];
    if (ct_peft_folder_type(dir, type, sizeof type) != 0) return -1;
    if (strcmp(type, "LORA") == 0) return ct_lora_load_peft(m, dir);
    return load_prompt_folder(m, dir);
}
