// Conversations through a model's own Jinja template: the rendered text, the ranges the loss
// covers, and its tokens. The renderer reports which output bytes are each message's content
// (jinja.h's spans); content is encoded as text (never as special tokens), the rest with special
// tokens allowed, and each trained message's range — from the end of the generation prompt
// before it through its end-of-turn token — has mask 1.
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/examples/chat_template.h"
#include "data/examples/jinja.h"

const char *ct_chat_jinja_end_of_turn(const char *source, const char *eos_token) {
    static const char *const known[] = {"<|eot_id|>", "<|im_end|>", "<end_of_turn>", "<|end|>"};
    for (size_t k = 0; k < sizeof known / sizeof *known; k++)
        if (strstr(source, known[k])) return known[k];
    return eos_token && eos_token[0] && strstr(source, "eos_token") ? eos_token : NULL;
}

static int render(const CtChatTemplate *t, const CtMessage *messages, int n, int add_generation_prompt,
                  CtJinjaOutput *out) {
    CtJinjaMessage *m = ct_calloc((size_t)n + 1, sizeof *m);
    for (int i = 0; i < n; i++) m[i] = (CtJinjaMessage){messages[i].role, messages[i].content, messages[i].content_len};
    CtJinjaInput in = {m, n, add_generation_prompt, t->bos_token, t->eos_token};
    int rc = ct_jinja_render(t->jinja, &in, out);
    ct_free(m);
    return rc;
}

// Where message i's trained range starts: after the generation prompt rendered for the messages
// before it, when that text is a prefix of the whole and ends at or before the content
// (Qwen3's empty think block then counts as the answer's, as the model writes it); else at the
// content itself (Mistral's system message moves into the last user turn, so its prefixes
// differ).
static size_t trained_start(const CtChatTemplate *t, const CtMessage *messages, int i, const CtJinjaOutput *whole,
                            size_t content_start) {
    CtJinjaOutput prefix;
    if (i == 0 || render(t, messages, i, 1, &prefix) != 0) {
        ct_error_clear();
        return content_start;
    }
    size_t start = prefix.len <= content_start && memcmp(prefix.text, whole->text, prefix.len) == 0 ? prefix.len : content_start;
    ct_jinja_output_free(&prefix);
    return start;
}

// The trained ranges of `out`: pairs [start, end). 0, or -1 + error.
static int trained_ranges(const CtChatTemplate *t, const CtMessage *messages, int n, const CtJinjaOutput *out,
                          size_t **ranges, int *n_ranges) {
    *ranges = ct_calloc(2 * (size_t)n + 2, sizeof **ranges);
    *n_ranges = 0;
    size_t done = 0, eot_len = strlen(t->end_of_turn);
    for (int i = 0; i < n; i++) {
        if (!ct_chat_template_trains(t, messages[i].role)) continue;
        size_t cs = 0, ce = 0;
        int found = 0;
        for (int k = 0; k < out->n_spans; k++) {
            if (out->spans[k].message != i) continue;
            if (!found) cs = out->spans[k].off;
            ce = out->spans[k].off + out->spans[k].len;
            found = 1;
        }
        if (!found)
            return ct_error_set("the chat template '%s' does not show message %d's content (role '%s'), so its loss "
                                "cannot be placed", t->name, i + 1, messages[i].role);
        size_t start = trained_start(t, messages, i, out, cs);
        if (start < done) start = cs;
        const char *eot = eot_len ? strstr(out->text + ce, t->end_of_turn) : NULL;
        if (!eot)
            return ct_error_set("the chat template '%s' does not end message %d (role '%s') with its end-of-turn '%s'",
                                t->name, i + 1, messages[i].role, t->end_of_turn);
        done = (size_t)(eot - out->text) + eot_len;
        (*ranges)[2 * *n_ranges] = start;
        (*ranges)[2 * *n_ranges + 1] = done;
        ++*n_ranges;
    }
    return 0;
}

