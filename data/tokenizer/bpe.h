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
// one is encoded as ordinary text unless the caller allows specials. Added tokens that are not
// special (HF added_tokens with "special": false, e.g. Qwen2.5's <tool_call>) are always
// matched in text, as HF does; both kinds may swallow the whitespace around them (lstrip/rstrip).
//
// Units. A byte-level tokenizer (GPT-2 style) merges bytes: every byte is a token, and token
// bytes are what they decode to. A SentencePiece-style tokenizer (Llama 2, Mistral, Gemma,
// Phi-3: CT_UNITS_CHARS) merges Unicode characters of a normalized text in which spaces are
// U+2581 "▁"; its tokens are stored as their vocab strings ("▁the", "<0x0A>"); a character with
// no token becomes its UTF-8 bytes as <0xNN> tokens (byte_fallback), else the unk token, and
// decoding maps "▁" back to a space and <0xNN> to its byte (data/tokenizer/spm.h). A WordPiece
// tokenizer (BERT: CT_UNITS_WORDPIECE) has no merges: its tokens are vocab strings ("##ing"),
// and a segment is normalized, split into words and each word matched longest-first
// (data/tokenizer/wordpiece_rules.h).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "data/tokenizer/pretokenize.h"
#include "data/tokenizer/spm.h"
#include "data/tokenizer/token_ids.h"
#include "data/tokenizer/token_maps.h"
#include "data/tokenizer/tokenizer_post.h"
#include "data/tokenizer/wordpiece_rules.h"

typedef enum { CT_MERGES_BY_RANK = 0, CT_MERGES_BY_LIST = 1 } CtMergeRule;

typedef enum { CT_TOKEN_ABSENT = 0, CT_TOKEN_NORMAL = 1, CT_TOKEN_SPECIAL = 2, CT_TOKEN_ADDED = 3 } CtTokenKind;

// CT_UNITS_WORDPIECE: a WordPiece vocabulary (BERT), tokens stored as their vocab strings and
// encoded by data/tokenizer/wordpiece.h instead of merges.
typedef enum { CT_UNITS_BYTES = 0, CT_UNITS_CHARS = 1, CT_UNITS_WORDPIECE = 2 } CtUnits;

// Flags of an added (special or not) token.
#define CT_ADDED_LSTRIP 1u  // the match takes the whitespace before it
#define CT_ADDED_RSTRIP 2u  // ... and after it
#define CT_ADDED_NORMALIZED 4u  // matched in the normalized text, as the normalizer makes its text
                                // (HF "normalized": true where the normalizer changes it: Llama 2's
                                // <s> is matched as "▁<s>" under its Prepend normalizer)

// How a CT_UNITS_CHARS tokenizer turns text into pieces: CtSpmRules (data/tokenizer/spm.h).

typedef struct {
    int32_t left, right;
} CtMerge;

typedef struct CtTokenizer {
    CtPattern pattern;  // byte-level tokenizers
    CtMergeRule merge_rule;
    int whole_piece_lookup;
    CtUnits units;
    CtSpmRules spm;     // CT_UNITS_CHARS only
    CtWordPieceRules wp;  // CT_UNITS_WORDPIECE only
    int nfc;            // normalizer NFC (Qwen2): each segment is put in Unicode NFC first
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
    int32_t *special_ids;  // special and added tokens, in the order added
    uint8_t *added_flags;  // CT_ADDED_* of each, parallel to special_ids
    int any_normalized_added;  // some added token has CT_ADDED_NORMALIZED
    int32_t n_special;
    size_t max_special_len;
    // The tokens a text gets around it when encoded for a model (BOS...): tokenizer.json's
    // post_processor, or tokenizer_config.json's add_bos_token/add_eos_token (data/tokenizer/
    // tokenizer_config.h). ct_encode does not add them; training data and eval do.
    CtPostProcessor post;
    char eos_text[64];  // tokenizer_config.json's eos_token beside a tokenizer.json ("" when none)
    int finished;
    CtBytesMap bytes_map;  // normal tokens only
    CtPairMap pair_map;
} CtTokenizer;


// ---- building (the file loaders and the trainer use these) ----
void ct_tokenizer_init(CtTokenizer *t, CtPattern pattern, CtMergeRule rule);
void ct_tokenizer_free(CtTokenizer *t);
// Adds a token. Returns 0, or -1 + error (id out of range or taken, empty bytes).
int ct_tokenizer_add(CtTokenizer *t, int32_t id, const uint8_t *bytes, size_t len, CtTokenKind kind);
// The same for an added token (CT_TOKEN_SPECIAL or CT_TOKEN_ADDED) with CT_ADDED_* flags.
int ct_tokenizer_add_flagged(CtTokenizer *t, int32_t id, const uint8_t *bytes, size_t len, CtTokenKind kind,
                             unsigned flags);
