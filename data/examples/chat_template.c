#include "data/examples/chat_template.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/fs.h"
#include "data/examples/jinja.h"
#include "data/input/read_file.h"
#include "data/tokenizer/tokenizer_identity.h"

static const char CHATML[] =
    "{\"name\": \"chatml\", \"turn_start\": \"<|im_start|>{role}\\n\", \"turn_end\": \"<|im_end|>\\n\","
    " \"end_of_turn\": \"<|im_end|>\", \"trained_roles\": [\"assistant\"]}";
static const char PLAIN[] =
    "{\"name\": \"plain\", \"turn_start\": \"\", \"turn_end\": \"\\n\", \"end_of_turn\": \"<|endoftext|>\","
    " \"trained_roles\": [\"assistant\"]}";

static int get_string(const cJSON *root, const char *key, char **out, const char *source) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!cJSON_IsString(v)) return ct_error_set("%s: chat template needs a string '%s'", source, key);
    *out = ct_strdup(v->valuestring);
    return 0;
}

int ct_chat_template_from_jinja(CtChatTemplate *t, const char *jinja, const char *bos_token, const char *eos_token,
                                const char *source) {
    memset(t, 0, sizeof *t);
    const char *eot = ct_chat_jinja_end_of_turn(jinja, eos_token);
    if (!eot)
        return ct_error_set("%s: cannot tell the chat template's end-of-turn token: it spells none of <|eot_id|>, "
                            "<|im_end|>, <end_of_turn>, <|end|>, nor eos_token (and an eos_token is needed)", source);
    t->jinja = ct_jinja_parse(jinja, source);
    if (!t->jinja) return -1;
    const char *slash = strrchr(source, '/');  // named after its file ("qwen2.5.jinja", "tokenizer_config.json")
    snprintf(t->name, sizeof t->name, "%s", slash ? slash + 1 : source);
    t->jinja_source = ct_strdup(jinja);
    t->bos_token = bos_token ? ct_strdup(bos_token) : NULL;
    t->eos_token = eos_token ? ct_strdup(eos_token) : NULL;
    t->end_of_turn = ct_strdup(eot);
    t->turn_start = ct_strdup("");
    t->turn_end = ct_strdup("");
    t->trained_roles = ct_calloc(1, sizeof(char *));
    t->trained_roles[0] = ct_strdup("assistant");
    t->n_trained_roles = 1;
    return 0;
}

// A token string in tokenizer_config.json: "text", {"content": "text", ...}, or null/absent.
static const char *token_string(const cJSON *root, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

// {"kind": "jinja", "template": ..., "bos_token": ..., "eos_token": ...} (what to_json writes).
static int parse_jinja_kind(CtChatTemplate *t, const cJSON *root, const char *source) {
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(root, "template");
    if (!cJSON_IsString(text)) return ct_error_set("%s: a 'jinja' chat template needs a string 'template'", source);
    int rc = ct_chat_template_from_jinja(t, text->valuestring, token_string(root, "bos_token"),
                                         token_string(root, "eos_token"), source);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(root, "name");
    if (rc == 0 && cJSON_IsString(name)) snprintf(t->name, sizeof t->name, "%s", name->valuestring);
    return rc;
}

int ct_chat_template_from_tokenizer_config(CtChatTemplate *t, const char *json, const char *source) {
    memset(t, 0, sizeof *t);
    cJSON *root = cJSON_Parse(json);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return ct_error_set("%s: not a JSON object", source);
    }
    const cJSON *tmpl = cJSON_GetObjectItemCaseSensitive(root, "chat_template"), *item;
    if (cJSON_IsArray(tmpl)) {  // named templates: [{"name": "default", "template": "..."}, ...]
        const cJSON *found = NULL;
        cJSON_ArrayForEach(item, tmpl) {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(item, "name");
            if (cJSON_IsString(name) && strcmp(name->valuestring, "default") == 0)
                found = cJSON_GetObjectItemCaseSensitive(item, "template");
        }
        tmpl = found;
    }
    int rc = 1;
    if (cJSON_IsString(tmpl))
        rc = ct_chat_template_from_jinja(t, tmpl->valuestring, token_string(root, "bos_token"),
                                         token_string(root, "eos_token"), source);
    cJSON_Delete(root);
    return rc;
}

