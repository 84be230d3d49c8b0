#include "checkpoints/checkpoint.h"

#include <hdf5.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "checkpoints/attribute_checksums.h"
#include "core/alloc.h"
#include "core/error.h"

// A file whose close fails (HDF5 could not write its metadata: disk full) stays half-closed
// inside HDF5, and HDF5's own clean-up at exit then crashes on it (SIGSEGV in H5F__close_cb), so
// a clear error would end as exit status 139. Every file here is closed explicitly, so that
// clean-up has nothing to do: it is turned off before HDF5 starts.
__attribute__((constructor)) static void no_hdf5_cleanup_at_exit(void) { H5dont_atexit(); }

static void quiet_hdf5(void) {
    // HDF5 prints its error stack to stderr by default; errors here become one-line messages.
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

// Why HDF5 failed, for errors that say why: the system's message where a read or write of the
// file failed ("No space left on device"), else the innermost message of HDF5's error stack (its
// first line); "" when the stack is empty. Call it before any other HDF5 call, which clears the stack.
static herr_t first_error(unsigned n, const H5E_error2_t *e, void *data) {
    char *buf = data;
    const char *sys = e->desc ? strstr(e->desc, "error message = '") : NULL;
    if (sys) {
        sys += strlen("error message = '");
        snprintf(buf, 160, "%.*s", (int)strcspn(sys, "'"), sys);
        return 1;  // the system's reason: stop here
    }
    if (n == 0 && e->desc && *e->desc) snprintf(buf, 160, "%.*s", (int)strcspn(e->desc, "\n"), e->desc);
    return 0;
}

static const char *hdf5_reason(char buf[160]) {
    buf[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, first_error, buf);
    return buf;
}

static hid_t type_of(CtDtype dtype, int native) {
    switch (dtype) {
    case CT_DTYPE_F32: return native ? H5T_NATIVE_FLOAT : H5T_IEEE_F32LE;
    case CT_DTYPE_I32: return native ? H5T_NATIVE_INT32 : H5T_STD_I32LE;
    case CT_DTYPE_BF16:
    case CT_DTYPE_F16: return native ? H5T_NATIVE_UINT16 : H5T_STD_U16LE;  // raw 16-bit words
    }
    return H5T_NATIVE_FLOAT;
}

int ct_ckpt_create(CtCheckpoint *c, const char *path) {
    memset(c, 0, sizeof *c);
    quiet_hdf5();
    if (ct_atomic_begin_path(&c->atomic, path) != 0) return -1;
    // Root attributes go to dense storage (a fractal heap), which has no size limit; the
    // default, compact storage in the object header, refuses one above ~64 KB, and a real
    // tokenizer.json is megabytes. Dense storage needs the HDF5 1.8 file format, which h5py
    // and h5dump read.
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE), fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_attr_phase_change(fcpl, 0, 0);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST);
    c->file = H5Fcreate(c->atomic.tmp_path, H5F_ACC_TRUNC, fcpl, fapl);
    H5Pclose(fcpl);
    H5Pclose(fapl);
    if (c->file < 0) {
        ct_atomic_abort(&c->atomic);
        return ct_error_set("%s: cannot create an HDF5 file", path);
    }
    c->writing = 1;
    c->path = ct_strdup(path);
    if (ct_ckpt_set_string(c, "format", "ctrain-checkpoint") != 0 || ct_ckpt_set_int(c, "version", CT_CKPT_VERSION) != 0 ||
        ct_ckpt_set_int(c, "version_minor", CT_CKPT_VERSION_MINOR) != 0) {
        ct_ckpt_abort(c);
        return -1;
    }
    return 0;
}

void ct_ckpt_abort(CtCheckpoint *c) {
    if (c->file > 0) {
        // After a failed write HDF5 still holds metadata it could not write, and its close writes
        // it: the temporary file is dropped anyway, so emptying it first gives that write room
        // (on a full disk it would fail again and leave the file half-closed).
        if (c->writing && c->atomic.tmp_path) {
            int emptied = truncate(c->atomic.tmp_path, 0);
            (void)emptied;  // if the close fails even so, no_hdf5_cleanup_at_exit makes it harmless
        }
        H5Fclose(c->file);
    }
    if (c->writing) ct_atomic_abort(&c->atomic);
    ct_free(c->path);
    memset(c, 0, sizeof *c);
}