int ct_chat_jinja_render(const CtChatTemplate *t, const CtMessage *messages, int n_messages, int add_generation_prompt,
                         char **text, size_t **ranges, int *n_ranges) {
    CtJinjaOutput out;
    *text = NULL;
    *ranges = NULL;
    *n_ranges = 0;
    if (render(t, messages, n_messages, add_generation_prompt, &out) != 0) return -1;
    if (trained_ranges(t, messages, n_messages, &out, ranges, n_ranges) != 0) {
        ct_free(*ranges);
        *ranges = NULL;
        ct_jinja_output_free(&out);
        return -1;
    }
    *text = out.text;
    ct_free(out.spans);
    return 0;
}

static void grow_mask(CtMaskedIds *out) {
    if (out->ids.len > out->mask_cap) {
        out->mask_cap = out->ids.len * 2 + 64;
        out->mask = ct_realloc(out->mask, out->mask_cap);
    }
}

static void append(CtMaskedIds *out, CtEncoder *enc, const char *text, size_t len, int allow_special, uint8_t mask) {
    size_t before = out->ids.len;
    ct_encode(enc, (const uint8_t *)text, len, allow_special, &out->ids);
    grow_mask(out);
    if (out->ids.len > before) memset(out->mask + before, mask, out->ids.len - before);
}

// Whether text[from, to) spells one of the tokenizer's special tokens.
static int spells_special(const CtTokenizer *tok, const char *text, size_t from, size_t to) {
    for (int32_t k = 0; k < tok->n_special; k++) {
        int32_t id = tok->special_ids[k];
        if (tok->kind[id] != CT_TOKEN_SPECIAL) continue;
        if (memmem(text + from, to - from, tok->pool + tok->offsets[id], tok->lengths[id])) return 1;
    }
    return 0;
}

// Where token bytes d[0..n) lie in text at or after `at`: as they are, or without a space the
// tokenizer put in front (Metaspace's prepend), or after whitespace (Unicode's too) that an
// added token's lstrip/rstrip took. Sets [*a, *b); 0, or -1 when they are not there.
static int locate(const char *text, size_t to, size_t at, const uint8_t *d, size_t n, size_t *a, size_t *b) {
    for (size_t q = at, w; q <= to; q += w) {
        if (n <= to - q && memcmp(text + q, d, n) == 0) return *a = q, *b = q + n, 0;
        if (n > 0 && d[0] == ' ' && n - 1 <= to - q && memcmp(text + q, d + 1, n - 1) == 0)
            return *a = q, *b = q + n - 1, 0;
        if (q == to || !(w = ct_jinja_space_at(text, to, q))) return -1;
    }
    return -1;
}

// Encodes text[from, to) in one piece, as transformers tokenizes a whole text, and gives each
// token the mask of the bytes it covers (trained where any is: bit 0 of kind). 0, or -1 when
// the tokens cannot be placed on the text (nothing is appended then).
static int append_aligned(CtMaskedIds *out, const CtTokenizer *tok, CtEncoder *enc, const char *text, size_t from,
                          size_t to, int allow_special, const uint8_t *kind) {
    size_t before = out->ids.len, at = from, len = 0, cap = 0;
    ct_encode(enc, (const uint8_t *)text + from, to - from, allow_special, &out->ids);
    grow_mask(out);
    uint8_t *bytes = NULL;
    int rc = 0;
    for (size_t i = before; i < out->ids.len && rc == 0; i++) {
        len = 0;
        size_t a = at, b = at;
        rc = ct_decode(tok, &out->ids.data[i], 1, &bytes, &len, &cap) != 0 ? -1 : locate(text, to, at, bytes, len, &a, &b);
        if (rc != 0) break;
        uint8_t trained = a < to ? kind[a] & 1 : 0;
        for (size_t p = a; p < b; p++) trained |= kind[p] & 1;
        out->mask[i] = trained;
        at = b;
    }
    for (size_t w; rc == 0 && at < to && (w = ct_jinja_space_at(text, to, at));) at += w;  // an added token's rstrip took it
    if (rc != 0 || at != to) {
        ct_error_clear();
        out->ids.len = before;
        rc = -1;
    }
    ct_free(bytes);
    return rc;
}

