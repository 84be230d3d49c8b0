// libFuzzer: GPT-2 files — encoder.json, then after a NUL byte vocab.bpe — never crash the loader.
#include <string.h>

#include "core/error.h"
#include "data/tokenizer/tokenizer_files.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    const char *nul = memchr(data, 0, size);
    size_t enc_len = nul ? (size_t)(nul - text) : size;
    const char *bpe = nul ? nul + 1 : "";
    size_t bpe_len = nul ? size - enc_len - 1 : 0;
    CtTokenizer t;
    if (ct_tokenizer_parse_gpt2(&t, text, enc_len, bpe, bpe_len, NULL, "fuzz", CT_PATTERN_GPT2) == 0) {
        CtEncoder *e = ct_encoder_new(&t);
        CtIds ids = {0};
        ct_encode(e, (const uint8_t *)"hello world", 11, 0, &ids);
        ct_ids_free(&ids);
        ct_encoder_free(e);
        ct_tokenizer_free(&t);
    } else if (!ct_error_message()[0]) {
        __builtin_trap();
    }
    return 0;
}
