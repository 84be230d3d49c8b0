#include "core/fs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"

int ct_make_dirs(const char *dir) {
    if (!dir || !*dir) return ct_error_set("empty folder name");
    char *copy = ct_strdup(dir);
    int rc = 0;
    for (char *p = copy + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(copy, 0755) != 0 && errno != EEXIST) {
            rc = ct_error_errno("%s: cannot create folder", copy);
            break;
        }
        if (!saved) break;
        *p = saved;
    }
    struct stat st;
    if (rc == 0 && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))) rc = ct_error_set("%s: exists and is not a folder", dir);
    ct_free(copy);
    return rc;
}

void ct_path_join(char *buf, size_t size, const char *dir, const char *name) { snprintf(buf, size, "%s/%s", dir, name); }

int ct_file_exists(const char *path) { return access(path, F_OK) == 0; }