int ct_ckpt_commit(CtCheckpoint *c) {
    // Format 1.1: the checksums of every attribute, the last attribute written.
    char *table = ct_attribute_checksums_compute(c->file, c->path);
    if (!table || ct_ckpt_set_string(c, CT_CKPT_ATTRIBUTE_CRC32, table) != 0) {
        ct_free(table);
        ct_ckpt_abort(c);
        return -1;
    }
    ct_free(table);
    if (H5Fflush(c->file, H5F_SCOPE_GLOBAL) < 0) {
        char why[160];
        ct_error_set("%s: writing the checkpoint failed: %s", c->path,
                     *hdf5_reason(why) ? why : "HDF5 gave no reason (disk full?)");
        ct_ckpt_abort(c);
        return -1;
    }
    if (H5Fclose(c->file) < 0) {  // HDF5 has let go of the file, even so
        char why[160];
        c->file = 0;
        ct_error_set("%s: writing the checkpoint failed: %s", c->path,
                     *hdf5_reason(why) ? why : "HDF5 gave no reason (disk full?)");
        ct_ckpt_abort(c);
        return -1;
    }
    c->file = 0;
    int rc = ct_atomic_commit(&c->atomic);
    c->writing = 0;
    ct_free(c->path);
    memset(c, 0, sizeof *c);
    return rc;
}

// Creates /group and the groups above it where missing. Their links stay compact, in the
// group's object header, which the 1.8 format checksums: a flipped bit there is refused on
// opening. HDF5's default moves a group of more than 8 links to dense storage (a fractal heap
// whose blocks carry no checksum), and HDF5 1.10 crashed walking a damaged one.
static int ensure_group(CtCheckpoint *c, const char *group) {
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    H5Pset_link_phase_change(gcpl, 65535, 65534);
    char path[512];
    int rc = 0;
    for (const char *at = group;; at++) {
        if (*at != '/' && *at != '\0') continue;
        snprintf(path, sizeof path, "/%.*s", (int)(at - group), group);
        if (H5Lexists(c->file, path, H5P_DEFAULT) <= 0) {
            hid_t g = H5Gcreate2(c->file, path, H5P_DEFAULT, gcpl, H5P_DEFAULT);
            if (g < 0) {
                rc = ct_error_set("%s: cannot create group %s", c->path, path);
                break;
            }
            H5Gclose(g);
        }
        if (*at == '\0') break;
    }
    H5Pclose(gcpl);
    return rc;
}

int ct_ckpt_write_tensors(CtCheckpoint *c, const char *group, const CtNamedTensor *tensors, int n) {
    if (ensure_group(c, group) != 0) return -1;
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        const CtNamedTensor *t = &tensors[i];
        char path[512];
        snprintf(path, sizeof path, "/%s/%s", group, t->name);
        hsize_t dims[CT_TENSOR_MAX_DIMS];
        hsize_t numel = 1;
        for (int d = 0; d < t->ndim; d++) numel *= (dims[d] = (hsize_t)t->shape[d]);
        hid_t space = H5Screate_simple(t->ndim, dims, NULL);
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        if (numel > 0) {  // one chunk per tensor (below HDF5's 4 GiB chunk limit) with a checksum
            hsize_t chunk[CT_TENSOR_MAX_DIMS];
            hsize_t elements = 1;
            for (int d = t->ndim - 1; d >= 0; d--) {
                hsize_t limit = ((hsize_t)1 << 28) / elements;  // at most 256M elements per chunk
                chunk[d] = dims[d] < limit ? dims[d] : (limit ? limit : 1);
                elements *= chunk[d];
            }
            H5Pset_chunk(dcpl, t->ndim, chunk);
            H5Pset_fletcher32(dcpl);
        }
        hid_t ds = H5Dcreate2(c->file, path, type_of(t->dtype, 0), space, lcpl, dcpl, H5P_DEFAULT);
        if (ds < 0 || H5Dwrite(ds, type_of(t->dtype, 1), H5S_ALL, H5S_ALL, H5P_DEFAULT, t->data) < 0) {
            char why[160];
            rc = ct_error_set("%s: cannot write tensor %s (%llu elements): %s", c->path, path, (unsigned long long)numel,
                              *hdf5_reason(why) ? why : "HDF5 gave no reason (disk full?)");
        }
        if (ds >= 0) H5Dclose(ds);
        H5Pclose(dcpl);
        H5Sclose(space);
    }
    H5Pclose(lcpl);
    return rc;
}