char *ct_chat_template_to_json(const CtChatTemplate *t) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "name", t->name);
    if (t->jinja) {
        cJSON_AddStringToObject(root, "kind", "jinja");
        cJSON_AddStringToObject(root, "template", t->jinja_source);
        if (t->bos_token) cJSON_AddStringToObject(root, "bos_token", t->bos_token);
        if (t->eos_token) cJSON_AddStringToObject(root, "eos_token", t->eos_token);
        cJSON_AddStringToObject(root, "end_of_turn", t->end_of_turn);
    } else {
        cJSON_AddStringToObject(root, "turn_start", t->turn_start);
        cJSON_AddStringToObject(root, "turn_end", t->turn_end);
        cJSON_AddStringToObject(root, "end_of_turn", t->end_of_turn);
        cJSON *roles = cJSON_AddArrayToObject(root, "trained_roles");
        for (int i = 0; i < t->n_trained_roles; i++) cJSON_AddItemToArray(roles, cJSON_CreateString(t->trained_roles[i]));
    }
    char *printed = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    char *text = ct_strdup(printed);
    free(printed);
    return text;
}

int ct_chat_template_parse(CtChatTemplate *t, const char *json, const char *source) {
    memset(t, 0, sizeof *t);
    cJSON *root = cJSON_Parse(json);
    int rc = -1;
    if (!cJSON_IsObject(root)) {
        ct_error_set("%s: a chat template is a JSON object (see docs/formats.md)", source);
        goto done;
    }
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(root, "kind");
    if (cJSON_IsString(kind) && strcmp(kind->valuestring, "jinja") == 0) {
        rc = parse_jinja_kind(t, root, source);
        cJSON_Delete(root);
        return rc;
    }
    if (cJSON_GetObjectItemCaseSensitive(root, "chat_template")) {  // a tokenizer_config.json
        cJSON_Delete(root);
        rc = ct_chat_template_from_tokenizer_config(t, json, source);
        return rc == 1 ? ct_error_set("%s: its 'chat_template' is neither a string nor a list with a 'default' one",
                                      source)
                       : rc;
    }
    for (const cJSON *item = root->child; item; item = item->next) {
        static const char *const known[] = {"name", "turn_start", "turn_end", "end_of_turn", "trained_roles"};
        int ok = 0;
        for (int i = 0; i < 5; i++) ok |= strcmp(item->string, known[i]) == 0;
        if (!ok) {
            ct_error_set("%s: unknown chat template key '%s' (keys: name, turn_start, turn_end, end_of_turn, trained_roles)",
                         source, item->string);
            goto done;
        }
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(root, "name");
    snprintf(t->name, sizeof t->name, "%s", cJSON_IsString(name) ? name->valuestring : "custom");
    if (get_string(root, "turn_start", &t->turn_start, source) != 0 || get_string(root, "turn_end", &t->turn_end, source) != 0 ||
        get_string(root, "end_of_turn", &t->end_of_turn, source) != 0)
        goto done;
    if (!t->end_of_turn[0]) {
        ct_error_set("%s: 'end_of_turn' must name a token", source);
        goto done;
    }
    const cJSON *roles = cJSON_GetObjectItemCaseSensitive(root, "trained_roles"), *role;
    if (!cJSON_IsArray(roles) || cJSON_GetArraySize(roles) == 0) {
        ct_error_set("%s: 'trained_roles' must be a non-empty list of role names", source);
        goto done;
    }
    t->trained_roles = ct_calloc((size_t)cJSON_GetArraySize(roles), sizeof(char *));
    cJSON_ArrayForEach(role, roles) {
        if (!cJSON_IsString(role)) {
            ct_error_set("%s: 'trained_roles' must hold strings", source);
            goto done;
        }
        t->trained_roles[t->n_trained_roles++] = ct_strdup(role->valuestring);
    }
    rc = 0;
done:
    cJSON_Delete(root);
    if (rc != 0) ct_chat_template_free(t);
    return rc;
}

static int is_directory(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

// A .jinja file: bos/eos from the tokenizer_config.json beside it, when there is one.
static int load_jinja_file(CtChatTemplate *t, const char *path, const char *text) {
    char config_path[4096];
    const char *slash = strrchr(path, '/');
    snprintf(config_path, sizeof config_path, "%.*stokenizer_config.json", slash ? (int)(slash - path + 1) : 0, path);
    size_t size;
    char *config = ct_file_exists(config_path) ? ct_read_whole_file(config_path, &size) : NULL;
    cJSON *root = config ? cJSON_Parse(config) : NULL;
    int rc = ct_chat_template_from_jinja(t, text, token_string(root, "bos_token"), token_string(root, "eos_token"), path);
    cJSON_Delete(root);
    ct_free(config);
    return rc;
}

int ct_chat_template_load(CtChatTemplate *t, const char *name_or_path) {
    if (strcmp(name_or_path, "chatml") == 0) return ct_chat_template_parse(t, CHATML, "chatml");
    if (strcmp(name_or_path, "plain") == 0) return ct_chat_template_parse(t, PLAIN, "plain");
    char path[4096];
    snprintf(path, sizeof path, "%s", name_or_path);
    if (is_directory(name_or_path)) {  // a model folder: chat_template.jinja (transformers 4.43+), else the config's
        snprintf(path, sizeof path, "%s/chat_template.jinja", name_or_path);
        if (!ct_file_exists(path)) snprintf(path, sizeof path, "%s/tokenizer_config.json", name_or_path);
        if (!ct_file_exists(path))
            return ct_error_set("%s: a folder given as a chat template must hold chat_template.jinja or a "
                                "tokenizer_config.json", name_or_path);
    }
    size_t size;
    char *text = ct_read_whole_file(path, &size);
    if (!text) return ct_error_prefix("chat template: ");
    int rc = ends_with(path, ".jinja") ? load_jinja_file(t, path, text) : ct_chat_template_parse(t, text, path);
    ct_free(text);
    return rc;
}

void ct_chat_template_free(CtChatTemplate *t) {
    ct_free(t->turn_start);
    ct_free(t->turn_end);
    ct_free(t->end_of_turn);
    for (int i = 0; i < t->n_trained_roles; i++) ct_free(t->trained_roles[i]);
    ct_free(t->trained_roles);
    ct_jinja_free(t->jinja);
    ct_free(t->jinja_source);
    ct_free(t->bos_token);
    ct_free(t->eos_token);
    memset(t, 0, sizeof *t);
}

int ct_chat_template_trains(const CtChatTemplate *t, const char *role) {
    for (int i = 0; i < t->n_trained_roles; i++)
        if (strcmp(t->trained_roles[i], role) == 0) return 1;
    return 0;
}

static const char *const STANDARD_ROLES[] = {"system", "user", "assistant", "tool"};
enum { N_STANDARD_ROLES = sizeof STANDARD_ROLES / sizeof STANDARD_ROLES[0] };

static int is_standard_role(const char *role) {
    for (int i = 0; i < N_STANDARD_ROLES; i++)
        if (strcmp(STANDARD_ROLES[i], role) == 0) return 1;
    return 0;
}

int ct_chat_template_allows_role(const CtChatTemplate *t, const char *role) {
    return is_standard_role(role) || ct_chat_template_trains(t, role);
}

void ct_chat_template_roles_text(const CtChatTemplate *t, char *out, size_t size) {
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < N_STANDARD_ROLES + t->n_trained_roles; i++) {
        const char *role = i < N_STANDARD_ROLES ? STANDARD_ROLES[i] : t->trained_roles[i - N_STANDARD_ROLES];
        if (i >= N_STANDARD_ROLES && is_standard_role(role)) continue;
        int n = snprintf(out + len, size - len, "%s%s", len ? ", " : "", role);
        if (n < 0 || (size_t)n >= size - len) return;
        len += (size_t)n;
    }
}

int ct_chat_template_specials(const CtChatTemplate *t, char names[][128], int max) {
    if (t->jinja) {  // the end of turn, then every "<|name|>" the template's text spells
        if (max < 1) return 0;
        snprintf(names[0], 128, "%s", t->end_of_turn);
        int n = 1;
        for (const char *p = strstr(t->jinja_source, "<|"); p && n < max; p = strstr(p + 2, "<|")) {
            size_t len = strspn(p + 2, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.");
            if (strncmp(p + 2 + len, "|>", 2) != 0 || len == 0 || len > 100) continue;
            snprintf(names[n], 128, "%.*s", (int)len + 4, p);
            int dup = 0;
            for (int j = 0; j < n; j++) dup |= strcmp(names[j], names[n]) == 0;
            if (!dup) n++;
        }
        return n;
    }
    // In the order they appear: turn_start's, turn_end's, then end_of_turn (<|im_start|> first).
    int n = 0;
    const char *texts[3] = {t->turn_start, t->turn_end, t->end_of_turn};
    for (int k = 0; k < 3; k++)
        for (const char *p = strstr(texts[k], "<|"); p && n < max; p = strstr(p + 2, "<|")) {
            const char *end = strstr(p, "|>");
            if (!end) break;
            snprintf(names[n], 128, "%.*s", (int)(end + 2 - p), p);
            int dup = 0;
            for (int j = 0; j < n; j++) dup |= strcmp(names[j], names[n]) == 0;
            if (!dup) n++;
        }
    int has_eot = 0;
    for (int j = 0; j < n; j++) has_eot |= strcmp(names[j], t->end_of_turn) == 0;
    if (!has_eot && n < max) snprintf(names[n++], 128, "%s", t->end_of_turn);
    return n;
}

int32_t ct_chat_template_check(const CtChatTemplate *t, const CtTokenizer *tok) {
    int32_t id = ct_tokenizer_special_id(tok, t->end_of_turn);
    if (id < 0)
        return ct_error_set("the tokenizer has no special token '%s' that the '%s' chat template ends turns with; "
                            "train a tokenizer with --special '%s', or choose another template",
                            t->end_of_turn, t->name, t->end_of_turn);
    if (t->jinja) return id;
    // Other special-looking strings in the template ("<|im_start|>") must be tokens too.
    const char *texts[2] = {t->turn_start, t->turn_end};
    for (int k = 0; k < 2; k++)
        for (const char *p = strstr(texts[k], "<|"); p; p = strstr(p + 2, "<|")) {
            const char *end = strstr(p, "|>");
            if (!end) break;
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)(end + 2 - p), p);
            if (ct_tokenizer_special_id(tok, name) < 0)
                return ct_error_set("the tokenizer has no special token '%s' that the '%s' chat template uses; train "
                                    "a tokenizer with --special '%s', or choose another template",
                                    name, t->name, name);
        }
    return id;
}

