#include "data/input/input_reader.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zstd.h>

#include "core/alloc.h"
#include "core/error.h"

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int ct_input_is_zst(const char *path) { return ends_with(path, ".zst"); }

int ct_input_is_jsonl(const char *path) {
    return ends_with(path, ".jsonl") || ends_with(path, ".json") || ends_with(path, ".jsonl.zst") ||
           ends_with(path, ".json.zst");
}

static int is_input_name(const char *name) {
    static const char *const suffixes[] = {".txt", ".jsonl", ".json", ".txt.zst", ".jsonl.zst", ".json.zst"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++)
        if (ends_with(name, suffixes[i])) return 1;
    return 0;
}

static void list_add(CtInputList *list, const char *path) {
    if (list->n == list->cap) {
        list->cap = list->cap ? 2 * list->cap : 16;
        list->paths = ct_realloc(list->paths, sizeof(char *) * (size_t)list->cap);
    }
    list->paths[list->n++] = ct_strdup(path);
}

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int walk(CtInputList *list, const char *dir, int depth) {
    if (depth > 64) return ct_error_set("%s: folders nested too deep (a symbolic link loop?)", dir);
    DIR *d = opendir(dir);
    if (!d) return ct_error_errno("%s: cannot read folder", dir);
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;  // hidden, and our own temporary files
        if (n == cap) names = ct_realloc(names, sizeof(char *) * (size_t)(cap = cap ? 2 * cap : 64));
        names[n++] = ct_strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof(char *), compare_names);
    int rc = 0;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(dir) + strlen(names[i]) + 2;
        char *path = ct_alloc(len);
        snprintf(path, len, "%s/%s", dir, names[i]);
        struct stat st;
        if (rc == 0 && stat(path, &st) == 0) {
            if (S_ISDIR(st.st_mode))
                rc = walk(list, path, depth + 1);
            else if (S_ISREG(st.st_mode) && is_input_name(names[i]))
                list_add(list, path);
        }
        ct_free(path);
        ct_free(names[i]);
    }
    ct_free(names);
    return rc;
}

int ct_input_list_collect(CtInputList *list, const char *const *paths, int n_paths) {
    memset(list, 0, sizeof *list);
    for (int i = 0; i < n_paths; i++) {
        struct stat st;
        if (stat(paths[i], &st) != 0) {
            ct_error_errno("%s: cannot read input", paths[i]);
            ct_input_list_free(list);
            return -1;
        }
        if (S_ISDIR(st.st_mode)) {
            int before = list->n;
            if (walk(list, paths[i], 0) != 0) {
                ct_input_list_free(list);
                return -1;
            }
            if (list->n == before) {
                ct_error_set("%s: no input files in this folder (.txt, .jsonl, .json, optionally .zst)", paths[i]);
                ct_input_list_free(list);
                return -1;
            }
        } else {
            list_add(list, paths[i]);
        }
    }
    if (list->n == 0) return ct_error_set("no input files given");
    return 0;
}

void ct_input_list_free(CtInputList *list) {
    for (int i = 0; i < list->n; i++) ct_free(list->paths[i]);
    ct_free(list->paths);
    memset(list, 0, sizeof *list);
}

// ---- lines ----

int ct_line_reader_open(CtLineReader *r, const char *path) {
    memset(r, 0, sizeof *r);
    r->file = fopen(path, "rb");
    if (!r->file) return ct_error_errno("%s: cannot open", path);
    r->path = ct_strdup(path);
    r->zst = ct_input_is_zst(path);
    r->data_cap = 1 << 20;
    r->data = ct_alloc(r->data_cap);
    if (r->zst) {
        r->dstream = ZSTD_createDStream();
        CT_CHECK(r->dstream, "out of memory creating a zstd stream");
        ZSTD_initDStream(r->dstream);
        r->in_cap = ZSTD_DStreamInSize();
        r->in = ct_alloc(r->in_cap);
    }
    return 0;
}

void ct_line_reader_close(CtLineReader *r) {
    if (r->file) fclose(r->file);
    if (r->dstream) ZSTD_freeDStream(r->dstream);
    ct_free(r->in);
    ct_free(r->data);
    ct_free(r->path);
    memset(r, 0, sizeof *r);
}

// Appends more text to r->data. Returns the bytes added (0 at the end), or -1 + error.
static long fill(CtLineReader *r) {
    if (r->data_start > 0 && r->data_start == r->data_end) r->data_start = r->data_end = 0;
    if (r->data_cap - r->data_end < (1 << 16)) {  // make room: slide down, then grow
        if (r->data_start > 0) {
            memmove(r->data, r->data + r->data_start, r->data_end - r->data_start);
            r->data_end -= r->data_start;
            r->data_start = 0;
        }
        if (r->data_cap - r->data_end < (1 << 16)) r->data = ct_realloc(r->data, r->data_cap *= 2);
    }
    if (!r->zst) {
        if (r->file_eof) return 0;
        size_t got = fread(r->data + r->data_end, 1, r->data_cap - r->data_end, r->file);
        if (got == 0) {
            if (ferror(r->file)) return ct_error_errno("%s: read error", r->path);
            r->file_eof = 1;
        }
        r->data_end += got;
        r->bytes_read += got;
        return (long)got;
    }
    for (;;) {
        if (r->in_pos == r->in_size && !r->file_eof) {
            r->in_size = fread(r->in, 1, r->in_cap, r->file);
            r->in_pos = 0;
            r->bytes_read += r->in_size;
            if (r->in_size == 0) {
                if (ferror(r->file)) return ct_error_errno("%s: read error", r->path);
                r->file_eof = 1;
            }
        }
        if (r->in_pos == r->in_size && r->file_eof) {
            if (r->frame_left != 0)
                return ct_error_set("%s: truncated zstd stream (the file ends inside a frame, after %llu bytes)",
                                    r->path, (unsigned long long)r->bytes_read);
            return 0;
        }
        ZSTD_inBuffer in = {r->in, r->in_size, r->in_pos};
        ZSTD_outBuffer out = {r->data + r->data_end, r->data_cap - r->data_end, 0};
        size_t ret = ZSTD_decompressStream(r->dstream, &out, &in);
        if (ZSTD_isError(ret))
            return ct_error_set("%s: damaged zstd data near byte %llu: %s", r->path,
                                (unsigned long long)(r->bytes_read - r->in_size + in.pos), ZSTD_getErrorName(ret));
        r->in_pos = in.pos;
        r->frame_left = ret;
        r->data_end += out.pos;
        if (out.pos > 0) return (long)out.pos;
    }
}

int ct_line_reader_next(CtLineReader *r, const char **line, size_t *len, int *had_newline) {
    size_t scanned = r->data_start;
    for (;;) {
        char *nl = memchr(r->data + scanned, '\n', r->data_end - scanned);
        if (nl) {
            *line = r->data + r->data_start;
            *len = (size_t)(nl - *line);
            if (had_newline) *had_newline = 1;
            r->data_start += *len + 1;
            r->line_no++;
            r->bytes_out += *len + 1;
            return 1;
        }
        size_t offset = r->data_end - r->data_start;  // all of it scanned; fill may move the data
        long got = fill(r);
        if (got < 0) return -1;
        scanned = r->data_start + offset;
        if (got == 0) {
            if (r->data_end == r->data_start) return 0;
            *line = r->data + r->data_start;  // a last line without '\n'
            *len = r->data_end - r->data_start;
            if (had_newline) *had_newline = 0;
            r->data_start = r->data_end;
            r->line_no++;
            r->bytes_out += *len;
            return 1;
        }
    }
}
