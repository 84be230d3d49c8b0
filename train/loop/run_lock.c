#include "train/loop/run_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"

#define LOCK_NAME ".ctrain-run.lock"

int ct_run_lock(CtRunLock *lock, const char *out_dir) {
    memset(lock, 0, sizeof *lock);
    char path[4096];
    ct_path_join(path, sizeof path, out_dir, LOCK_NAME);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return ct_error_errno("%s: cannot create the run's lock file", path);
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            char holder[256] = "";
            ssize_t n = pread(fd, holder, sizeof holder - 1, 0);
            holder[n > 0 ? n : 0] = '\0';
            int pid = 0;
            char host[200] = "?", who[32] = "pid not yet recorded";
            if (sscanf(holder, "%d %199s", &pid, host) >= 1) snprintf(who, sizeof who, "pid %d", pid);
            close(fd);
            return ct_error_set("%s: another run (%s) is writing into this folder (it holds %s, on host %s); wait for "
                                "it to end, or choose another run.out_dir", out_dir, who, path, host);
        }
        ct_warn("%s: cannot lock it (%s): a second run in %s would not be refused", path, strerror(errno), out_dir);
        close(fd);
        return 0;
    }
    char host[200] = "";
    gethostname(host, sizeof host - 1);
    char text[256];
    int len = snprintf(text, sizeof text, "%d %s\n", (int)getpid(), host[0] ? host : "?");
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)len, 0) != len)
        ct_warn("%s: cannot record this run's pid in it (%s)", path, strerror(errno));
    lock->fd = fd;
    lock->held = 1;
    ct_atomic_remove_stale(out_dir);  // nobody else writes here now
    return 0;
}

void ct_run_unlock(CtRunLock *lock) {
    if (lock->held) close(lock->fd);  // closing drops the flock
    memset(lock, 0, sizeof *lock);
}
