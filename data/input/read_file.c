#include "data/input/read_file.h"

#include <stdio.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/error.h"

char *ct_read_whole_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        ct_error_errno("%s", path);
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        ct_error_set("%s: is a folder, not a file", path);
        return NULL;
    }
    size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 4096, len = 0, got;
    char *buf = ct_alloc(cap);
    while ((got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len < 2) buf = ct_realloc(buf, cap *= 2);
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        ct_free(buf);
        ct_error_set("%s: read error", path);
        return NULL;
    }
    buf[len] = '\0';
    *size = len;
    return buf;
}
