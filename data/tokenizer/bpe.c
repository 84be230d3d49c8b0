// Building a tokenizer: tokens by id, merge rules, and the lookup tables behind encoding.
#include "data/tokenizer/bpe.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/tokenizer/spm.h"

void ct_tokenizer_init(CtTokenizer *t, CtPattern pattern, CtMergeRule rule) {
    memset(t, 0, sizeof *t);
    t->pattern = pattern;
    t->merge_rule = rule;
    t->whole_piece_lookup = rule == CT_MERGES_BY_RANK;
    for (int b = 0; b < 256; b++) t->byte_token[b] = -1;
}

void ct_tokenizer_set_spm(CtTokenizer *t, const CtSpmRules *rules) {
    t->units = CT_UNITS_CHARS;
    t->spm = *rules;
}

void ct_tokenizer_set_wordpiece(CtTokenizer *t, const CtWordPieceRules *rules) {
    t->units = CT_UNITS_WORDPIECE;
    t->wp = *rules;
}

void ct_tokenizer_free(CtTokenizer *t) {
    ct_free(t->kind);
    ct_free(t->offsets);
    ct_free(t->lengths);
    ct_free(t->pool);
    ct_free(t->merges);
    ct_free(t->special_ids);
    ct_free(t->added_flags);
    if (t->finished) {
        ct_bytes_map_free(&t->bytes_map);
        ct_pair_map_free(&t->pair_map);
    }
    memset(t, 0, sizeof *t);
}

// Ids are limited so that offsets and hashes stay 32-bit and a hostile file cannot make us
// allocate gigabytes for one large id.
#define MAX_ID (1 << 24)

static void grow_ids(CtTokenizer *t, int32_t n) {
    if (n <= t->n_ids) return;
    if (n > t->ids_cap) {
        int32_t cap = t->ids_cap ? t->ids_cap : 1024;
        while (cap < n) cap *= 2;
        t->kind = ct_realloc(t->kind, (size_t)cap);
        t->offsets = ct_realloc(t->offsets, (size_t)cap * sizeof *t->offsets);
        t->lengths = ct_realloc(t->lengths, (size_t)cap * sizeof *t->lengths);
        t->ids_cap = cap;
    }
    memset(t->kind + t->n_ids, 0, (size_t)(n - t->n_ids));
    for (int32_t i = t->n_ids; i < n; i++) t->offsets[i] = t->lengths[i] = 0;
    t->n_ids = n;
}

int ct_tokenizer_add(CtTokenizer *t, int32_t id, const uint8_t *bytes, size_t len, CtTokenKind kind) {
    return ct_tokenizer_add_flagged(t, id, bytes, len, kind, 0);
}

