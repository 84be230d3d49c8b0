#include "data/tokenizer/tokenizer_extend.h"

#include <string.h>

#include "core/error.h"
#include "data/tokenizer/tokenizer_identity.h"

int ct_tokenizer_add_specials(CtTokenizer *t, const char *const *texts, int n) {
    int missing = 0;
    for (int i = 0; i < n; i++) {
        if (ct_tokenizer_special_id(t, texts[i]) >= 0) continue;
        if (ct_tokenizer_find(t, (const uint8_t *)texts[i], strlen(texts[i])) >= 0)
            return ct_error_set("'%s' is an ordinary token of this tokenizer and cannot become a special one", texts[i]);
        missing++;
    }
    if (missing == 0) return 0;
    // Rebuild: the lookup tables are sized when a tokenizer is finished.
    CtTokenizer fresh;
    ct_tokenizer_init(&fresh, t->pattern, t->merge_rule);
    fresh.whole_piece_lookup = t->whole_piece_lookup;
    fresh.units = t->units;
    fresh.nfc = t->nfc;
    fresh.spm = t->spm;
    fresh.wp = t->wp;
    fresh.post = t->post;
    memcpy(fresh.eos_text, t->eos_text, sizeof fresh.eos_text);
    for (int32_t id = 0; id < t->n_ids; id++)
        if (t->kind[id] == CT_TOKEN_NORMAL &&
            ct_tokenizer_add(&fresh, id, t->pool + t->offsets[id], t->lengths[id], CT_TOKEN_NORMAL) != 0)
            goto fail;
    for (int32_t i = 0; i < t->n_special; i++) {  // specials in their order
        int32_t id = t->special_ids[i];
        if (ct_tokenizer_add_flagged(&fresh, id, t->pool + t->offsets[id], t->lengths[id], (CtTokenKind)t->kind[id],
                                     t->added_flags[i]) != 0)
            goto fail;
    }
    for (int32_t i = 0; i < t->n_merges; i++)
        if (ct_tokenizer_add_merge(&fresh, t->merges[i].left, t->merges[i].right) != 0) goto fail;
    int32_t next = t->n_ids;
    int added = 0;
    for (int i = 0; i < n; i++) {
        if (ct_tokenizer_special_id(t, texts[i]) >= 0) continue;
        int dup = 0;
        for (int j = 0; j < i; j++) dup |= strcmp(texts[j], texts[i]) == 0;
        if (dup) continue;
        if (ct_tokenizer_add(&fresh, next++, (const uint8_t *)texts[i], strlen(texts[i]), CT_TOKEN_SPECIAL) != 0) goto fail;
        added++;
    }
    if (ct_tokenizer_finish(&fresh) != 0) goto fail;
    ct_tokenizer_free(t);
    *t = fresh;
    return added;
fail:
    ct_tokenizer_free(&fresh);
    return -1;
}