static int write_attribute(CtCheckpoint *c, const char *name, hid_t file_type, hid_t mem_type, const void *data, hsize_t n) {
    if (H5Aexists(c->file, name) > 0) H5Adelete(c->file, name);
    hid_t space = n == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, NULL);
    hid_t attr = H5Acreate2(c->file, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
    int rc = 0;
    if (attr < 0 || H5Awrite(attr, mem_type, data) < 0) {
        char why[160];
        hdf5_reason(why);  // before the next HDF5 call clears it
        size_t bytes = H5Tget_size(file_type) * (n ? (size_t)n : 1);
        rc = ct_error_set("%s: cannot write attribute %s (%zu bytes): %s", c->path, name, bytes,
                          *why ? why : "HDF5 gave no reason (disk full?)");
    }
    if (attr >= 0) H5Aclose(attr);
    H5Sclose(space);
    return rc;
}

int ct_ckpt_set_string(CtCheckpoint *c, const char *name, const char *value) {
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, strlen(value) + 1);
    H5Tset_cset(type, H5T_CSET_UTF8);
    int rc = write_attribute(c, name, type, type, value, 0);
    H5Tclose(type);
    return rc;
}

int ct_ckpt_set_int(CtCheckpoint *c, const char *name, int64_t value) {
    return write_attribute(c, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value, 0);
}

int ct_ckpt_set_double(CtCheckpoint *c, const char *name, double value) {
    return write_attribute(c, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value, 0);
}

int ct_ckpt_set_u64s(CtCheckpoint *c, const char *name, const uint64_t *values, int n) {
    return write_attribute(c, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, values, (hsize_t)n);
}

// ---- reading ----

int ct_ckpt_open(CtCheckpoint *c, const char *path) {
    memset(c, 0, sizeof *c);
    quiet_hdf5();
    FILE *probe = fopen(path, "rb");
    if (!probe) return ct_error_errno("%s: cannot open checkpoint", path);
    fclose(probe);
    if (H5Fis_hdf5(path) <= 0) return ct_error_set("%s: not an HDF5 file (or truncated)", path);
    c->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (c->file < 0) {
        c->file = 0;
        return ct_error_set("%s: cannot open as HDF5 (truncated or damaged)", path);
    }
    c->path = ct_strdup(path);
    // Format 1.1: every attribute is checked before any is believed, the format's own included.
    htri_t checked = H5Aexists(c->file, CT_CKPT_ATTRIBUTE_CRC32);
    if (checked < 0 || (checked > 0 && ct_attribute_checksums_verify(c->file, path, &c->attributes_checked) != 0)) {
        if (checked < 0) ct_error_set("%s: cannot read its attributes (damaged file)", path);
        ct_ckpt_close(c);
        return -1;
    }
    char *format = NULL;
    int64_t version = 0, minor = 0;
    if (!ct_ckpt_has(c, "format")) {
        ct_ckpt_close(c);
        return ct_error_set("%s: an HDF5 file, but not a ctrain checkpoint (no format attribute)", path);
    }
    if (ct_ckpt_get_string(c, "format", &format) != 0 || strcmp(format, "ctrain-checkpoint") != 0) {
        if (format) ct_error_set("%s: an HDF5 file, but not a ctrain checkpoint (format '%.40s')", path, format);
        ct_free(format);
        ct_ckpt_close(c);
        return -1;
    }
    ct_free(format);
    if (ct_ckpt_get_int(c, "version", &version) != 0 || version != CT_CKPT_VERSION) {
        ct_ckpt_close(c);
        return ct_error_set("%s: checkpoint version %lld; this ctrain reads version %d", path, (long long)version,
                            CT_CKPT_VERSION);
    }
    if (ct_ckpt_has(c, "version_minor") && ct_ckpt_get_int(c, "version_minor", &minor) != 0) {
        ct_ckpt_close(c);
        return -1;
    }
    c->version_minor = (int)minor;
    if (minor >= 1 && !checked) {
        ct_ckpt_close(c);
        return ct_error_set("%s: checkpoint version 1.%lld has no attribute checksums (%s): damaged file", path,
                            (long long)minor, CT_CKPT_ATTRIBUTE_CRC32);
    }
    return 0;
}

void ct_ckpt_close(CtCheckpoint *c) {
    if (c->file > 0) H5Fclose(c->file);
    ct_free(c->path);
    memset(c, 0, sizeof *c);
}