int ct_tokenizer_add_flagged(CtTokenizer *t, int32_t id, const uint8_t *bytes, size_t len, CtTokenKind kind,
                             unsigned flags) {
    CT_CHECK(!t->finished, "tokens are added before ct_tokenizer_finish");
    if (id < 0 || id >= MAX_ID) return ct_error_set("token id %d is out of range (0..%d)", (int)id, MAX_ID - 1);
    if (len == 0) return ct_error_set("token id %d has no bytes", (int)id);
    if (len > 65536) return ct_error_set("token id %d is %zu bytes long (at most 65536)", (int)id, len);
    grow_ids(t, id + 1);
    if (t->kind[id] != CT_TOKEN_ABSENT) {
        // GPT-2's encoder.json lists <|endoftext|> as a token; its meta names it special.
        // Llama 2's <s> is in model.vocab and in added_tokens.
        int same = t->lengths[id] == len && memcmp(t->pool + t->offsets[id], bytes, len) == 0;
        if (same && t->kind[id] != CT_TOKEN_NORMAL && kind == t->kind[id]) return 0;  // listed twice
        if (same && t->kind[id] == CT_TOKEN_NORMAL && (kind == CT_TOKEN_SPECIAL || kind == CT_TOKEN_ADDED)) {
            t->kind[id] = (uint8_t)kind;
        } else {
            return ct_error_set("token id %d appears twice", (int)id);
        }
    } else {
        if (t->pool_size + len > t->pool_cap) {
            t->pool_cap = (t->pool_size + len) * 2 + 4096;
            t->pool = ct_realloc(t->pool, t->pool_cap);
        }
        if (t->pool_size + len > UINT32_MAX) return ct_error_set("the vocabulary is larger than 4 GiB");
        memcpy(t->pool + t->pool_size, bytes, len);
        t->offsets[id] = (uint32_t)t->pool_size;
        t->lengths[id] = (uint32_t)len;
        t->pool_size += len;
        t->kind[id] = (uint8_t)kind;
    }
    if (kind == CT_TOKEN_SPECIAL || kind == CT_TOKEN_ADDED) {
        t->special_ids = ct_realloc(t->special_ids, (size_t)(t->n_special + 1) * sizeof *t->special_ids);
        t->added_flags = ct_realloc(t->added_flags, (size_t)(t->n_special + 1));
        t->added_flags[t->n_special] = (uint8_t)flags;
        if (flags & CT_ADDED_NORMALIZED) t->any_normalized_added = 1;
        t->special_ids[t->n_special++] = id;
        if (len > t->max_special_len) t->max_special_len = len;
    }
    return 0;
}

int ct_tokenizer_add_merge(CtTokenizer *t, int32_t left, int32_t right) {
    CT_CHECK(!t->finished, "merges are added before ct_tokenizer_finish");
    if (t->n_merges == t->merges_cap) {
        t->merges_cap = t->merges_cap ? t->merges_cap * 2 : 1024;
        t->merges = ct_realloc(t->merges, (size_t)t->merges_cap * sizeof *t->merges);
    }
    t->merges[t->n_merges++] = (CtMerge){left, right};
    return 0;
}

int32_t ct_tokenizer_find(const CtTokenizer *t, const uint8_t *bytes, size_t len) {
    return ct_bytes_map_find(&t->bytes_map, bytes, len);
}

int32_t ct_tokenizer_vocab_size(const CtTokenizer *t) { return t->n_ids; }

static int is_normal(const CtTokenizer *t, int32_t id) { return id >= 0 && id < t->n_ids && t->kind[id] == CT_TOKEN_NORMAL; }

static int merge_order(const void *x, const void *y) {
    const CtMerge *a = x, *b = y;
    if (a->left != b->left) return (a->left > b->left) - (a->left < b->left);
    return (a->right > b->right) - (a->right < b->right);
}

// tiktoken's rule as a pair table: (a, b) merges into c when bytes(a) + bytes(b) = bytes(c),
// with rank c. Every split of every token is tried once, so encoding never concatenates.
// A rank file has no merge list; with derive_list, the pairs become one, as transformers'
// TikTokenConverter writes it (every split, by the merged token's rank, then by the halves'
// ranks), so that the tokenizer can be saved as tokenizer.json (which with ignore_merges
// encodes as the ranks do) and is identified by the same merges whichever file it came from.
static void build_pairs_by_rank(CtTokenizer *t, int derive_list) {
    for (int32_t c = 0; c < t->n_ids; c++) {
        if (t->kind[c] != CT_TOKEN_NORMAL || t->lengths[c] < 2) continue;
        const uint8_t *p = t->pool + t->offsets[c];
        size_t n = t->lengths[c];
        int32_t first = t->n_merges;
        for (size_t k = 1; k < n; k++) {
            int32_t a = ct_bytes_map_find(&t->bytes_map, p, k);
            if (a < 0) continue;
            int32_t b = ct_bytes_map_find(&t->bytes_map, p + k, n - k);
            if (b < 0) continue;
            ct_pair_map_put(&t->pair_map, a, b, c, c);
            if (!derive_list) continue;
            if (t->n_merges == t->merges_cap) {
                t->merges_cap = t->merges_cap ? t->merges_cap * 2 : 1024;
                t->merges = ct_realloc(t->merges, (size_t)t->merges_cap * sizeof *t->merges);
            }
            t->merges[t->n_merges++] = (CtMerge){a, b};
        }
        if (t->n_merges - first > 1)
            qsort(t->merges + first, (size_t)(t->n_merges - first), sizeof *t->merges, merge_order);
    }
}

