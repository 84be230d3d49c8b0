#include "data/shard/shard_encode.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/examples/examples.h"
#include "data/examples/prompt_fields.h"
#include "data/input/json_line.h"

static void fail(CtShardEncoded *e, const char *what) {
    e->failed = 1;
    snprintf(e->error, sizeof e->error, "%s", what);
}

// A message of a role the template does not know is refused by name (a typo would be rendered
// as an untrained turn and silently not learned). 0, or -1 after fail().
static int check_roles(const CtChatTemplate *t, const CtMessage *m, int n, const char *what, CtShardEncoded *e) {
    for (int i = 0; i < n; i++) {
        if (ct_chat_template_allows_role(t, m[i].role)) continue;
        char roles[256], msg[400];
        ct_chat_template_roles_text(t, roles, sizeof roles);
        snprintf(msg, sizeof msg, "'%s' message %d has role '%.64s'; the roles allowed are %s", what, i + 1, m[i].role,
                 roles);
        fail(e, msg);
        return -1;
    }
    return 0;
}

// dpo: a pair with an empty completion, or whose completions are the same tokens, gives the
// loss nothing to prefer (chosen = rejected: a constant log sigmoid(0)); it is skipped and
// counted, or refused with --strict.
static void unusable(CtShardEncoded *e, const char *why) {
    e->unusable = 1;
    snprintf(e->error, sizeof e->error, "%s", why);
}

static int same_ids(const CtIds *a, const CtIds *b) {
    return a->len == b->len && memcmp(a->data, b->data, sizeof(int32_t) * a->len) == 0;
}

// prompts: the prompt rendered as an answer's start (the template's generation prompt), and the
// line's other fields, verbatim.
static void encode_prompt(const CtShardJob *job, CtEncoder *enc, const char *text, size_t len, CtShardEncoded *e) {
    CtTaskPrompt p;
    if (ct_parse_prompt(text, len, &p) != 0) return fail(e, ct_error_message());
    if (job->chat_template && check_roles(job->chat_template, p.prompt, p.n_prompt, p.prompt_key, e) != 0) {
        ct_task_prompt_free(&p);
        return;
    }
    if (ct_encode_prompt(job->chat_template, job->tokenizer, enc, &p, "a chat template, and --template none gives none",
                         &e->main.ids) != 0 ||
        !(e->fields = ct_prompt_fields(text, len, &p, &e->fields_len)))
        fail(e, ct_error_message());
    ct_task_prompt_free(&p);
}

static void reset_encoded(CtShardEncoded *e) {
    e->failed = e->empty = e->unusable = 0;
    e->prompt_not_prefix = 0;
    e->margin = 0;
    ct_free(e->fields);
    e->fields = NULL;
    e->fields_len = 0;
    ct_masked_ids_clear(&e->main);
    ct_masked_ids_clear(&e->chosen);
    ct_masked_ids_clear(&e->rejected);
}

// A text document is framed as the model's tokenizer frames a text (tokenizer.json's
// post_processor: Llama 3, Llama 2, Mistral and Gemma put their BOS first), then the end-of-text
// token, once.
void ct_shard_frame_begin(const CtShardJob *job, CtIds *ids) {
    const CtPostProcessor *post = &job->tokenizer->post;
    for (int i = 0; i < post->n_prefix; i++) ct_ids_push(ids, post->prefix[i]);
}

void ct_shard_frame_end(const CtShardJob *job, CtIds *ids) {
    const CtPostProcessor *post = &job->tokenizer->post;
    for (int i = 0; i < post->n_suffix; i++) ct_ids_push(ids, post->suffix[i]);
    if (!(post->n_suffix && post->suffix[post->n_suffix - 1] == job->eot)) ct_ids_push(ids, job->eot);
}

