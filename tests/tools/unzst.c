// `unzst IN.zst OUT`: decompresses one zstd file (the test data in tests/data/) into OUT,
// atomically. The build uses it instead of the zstd command, which is not a build dependency;
// it reads through the library's own .zst line reader.
#include <stdio.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/input/input_reader.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: unzst IN.zst OUT\n");
        return 2;
    }
    CtLineReader reader;
    CtAtomicFile out;
    if (ct_line_reader_open(&reader, argv[1]) != 0) goto fail;
    if (ct_atomic_open(&out, argv[2]) != 0) {
        ct_line_reader_close(&reader);
        goto fail;
    }
    const char *line;
    size_t len;
    int had_newline, rc;
    while ((rc = ct_line_reader_next(&reader, &line, &len, &had_newline)) == 1) {
        if (fwrite(line, 1, len, out.fp) != len || (had_newline && fputc('\n', out.fp) == EOF)) {
            ct_error_errno("%s: cannot write", argv[2]);
            rc = -1;
            break;
        }
    }
    ct_line_reader_close(&reader);
    if (rc != 0) {
        ct_atomic_abort(&out);
        goto fail;
    }
    if (ct_atomic_commit(&out) != 0) goto fail;
    return 0;
fail:
    fprintf(stderr, "unzst: %s\n", ct_error_message());
    return 1;
}
