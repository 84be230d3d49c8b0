// libFuzzer: any chat template (the input, as a tokenizer_config.json's "chat_template" could
// be) parses or is refused with an error, and renders a small conversation or is refused: never
// a crash, an overread, a stack overflow or unbounded memory (data/examples/jinja.h). As a chat
// template (data/examples/chat_template.h) it also gets its loss ranges and tokens placed.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/examples/chat_template.h"
#include "data/examples/jinja.h"

static const CtMessage MESSAGES[] = {
    {"system", "Be brief.", 9}, {"user", " Hi <|im_end|> there \xe4\xb8\x96", 24}, {"assistant", "Hello!", 6}};

// Bytes, and the specials the seeds' templates spell.
static CtTokenizer *tiny_tokenizer(void) {
    static CtTokenizer t;
    static int made;
    if (made) return &t;
    static const char *const specials[] = {"<|im_end|>", "<|im_start|>", "<|eot_id|>", "</s>", "<s>",
                                           "<end_of_turn>", "<start_of_turn>", "<|end|>"};
    ct_tokenizer_init(&t, CT_PATTERN_GPT2, CT_MERGES_BY_LIST);
    for (int b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        ct_tokenizer_add(&t, b, &byte, 1, CT_TOKEN_NORMAL);
    }
    for (int k = 0; k < 8; k++)
        ct_tokenizer_add(&t, 256 + k, (const uint8_t *)specials[k], strlen(specials[k]), CT_TOKEN_SPECIAL);
    if (ct_tokenizer_finish(&t) != 0) abort();
    made = 1;
    return &t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *src = malloc(size + 1);
    memcpy(src, data, size);
    src[size] = '\0';  // a template is text: it ends at its first NUL
    CtJinja *t = ct_jinja_parse(src, "fuzz.jinja");
    if (t) {
        CtJinjaMessage m[3];
        for (int k = 0; k < 3; k++) m[k] = (CtJinjaMessage){MESSAGES[k].role, MESSAGES[k].content, MESSAGES[k].content_len};
        for (int agp = 0; agp < 2; agp++) {
            CtJinjaInput in = {m, 3, agp, "<s>", "</s>"};
            CtJinjaOutput out;
            if (ct_jinja_render(t, &in, &out) == 0) ct_jinja_output_free(&out);
        }
        ct_jinja_free(t);
    }
    CtChatTemplate tmpl;
    if (ct_chat_template_from_jinja(&tmpl, src, "<s>", "</s>", "fuzz.jinja") == 0) {
        CtTokenizer *tok = tiny_tokenizer();
        CtEncoder *enc = ct_encoder_new(tok);
        CtMaskedIds ids = {0};
        ct_chat_encode(&tmpl, tok, enc, MESSAGES, 3, 0, &ids);
        ct_chat_encode_completion(&tmpl, tok, enc, MESSAGES, 2, "Hello!", 6, &ids);
        ct_masked_ids_free(&ids);
        ct_encoder_free(enc);
        ct_chat_template_free(&tmpl);
    }
    free(src);
    return 0;
}
