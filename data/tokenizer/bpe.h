// Byte-level BPE: a vocabulary of byte strings with ids, merge rules, special tokens, and
// encode/decode over bytes.
//
// Merge rules come in two flavours, fixed when the tokenizer is finished:
//   CT_MERGES_BY_RANK   tiktoken's rule: two adjacent parts merge when their concatenation
//                       is a token, lowest token rank (= id) first. GPT-2's files and
//                       .tiktoken rank files use it, so the ids equal tiktoken's.
//   CT_MERGES_BY_LIST   Hugging Face's rule: only the listed pairs merge, lowest list index
//                       first (tokenizer.json, and what ctrain trains).
// Either way ties go to the leftmost pair, and a piece that is a token as a whole is looked up
// first when whole_piece_lookup is set (tiktoken always does; HF when ignore_merges is true).
//
// Special tokens (<|endoftext|>, ...) have ids but take no part in merging: text that spells
// one is encoded as ordinary text unless the caller allows specials.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "data/tokenizer/pretokenize.h"
#include "data/tokenizer/token_maps.h"

typedef enum { CT_MERGES_BY_RANK = 0, CT_MERGES_BY_LIST = 1 } CtMergeRule;

typedef enum { CT_TOKEN_ABSENT = 0, CT_TOKEN_NORMAL = 1, CT_TOKEN_SPECIAL = 2 } CtTokenKind;

typedef struct {
    int32_t left, right;
} CtMerge;

typedef struct {
    CtPattern pattern;
    CtMergeRule merge_rule;
    int whole_piece_lookup;
    // Tokens by id (0 .. n_ids-1; ids may have holes, as cl100k_base has).
    int32_t n_ids, ids_cap;
    uint8_t *kind;        // CtTokenKind per id
    uint32_t *offsets;    // into pool
    uint32_t *lengths;
    uint8_t *pool;
    size_t pool_size, pool_cap;
    int32_t byte_token[256];  // the token of each single byte
    // Merges in list order (CT_MERGES_BY_LIST). Under CT_MERGES_BY_RANK they only describe the
    // tokenizer (to save it as tokenizer.json and to identify it): GPT-2's vocab.bpe, or for a
    // rank file, derived by ct_tokenizer_finish as transformers' TikTokenConverter does (every
    // split of every token into two tokens, by the token's rank, then by the halves' ranks).
    CtMerge *merges;
    int32_t n_merges, merges_cap;
    int32_t *special_ids;  // in the order added
    int32_t n_special;
    size_t max_special_len;
    int finished;
    CtBytesMap bytes_map;  // normal tokens only
    CtPairMap pair_map;
} CtTokenizer;

// A growable list of token ids.
typedef struct {
    int32_t *data;
    size_t len, cap;
} CtIds;

void ct_ids_push(CtIds *ids, int32_t id);
void ct_ids_free(CtIds *ids);

// ---- building (the file loaders and the trainer use these) ----
void ct_tokenizer_init(CtTokenizer *t, CtPattern pattern, CtMergeRule rule);
void ct_tokenizer_free(CtTokenizer *t);
// Adds a token. Returns 0, or -1 + error (id out of range or taken, empty bytes).
int ct_tokenizer_add(CtTokenizer *t, int32_t id, const uint8_t *bytes, size_t len, CtTokenKind kind);
// Adds a merge rule (CT_MERGES_BY_LIST): the next rank. 0, or -1 + error.
int ct_tokenizer_add_merge(CtTokenizer *t, int32_t left, int32_t right);
// Builds the lookup tables. Checks that every byte has a token, that normal tokens are unique,
// and that every merge's result is a token. 0, or -1 + error.
int ct_tokenizer_finish(CtTokenizer *t);

// The id of a normal token with these bytes, or -1.
int32_t ct_tokenizer_find(const CtTokenizer *t, const uint8_t *bytes, size_t len);
int32_t ct_tokenizer_vocab_size(const CtTokenizer *t);  // n_ids: one past the largest id

// ---- encoding ----
typedef struct CtEncoder CtEncoder;  // per-thread scratch space and a cache of frequent pieces
CtEncoder *ct_encoder_new(const CtTokenizer *t);
void ct_encoder_free(CtEncoder *e);
// Encodes text[0..len) (any bytes) and appends the ids to out. With allow_special, special
// token strings become their ids; otherwise they are ordinary text.
void ct_encode(CtEncoder *e, const uint8_t *text, size_t len, int allow_special, CtIds *out);
// Encodes the pieces that start in text[from..to), looking ahead up to len; `from` must be a
// piece start (0 or a ct_pretokenize_safe_cut position). No special-token handling.
// The longest special token that starts at text[pos] (pos < len), or -1.
int32_t ct_special_at(const CtTokenizer *t, const uint8_t *text, size_t len, size_t pos);
void ct_encode_ordinary_range(CtEncoder *e, const uint8_t *text, size_t len, size_t from, size_t to, CtIds *out);
// BPE on one piece (no pre-tokenization).
void ct_encode_piece(CtEncoder *e, const uint8_t *piece, size_t len, CtIds *out);

// ---- decoding ----
// Appends the bytes of ids to *out (grown with ct_realloc; *cap its capacity). 0, or -1 + error
// naming the first id that is not in the vocabulary.
int ct_decode(const CtTokenizer *t, const int32_t *ids, size_t n, uint8_t **out, size_t *len, size_t *cap);
