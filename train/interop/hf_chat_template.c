#include "train/interop/hf_chat_template.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "data/examples/chat_template.h"
#include "data/input/read_file.h"

// tokenizer_config.json with the text of chat_template.jinja put in as its "chat_template".
static char *config_with_template(const char *config, const char *jinja) {
    cJSON *root = config ? cJSON_Parse(config) : cJSON_CreateObject();
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return NULL;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(root, "chat_template");
    cJSON_AddStringToObject(root, "chat_template", jinja);
    char *printed = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    char *text = ct_strdup(printed);
    free(printed);
    return text;
}

int ct_hf_chat_template_read(const char *dir, char **out_json) {
    *out_json = NULL;
    char config_path[4096], jinja_path[4096];
    ct_path_join(config_path, sizeof config_path, dir, "tokenizer_config.json");
    ct_path_join(jinja_path, sizeof jinja_path, dir, "chat_template.jinja");
    size_t size;
    char *config = ct_file_exists(config_path) ? ct_read_whole_file(config_path, &size) : NULL;
    char *jinja = ct_file_exists(jinja_path) ? ct_read_whole_file(jinja_path, &size) : NULL;
    const char *source = jinja ? jinja_path : config_path;
    char *merged = jinja ? config_with_template(config, jinja) : NULL;
    const char *text = jinja ? merged : config;
    int rc = 0;
    if (jinja && !merged) rc = ct_error_set("%s: not a JSON object", config_path);
    CtChatTemplate t;
    int got = text && rc == 0 ? ct_chat_template_from_tokenizer_config(&t, text, source) : 1;
    if (got == 0) {
        *out_json = ct_chat_template_to_json(&t);
        ct_log("import: the model's chat template (from %s; end of turn %s) is kept in the checkpoint", source,
               t.end_of_turn);
        ct_chat_template_free(&t);
    } else if (got < 0 && rc == 0) {
        ct_warn("import: the chat template of %s is left out: %s", source, ct_error_message());
        ct_error_clear();
    }
    ct_free(merged);
    ct_free(jinja);
    ct_free(config);
    return rc;
}

void ct_hf_chat_template_add(cJSON *tokenizer_config, const char *chat_template_json) {
    cJSON *stored = chat_template_json ? cJSON_Parse(chat_template_json) : NULL;
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(stored, "kind");
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(stored, "template");
    if (cJSON_IsString(kind) && strcmp(kind->valuestring, "jinja") == 0 && cJSON_IsString(text)) {
        static const char *const keys[] = {"bos_token", "eos_token"};
        for (int k = 0; k < 2; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(stored, keys[k]);
            if (!cJSON_IsString(v)) continue;
            cJSON_DeleteItemFromObjectCaseSensitive(tokenizer_config, keys[k]);
            cJSON_AddStringToObject(tokenizer_config, keys[k], v->valuestring);
        }
        cJSON_DeleteItemFromObjectCaseSensitive(tokenizer_config, "chat_template");
        cJSON_AddStringToObject(tokenizer_config, "chat_template", text->valuestring);
    }
    cJSON_Delete(stored);
}