void ct_masked_ids_clear(CtMaskedIds *m) { m->ids.len = 0; }

void ct_masked_ids_free(CtMaskedIds *m) {
    ct_ids_free(&m->ids);
    ct_free(m->mask);
    memset(m, 0, sizeof *m);
}

static void append(CtMaskedIds *out, CtEncoder *enc, const char *text, size_t len, int allow_special, uint8_t mask) {
    size_t before = out->ids.len;
    ct_encode(enc, (const uint8_t *)text, len, allow_special, &out->ids);
    if (out->ids.len > out->mask_cap) {
        out->mask_cap = out->ids.len * 2 + 64;
        out->mask = ct_realloc(out->mask, out->mask_cap);
    }
    if (out->ids.len > before) memset(out->mask + before, mask, out->ids.len - before);  // (mask may be NULL when empty)
}

// turn_start with {role} replaced.
static void append_header(const CtChatTemplate *t, CtEncoder *enc, const char *role, CtMaskedIds *out) {
    const char *at = strstr(t->turn_start, "{role}");
    if (!at) {
        append(out, enc, t->turn_start, strlen(t->turn_start), 1, 0);
        return;
    }
    size_t n = strlen(t->turn_start) + strlen(role) + 1;
    char *text = ct_alloc(n);
    snprintf(text, n, "%.*s%s%s", (int)(at - t->turn_start), t->turn_start, role, at + 6);
    append(out, enc, text, strlen(text), 1, 0);
    ct_free(text);
}