static int build_pairs_by_list(CtTokenizer *t) {
    uint8_t *buf = NULL;
    size_t cap = 0;
    for (int32_t r = 0; r < t->n_merges; r++) {
        int32_t a = t->merges[r].left, b = t->merges[r].right;
        if (!is_normal(t, a) || !is_normal(t, b)) {
            ct_free(buf);
            return ct_error_set("merge %d uses token id %d, which is not an ordinary token", (int)r,
                                (int)(is_normal(t, a) ? b : a));
        }
        size_t la = t->lengths[a], lb = t->lengths[b];
        if (la + lb > cap) buf = ct_realloc(buf, cap = (la + lb) * 2);
        memcpy(buf, t->pool + t->offsets[a], la);
        memcpy(buf + la, t->pool + t->offsets[b], lb);
        int32_t c = ct_bytes_map_find(&t->bytes_map, buf, la + lb);
        if (c < 0) {
            ct_free(buf);
            return ct_error_set("merge %d (ids %d + %d): the merged token is not in the vocabulary", (int)r, (int)a,
                                (int)b);
        }
        ct_pair_map_put(&t->pair_map, a, b, r, c);
    }
    ct_free(buf);
    return 0;
}

int ct_tokenizer_finish(CtTokenizer *t) {
    CT_CHECK(!t->finished, "a tokenizer is finished once");
    size_t n_normal = 0;
    if (t->merge_rule == CT_MERGES_BY_LIST && t->n_merges >= CT_PAIR_MAX_RANK)
        return ct_error_set("%d merges: at most %d are supported", (int)t->n_merges, CT_PAIR_MAX_RANK - 1);
    for (int32_t i = 0; i < t->n_ids; i++) {
        if (t->kind[i] != CT_TOKEN_NORMAL) continue;
        if (i >= CT_PAIR_MAX_ID)  // the pair table packs ids in 21 bits; added tokens may go higher
            return ct_error_set("token id %d is too large for an ordinary token (at most %d)", (int)i, CT_PAIR_MAX_ID - 1);
        n_normal++;
        if (t->lengths[i] == 1 && t->byte_token[t->pool[t->offsets[i]]] < 0) t->byte_token[t->pool[t->offsets[i]]] = i;
    }
    ct_bytes_map_init(&t->bytes_map, n_normal, t->pool, t->offsets, t->lengths);
    ct_pair_map_init(&t->pair_map, t->merge_rule == CT_MERGES_BY_RANK ? n_normal * 5 / 2 : (size_t)t->n_merges,
                     t->merge_rule == CT_MERGES_BY_RANK ? 0 : (size_t)t->n_merges);
    t->finished = 1;  // from here on ct_tokenizer_free frees the tables
    for (int32_t i = 0; i < t->n_ids; i++) {
        if (t->kind[i] != CT_TOKEN_NORMAL) continue;
        int32_t other = ct_bytes_map_insert(&t->bytes_map, i);
        if (other >= 0) return ct_error_set("token ids %d and %d have the same bytes", (int)other, (int)i);
    }
    if (t->units == CT_UNITS_CHARS) {
        // HF's byte fallback looks up format!("<{:#04X}>", byte): "<0x0A>".
        static const char hex[] = "0123456789ABCDEF";
        for (int b = 0; b < 256; b++) {
            char name[7] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>', 0};
            t->spm.byte_ids[b] = ct_bytes_map_find(&t->bytes_map, (const uint8_t *)name, 6);
        }
    }
    for (int b = 0; b < 256 && t->units == CT_UNITS_BYTES; b++)
        if (t->byte_token[b] < 0)
            return ct_error_set("byte 0x%02X has no token (a byte-level BPE vocabulary needs all 256 bytes)", b);
    if (t->merge_rule == CT_MERGES_BY_RANK) {
        build_pairs_by_rank(t, t->n_merges == 0);
        return 0;
    }
    return build_pairs_by_list(t);
}

