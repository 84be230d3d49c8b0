// Encoding one large text with several threads, with exactly the ids of a one-thread run.
// The text is cut where every pattern is certain to start a piece (ct_pretokenize_safe_cut)
// and, when specials are allowed, around special-token strings; chunks are encoded by
// whichever thread is free and joined in order.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "data/tokenizer/bpe.h"

// One chunk of a text: bytes [start, end), whose pieces may look ahead up to `limit` (the end
// of its segment between added tokens), or, with special >= 0, one added token.
typedef struct {
    size_t start, end, limit;
    int32_t special;
} CtTextChunk;

typedef struct {
    CtTextChunk *items;
    size_t n, cap;
} CtTextChunks;

// Appends the chunks of text[0, len) to out, each about `target` bytes where the text allows.
// e: any encoder of t (its added-token tables are read, nothing written).
void ct_text_chunks_plan(const CtTokenizer *t, const CtEncoder *e, const uint8_t *text, size_t len, int allow_special,
                         size_t target, CtTextChunks *out);
// Appends the ids of one chunk of text (the text planned) to out; the chunks' ids in order are
// ct_encode's ids of the whole text.
void ct_text_chunk_encode(const CtTokenizer *t, CtEncoder *e, const uint8_t *text, const CtTextChunk *c,
                          int allow_special, CtIds *out);
void ct_text_chunks_free(CtTextChunks *c);

// encoders: one per thread (ct_encoder_new), `threads` of them. Appends to out.
void ct_encode_parallel(const CtTokenizer *t, CtEncoder **encoders, int threads, const uint8_t *text, size_t len,
                        int allow_special, CtIds *out);
