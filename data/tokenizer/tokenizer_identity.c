#include "data/tokenizer/tokenizer_identity.h"

#include <string.h>

#include "core/checksum.h"

static uint64_t mix_u32(uint64_t h, uint32_t v) {
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
    return ct_fnv1a64_update(h, b, 4);
}

// Every id's kind and bytes (both fingerprint schemes hash them alike).
static uint64_t mix_tokens(uint64_t h, const CtTokenizer *t) {
    for (int32_t id = 0; id < t->n_ids; id++) {
        h = mix_u32(h, t->kind[id]);
        if (t->kind[id] == CT_TOKEN_ABSENT) continue;
        h = mix_u32(h, t->lengths[id]);
        h = ct_fnv1a64_update(h, t->pool + t->offsets[id], t->lengths[id]);
    }
    return h;
}

// What only newer tokenizers have is hashed only when present, so that the fingerprints of
// byte-level tokenizers without lstrip/rstrip tokens stay what they were.
static uint64_t mix_extras(uint64_t h, const CtTokenizer *t) {
    if (t->nfc) h = ct_fnv1a64_update(h, "nfc", 3);
    if (t->units == CT_UNITS_CHARS) {
        const CtSpmRules *r = &t->spm;
        h = ct_fnv1a64_update(h, "spm", 3);
        const int32_t fields[] = {r->normalizer_prepend, r->replace_spaces, (int32_t)r->metaspace, r->has_metaspace,
                                  r->split, r->byte_fallback, r->fuse_unk, r->unk_id, r->decode_marker, r->decode_bytes,
                                  r->strip_leading_space};
        for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) h = mix_u32(h, (uint32_t)fields[i]);
    }
    if (t->units == CT_UNITS_WORDPIECE) {
        const CtWordPieceRules *r = &t->wp;
        h = ct_fnv1a64_update(h, "wordpiece", 9);
        const int32_t fields[] = {r->normalizer, r->clean_text, r->handle_chinese_chars, r->strip_accents, r->lowercase,
                                  r->bert_pre_tokenizer, r->max_chars, r->unk_id, (int32_t)r->decoder, r->cleanup};
        for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) h = mix_u32(h, (uint32_t)fields[i]);
        h = ct_fnv1a64_update(h, r->prefix, strlen(r->prefix) + 1);
        h = ct_fnv1a64_update(h, r->decode_prefix, strlen(r->decode_prefix) + 1);
    }
    for (int32_t k = 0; k < t->n_special; k++)
        if (t->added_flags[k]) {
            h = mix_u32(h, (uint32_t)t->special_ids[k]);
            h = mix_u32(h, t->added_flags[k]);
        }
    return h;
}

uint64_t ct_tokenizer_fingerprint(const CtTokenizer *t) {
    uint64_t h = CT_FNV1A64_INIT;
    h = ct_fnv1a64_update(h, "ctrain-tokenizer-2", 18);  // not equal to a fingerprint of ctrain 1's scheme
    h = mix_u32(h, (uint32_t)t->pattern);
    h = mix_u32(h, (uint32_t)t->whole_piece_lookup);
    h = mix_u32(h, (uint32_t)t->n_ids);
    h = mix_tokens(h, t);
    h = mix_u32(h, (uint32_t)t->n_merges);
    for (int32_t i = 0; i < t->n_merges; i++) {
        h = mix_u32(h, (uint32_t)t->merges[i].left);
        h = mix_u32(h, (uint32_t)t->merges[i].right);
    }
    return mix_extras(h, t);
}

// The fingerprint of earlier releases, which hashed the merge rule (so a GPT-2 folder and the
// tokenizer.json saved from it differed) and the merges only under the list rule.
static uint64_t fingerprint_v1(const CtTokenizer *t, CtMergeRule rule) {
    uint64_t h = CT_FNV1A64_INIT;
    h = mix_u32(h, (uint32_t)t->pattern);
    h = mix_u32(h, (uint32_t)rule);
    h = mix_u32(h, (uint32_t)t->whole_piece_lookup);
    h = mix_u32(h, (uint32_t)t->n_ids);
    h = mix_tokens(h, t);
    if (rule == CT_MERGES_BY_LIST)
        for (int32_t i = 0; i < t->n_merges; i++) {
            h = mix_u32(h, (uint32_t)t->merges[i].left);
            h = mix_u32(h, (uint32_t)t->merges[i].right);
        }
    return h;
}

int ct_tokenizer_is(const CtTokenizer *t, uint64_t recorded) {
    // An older fingerprint under either merge rule: the rule came from the file format, so the
    // GPT-2 folder's shards stay readable with the tokenizer.json saved beside them.
    return recorded == ct_tokenizer_fingerprint(t) || recorded == fingerprint_v1(t, CT_MERGES_BY_RANK) ||
           recorded == fingerprint_v1(t, CT_MERGES_BY_LIST);
}

int32_t ct_tokenizer_special_id(const CtTokenizer *t, const char *text) {
    size_t len = strlen(text);
    for (int32_t i = 0; i < t->n_special; i++) {
        int32_t id = t->special_ids[i];
        if (t->lengths[id] == len && memcmp(t->pool + t->offsets[id], text, len) == 0) return id;
    }
    return -1;
}
