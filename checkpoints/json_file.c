// The small JSON files of the formats here. See checkpoints/json_file.h.
#include "checkpoints/json_file.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

char *ct_json_file_read(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return ct_error_errno("%s", path), NULL;
    char *text = NULL;
    size_t len = 0, cap = 0, got;
    char buf[65536];
    while ((got = fread(buf, 1, sizeof buf, fp)) > 0 && len < (16u << 20)) {
        if (len + got + 1 > cap) {
            cap = (len + got + 1) * 2;
            text = ct_realloc(text, cap);
        }
        memcpy(text + len, buf, got);
        len += got;
    }
    fclose(fp);
    if (!text) text = ct_calloc(1, 1);
    text[len] = '\0';
    return text;
}
