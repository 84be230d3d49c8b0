// One run at a time in a run folder. The process that writes a run's files (rank 0 of a data-
// parallel run) holds an exclusive flock on OUT/.ctrain-run.lock for the whole run; the file
// holds its pid and host, for the line a second run gets when it is refused. The kernel drops the
// lock when the process ends, however it ends (kill -9 included), so a later run or --resume in
// the folder needs nothing removed; the file itself stays.
// Once the folder is held, the temporary files a killed save left there are removed
// (ct_atomic_remove_stale): no live writer can own them any more.
#pragma once

typedef struct {
    int fd;
    int held;
} CtRunLock;

// Takes the folder (which must exist) for this process, then removes stale temporaries. 0, or
// -1 + an error naming the folder and the holder's pid when another run holds it. Where the file
// system cannot lock, warns and goes on unlocked.
int ct_run_lock(CtRunLock *lock, const char *out_dir);
void ct_run_unlock(CtRunLock *lock);