// The end of a trained turn: the end-of-turn token (mask 1), then what turn_end has after it.
static void append_trained_end(const CtChatTemplate *t, CtEncoder *enc, CtMaskedIds *out) {
    size_t eot_len = strlen(t->end_of_turn);
    append(out, enc, t->end_of_turn, eot_len, 1, 1);
    const char *rest = strncmp(t->turn_end, t->end_of_turn, eot_len) == 0 ? t->turn_end + eot_len : t->turn_end;
    append(out, enc, rest, strlen(rest), 1, 0);
}

int ct_chat_encode(const CtChatTemplate *t, const CtTokenizer *tok, CtEncoder *enc, const CtMessage *messages,
                   int n_messages, int add_generation_prompt, CtMaskedIds *out) {
    (void)tok;
    if (t->jinja) return ct_chat_jinja_encode(t, tok, enc, messages, n_messages, add_generation_prompt, 0, out);
    for (int i = 0; i < n_messages; i++) {
        int trained = ct_chat_template_trains(t, messages[i].role);
        append_header(t, enc, messages[i].role, out);
        append(out, enc, messages[i].content, messages[i].content_len, 0, (uint8_t)trained);
        if (trained)
            append_trained_end(t, enc, out);
        else
            append(out, enc, t->turn_end, strlen(t->turn_end), 1, 0);
    }
    if (add_generation_prompt) append_header(t, enc, t->trained_roles[0], out);
    return 0;
}

int ct_chat_encode_completion(const CtChatTemplate *t, const CtTokenizer *tok, CtEncoder *enc, const CtMessage *prompt,
                              int n_prompt, const char *content, size_t content_len, CtMaskedIds *out) {
    (void)tok;
    if (t->jinja) return ct_chat_jinja_encode_completion(t, tok, enc, prompt, n_prompt, content, content_len, out);
    append(out, enc, content, content_len, 0, 1);
    append_trained_end(t, enc, out);
    return 0;
}