int ct_chat_jinja_encode(const CtChatTemplate *t, const CtTokenizer *tok, CtEncoder *enc, const CtMessage *messages,
                         int n_messages, int add_generation_prompt, size_t skip_prefix, CtMaskedIds *out) {
    CtJinjaOutput r;
    if (render(t, messages, n_messages, add_generation_prompt, &r) != 0) return -1;
    size_t *ranges;
    int n_ranges;
    if (trained_ranges(t, messages, n_messages, &r, &ranges, &n_ranges) != 0) {
        ct_free(ranges);
        ct_jinja_output_free(&r);
        return -1;
    }
    // Per byte: bit 0 = trained, bit 1 = content that spells a special token (its own piece,
    // encoded as text), bit 2 = a piece ends here (dpo's prompt, which TRL tokenizes apart).
    uint8_t *kind = ct_calloc(r.len + 1, 1);
    for (int k = 0; k < n_ranges; k++)
        for (size_t p = ranges[2 * k]; p < ranges[2 * k + 1]; p++) kind[p] |= 1;
    for (int k = 0; k < r.n_spans; k++) {
        size_t from = r.spans[k].off, to = from + r.spans[k].len;
        if (spells_special(tok, r.text, from, to))
            for (size_t p = from; p < to; p++) kind[p] |= 2;
    }
    if (skip_prefix > 0 && skip_prefix < r.len) kind[skip_prefix - 1] |= 4;
    for (size_t p = 0; p < r.len;) {  // pieces: the whole text but for those cuts
        size_t q = p + 1;
        while (q < r.len && (kind[q] & 2) == (kind[p] & 2) && !(kind[q - 1] & 4)) q++;
        int allow_special = !(kind[p] & 2);
        if (p >= skip_prefix && append_aligned(out, tok, enc, r.text, p, q, allow_special, kind) != 0)
            for (size_t a = p; a < q;) {  // tokens that do not line up with the text: cut at the masks
                size_t b = a + 1;
                while (b < q && (kind[b] & 1) == (kind[a] & 1)) b++;
                append(out, enc, r.text + a, b - a, allow_special, kind[a] & 1);
                a = b;
            }
        p = q;
    }
    ct_free(kind);
    ct_free(ranges);
    ct_jinja_output_free(&r);
    return 0;
}

// dpo: the completion is what prompt + answer renders to after the prompt's generation prompt.
int ct_chat_jinja_encode_completion(const CtChatTemplate *t, const CtTokenizer *tok, CtEncoder *enc,
                                    const CtMessage *prompt, int n_prompt, const char *content, size_t content_len,
                                    CtMaskedIds *out) {
    CtJinjaOutput head, whole;
    CtMessage *all = ct_calloc((size_t)n_prompt + 1, sizeof *all);
    memcpy(all, prompt, (size_t)n_prompt * sizeof *all);
    all[n_prompt] = (CtMessage){t->trained_roles[0], content, content_len};
    int rc = render(t, prompt, n_prompt, 1, &head);
    if (rc == 0 && (rc = render(t, all, n_prompt + 1, 0, &whole)) == 0) {
        if (whole.len < head.len || memcmp(whole.text, head.text, head.len) != 0)
            rc = ct_error_set("the chat template '%s' renders the prompt with its answer differently from the prompt "
                              "alone (its generation prompt is not a prefix), so the answer cannot be cut off it",
                              t->name);
        ct_jinja_output_free(&whole);
        if (rc == 0) rc = ct_chat_jinja_encode(t, tok, enc, all, n_prompt + 1, 0, head.len, out);
    }
    ct_jinja_output_free(&head);  // (zeroed when its rendering failed)
    ct_free(all);
    return rc;
}
