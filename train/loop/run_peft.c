// Prompt-learning runs: a run config's peft section as an adapter over the base of
// train.init_from. See train/loop/run_peft.h.
#include "train/loop/run_peft.h"

#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "train/interop/checkpoint_io.h"
#include "train/model/lora.h"

int ct_peft_spec_from_config(const CtRunConfig *cfg, const CtTokenizer *tok, CtPeftSpec *spec) {
    memset(spec, 0, sizeof *spec);
    spec->type = (CtPeftType)cfg->peft.type;
    spec->num_virtual_tokens = cfg->peft.num_virtual_tokens;
    spec->init = cfg->peft.prompt_tuning_init ? CT_PEFT_INIT_TEXT : CT_PEFT_INIT_RANDOM;
    snprintf(spec->init_text, sizeof spec->init_text, "%s", cfg->peft.prompt_tuning_init_text);
    spec->encoder = cfg->peft.encoder_reparameterization_type ? CT_PEFT_ENCODER_LSTM : CT_PEFT_ENCODER_MLP;
    spec->encoder_hidden_size = cfg->peft.encoder_hidden_size;
    spec->encoder_num_layers = cfg->peft.encoder_num_layers;
    spec->encoder_dropout = cfg->peft.encoder_dropout;
    spec->prefix_projection = cfg->peft.prefix_projection;
    if (spec->init != CT_PEFT_INIT_TEXT) return 0;
    if (!tok)
        return ct_error_set("peft.prompt_tuning_init text: the run has no tokenizer to encode "
                            "peft.prompt_tuning_init_text with (the dataset's tokenizer.json)");
    CtEncoder *e = ct_encoder_new(tok);
    CtIds ids = {0};
    const char *text = spec->init_text;
    ct_encode_pair(e, (const uint8_t *)text, strlen(text), NULL, 0, 1, 1, &ids, NULL);
    ct_encoder_free(e);
    int rc = 0;
    if (ids.len == 0)
        rc = ct_error_set("peft.prompt_tuning_init_text '%s' encodes to no tokens", text);
    // PEFT repeats or cuts the ids to num_virtual_tokens: more than that are never read
    for (size_t i = 0; rc == 0 && i < ids.len && i < CT_PEFT_MAX_INIT_IDS; i++) spec->init_ids[spec->n_init_ids++] = ids.data[i];
    ct_ids_free(&ids);
    return rc;
}

int ct_peft_model_from_config(const CtRunConfig *cfg, const CtTokenizer *tok, CtModel *m, int max_B, int max_T,
                              int flags) {
    static const char *const types[] = {"none", "prompt_tuning", "p_tuning", "prefix_tuning"};
    CtPeftSpec spec;
    if (ct_peft_spec_from_config(cfg, tok, &spec) != 0) return -1;
    if (!cfg->train.init_from[0])
        return ct_error_set("peft.type %s trains an adapter over an existing model; set train.init_from to its "
                            "checkpoint (ctrain import hf makes one from a Hugging Face model)", types[spec.type]);
    if (ct_lora_load_base(cfg->train.init_from, 0, "train.init_from", m, ct_ops_cpu(), max_B, max_T,
                          flags | CT_MODEL_FROZEN) != 0)
        return -1;
    for (int i = 0; i < spec.n_init_ids; i++)
        if (spec.init_ids[i] < 0 || spec.init_ids[i] >= m->config.vocab_size) {
            ct_model_free(m);
            return ct_error_set("peft.prompt_tuning_init_text: token id %d is past the base's vocabulary (%d)",
                                spec.init_ids[i], m->config.vocab_size);
        }
    if (ct_peft_attach(m, &spec) != 0) {
        ct_model_free(m);
        return ct_error_prefix("train.init_from %s: ", cfg->train.init_from);
    }
    ct_peft_init(m, (uint64_t)cfg->run.seed);
    ct_peft_record_base(m->peft, cfg->train.init_from, ct_lora_base_hash(m));
    ct_peft_report(m);
    return 0;
}
