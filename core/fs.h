// Small file-system helpers with errors that name the path.
#pragma once
#include <stddef.h>

// Creates `dir` and its missing parents (like mkdir -p). 0, or -1 + error.
int ct_make_dirs(const char *dir);
// "dir/name" into buf (truncated to size).
void ct_path_join(char *buf, size_t size, const char *dir, const char *name);
int ct_file_exists(const char *path);