int ct_ckpt_has(const CtCheckpoint *c, const char *object) {
    if (H5Aexists(c->file, object) > 0) return 1;
    // H5Lexists needs every intermediate link to exist: walk the path one part at a time.
    char path[512];
    snprintf(path, sizeof path, "/%s", object);
    for (char *p = path + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (H5Lexists(c->file, path, H5P_DEFAULT) <= 0) return 0;
            if (!saved) return 1;
            *p = saved;
        }
    }
}

// A tensor that HDF5 could not read: its Fletcher-32 checksum failed, or the file is damaged.
static int tensor_read_error(const CtCheckpoint *c, const char *path) {
    char why[160];
    hdf5_reason(why);
    if (strstr(why, "checksum") || !*why) return ct_error_set("%s: tensor %s fails its checksum (damaged file)", c->path, path);
    return ct_error_set("%s: tensor %s cannot be read (damaged file: %s)", c->path, path, why);
}

int ct_ckpt_read_tensors(CtCheckpoint *c, const char *group, const CtNamedTensor *tensors, int n) {
    for (int i = 0; i < n; i++) {
        const CtNamedTensor *t = &tensors[i];
        char path[512];
        snprintf(path, sizeof path, "%s/%s", group, t->name);
        if (!ct_ckpt_has(c, path)) return ct_error_set("%s: has no tensor %s", c->path, path);
        hid_t ds = H5Dopen2(c->file, path, H5P_DEFAULT);
        if (ds < 0) return tensor_read_error(c, path);
        hid_t space = H5Dget_space(ds);
        hsize_t dims[CT_TENSOR_MAX_DIMS];
        int ndim = H5Sget_simple_extent_ndims(space);
        int same = ndim == t->ndim && ndim <= CT_TENSOR_MAX_DIMS;
        if (same) {
            H5Sget_simple_extent_dims(space, dims, NULL);
            for (int d = 0; d < ndim; d++) same &= dims[d] == (hsize_t)t->shape[d];
        }
        H5Sclose(space);
        if (!same) {
            H5Dclose(ds);
            char want[96] = "", got[96] = "";
            for (int d = 0; d < t->ndim; d++)
                snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? "x" : "", (long long)t->shape[d]);
            for (int d = 0; d < ndim && d < CT_TENSOR_MAX_DIMS; d++)
                snprintf(got + strlen(got), sizeof got - strlen(got), "%s%llu", d ? "x" : "", (unsigned long long)dims[d]);
            return ct_error_set("%s: tensor %s has shape %s, the model expects %s (another model config?)", c->path,
                                path, got, want);
        }
        herr_t rc = H5Dread(ds, type_of(t->dtype, 1), H5S_ALL, H5S_ALL, H5P_DEFAULT, t->data);
        if (rc < 0) tensor_read_error(c, path);
        H5Dclose(ds);
        if (rc < 0) return -1;
    }
    return 0;
}

static hid_t open_attribute(CtCheckpoint *c, const char *name) {
    if (H5Aexists(c->file, name) <= 0) {
        ct_error_set("%s: no attribute '%s'", c->path ? c->path : "checkpoint", name);
        return -1;
    }
    return H5Aopen(c->file, name, H5P_DEFAULT);
}

int ct_ckpt_get_string(CtCheckpoint *c, const char *name, char **value) {
    hid_t attr = open_attribute(c, name);
    if (attr < 0) return -1;
    hid_t type = H5Aget_type(attr);
    int rc = -1;
    if (H5Tget_class(type) == H5T_STRING && !H5Tis_variable_str(type)) {
        size_t size = H5Tget_size(type);
        char *buf = ct_calloc(size + 1, 1);
        hid_t mem = H5Tcopy(type);  // same size and character set as stored
        if (H5Aread(attr, mem, buf) >= 0) {
            *value = buf;
            rc = 0;
        } else {
            ct_free(buf);
        }
        H5Tclose(mem);
    }
    if (rc != 0) ct_error_set("%s: attribute '%s' is not a string", c->path ? c->path : "checkpoint", name);
    H5Tclose(type);
    H5Aclose(attr);
    return rc;
}

static int read_scalar(CtCheckpoint *c, const char *name, hid_t mem_type, H5T_class_t want, void *value) {
    hid_t attr = open_attribute(c, name);
    if (attr < 0) return -1;
    hid_t type = H5Aget_type(attr);
    hid_t space = H5Aget_space(attr);
    int ok = H5Tget_class(type) == want && H5Sget_simple_extent_npoints(space) == 1 && H5Aread(attr, mem_type, value) >= 0;
    H5Sclose(space);
    H5Tclose(type);
    H5Aclose(attr);
    return ok ? 0 : ct_error_set("%s: attribute '%s' has the wrong type", c->path ? c->path : "checkpoint", name);
}

