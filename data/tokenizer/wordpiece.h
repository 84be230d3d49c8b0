// The WordPiece model: greedy longest-match-first over a vocabulary (data/tokenizer/
// wordpiece_rules.h describes the whole pipeline).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "data/tokenizer/bpe.h"

typedef struct CtWordPieceScratch CtWordPieceScratch;  // per encoder
CtWordPieceScratch *ct_wordpiece_scratch_new(const CtTokenizer *t);
void ct_wordpiece_scratch_free(CtWordPieceScratch *s);
// One word (code points w[0..n)): greedy longest-match-first, or the unk token.
void ct_wordpiece_word(CtWordPieceScratch *s, const uint32_t *w, size_t n, CtIds *out);
// Ordinary text between added tokens: normalized, pre-tokenized, each word encoded.
void ct_wordpiece_encode(CtWordPieceScratch *s, const uint8_t *text, size_t len, CtIds *out);