// A SentencePiece-style tokenizer (CT_UNITS_CHARS) with these rules; before tokens are added.
void ct_tokenizer_set_spm(CtTokenizer *t, const CtSpmRules *rules);
// A WordPiece tokenizer (CT_UNITS_WORDPIECE) with these rules; before tokens are added.
void ct_tokenizer_set_wordpiece(CtTokenizer *t, const CtWordPieceRules *rules);
// Adds a merge rule (CT_MERGES_BY_LIST): the next rank. 0, or -1 + error.
int ct_tokenizer_add_merge(CtTokenizer *t, int32_t left, int32_t right);
// Builds the lookup tables. Checks that every byte has a token (byte-level), that normal tokens
// are unique, and that every merge's result is a token. 0, or -1 + error.
int ct_tokenizer_finish(CtTokenizer *t);

// The id of a normal token with these bytes, or -1.
int32_t ct_tokenizer_find(const CtTokenizer *t, const uint8_t *bytes, size_t len);
int32_t ct_tokenizer_vocab_size(const CtTokenizer *t);  // n_ids: one past the largest id

// ---- encoding ----
typedef struct CtEncoder CtEncoder;  // per-thread scratch space and a cache of frequent pieces
CtEncoder *ct_encoder_new(const CtTokenizer *t);
void ct_encoder_free(CtEncoder *e);
// Encodes text[0..len) (any bytes) and appends the ids to out. With allow_special, special
// token strings become their ids; otherwise they are ordinary text. Non-special added tokens
// are always matched.
void ct_encode(CtEncoder *e, const uint8_t *text, size_t len, int allow_special, CtIds *out);
// The first added token matched in text[from..len): its id, with *seg_end where the ordinary
// text before it ends and *next where the text after it starts (lstrip/rstrip take whitespace);
// -1 with both = len when there is none.
int32_t ct_next_added(const CtEncoder *e, const uint8_t *text, size_t len, size_t from, int allow_special,
                      size_t *seg_end, size_t *next);
// Encodes the pieces that start in text[from..to), looking ahead up to len; `from` must be a
// piece start (0 or a ct_pretokenize_safe_cut position). No added-token handling; byte-level
// tokenizers only (a SentencePiece-style one encodes a segment as a whole: ct_encode_segment).
void ct_encode_ordinary_range(CtEncoder *e, const uint8_t *text, size_t len, size_t from, size_t to, CtIds *out);
// BPE on one piece (no pre-tokenization).
void ct_encode_piece(CtEncoder *e, const uint8_t *piece, size_t len, CtIds *out);
// Ordinary text between two added tokens: pre-tokenized and encoded (byte-level), or normalized,
// split at "normalized" added tokens, pre-tokenized and encoded (CT_UNITS_CHARS; `at_start`: the
// segment begins the text, for Metaspace's prepend_scheme "first").
void ct_encode_segment(CtEncoder *e, const uint8_t *text, size_t len, int at_start, int allow_special, CtIds *out);

// Encodes text a, and b when it is not NULL, as transformers' tokenizer(a, b) does: each text
// encoded on its own (ct_encode), then the post-processor's tokens around them when add_special
// (BERT: [CLS] a [SEP] b [SEP]); ids into ids, each one's token type into type_ids (may be NULL).
void ct_encode_pair(CtEncoder *e, const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len, int add_special,
                    int allow_special, CtIds *ids, CtIds *type_ids);

// ---- decoding ----
// Appends the bytes of ids to *out (grown with ct_realloc; *cap its capacity). 0, or -1 + error
// naming the first id that is not in the vocabulary. Token by token, so pieces of a stream
// concatenate; a SentencePiece-style decoder's dropping of the text's leading space is
// ct_decode_text's.
int ct_decode(const CtTokenizer *t, const int32_t *ids, size_t n, uint8_t **out, size_t *len, size_t *cap);
// A whole text as HF's decode(ids) gives it (with special tokens): ct_decode, then the
// decoder's Strip of one leading space where it has one. Appends likewise.
int ct_decode_text(const CtTokenizer *t, const int32_t *ids, size_t n, uint8_t **out, size_t *len, size_t *cap);
