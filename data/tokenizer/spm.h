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

#include "data/tokenizer/bpe.h"

#define CT_SPM_MARKER "\xE2\x96\x81"  // U+2581, 3 bytes in UTF-8
#define CT_SPM_MARKER_LEN 3

// The normalized text of one segment into out (room for 3 * len + 3 bytes); its length.
// at_start: the segment begins the text (Metaspace's "first" scheme prepends only there).
size_t ct_spm_normalize(const CtSpmRules *r, const uint8_t *text, size_t len, int at_start, uint8_t *out);
// The end of the piece of normalized text s[0..len) that starts at pos (pos < len).
size_t ct_spm_piece_end(const CtSpmRules *r, const uint8_t *s, size_t len, size_t pos);
// The piece's first symbols (before merging) into ids (room for len); their count.
size_t ct_spm_symbols(const CtTokenizer *t, const uint8_t *piece, size_t len, int32_t *ids);
// The text of a token string (s[0..n)) as the decoder gives it, into out (room for n); its length.
size_t ct_spm_decode_token(const CtSpmRules *r, const uint8_t *s, size_t n, uint8_t *out);
