#include "tests/generate_fixture.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/tokenizer/bpe.h"
#include "data/tokenizer/tokenizer_hf.h"
#include "tests/test.h"
#include "train/interop/checkpoint_io.h"
#include "train/interop/checkpoint_meta.h"

char *generate_fixture_byte_tokenizer_json(const char *special) {
    CtTokenizer t;
    ct_tokenizer_init(&t, CT_PATTERN_GPT2, CT_MERGES_BY_LIST);
    for (int b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        ct_tokenizer_add(&t, b, &byte, 1, CT_TOKEN_NORMAL);
    }
    ct_tokenizer_add(&t, 256, (const uint8_t *)special, strlen(special), CT_TOKEN_SPECIAL);
    char *json = ct_tokenizer_finish(&t) == 0 ? ct_tokenizer_hf_json(&t) : NULL;
    ct_tokenizer_free(&t);
    return json;
}

void generate_fixture_save(const char *path, const CtModel *m, const char *special) {
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    char *json = generate_fixture_byte_tokenizer_json(special);
    meta.tokenizer_json = ct_strdup(json);
    free(json);
    CHECK_MSG(ct_checkpoint_save(path, m, NULL, &meta) == 0, "%s", ct_error_message());
    ct_checkpoint_meta_free(&meta);
}
