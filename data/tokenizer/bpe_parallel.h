// Encoding one large text with several threads, with exactly the ids of a one-thread run.
// The text is cut where every pattern is certain to start a piece (ct_pretokenize_safe_cut)
// and, when specials are allowed, around special-token strings; chunks are encoded by
// whichever thread is free and joined in order.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "data/tokenizer/bpe.h"

// encoders: one per thread (ct_encoder_new), `threads` of them. Appends to out.
void ct_encode_parallel(const CtTokenizer *t, CtEncoder **encoders, int threads, const uint8_t *text, size_t len,
                        int allow_special, CtIds *out);
