// libFuzzer: the JSON-lines field reader never crashes and never reads past the line.
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "data/input/json_line.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *line = malloc(size ? size : 1);  // exactly `size` bytes, so ASan sees any overread
    memcpy(line, data, size);
    uint8_t *out = NULL;
    size_t len = 0, cap = 0;
    ct_json_line_string(line, size, "text", &out, &len, &cap);
    ct_free(out);
    free(line);
    return 0;
}
