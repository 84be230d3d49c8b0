// libFuzzer: tokenizer.json text never crashes the loader; what loads also saves and encodes
// (a text, and a pair through the post-processor).
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/tokenizer/tokenizer_hf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    CtTokenizer t;
    if (ct_tokenizer_parse_hf(&t, (const char *)data, size, "fuzz.json", NULL) == 0) {
        CtEncoder *e = ct_encoder_new(&t);
        CtIds ids = {0};
        static const char text[] = "hello world 123 <|endoftext|> <s> caf\xc3\xa9 e\xcc\x81 \xff [CLS] unaffable \xe4\xb8\xad\xe6\x96\x87";
        ct_encode(e, (const uint8_t *)text, sizeof text - 1, 1, &ids);
        CtIds pair = {0}, types = {0};  // the post-processor's templates
        ct_encode_pair(e, (const uint8_t *)text, 11, (const uint8_t *)text + 12, 5, 1, 1, &pair, &types);
        ct_ids_free(&pair);
        ct_ids_free(&types);
        uint8_t *out = NULL;
        size_t len = 0, cap = 0;
        ct_decode_text(&t, ids.data, ids.len, &out, &len, &cap);
        ct_free(out);
        ct_ids_free(&ids);
        ct_encoder_free(e);
        char *json = ct_tokenizer_hf_json(&t);
        free(json);
        ct_tokenizer_free(&t);
    } else if (!ct_error_message()[0]) {
        __builtin_trap();
    }
    return 0;
}
