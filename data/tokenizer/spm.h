// SentencePiece-style BPE as Hugging Face tokenizer.json describes it (Llama 2, Mistral, Gemma,
// Phi-3): the text between added tokens is normalized (spaces become U+2581 "▁", and a "▁" is
// put in front by a Prepend normalizer or Metaspace's prepend_scheme), optionally split before
// every "▁" (Metaspace split), and each piece is BPE over its Unicode characters: a character
// that is not a token becomes its UTF-8 bytes as <0xNN> tokens (byte_fallback), else the unk
// token (consecutive ones fused into one with fuse_unk), else it is dropped, exactly as HF's
// BPE model does (tokenizers/src/models/bpe/model.rs, merge_word).
#pragma once
#include <stddef.h>
#include <stdint.h>

// How a CT_UNITS_CHARS tokenizer turns text into pieces and tokens back into text (the HF
// normalizer, pre-tokenizer, BPE options and decoder it was read from).
typedef enum {
    CT_PREPEND_NEVER = 0,
    CT_PREPEND_FIRST = 1,   // Metaspace "first": the text's first segment, unless it starts with ▁
    CT_PREPEND_ALWAYS = 2,  // Metaspace "always": every segment that does not start with ▁
} CtPrependScheme;

typedef struct {
    int normalizer_prepend;     // normalizer Prepend("▁"): every non-empty segment gets one
    int replace_spaces;         // normalizer Replace(" ", "▁") or Metaspace: spaces become ▁
    CtPrependScheme metaspace;  // Metaspace's prepend_scheme (with a Metaspace pre-tokenizer)
    int has_metaspace;
    int split;                  // Metaspace split: a piece starts at every ▁
    int byte_fallback;
    int fuse_unk;
    int32_t unk_id;             // -1: none (HF then drops an unknown character)
    int32_t byte_ids[256];      // the <0xNN> tokens (-1 where missing)
    // decoder
    int decode_marker;          // ▁ decodes to a space
    int decode_bytes;           // <0xNN> decodes to the byte
    int strip_leading_space;    // one leading space of a decoded text is dropped (Strip / Metaspace)
} CtSpmRules;

#define CT_SPM_MARKER "\xE2\x96\x81"  // U+2581, 3 bytes in UTF-8
#define CT_SPM_MARKER_LEN 3

// The normalizer's part (Replace, Prepend) for one segment into out (room for 3 * len + 3
// bytes); its length. Also what a "normalized": true added token is matched as ("<s>" becomes
// "▁<s>" under Prepend).
size_t ct_spm_normalizer(const CtSpmRules *r, const uint8_t *text, size_t len, uint8_t *out);
// The Metaspace pre-tokenizer's part (spaces to ▁, its prepend) on normalized text, into out
// (room for 3 * len + 3); its length. at_start: the text begins the original text (the "first"
// scheme prepends only there).
size_t ct_spm_metaspace(const CtSpmRules *r, const uint8_t *s, size_t len, int at_start, uint8_t *out);
// The end of the piece of normalized text s[0..len) that starts at pos (pos < len).
size_t ct_spm_piece_end(const CtSpmRules *r, const uint8_t *s, size_t len, size_t pos);
// The text of a token string (s[0..n)) as the decoder gives it, into out (room for n); its length.
size_t ct_spm_decode_token(const CtSpmRules *r, const uint8_t *s, size_t n, uint8_t *out);
