#include "data/examples.h"

#include <cJSON.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

static cJSON *parse_object(const char *line, size_t len) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(line, len, &end, 0);
    if (!root) {
        const char *where = cJSON_GetErrorPtr();
        size_t column = where && where >= line && where <= line + len ? (size_t)(where - line) + 1 : 1;
        ct_error_set("column %zu: invalid JSON", column);
        return NULL;
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        ct_error_set("expected a JSON object");
        return NULL;
    }
    return root;
}

static const char *string_field(const cJSON *root, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

// A list of {"role", "content"} objects into messages (pointing into the JSON tree).
static int parse_messages(const cJSON *list, const char *what, CtMessage **out, int *n_out) {
    if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0) return ct_error_set("'%s' must be a non-empty list of messages", what);
    int n = cJSON_GetArraySize(list), i = 0;
    CtMessage *m = ct_calloc((size_t)n, sizeof *m);
    const cJSON *item;
    cJSON_ArrayForEach(item, list) {
        const char *role = string_field(item, "role"), *content = string_field(item, "content");
        if (!role || !content) {
            ct_free(m);
            return ct_error_set("'%s' message %d needs string 'role' and 'content'", what, i + 1);
        }
        m[i++] = (CtMessage){role, content, strlen(content)};
    }
    *out = m;
    *n_out = n;
    return 0;
}

int ct_parse_sft_example(const char *line, size_t len, CtConversation *out) {
    memset(out, 0, sizeof *out);
    cJSON *root = parse_object(line, len);
    if (!root) return -1;
    out->root = root;
    const cJSON *messages = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (messages) {
        if (parse_messages(messages, "messages", &out->messages, &out->n_messages) != 0) goto fail;
        return 0;
    }
    const char *system = string_field(root, "system");
    const char *prompt = string_field(root, "prompt"), *response = string_field(root, "response");
    if (!response) response = string_field(root, "completion");
    const char *instruction = string_field(root, "instruction"), *output = string_field(root, "output");
    if (!prompt && instruction && output) {  // Alpaca
        const char *input = string_field(root, "input");
        size_t n = strlen(instruction) + (input ? strlen(input) : 0) + 3;
        out->owned = ct_alloc(n);
        snprintf(out->owned, n, "%s%s%s", instruction, input && *input ? "\n\n" : "", input && *input ? input : "");
        prompt = out->owned;
        response = output;
    }
    if (!prompt || !response) {
        ct_error_set("no 'messages' list, 'prompt'/'response' or 'instruction'/'output' strings");
        goto fail;
    }
    out->messages = ct_calloc(3, sizeof(CtMessage));
    if (system) out->messages[out->n_messages++] = (CtMessage){"system", system, strlen(system)};
    out->messages[out->n_messages++] = (CtMessage){"user", prompt, strlen(prompt)};
    out->messages[out->n_messages++] = (CtMessage){"assistant", response, strlen(response)};
    return 0;
fail:
    ct_conversation_free(out);
    return -1;
}

void ct_conversation_free(CtConversation *c) {
    cJSON_Delete(c->root);
    ct_free(c->owned);
    ct_free(c->messages);
    memset(c, 0, sizeof *c);
}

// A completion: a string, or a list of one assistant message.
static int completion(const cJSON *root, const char *key, const char **text, size_t *len) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (cJSON_IsString(v)) {
        *text = v->valuestring;
        *len = strlen(*text);
        return 0;
    }
    if (cJSON_IsArray(v)) {
        if (cJSON_GetArraySize(v) != 1)
            return ct_error_set("'%s' must hold exactly one (assistant) message, not %d", key, cJSON_GetArraySize(v));
        const char *content = string_field(cJSON_GetArrayItem(v, 0), "content");
        if (!content) return ct_error_set("'%s' message needs a string 'content'", key);
        *text = content;
        *len = strlen(content);
        return 0;
    }
    return ct_error_set("'%s' is missing or neither a string nor a message list", key);
}

int ct_parse_dpo_example(const char *line, size_t len, CtPreference *out) {
    memset(out, 0, sizeof *out);
    cJSON *root = parse_object(line, len);
    if (!root) return -1;
    out->root = root;
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(root, "prompt");
    if (cJSON_IsString(prompt)) {
        out->prompt = ct_calloc(1, sizeof(CtMessage));
        out->prompt[0] = (CtMessage){"user", prompt->valuestring, strlen(prompt->valuestring)};
        out->n_prompt = 1;
    } else if (cJSON_IsArray(prompt)) {
        if (parse_messages(prompt, "prompt", &out->prompt, &out->n_prompt) != 0) goto fail;
        out->conversational = 1;
    } else {
        ct_error_set("'prompt' is missing or neither a string nor a message list");
        goto fail;
    }
    if (completion(root, "chosen", &out->chosen, &out->chosen_len) != 0 ||
        completion(root, "rejected", &out->rejected, &out->rejected_len) != 0)
        goto fail;
    return 0;
fail:
    ct_preference_free(out);
    return -1;
}

void ct_preference_free(CtPreference *p) {
    cJSON_Delete(p->root);
    ct_free(p->prompt);
    memset(p, 0, sizeof *p);
}
