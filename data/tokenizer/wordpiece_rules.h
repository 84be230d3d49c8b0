// WordPiece (BERT and its descendants) as Hugging Face tokenizer.json describes it:
//   normalizer     BertNormalizer: clean_text (controls removed, whitespace to " "),
//                  handle_chinese_chars (a space on each side of every CJK ideograph),
//                  strip_accents (NFD, nonspacing marks removed; null = follows lowercase),
//                  lowercase (per character, char::to_lowercase), in that order
//   pre-tokenizer  BertPreTokenizer: split at whitespace (dropped) and around punctuation (each
//                  punctuation character a piece of its own)
//   model          WordPiece: each piece ("word") greedily, longest vocabulary match first from
//                  its start, later parts looked up with the continuing_subword_prefix ("##");
//                  a word with a part that matches nothing, or longer than
//                  max_input_chars_per_word characters, is the unk token as a whole
//   decoder        WordPiece: tokens joined with spaces, except that a "##" part joins the
//                  previous one; cleanup (" ." -> "." ...) per token
// Tokens are stored as their vocabulary strings (CT_UNITS_WORDPIECE, data/tokenizer/bpe.h).
// The character classes and mappings come from the library itself (data/tokenizer/bert_tables.h).
// This header: the rules, the normalizer, the pre-tokenizer and the decoder (what needs no
// vocabulary); the model is data/tokenizer/wordpiece.h.
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef enum { CT_WP_DECODER_NONE = 0, CT_WP_DECODER_WORDPIECE = 1 } CtWordPieceDecoder;

typedef struct {
    int normalizer;  // a BertNormalizer (else the text is taken as it is)
    int clean_text, handle_chinese_chars, strip_accents, lowercase;  // strip_accents resolved
    int bert_pre_tokenizer;  // else a segment is one word
    char prefix[16];         // continuing_subword_prefix ("##")
    int prefix_len;
    int32_t max_chars;  // max_input_chars_per_word
    int32_t unk_id;
    CtWordPieceDecoder decoder;
    char decode_prefix[16];  // the decoder's prefix
    int decode_prefix_len;
    int cleanup;
} CtWordPieceRules;

// bert-base-uncased's rules (with lowercase, else bert-base-cased's), unk_id -1.
void ct_wordpiece_rules_bert(CtWordPieceRules *r, int lowercase);

// The normalized text as code points: *out (grown with ct_realloc, *cap its capacity); its
// length. Invalid UTF-8 bytes become U+FFFD (which clean_text removes).
size_t ct_bert_normalize(const CtWordPieceRules *r, const uint8_t *text, size_t len, uint32_t **out, size_t *cap);
// The end of the word of s[0..n) that starts at *pos, after skipping whitespace (*pos moves to
// its start); n when there is none.
size_t ct_bert_next_word(const CtWordPieceRules *r, const uint32_t *s, size_t n, size_t *pos);

// A token's text as the decoder gives it (s[0..n) the token string; first: it begins the
// text), into out (room for n + 1); its length. Without a decoder, HF joins tokens with spaces.
size_t ct_wordpiece_decode_token(const CtWordPieceRules *r, const uint8_t *s, size_t n, int first, uint8_t *out);
