// libFuzzer: a .tiktoken rank file (and, after a NUL byte, its meta.json) never crashes the
// loader; it loads or gives an error message.
#include <string.h>

#include "core/error.h"
#include "data/tokenizer/tokenizer_files.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    const char *nul = memchr(data, 0, size);
    size_t len = nul ? (size_t)(nul - text) : size;
    char meta[4096];
    const char *meta_json = NULL;
    if (nul) {
        size_t m = size - len - 1 < sizeof meta - 1 ? size - len - 1 : sizeof meta - 1;
        memcpy(meta, nul + 1, m);
        meta[m] = '\0';
        meta_json = meta;
    }
    CtTokenizer t;
    if (ct_tokenizer_parse_tiktoken(&t, text, len, "fuzz.tiktoken", meta_json, CT_PATTERN_CL100K) == 0) {
        CtEncoder *e = ct_encoder_new(&t);
        CtIds ids = {0};
        ct_encode(e, (const uint8_t *)"hello world <|endoftext|>", 25, 1, &ids);
        ct_ids_free(&ids);
        ct_encoder_free(e);
        ct_tokenizer_free(&t);
    } else if (!ct_error_message()[0]) {
        __builtin_trap();  // a failure must say why
    }
    return 0;
}
