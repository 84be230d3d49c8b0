// libFuzzer: any chat template (the input, as a tokenizer_config.json's "chat_template" could
// be) parses or is refused with an error, and renders a small conversation or is refused: never
// a crash, an overread, a stack overflow or unbounded memory (data/examples/jinja.h).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/examples/jinja.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *src = malloc(size + 1);
    memcpy(src, data, size);
    src[size] = '\0';  // a template is text: it ends at its first NUL
    CtJinja *t = ct_jinja_parse(src, "fuzz.jinja");
    free(src);
    if (!t) return 0;
    static const CtJinjaMessage messages[] = {
        {"system", "Be brief.", 9}, {"user", " Hi <|im_end|> there \xe4\xb8\x96", 24}, {"assistant", "Hello!", 6}};
    for (int agp = 0; agp < 2; agp++) {
        CtJinjaInput in = {messages, 3, agp, "<s>", "</s>"};
        CtJinjaOutput out;
        if (ct_jinja_render(t, &in, &out) == 0) ct_jinja_output_free(&out);
    }
    ct_jinja_free(t);
    return 0;
}