static int is_normalized_added(const CtTokenizer *t, int32_t id) {
    if (!t->any_normalized_added) return 0;
    for (int32_t k = 0; k < t->n_special; k++)
        if (t->special_ids[k] == id) return (t->added_flags[k] & CT_ADDED_NORMALIZED) != 0;
    return 0;
}

int ct_decode(const CtTokenizer *t, const int32_t *ids, size_t n, uint8_t **out, size_t *len, size_t *cap) {
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->n_ids || t->kind[id] == CT_TOKEN_ABSENT)
            return ct_error_set("token id %d is not in the vocabulary (ids 0..%d)", (int)id, (int)t->n_ids - 1);
        size_t l = t->lengths[id];
        if (*len + 3 * l + 3 > *cap) {
            *cap = (*len + 3 * l + 3) * 2 + 256;
            *out = ct_realloc(*out, *cap);
        }
        if (t->units == CT_UNITS_CHARS && t->kind[id] != CT_TOKEN_NORMAL && is_normalized_added(t, id)) {
            // HF gives such a token as its normalized text ("▁<s>"), which the decoder then sees
            uint8_t *tmp = ct_alloc(3 * l + 3);
            size_t tmp_len = ct_spm_normalizer(&t->spm, t->pool + t->offsets[id], l, tmp);
            *len += ct_spm_decode_token(&t->spm, tmp, tmp_len, *out + *len);
            ct_free(tmp);
        } else if (t->units == CT_UNITS_CHARS) {
            *len += ct_spm_decode_token(&t->spm, t->pool + t->offsets[id], l, *out + *len);
        } else if (t->units == CT_UNITS_WORDPIECE) {
            // token by token (a stream): every token but a "##" part gets its space before it;
            // ct_decode_text gives the first token without one, as HF's decode does
            *len += ct_wordpiece_decode_token(&t->wp, t->pool + t->offsets[id], l, 0, *out + *len);
        } else {
            memcpy(*out + *len, t->pool + t->offsets[id], l);
            *len += l;
        }
    }
    return 0;
}

int ct_decode_text(const CtTokenizer *t, const int32_t *ids, size_t n, uint8_t **out, size_t *len, size_t *cap) {
    size_t start = *len;
    if (t->units == CT_UNITS_WORDPIECE && n > 0) {  // the first token as it is, the rest as a stream
        int32_t id = ids[0];
        if (id < 0 || id >= t->n_ids || t->kind[id] == CT_TOKEN_ABSENT)
            return ct_error_set("token id %d is not in the vocabulary (ids 0..%d)", (int)id, (int)t->n_ids - 1);
        size_t l = t->lengths[id];
        if (*len + l + 1 > *cap) *out = ct_realloc(*out, *cap = (*len + l + 1) * 2 + 256);
        *len += ct_wordpiece_decode_token(&t->wp, t->pool + t->offsets[id], l, 1, *out + *len);
        return ct_decode(t, ids + 1, n - 1, out, len, cap);
    }
    if (ct_decode(t, ids, n, out, len, cap) != 0) return -1;
    if (t->units == CT_UNITS_CHARS && t->spm.strip_leading_space && *len > start && (*out)[start] == ' ') {
        memmove(*out + start, *out + start + 1, *len - start - 1);
        (*len)--;
    }
    return 0;
}
