// libFuzzer: encode -> decode gives back the input, for any bytes, under each pattern; pieces
// tile the input. The first input byte picks the vocabulary (GPT-2 folder, cl100k_base,
// o200k_base from $CTRAIN_SHARED, default ../shared/data) and whether specials are allowed.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/tokenizer/bpe.h"
#include "data/tokenizer/tokenizer_files.h"

static CtTokenizer tokenizers[3];
static CtEncoder *encoders[3];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *shared = getenv("CTRAIN_SHARED");
    if (!shared) shared = "../shared/data";
    static const char *const rel[3] = {"tokenizers/gpt2", "tokenizers/tiktoken/cl100k_base.tiktoken",
                                       "tokenizers/tiktoken/o200k_base.tiktoken"};
    for (int i = 0; i < 3; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", shared, rel[i]);
        if (ct_tokenizer_load(&tokenizers[i], path, NULL) != 0) {
            fprintf(stderr, "fuzz_roundtrip: %s (set CTRAIN_SHARED)\n", ct_error_message());
            exit(1);
        }
        encoders[i] = ct_encoder_new(&tokenizers[i]);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    int which = data[0] % 3, allow_special = (data[0] >> 2) & 1;
    const uint8_t *text = data + 1;
    size_t len = size - 1;
    const CtTokenizer *t = &tokenizers[which];
    // Pieces tile the text.
    for (size_t pos = 0; pos < len;) {
        size_t end = ct_pretokenize_next(t->pattern, text, len, pos);
        if (end <= pos || end > len) abort();
        pos = end;
    }
    CtIds ids = {0};
    ct_encode(encoders[which], text, len, allow_special, &ids);
    uint8_t *out = NULL;
    size_t out_len = 0, cap = 0;
    if (ct_decode(t, ids.data, ids.len, &out, &out_len, &cap) != 0) abort();
    if (out_len != len || (len && memcmp(out, text, len) != 0)) abort();
    ct_free(out);
    ct_ids_free(&ids);
    return 0;
}
