// An imported model's own chat template: chat_template.jinja in the model folder (where
// transformers 4.43+ saves it), else tokenizer_config.json's "chat_template", with that file's
// bos_token and eos_token. The checkpoint keeps it as a chat template of kind "jinja"
// (data/examples/chat_template.h), so `ctrain chat`, `generate --chat`, `shard --template` and
// the stop tokens use it.
#pragma once

// *out_json: the template's stored JSON (free with ct_free()), or NULL when the folder has none
// or its template is beyond ctrain's Jinja subset (a warning then says why; the import goes on).
// 0, or -1 + error (a damaged tokenizer_config.json).
int ct_hf_chat_template_read(const char *dir, char **out_json);

// Export: puts a checkpoint's Jinja template (its stored JSON, may be NULL) into the
// tokenizer_config.json being written (a cJSON object): "chat_template", and the template's
// bos_token/eos_token strings, which its rendering refers to. A template of the older JSON kind
// (chatml, plain, a file) has no Jinja text and adds nothing.
struct cJSON;
void ct_hf_chat_template_add(struct cJSON *tokenizer_config, const char *chat_template_json);