void ct_shard_encode_document(const CtShardJob *job, CtEncoder *enc, const char *text, size_t len, int jsonl,
                              CtShardEncoded *e, uint8_t **scratch, size_t *scratch_cap) {
    reset_encoded(e);
    const CtTokenizer *tok = job->tokenizer;
    if (job->kind == CT_SHARD_TEXT) {
        const uint8_t *doc = (const uint8_t *)text;
        size_t doc_len = len;
        if (jsonl) {
            size_t out_len;
            int rc = ct_json_line_string(text, len, job->field, scratch, &out_len, scratch_cap);
            if (rc < 0) return fail(e, ct_error_message());
            if (rc > 0) {
                char msg[200];
                snprintf(msg, sizeof msg, "no string field '%s' (choose the field with --field)", job->field);
                return fail(e, msg);
            }
            doc = *scratch;
            doc_len = out_len;
        }
        if (doc_len == 0) {
            e->empty = 1;
            return;
        }
        ct_shard_frame_begin(job, &e->main.ids);
        ct_encode(enc, doc, doc_len, job->allow_special, &e->main.ids);
        ct_shard_frame_end(job, &e->main.ids);
        return;
    }
    if (job->kind == CT_SHARD_PROMPTS) return encode_prompt(job, enc, text, len, e);
    if (job->kind == CT_SHARD_SFT) {
        CtConversation c;
        if (ct_parse_sft_example(text, len, &c) != 0) return fail(e, ct_error_message());
        if (check_roles(job->chat_template, c.messages, c.n_messages, "messages", e) != 0) {
            ct_conversation_free(&c);
            return;
        }
        int rc = ct_chat_encode(job->chat_template, tok, enc, c.messages, c.n_messages, 0, &e->main);
        ct_conversation_free(&c);
        if (rc != 0) return fail(e, ct_error_message());
        int any = 0;
        for (size_t i = 0; i < e->main.ids.len; i++) any |= e->main.mask[i];
        if (!any) return fail(e, "the example has no message of a trained role (nothing to learn)");
        return;
    }
    CtPreference p;
    if (ct_parse_dpo_example(text, len, &p) != 0) return fail(e, ct_error_message());
    const int conversational = p.conversational;
    if (p.has_margin != job->dpo_margins) {
        ct_preference_free(&p);
        // The survey found a margin on some pair: a pair without one has no value TRL would use
        // (its collator makes one tensor of the column). The reverse is a file changed meanwhile.
        return fail(e, job->dpo_margins ? "no 'margin', but other pairs have one: give every pair a margin, or none"
                                        : "a 'margin' the first pass over the inputs did not see (did the file change?)");
    }
    e->margin = p.margin;
    if (conversational && !job->chat_template) {
        ct_preference_free(&p);
        return fail(e, "a pair of message lists needs a chat template");
    }
    if (conversational && check_roles(job->chat_template, p.prompt, p.n_prompt, "prompt", e) != 0) {
        ct_preference_free(&p);
        return;
    }
    if (p.chosen_len == 0 || p.rejected_len == 0) {
        unusable(e, p.chosen_len == 0 && p.rejected_len == 0 ? "empty chosen and rejected completions"
                    : p.chosen_len == 0                      ? "empty chosen completion"
                                                             : "empty rejected completion");
        ct_preference_free(&p);
        return;
    }
    if (conversational) {
        if (ct_chat_encode(job->chat_template, tok, enc, p.prompt, p.n_prompt, 1, &e->main) != 0 ||
            ct_chat_encode_completion(job->chat_template, tok, enc, p.prompt, p.n_prompt, p.chosen, p.chosen_len,
                                      &e->chosen) != 0 ||
            ct_chat_encode_completion(job->chat_template, tok, enc, p.prompt, p.n_prompt, p.rejected, p.rejected_len,
                                      &e->rejected) != 0) {
            ct_preference_free(&p);
            return fail(e, ct_error_message());
        }
    } else if (p.prompt[0].content_len > 0) {  // plain strings: no template; tokenized whole as TRL does
        e->prompt_not_prefix = ct_encode_plain_preference(enc, tok, job->eot, &p, &e->main.ids, &e->chosen.ids,
                                                          &e->rejected.ids);
    }
    const size_t prompt_text = conversational ? 1 : p.prompt[0].content_len;
    ct_preference_free(&p);
    // A plain prompt may lose all its tokens to the completions' (they start where the tokenizations part).
    if (prompt_text == 0 || (conversational && e->main.ids.len == 0) || e->chosen.ids.len == 0 ||
        e->rejected.ids.len == 0)
        fail(e, "empty prompt or completion");
    else if (same_ids(&e->chosen.ids, &e->rejected.ids))
        unusable(e, "chosen equals rejected");
}

void ct_shard_encoded_free(CtShardEncoded *e) {
    ct_masked_ids_free(&e->main);
    ct_masked_ids_free(&e->chosen);
    ct_masked_ids_free(&e->rejected);
    ct_free(e->fields);
    memset(e, 0, sizeof *e);
}
