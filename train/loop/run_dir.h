// The checkpoints of a run in its output folder:
//   OUT/ckpt-step00000100.h5   step checkpoints; the newest train.keep_last are kept
//   OUT/best.h5                the one with the lowest validation loss so far
// --resume continues from the newest step checkpoint that verifies: it opens as a ctrain model
// checkpoint and every attribute and tensor matches its checksum. A newer one that does not is
// skipped with a warning that says why.
#pragma once
#include <stddef.h>
#include <stdint.h>

void ct_run_checkpoint_path(char *buf, size_t size, const char *out_dir, int64_t step);
// The newest step checkpoint in out_dir that verifies (each candidate is read once). 0 and its
// path, or -1 + error when none.
int ct_run_find_latest(const char *out_dir, char *path, size_t size);
// Deletes step checkpoints older than the newest keep_last.
void ct_run_prune(const char *out_dir, int keep_last);
