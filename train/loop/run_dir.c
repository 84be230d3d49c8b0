#include "train/loop/run_dir.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "train/interop/checkpoint_io.h"

void ct_run_checkpoint_path(char *buf, size_t size, const char *out_dir, int64_t step) {
    snprintf(buf, size, "%s/ckpt-step%08" PRId64 ".h5", out_dir, step);
}

// Steps of the step checkpoints in out_dir, newest first.
static int list_steps(const char *out_dir, int64_t **steps) {
    DIR *d = opendir(out_dir);
    int n = 0, cap = 0;
    *steps = NULL;
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        long long step;
        char tail[8];
        if (sscanf(e->d_name, "ckpt-step%lld.%7s", &step, tail) == 2 && strcmp(tail, "h5") == 0 &&
            strncmp(e->d_name, "ckpt-step", 9) == 0) {
            if (n == cap) *steps = ct_realloc(*steps, sizeof(int64_t) * (size_t)(cap = cap ? 2 * cap : 16));
            (*steps)[n++] = step;
        }
    }
    closedir(d);
    for (int i = 1; i < n; i++)  // newest first (few files: insertion sort)
        for (int j = i; j > 0 && (*steps)[j] > (*steps)[j - 1]; j--) {
            int64_t t = (*steps)[j];
            (*steps)[j] = (*steps)[j - 1];
            (*steps)[j - 1] = t;
        }
    return n;
}

// A checkpoint to resume from: it opens as a model checkpoint (every attribute matching its
// checksum) and every tensor matches its checksum. Reads the file once.
static int verifies(const char *path) {
    CtCheckpoint c;
    if (ct_ckpt_open(&c, path) != 0) return -1;
    CtModelConfig config;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    int rc = ct_checkpoint_read_meta_open(&c, path, &config, &meta);
    ct_checkpoint_meta_free(&meta);
    if (rc == 0) rc = ct_ckpt_verify_tensors(&c, NULL);
    ct_ckpt_close(&c);
    return rc;
}

int ct_run_find_latest(const char *out_dir, char *path, size_t size) {
    int64_t *steps;
    int n = list_steps(out_dir, &steps);
    for (int i = 0; i < n; i++) {
        ct_run_checkpoint_path(path, size, out_dir, steps[i]);
        if (verifies(path) == 0) {
            ct_free(steps);
            return 0;
        }
        ct_warn("skipping %s: %s", path, ct_error_message());
    }
    ct_free(steps);
    return ct_error_set("%s: no complete checkpoint to resume from (ckpt-step*.h5)", out_dir);
}

void ct_run_prune(const char *out_dir, int keep_last) {
    int64_t *steps;
    int n = list_steps(out_dir, &steps);
    for (int i = keep_last; i < n; i++) {
        char path[2048];
        ct_run_checkpoint_path(path, sizeof path, out_dir, steps[i]);
        unlink(path);
    }
    ct_free(steps);
}
