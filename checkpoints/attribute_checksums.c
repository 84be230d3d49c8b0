#include "checkpoints/attribute_checksums.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/checksum.h"
#include "core/error.h"

typedef struct {
    char **names;
    int n, cap;
} NameList;

static void names_free(NameList *l) {
    for (int i = 0; i < l->n; i++) ct_free(l->names[i]);
    ct_free(l->names);
    memset(l, 0, sizeof *l);
}

static herr_t collect_name(hid_t loc, const char *name, const H5A_info_t *info, void *data) {
    NameList *l = data;
    if (strcmp(name, CT_CKPT_ATTRIBUTE_CRC32) == 0) return 0;
    if (l->n == l->cap) l->names = ct_realloc(l->names, sizeof(char *) * (size_t)(l->cap = l->cap ? 2 * l->cap : 32));
    l->names[l->n++] = ct_strdup(name);
    return 0;
}

// The root attributes but the table, in name order.
static int list_attributes(hid_t file, NameList *l, const char *path) {
    memset(l, 0, sizeof *l);
    hsize_t at = 0;
    if (H5Aiterate2(file, H5_INDEX_NAME, H5_ITER_INC, &at, collect_name, l) < 0) {
        names_free(l);
        return ct_error_set("%s: cannot list its attributes (damaged file)", path);
    }
    return 0;
}

// CRC-32 of the name, a 0 byte and the value's bytes as stored: read in the file's own type,
// so no conversion happens and every machine computes the same.
static int attribute_crc(hid_t file, const char *name, uint32_t *crc, const char *path) {
    hid_t attr = H5Aopen(file, name, H5P_DEFAULT);
    hid_t type = attr >= 0 ? H5Aget_type(attr) : -1, space = attr >= 0 ? H5Aget_space(attr) : -1;
    hssize_t n = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    size_t size = type >= 0 ? H5Tget_size(type) : 0;
    int rc = -1;
    if (n >= 0 && size > 0 && H5Tdetect_class(type, H5T_VLEN) == 0 &&
        !(H5Tget_class(type) == H5T_STRING && H5Tis_variable_str(type) > 0)) {  // pointers: not ours
        size_t bytes = (size_t)n * size;
        unsigned char *buf = ct_alloc(bytes ? bytes : 1);
        if (H5Aread(attr, type, buf) >= 0) {
            *crc = ct_crc32_update(ct_crc32(name, strlen(name) + 1), buf, bytes);
            rc = 0;
        }
        ct_free(buf);
    }
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
    if (attr >= 0) H5Aclose(attr);
    return rc ? ct_error_set("%s: attribute '%s' cannot be read (damaged file)", path, name) : 0;
}

char *ct_attribute_checksums_compute(int64_t file, const char *path) {
    NameList l;
    if (list_attributes(file, &l, path) != 0) return NULL;
    size_t cap = 16, len = 0;
    for (int i = 0; i < l.n; i++) cap += strlen(l.names[i]) + 10;
    char *text = ct_alloc(cap);
    text[0] = '\0';
    for (int i = 0; i < l.n; i++) {
        uint32_t crc;
        if (attribute_crc(file, l.names[i], &crc, path) != 0) {
            ct_free(text);
            names_free(&l);
            return NULL;
        }
        len += (size_t)snprintf(text + len, cap - len, "%08x %s\n", crc, l.names[i]);
    }
    snprintf(text + len, cap - len, "%08x\n", ct_crc32(text, len));
    names_free(&l);
    return text;
}

// The table as written: entries (crc, name) after its own last line has checked out.
typedef struct {
    uint32_t crc;
    char *name;
    int seen;
} Entry;

static void entries_free(Entry *entries, int n) {
    for (int k = 0; k < n; k++) ct_free(entries[k].name);
    ct_free(entries);
}

static int read_table(hid_t file, const char *path, Entry **entries, int *n) {
    *entries = NULL;
    *n = 0;
    const char *what = "the table of attribute checksums";
    hid_t attr = H5Aopen(file, CT_CKPT_ATTRIBUTE_CRC32, H5P_DEFAULT);
    hid_t type = attr >= 0 ? H5Aget_type(attr) : -1;
    char *text = NULL;
    if (type >= 0 && H5Tget_class(type) == H5T_STRING && H5Tis_variable_str(type) == 0) {
        size_t size = H5Tget_size(type);
        text = ct_calloc(size + 1, 1);
        if (H5Aread(attr, type, text) < 0) {
            ct_free(text);
            text = NULL;
        }
    }
    if (type >= 0) H5Tclose(type);
    if (attr >= 0) H5Aclose(attr);
    if (!text) return ct_error_set("%s: attribute '%s' (%s) cannot be read (damaged file)", path, CT_CKPT_ATTRIBUTE_CRC32, what);
    // Its last line: the CRC-32 of everything before it.
    size_t len = strlen(text);
    unsigned self = 0;
    char tail[4];
    if (len < 9 || text[len - 1] != '\n' || (len > 9 && text[len - 10] != '\n') ||
        sscanf(text + len - 9, "%8x%3s", &self, tail) != 1 || self != ct_crc32(text, len - 9)) {
        ct_free(text);
        return ct_error_set("%s: attribute '%s' (%s) fails its own checksum (damaged file)", path, CT_CKPT_ATTRIBUTE_CRC32,
                            what);
    }
    text[len - 9] = '\0';
    int cap = 0;
    for (char *line = text, *end; *line; line = end + 1) {
        end = strchr(line, '\n');
        *end = '\0';
        unsigned crc;
        int name_at = 0;
        if (sscanf(line, "%8x %n", &crc, &name_at) != 1 || name_at != 9 || !line[9]) {
            ct_error_set("%s: attribute '%s' has a malformed line: %.60s", path, CT_CKPT_ATTRIBUTE_CRC32, line);
            ct_free(text);
            entries_free(*entries, *n);
            *entries = NULL;
            *n = 0;
            return -1;
        }
        if (*n == cap) *entries = ct_realloc(*entries, sizeof(Entry) * (size_t)(cap = cap ? 2 * cap : 32));
        (*entries)[(*n)++] = (Entry){crc, ct_strdup(line + 9), 0};
    }
    ct_free(text);
    return 0;
}

int ct_attribute_checksums_verify(int64_t file, const char *path, int *n_checked) {
    *n_checked = 0;
    Entry *entries;
    int n_entries;
    if (read_table(file, path, &entries, &n_entries) != 0) return -1;
    NameList l;
    int rc = list_attributes(file, &l, path);
    for (int i = 0; rc == 0 && i < l.n; i++) {
        Entry *e = NULL;
        for (int k = 0; k < n_entries && !e; k++)
            if (strcmp(entries[k].name, l.names[i]) == 0) e = &entries[k];
        uint32_t crc = 0;
        if (!e)
            rc = ct_error_set("%s: attribute '%s' has no checksum (added after the file was written, or its name is "
                              "damaged)", path, l.names[i]);
        else if ((rc = attribute_crc(file, l.names[i], &crc, path)) == 0 && crc != e->crc)
            rc = ct_error_set("%s: attribute '%s' fails its checksum (damaged, or changed after the file was written)",
                              path, l.names[i]);
        if (e) e->seen = 1;
    }
    for (int k = 0; rc == 0 && k < n_entries; k++)
        if (!entries[k].seen) rc = ct_error_set("%s: attribute '%s' is missing (damaged file)", path, entries[k].name);
    if (rc == 0) *n_checked = l.n;
    names_free(&l);
    entries_free(entries, n_entries);
    return rc ? -1 : 0;
}
