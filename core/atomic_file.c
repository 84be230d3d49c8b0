#include "core/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <dirent.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"

// Temporary files in flight, for the signal handler. A fixed table: the handler may not
// allocate, and a process rarely has more than a few files open for writing at once.
#define MAX_IN_FLIGHT 64
static char *volatile in_flight[MAX_IN_FLIGHT];

static void track(char *tmp_path) {
    for (int i = 0; i < MAX_IN_FLIGHT; i++)
        if (!in_flight[i]) {
            in_flight[i] = tmp_path;
            return;
        }
}

static void untrack(const char *tmp_path) {
    for (int i = 0; i < MAX_IN_FLIGHT; i++)
        if (in_flight[i] == tmp_path) in_flight[i] = NULL;
}

void ct_atomic_remove_all_temporaries(void) {
    for (int i = 0; i < MAX_IN_FLIGHT; i++)
        if (in_flight[i]) unlink(in_flight[i]);
}

static void cleanup_and_reraise(int sig) {
    ct_atomic_remove_all_temporaries();
    signal(sig, SIG_DFL);
    raise(sig);
}

void ct_atomic_install_signal_cleanup(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = cleanup_and_reraise;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

// ".NAME.tmp.XXXXXX" in the folder of `path`.
static char *temporary_template(const char *path) {
    char *dir_copy = ct_strdup(path), *base_copy = ct_strdup(path);
    const char *dir = dirname(dir_copy), *base = basename(base_copy);
    size_t n = strlen(dir) + strlen(base) + 32;
    char *tmpl = ct_alloc(n);
    snprintf(tmpl, n, "%s/.%s.tmp.XXXXXX", dir, base);
    ct_free(dir_copy);
    ct_free(base_copy);
    return tmpl;
}

static int create_temporary(CtAtomicFile *f, const char *path) {
    memset(f, 0, sizeof *f);
    if (!path || !*path) return ct_error_set("no output path given");
    size_t len = strlen(path);
    if (path[len - 1] == '/') return ct_error_set("%s: is a folder name, expected a file name", path);
    char *tmpl = temporary_template(path);
    // The file is created and tracked with the cleanup signals held back: a signal between the
    // two would leave a temporary the handler does not know of.
    sigset_t cleanup_signals, before;
    sigemptyset(&cleanup_signals);
    sigaddset(&cleanup_signals, SIGINT);
    sigaddset(&cleanup_signals, SIGTERM);
    sigaddset(&cleanup_signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &cleanup_signals, &before);
    int fd = mkstemp(tmpl);
    if (fd >= 0) track(tmpl);
    int saved_errno = errno;
    pthread_sigmask(SIG_SETMASK, &before, NULL);
    if (fd < 0) {
        errno = saved_errno;
        ct_error_errno("%s: cannot create a file in its folder", path);
        ct_free(tmpl);
        return -1;
    }
    fchmod(fd, 0644);
    f->final_path = ct_strdup(path);
    f->tmp_path = tmpl;
    return fd;
}

int ct_atomic_open(CtAtomicFile *f, const char *path) {
    int fd = create_temporary(f, path);
    if (fd < 0) return -1;
    // Held until the file is closed: ct_atomic_remove_stale in another process leaves it alone.
    // (Not for ct_atomic_begin_path: HDF5 takes the same lock on the files it writes.)
    flock(fd, LOCK_EX | LOCK_NB);
    f->fp = fdopen(fd, "wb");
    if (!f->fp) {
        ct_error_errno("%s: cannot open for writing", f->tmp_path);
        close(fd);
        ct_atomic_abort(f);
        return -1;
    }
    return 0;
}

int ct_atomic_begin_path(CtAtomicFile *f, const char *path) {
    int fd = create_temporary(f, path);
    if (fd < 0) return -1;
    close(fd);
    return 0;
}

static void release(CtAtomicFile *f) {
    untrack(f->tmp_path);
    ct_free(f->tmp_path);
    ct_free(f->final_path);
    f->tmp_path = f->final_path = NULL;
    f->fp = NULL;
}

void ct_atomic_abort(CtAtomicFile *f) {
    if (f->fp) fclose(f->fp);
    f->fp = NULL;
    if (f->tmp_path) unlink(f->tmp_path);
    release(f);
}

static int fsync_path(const char *path, int flags) {
    int fd = open(path, flags);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    // Some file systems refuse fsync on a folder; the rename itself has still happened.
    if (rc != 0 && (errno == EINVAL || errno == EBADF) && (flags & O_DIRECTORY)) rc = 0;
    close(fd);
    return rc;
}

int ct_atomic_commit(CtAtomicFile *f) {
    if (!f->tmp_path) return ct_error_set("atomic file committed twice or never opened");
    if (f->fp) {
        int bad = ferror(f->fp) || fflush(f->fp) != 0 || fsync(fileno(f->fp)) != 0;
        int saved = errno;
        if (fclose(f->fp) != 0) bad = 1;
        f->fp = NULL;
        if (bad) {
            errno = saved;
            ct_error_errno("%s: writing failed (disk full?)", f->final_path);
            ct_atomic_abort(f);
            return -1;
        }
    } else if (fsync_path(f->tmp_path, O_RDONLY) != 0) {
        ct_error_errno("%s: cannot flush to disk", f->final_path);
        ct_atomic_abort(f);
        return -1;
    }
    if (rename(f->tmp_path, f->final_path) != 0) {
        ct_error_errno("%s: cannot move the finished file into place", f->final_path);
        ct_atomic_abort(f);
        return -1;
    }
    char *dir_copy = ct_strdup(f->final_path);
    fsync_path(dirname(dir_copy), O_RDONLY | O_DIRECTORY);
    ct_free(dir_copy);
    release(f);
    return 0;
}

int ct_write_file_atomic(const char *path, const void *data, size_t size) {
    CtAtomicFile f;
    if (ct_atomic_open(&f, path) != 0) return -1;
    if (size && fwrite(data, 1, size, f.fp) != size) {
        ct_error_errno("%s: writing failed", path);
        ct_atomic_abort(&f);
        return -1;
    }
    return ct_atomic_commit(&f);
}

int ct_atomic_is_temporary_name(const char *name) {
    const char *tmp = strstr(name, ".tmp.");
    while (tmp && strstr(tmp + 1, ".tmp.")) tmp = strstr(tmp + 1, ".tmp.");  // the last one
    if (name[0] != '.' || !tmp || tmp == name || strlen(tmp + 5) != 6) return 0;
    for (const char *p = tmp + 5; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'))) return 0;
    return 1;
}

int ct_atomic_remove_stale(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!ct_atomic_is_temporary_name(e->d_name)) continue;
        size_t n = strlen(dir) + strlen(e->d_name) + 2;
        char *path = ct_alloc(n);
        snprintf(path, n, "%s/%s", dir, e->d_name);
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        struct stat st;
        // A regular file that nobody holds: the writer is gone (a held lock means one is writing).
        if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && flock(fd, LOCK_EX | LOCK_NB) == 0 &&
            unlink(path) == 0) {
            char size[32];
            ct_format_bytes(size, sizeof size, (double)st.st_size);
            ct_log("removed %s (%lld bytes%s%s), a temporary file left by a save that was interrupted", path,
                   (long long)st.st_size, st.st_size >= 1024 ? ", " : "", st.st_size >= 1024 ? size : "");
            removed++;
        }
        if (fd >= 0) close(fd);
        ct_free(path);
    }
    closedir(d);
    return removed;
}
