// Atomic file writes: nothing is ever left under the final name unless it is complete.
// A file is written under a hidden temporary name in the same folder (".NAME.tmp.XXXXXX"),
// flushed, fsync'ed and renamed over the final name; the folder is fsync'ed so the rename
// survives a crash. An abort, an error or an interrupt (see ct_atomic_install_signal_cleanup)
// removes the temporary file; one left by kill -9 is removed by ct_atomic_remove_stale when the
// folder is next used. Readers never look at names containing ".tmp.".
#pragma once
#include <stddef.h>
#include <stdio.h>

typedef struct {
    FILE *fp;          // NULL when opened with ct_atomic_begin_path (a library writes by name)
    char *final_path;
    char *tmp_path;
} CtAtomicFile;

// Opens a temporary file next to `path` for writing through f->fp. Returns 0, or -1 + error.
int ct_atomic_open(CtAtomicFile *f, const char *path);
// Reserves a temporary name next to `path` (the file exists, empty) for code that opens files
// by name itself (HDF5); write to f->tmp_path, close it, then commit. Returns 0, or -1 + error.
int ct_atomic_begin_path(CtAtomicFile *f, const char *path);
// Makes the file durable and visible under its final name. Returns 0, or -1 + error (the
// temporary file is removed then).
int ct_atomic_commit(CtAtomicFile *f);
// Drops the temporary file; the final name is untouched.
void ct_atomic_abort(CtAtomicFile *f);

// The whole of `data` to `path`, atomically. Returns 0, or -1 + error.
int ct_write_file_atomic(const char *path, const void *data, size_t size);

// On SIGINT/SIGTERM/SIGHUP, removes every temporary file still open, then lets the signal
// end the process as it would have. Commands that need their own handler (a checkpoint on
// Ctrl-C) call ct_atomic_remove_all_temporaries() from it instead.
void ct_atomic_install_signal_cleanup(void);
void ct_atomic_remove_all_temporaries(void);  // async-signal-safe

// Whether `name` (a file name, no folder) is one of ours: ".NAME.tmp.XXXXXX", as mkstemp fills it.
int ct_atomic_is_temporary_name(const char *name);
// Removes the temporary files a killed writer left in `dir` (our pattern only), saying so for each
// (ct_log: name and size). A temporary a live writer is still writing is left alone: its writer
// holds an flock on it (ct_atomic_open's, or HDF5's own on the files it writes), and so should
// the caller hold the folder (train/loop/run_lock.h). Returns how many were removed.
int ct_atomic_remove_stale(const char *dir);
