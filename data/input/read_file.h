// Reading a whole file into memory, with errors that name the file.
#pragma once
#include <stddef.h>

// The file's bytes, NUL-terminated (the NUL is not counted in *size); free with ct_free.
// NULL + error ("PATH: No such file or directory") when it cannot be read.
char *ct_read_whole_file(const char *path, size_t *size);
