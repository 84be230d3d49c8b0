#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "tests/test.h"

// Entries of `dir` whose names contain ".tmp.".
static int count_temporaries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

TEST(core, atomic_write_appears_only_when_committed) {
    const char *dir = ct_test_tmpdir();
    char path[1024];
    snprintf(path, sizeof path, "%s/model.ckpt", dir);
    CtAtomicFile f;
    CHECK_EQ_INT(ct_atomic_open(&f, path), 0);
    fputs("weights", f.fp);
    fflush(f.fp);
    CHECK(access(path, F_OK) != 0);  // nothing under the final name while writing
    CHECK_EQ_INT(count_temporaries(dir), 1);
    CHECK_EQ_INT(ct_atomic_commit(&f), 0);
    char *content = ct_test_read(path, NULL);
    CHECK_STR_EQ(content, "weights");
    free(content);
    CHECK_EQ_INT(count_temporaries(dir), 0);
}

TEST(core, atomic_abort_keeps_the_old_file) {
    const char *path = ct_test_write("config.json", "old");
    CtAtomicFile f;
    CHECK_EQ_INT(ct_atomic_open(&f, path), 0);
    fputs("half of the new", f.fp);
    ct_atomic_abort(&f);
    char *content = ct_test_read(path, NULL);
    CHECK_STR_EQ(content, "old");
    free(content);
    CHECK_EQ_INT(count_temporaries(ct_test_tmpdir()), 0);
    CHECK_EQ_INT(ct_write_file_atomic(path, "new", 3), 0);
    content = ct_test_read(path, NULL);
    CHECK_STR_EQ(content, "new");
    free(content);
}

TEST(core, atomic_begin_path_for_libraries_that_open_by_name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/out.h5", ct_test_tmpdir());
    CtAtomicFile f;
    CHECK_EQ_INT(ct_atomic_begin_path(&f, path), 0);
    CHECK(f.fp == NULL);
    CHECK(strstr(f.tmp_path, "/.out.h5.tmp.") != NULL);
    FILE *w = fopen(f.tmp_path, "wb");
    CHECK(w != NULL);
    fputs("hdf5", w);
    fclose(w);
    CHECK_EQ_INT(ct_atomic_commit(&f), 0);
    char *content = ct_test_read(path, NULL);
    CHECK_STR_EQ(content, "hdf5");
    free(content);
}

TEST(core, atomic_write_errors_name_the_path) {
    CtAtomicFile f;
    CHECK_EQ_INT(ct_atomic_open(&f, "/nonexistent-folder/x.bin"), -1);
    CHECK_CONTAINS(ct_error_message(), "/nonexistent-folder/x.bin: cannot create a file in its folder");
    CHECK_EQ_INT(ct_write_file_atomic("", "x", 1), -1);
    CHECK_CONTAINS(ct_error_message(), "no output path");
    char dir_path[1024];
    snprintf(dir_path, sizeof dir_path, "%s/", ct_test_tmpdir());
    CHECK_EQ_INT(ct_write_file_atomic(dir_path, "x", 1), -1);
    CHECK_CONTAINS(ct_error_message(), "is a folder name");
}

static void write_then_get_interrupted(void *dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s/shard.bin", (const char *)dir);
    ct_atomic_install_signal_cleanup();
    CtAtomicFile f;
    if (ct_atomic_open(&f, path) != 0) _exit(3);
    fputs("partial", f.fp);
    fflush(f.fp);
    raise(SIGINT);
    _exit(4);  // not reached: the signal ends the process
}

TEST(core, interrupt_removes_temporary_files) {
    const char *dir = ct_test_tmpdir();
    int status = ct_test_fork(write_then_get_interrupted, (void *)dir, NULL);
    CHECK_EQ_INT(status, 128 + SIGINT);
    CHECK_EQ_INT(count_temporaries(dir), 0);
    char path[1024];
    snprintf(path, sizeof path, "%s/shard.bin", dir);
    CHECK(access(path, F_OK) != 0);
}
