#include "data/examples/examples.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
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
    const cJSON *margin = cJSON_GetObjectItemCaseSensitive(root, "margin");
    if (margin) {
        // cJSON reads 1e999 as infinity; null, strings and the rest are no number at all.
        if (!cJSON_IsNumber(margin) || !isfinite(margin->valuedouble)) {
            char *text = cJSON_PrintUnformatted(margin);
            ct_error_set("'margin' must be a finite number, not %.40s", cJSON_IsNumber(margin) ? "infinite" : text ? text : "?");
            free(text);
            goto fail;
        }
        out->has_margin = 1;
        out->margin = margin->valuedouble;
    }
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

// "answer": a string, or an integer (as JSON writes it, exactly representable).
static int task_answer(const cJSON *root, char **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "answer");
    if (cJSON_IsString(v)) {
        size_t n = strlen(v->valuestring);
        *out = ct_alloc(n + 1);
        memcpy(*out, v->valuestring, n + 1);
        return 0;
    }
    if (cJSON_IsNumber(v) && v->valuedouble == (double)(long long)v->valuedouble && fabs(v->valuedouble) < 9.007e15) {
        *out = ct_alloc(32);
        snprintf(*out, 32, "%lld", (long long)v->valuedouble);
        return 0;
    }
    return ct_error_set(v ? "'answer' must be a string or an integer" : "no 'answer' (the ground truth to score against)");
}

int ct_parse_task_prompt(const char *line, size_t len, CtTaskPrompt *out) {
    if (ct_parse_prompt(line, len, out) != 0) return -1;
    if (task_answer((const cJSON *)out->root, &out->answer) != 0) {
        ct_task_prompt_free(out);
        return -1;
    }
    return 0;
}

int ct_parse_prompt(const char *line, size_t len, CtTaskPrompt *out) {
    memset(out, 0, sizeof *out);
    cJSON *root = parse_object(line, len);
    if (!root) return -1;
    out->root = root;
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(root, "prompt");
    const cJSON *messages = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (cJSON_IsString(prompt)) {
        const char *system = string_field(root, "system");
        out->prompt = ct_calloc(2, sizeof(CtMessage));
        if (system) out->prompt[out->n_prompt++] = (CtMessage){"system", system, strlen(system)};
        out->prompt[out->n_prompt++] = (CtMessage){"user", prompt->valuestring, strlen(prompt->valuestring)};
        out->prompt_key = "prompt";
        out->used_system = system != NULL;
    } else if (prompt || messages) {
        out->prompt_key = prompt ? "prompt" : "messages";
        if (parse_messages(prompt ? prompt : messages, out->prompt_key, &out->prompt, &out->n_prompt) != 0) goto fail;
        while (out->n_prompt > 0 && strcmp(out->prompt[out->n_prompt - 1].role, "assistant") == 0) out->n_prompt--;
        if (out->n_prompt == 0) {
            ct_error_set("'%s' holds only assistant messages: no prompt to answer", out->prompt_key);
            goto fail;
        }
    } else {
        ct_error_set("no 'prompt' (a string or a message list) or 'messages' list");
        goto fail;
    }
    return 0;
fail:
    ct_task_prompt_free(out);
    return -1;
}

void ct_task_prompt_free(CtTaskPrompt *p) {
    cJSON_Delete(p->root);
    ct_free(p->prompt);
    ct_free(p->answer);
    memset(p, 0, sizeof *p);
}

int ct_encode_prompt(const CtChatTemplate *t, const CtTokenizer *tok, CtEncoder *enc, const CtTaskPrompt *p,
                     const char *what_renders_chats, CtIds *out) {
    const size_t before = out->len;
    if (t) {
        CtMaskedIds rendered = {0};
        int rc = ct_chat_encode(t, tok, enc, p->prompt, p->n_prompt, 1, &rendered);
        for (size_t k = 0; rc == 0 && k < rendered.ids.len; k++) ct_ids_push(out, rendered.ids.data[k]);
        ct_masked_ids_free(&rendered);
        if (rc != 0) return -1;
    } else if (p->n_prompt == 1 && strcmp(p->prompt_key, "prompt") == 0 && strcmp(p->prompt[0].role, "user") == 0) {
        ct_encode(enc, (const uint8_t *)p->prompt[0].content, p->prompt[0].content_len, 0, out);
    } else {
        return ct_error_set("a system message or a message list needs %s (give the prompt as one \"prompt\" string)",
                            what_renders_chats);
    }
    if (out->len == before) return ct_error_set("the prompt is empty");
    return 0;
}

// prompt + completion + (the end-of-sequence text, unless the completion ends with it), tokenized whole.
static void encode_sequence(CtEncoder *enc, const char *prompt, size_t prompt_len, const char *completion,
                            size_t completion_len, const uint8_t *eos, size_t eos_len, CtIds *out) {
    int ends_with_eos = completion_len >= eos_len && memcmp(completion + completion_len - eos_len, eos, eos_len) == 0;
    size_t n = prompt_len + completion_len + (ends_with_eos ? 0 : eos_len);
    uint8_t *text = ct_alloc(n + 1);
    memcpy(text, prompt, prompt_len);
    memcpy(text + prompt_len, completion, completion_len);
    if (!ends_with_eos) memcpy(text + prompt_len + completion_len, eos, eos_len);
    ct_encode(enc, text, n, 1, out);
    ct_free(text);
}

static size_t common_prefix(const CtIds *a, const CtIds *b) {
    size_t n = 0;
    while (n < a->len && n < b->len && a->data[n] == b->data[n]) n++;
    return n;
}

static void append_ids(CtIds *out, const int32_t *ids, size_t n) {
    for (size_t i = 0; i < n; i++) ct_ids_push(out, ids[i]);
}

size_t ct_encode_plain_preference(CtEncoder *enc, const CtTokenizer *tok, int32_t eos, const CtPreference *p,
                                  CtIds *prompt, CtIds *chosen, CtIds *rejected) {
    const uint8_t *eos_text = tok->pool + tok->offsets[eos];
    const size_t eos_len = tok->lengths[eos];
    const char *text = p->prompt[0].content;
    const size_t text_len = p->prompt[0].content_len;
    CtIds alone = {0}, with_chosen = {0}, with_rejected = {0};
    ct_encode(enc, (const uint8_t *)text, text_len, 1, &alone);
    encode_sequence(enc, text, text_len, p->chosen, p->chosen_len, eos_text, eos_len, &with_chosen);
    encode_sequence(enc, text, text_len, p->rejected, p->rejected_len, eos_text, eos_len, &with_rejected);
    size_t keep = common_prefix(&alone, &with_chosen), keep_rejected = common_prefix(&alone, &with_rejected);
    if (keep_rejected < keep) keep = keep_rejected;
    append_ids(prompt, alone.data, keep);
    append_ids(chosen, with_chosen.data + keep, with_chosen.len - keep);
    append_ids(rejected, with_rejected.data + keep, with_rejected.len - keep);
    size_t dropped = alone.len - keep;
    ct_ids_free(&alone);
    ct_ids_free(&with_chosen);
    ct_ids_free(&with_rejected);
    return dropped;
}
