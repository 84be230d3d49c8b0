#include "tests/tokenizer_fixture.h"

#include <stdint.h>
#include <stdlib.h>

void tiny_tokenizer(CtTokenizer *t) {
    ct_tokenizer_init(t, CT_PATTERN_CL100K, CT_MERGES_BY_RANK);
    for (int b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        ct_tokenizer_add(t, b, &byte, 1, CT_TOKEN_NORMAL);
    }
    ct_tokenizer_add(t, 256, (const uint8_t *)"th", 2, CT_TOKEN_NORMAL);
    ct_tokenizer_add(t, 257, (const uint8_t *)"the", 3, CT_TOKEN_NORMAL);
    ct_tokenizer_add(t, 258, (const uint8_t *)" t", 2, CT_TOKEN_NORMAL);
    ct_tokenizer_add(t, ID_ENDOFTEXT, (const uint8_t *)"<|endoftext|>", 13, CT_TOKEN_SPECIAL);
    ct_tokenizer_add(t, ID_IM_START, (const uint8_t *)"<|im_start|>", 12, CT_TOKEN_SPECIAL);
    ct_tokenizer_add(t, ID_IM_END, (const uint8_t *)"<|im_end|>", 10, CT_TOKEN_SPECIAL);
    if (ct_tokenizer_finish(t) != 0) abort();
}
