// Where generation stops. See train/interop/stop_tokens.h.
#include "train/interop/stop_tokens.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "data/tokenizer/tokenizer_identity.h"

int ct_eos_token_ids_parse(const char *json, const char *source, int vocab_size, int32_t *ids, int max, int *n) {
    *n = 0;
    cJSON *root = cJSON_Parse(json);
    int rc = -1;
    if (!cJSON_IsObject(root)) {
        ct_error_set("%s: not a JSON object", source);
        goto done;
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "eos_token_id"), *item;
    if (!v || cJSON_IsNull(v)) {
        rc = 0;
        goto done;
    }
    if (!cJSON_IsNumber(v) && !cJSON_IsArray(v)) {
        ct_error_set("%s: 'eos_token_id' must be a token id or a list of token ids", source);
        goto done;
    }
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) > max) {
        ct_error_set("%s: 'eos_token_id' lists %d ids; ctrain stops at %d at most", source, cJSON_GetArraySize(v), max);
        goto done;
    }
    int entry = 0;
    for (item = cJSON_IsArray(v) ? v->child : v; item; item = cJSON_IsArray(v) ? item->next : NULL, entry++) {
        double id = cJSON_IsNumber(item) ? item->valuedouble : -1;
        if (!cJSON_IsNumber(item) || id != (double)(int32_t)id || id < 0) {
            ct_error_set("%s: 'eos_token_id' entry %d is not a token id", source, entry);
            goto done;
        }
        // transformers' GPT2Config says 50256 whatever the vocabulary: an id the model cannot
        // produce never stops it, so it is left out
        if (id >= vocab_size)
            ct_log("warning: %s: 'eos_token_id' %.0f is outside the vocabulary (%d ids); it cannot end a text", source,
                   id, vocab_size);
        else
            ids[(*n)++] = (int32_t)id;
    }
    rc = 0;
done:
    cJSON_Delete(root);
    return rc;
}

char *ct_generation_config_json(const int32_t *ids, int n) {
    cJSON *o = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(o, "eos_token_id");
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(list, cJSON_CreateNumber(ids[i]));
    char *printed = cJSON_PrintUnformatted(o), *s = ct_strdup(printed);
    free(printed);
    cJSON_Delete(o);
    return s;
}

static void add_stop(CtStopTokens *s, int32_t id) {
    if (id < 0 || ct_stop_tokens_has(s, id) || s->n == CT_MAX_STOP_TOKENS) return;
    s->ids[s->n++] = id;
}

int ct_stop_tokens_init(CtStopTokens *s, const char *generation_config_json, const CtTokenizer *tok, int vocab_size,
                        int32_t end_of_turn, const char *source) {
    memset(s, 0, sizeof *s);
    if (generation_config_json) {
        char where[1024];
        snprintf(where, sizeof where, "%s: generation_config", source);
        if (ct_eos_token_ids_parse(generation_config_json, where, vocab_size, s->ids, CT_MAX_STOP_TOKENS - 1, &s->n) != 0)
            return -1;
    }
    if (s->n == 0) add_stop(s, ct_tokenizer_special_id(tok, "<|endoftext|>"));
    add_stop(s, end_of_turn);
    return 0;
}

int ct_stop_tokens_has(const CtStopTokens *s, int32_t id) {
    for (int i = 0; i < s->n; i++)
        if (s->ids[i] == id) return 1;
    return 0;
}

int32_t ct_tokenizer_eos_special(const CtTokenizer *t) {
    static const char *const eos[] = {"<|endoftext|>", "<|end_of_text|>", "</s>", "<|eot_id|>", "<|im_end|>"};
    for (size_t i = 0; i < sizeof eos / sizeof eos[0]; i++) {
        int32_t id = ct_tokenizer_special_id(t, eos[i]);
        if (id >= 0) return id;
    }
    return -1;
}