int ct_ckpt_get_int(CtCheckpoint *c, const char *name, int64_t *value) {
    return read_scalar(c, name, H5T_NATIVE_INT64, H5T_INTEGER, value);
}

int ct_ckpt_get_double(CtCheckpoint *c, const char *name, double *value) {
    return read_scalar(c, name, H5T_NATIVE_DOUBLE, H5T_FLOAT, value);
}

int ct_ckpt_get_u64s(CtCheckpoint *c, const char *name, uint64_t *values, int n) {
    hid_t attr = open_attribute(c, name);
    if (attr < 0) return -1;
    hid_t space = H5Aget_space(attr);
    hid_t type = H5Aget_type(attr);
    int ok = H5Tget_class(type) == H5T_INTEGER && H5Sget_simple_extent_npoints(space) == n &&
             H5Aread(attr, H5T_NATIVE_UINT64, values) >= 0;
    H5Tclose(type);
    H5Sclose(space);
    H5Aclose(attr);
    return ok ? 0 : ct_error_set("%s: attribute '%s' is not %d integers", c->path ? c->path : "checkpoint", name, n);
}

typedef struct {
    CtCkptVisitFn fn;
    void *ctx;
} Visit;

static herr_t visit_one(hid_t obj, const char *name, const H5O_info_t *info, void *data) {
    if (info->type != H5O_TYPE_DATASET) return 0;
    Visit *v = data;
    hid_t ds = H5Dopen2(obj, name, H5P_DEFAULT);
    hid_t space = H5Dget_space(ds);
    hsize_t dims[CT_TENSOR_MAX_DIMS] = {0};
    int ndim = H5Sget_simple_extent_ndims(space);
    int64_t shape[CT_TENSOR_MAX_DIMS] = {0}, numel = 1;
    if (ndim >= 0 && ndim <= CT_TENSOR_MAX_DIMS) {
        H5Sget_simple_extent_dims(space, dims, NULL);
        for (int d = 0; d < ndim; d++) numel *= (shape[d] = (int64_t)dims[d]);
        v->fn(v->ctx, name, ndim, shape, numel);
    }
    H5Sclose(space);
    H5Dclose(ds);
    return 0;
}

int ct_ckpt_visit(CtCheckpoint *c, CtCkptVisitFn fn, void *ctx) {
    Visit v = {fn, ctx};
    if (H5Ovisit(c->file, H5_INDEX_NAME, H5_ITER_INC, visit_one, &v) < 0)
        return ct_error_set("%s: cannot list the checkpoint's contents (damaged?)", c->path);
    return 0;
}

typedef struct {
    CtCheckpoint *c;
    int64_t n_tensors;
    void *buffer;
    size_t capacity;
    int failed;
} Verify;

static herr_t verify_one(hid_t obj, const char *name, const H5O_info_t *info, void *data) {
    if (info->type != H5O_TYPE_DATASET) return 0;
    Verify *v = data;
    hid_t ds = H5Dopen2(obj, name, H5P_DEFAULT);
    hid_t type = ds >= 0 ? H5Dget_type(ds) : -1, space = ds >= 0 ? H5Dget_space(ds) : -1;
    hssize_t n = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    size_t bytes = n >= 0 && type >= 0 ? (size_t)n * H5Tget_size(type) : 0;
    if (bytes > v->capacity) {
        ct_free(v->buffer);
        v->buffer = ct_alloc(v->capacity = bytes);
    }
    herr_t rc = n < 0 || type < 0 ? -1 : bytes ? H5Dread(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v->buffer) : 0;
    if (rc < 0) tensor_read_error(v->c, name);
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
    if (ds >= 0) H5Dclose(ds);
    if (rc < 0) {
        v->failed = 1;
        return -1;
    }
    v->n_tensors++;
    return 0;
}

int ct_ckpt_verify_tensors(CtCheckpoint *c, int64_t *n_tensors) {
    Verify v = {c, 0, NULL, 0, 0};
    herr_t rc = H5Ovisit(c->file, H5_INDEX_NAME, H5_ITER_INC, verify_one, &v);
    ct_free(v.buffer);
    if (n_tensors) *n_tensors = v.n_tensors;
    if (rc < 0 && !v.failed) ct_error_set("%s: cannot list the checkpoint's contents (damaged file)", c->path);
    return rc < 0 ? -1 : 0;
}
