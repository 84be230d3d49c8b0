// The test runner: `ctrain_tests [--long] [--list] [-jN] [FILTER...]`. Runs every registered test
// (or those whose "suite.name" contains one of the filters; a filter written ^TEXT matches the
// names that start with TEXT), each in a forked process, N at a time with -jN (their output
// held back and printed in the tests' order), and ends with the line "N passed,
// N failed" (", N skipped" when any were). Skips are listed before that line, once per distinct
// reason with how many tests and which suites gave it. CTRAIN_REQUIRE_REF=1 (make test-ref)
// makes every skip a failure.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/test.h"

#define MAX_TESTS 4096
#define EXIT_SKIP 77

typedef struct {
    const char *suite, *name, *file;
    int line, is_long;
    CtTestFn fn;
} TestCase;

static TestCase tests[MAX_TESTS];
static int n_tests;
static int current_failed;
static char current_tmpdir[512];
static const TestCase *current;
static int skip_fd = -1;  // in a test's process: where ct_test_skip sends its reason to the runner

void ct_test_register(const char *suite, const char *name, CtTestFn fn, int is_long, const char *file, int line) {
    if (n_tests >= MAX_TESTS) {
        fprintf(stderr, "too many tests\n");
        exit(2);
    }
    tests[n_tests++] = (TestCase){suite, name, file, line, is_long, fn};
}

void ct_test_fail(const char *file, int line, const char *fmt, ...) {
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    printf("  FAIL %s.%s at %s:%d: %s\n", current->suite, current->name, file, line, msg);
    fflush(stdout);
    current_failed = 1;
}

int ct_test_failed(void) { return current_failed; }

// The test's temporary folder, once it passed or skipped (a failed test keeps it to look at).
static void remove_tmpdir(void) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", current_tmpdir);
    if (system(cmd) != 0) { /* leaving a temporary folder behind is harmless */
    }
}

_Noreturn void ct_test_skip(const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *require = getenv("CTRAIN_REQUIRE_REF");
    if (require && strcmp(require, "1") == 0) {
        printf("  FAIL %s.%s: skipped under CTRAIN_REQUIRE_REF=1 (make test-ref, where every reference client must "
               "be present): %s\n", current->suite, current->name, msg);
        fflush(stdout);
        exit(1);
    }
    fflush(stdout);
    // one line per reason: a script's multi-line output becomes one line, trailing space dropped
    size_t len = strlen(msg);
    while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' ' || msg[len - 1] == '\r')) len--;
    for (size_t i = 0; i < len; i++)
        if (msg[i] == '\n' || msg[i] == '\r') msg[i] = ' ';
    msg[len++] = '\n';
    if (skip_fd < 0 || write(skip_fd, msg, len) != (ssize_t)len)
        printf("  SKIP %s.%s: %.*s", current->suite, current->name, (int)len, msg);
    fflush(stdout);
    if (!current_failed && current_tmpdir[0]) remove_tmpdir();  // a skip after setup left files
    exit(EXIT_SKIP);
}

int ct_test_run(const char *command, char **output) {
    char full[8192];
    snprintf(full, sizeof full, "( %s ) 2>&1", command);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += got;
        if (cap - len < 1024) buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    int status = pclose(p);
    if (output)
        *output = buf;
    else
        free(buf);
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

int ct_test_fork(void (*fn)(void *), void *arg, char **output) {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        fn(arg);
        fflush(stdout);
        fflush(stderr);
        _exit(0);
    }
    close(fds[1]);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    ssize_t got;
    while ((got = read(fds[0], buf + len, cap - len - 1)) > 0) {
        len += (size_t)got;
        if (cap - len < 1024) buf = realloc(buf, cap *= 2);
    }
    close(fds[0]);
    buf[len] = '\0';
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (output)
        *output = buf;
    else
        free(buf);
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

const char *ct_test_bin(void) {
    const char *bin = getenv("CTRAIN_BIN");
    if (!bin || access(bin, X_OK) != 0) ct_test_skip("CTRAIN_BIN is not set to the built binary (run through make test)");
    return bin;
}

const char *ct_test_shared_data(void) {
    const char *dir = getenv("CTRAIN_SHARED");
    struct stat st;
    if (!dir || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        ct_test_skip("the test data is absent (CTRAIN_SHARED: make test unpacks tests/data into build/test-data)");
    return dir;
}

const char *ct_test_tmpdir(void) {
    if (!current_tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(current_tmpdir, sizeof current_tmpdir, "%s/ctrain-test-%s-%s-XXXXXX", base ? base : "/tmp",
                 current->suite, current->name);
        if (!mkdtemp(current_tmpdir)) {
            ct_test_fail(__FILE__, __LINE__, "cannot create a temporary folder: %s", strerror(errno));
            exit(1);
        }
    }
    return current_tmpdir;
}

const char *ct_test_path(const char *name) {
    static char paths[8][1200];
    static int next;
    char *path = paths[next++ % 8];
    snprintf(path, sizeof paths[0], "%s/%s", ct_test_tmpdir(), name);
    return path;
}

const char *ct_test_write(const char *name, const char *content) {
    const char *path = ct_test_path(name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(content, 1, strlen(content), f) != strlen(content)) {
        ct_test_fail(__FILE__, __LINE__, "cannot write %s", path);
        exit(1);
    }
    fclose(f);
    return path;
}

char *ct_test_read(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0, got;
    char *buf = malloc(cap);
    while ((got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len < 1024) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    buf[len] = '\0';
    if (size) *size = len;
    return buf;
}

static int compare_tests(const void *a, const void *b) {
    const TestCase *x = a, *y = b;
    int c = strcmp(x->suite, y->suite);
    if (c) return c;
    c = strcmp(x->file, y->file);
    if (c) return c;
    return x->line - y->line;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// One test's run: a child process, the pipe of its skip reason, and (with several jobs) the
// file that holds its output until it is printed in order.
typedef struct {
    const TestCase *t;
    pid_t pid;
    int reason_fd, out_fd;
    double start, seconds;
    int result;  // 0 passed, 1 failed, 2 skipped (reason in `reason`, without its newline)
    int done;
    char reason[1100];
    char *output;
} Run;

static void fail_run(Run *r, const char *what) {
    char line[1400];
    snprintf(line, sizeof line, "  FAIL %s.%s: %s: %s\n", r->t->suite, r->t->name, what, strerror(errno));
    r->output = strdup(line);
    r->result = 1;
    r->done = 1;
}

// Starts one test in a child process. With `capture`, its stdout and stderr go to a temporary
// file, printed when the test is reported (so tests that run at the same time do not interleave).
static void start_run(Run *r, int timeout_s, int capture) {
    fflush(stdout);
    r->out_fd = -1;
    r->start = now_seconds();
    int fds[2];
    if (pipe(fds) != 0) return fail_run(r, "cannot create a pipe");
    if (capture) {
        char path[600];
        const char *base = getenv("TMPDIR");
        snprintf(path, sizeof path, "%s/ctrain-test-output-XXXXXX", base ? base : "/tmp");
        r->out_fd = mkstemp(path);
        if (r->out_fd < 0) return fail_run(r, "cannot create a file for its output");
        unlink(path);
    }
    pid_t pid = fork();
    if (pid < 0) return fail_run(r, "cannot fork");
    if (pid == 0) {
        close(fds[0]);
        fcntl(fds[1], F_SETFD, FD_CLOEXEC);  // programs the test runs do not inherit it
        if (r->out_fd >= 0) {
            dup2(r->out_fd, 1);
            dup2(r->out_fd, 2);
            close(r->out_fd);
        }
        skip_fd = fds[1];
        current = r->t;
        alarm((unsigned)timeout_s);
        r->t->fn();
        fflush(stdout);
        if (!current_failed && current_tmpdir[0]) {
            remove_tmpdir();
        } else if (current_tmpdir[0]) {
            printf("  (files kept in %s)\n", current_tmpdir);
        }
        fflush(stdout);
        _exit(current_failed ? 1 : 0);
    }
    close(fds[1]);
    r->pid = pid;
    r->reason_fd = fds[0];
}

static char *read_all(int fd) {
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    ssize_t got;
    lseek(fd, 0, SEEK_SET);
    while ((got = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)got;
        if (cap - len < 1024) buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    return buf;
}

// The result of a run whose child has exited with `status`.
static void finish_run(Run *r, int status, int timeout_s) {
    r->seconds = now_seconds() - r->start;
    r->done = 1;
    // The reason is a short write made before the child exited; a process the test forked may
    // still hold the pipe open, so read what is there without waiting for its end.
    fcntl(r->reason_fd, F_SETFL, O_NONBLOCK);
    char buf[4096];
    ssize_t got = read(r->reason_fd, buf, sizeof buf - 1);
    close(r->reason_fd);
    buf[got > 0 ? got : 0] = '\0';
    if (got > 0 && buf[got - 1] == '\n') buf[got - 1] = '\0';
    const char *last = strrchr(buf, '\n');  // a forked helper's skip may come first: the test's is last
    snprintf(r->reason, sizeof r->reason, "%s", last ? last + 1 : buf);
    char verdict[600] = "";
    const TestCase *t = r->t;
    r->result = 1;
    if (WIFEXITED(status)) {
        int code = WEXITSTATUS(status);
        if (code == 0) r->result = 0;
        else if (code == EXIT_SKIP) r->result = 2;
        else if (code != 1)
            snprintf(verdict, sizeof verdict, "  FAIL %s.%s: the code under test exited with status %d\n", t->suite,
                     t->name, code);
    } else if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        if (sig == SIGALRM)
            snprintf(verdict, sizeof verdict, "  FAIL %s.%s: timed out after %d s\n", t->suite, t->name, timeout_s);
        else
            snprintf(verdict, sizeof verdict, "  FAIL %s.%s: crashed with signal %d (%s)\n", t->suite, t->name, sig,
                     strsignal(sig));
    }
    char *captured = r->out_fd >= 0 ? read_all(r->out_fd) : strdup("");
    if (r->out_fd >= 0) close(r->out_fd);
    r->output = malloc(strlen(captured) + strlen(verdict) + 1);
    strcpy(r->output, captured);
    strcat(r->output, verdict);
    free(captured);
}

// Skips grouped by reason: "no usable CUDA device" once with its count, not once per test.
typedef struct {
    char *reason, *first_test, suites[256];
    int count;
} SkipGroup;
static SkipGroup skip_groups[MAX_TESTS];
static int n_skip_groups;

static void record_skip(const TestCase *t, const char *reason) {
    SkipGroup *g = NULL;
    for (int i = 0; i < n_skip_groups && !g; i++)
        if (strcmp(skip_groups[i].reason, reason) == 0) g = &skip_groups[i];
    if (!g) {
        g = &skip_groups[n_skip_groups++];
        g->reason = strdup(reason);
        char name[512];
        snprintf(name, sizeof name, "%s.%s", t->suite, t->name);
        g->first_test = strdup(name);
    }
    g->count++;
    // the suites that gave this reason, each once (tests come sorted by suite)
    size_t len = strlen(g->suites), n = strlen(t->suite);
    const char *tail = len > n ? g->suites + len - n : g->suites;
    int same = len >= n && strcmp(tail, t->suite) == 0 && (len == n || tail[-1] == ' ');
    if (!same && len + n + 2 < sizeof g->suites)
        snprintf(g->suites + len, sizeof g->suites - len, "%s%s", len ? ", " : "", t->suite);
}

static void print_skips(void) {
    for (int i = 0; i < n_skip_groups; i++) {
        const SkipGroup *g = &skip_groups[i];
        if (g->count == 1)
            printf("  SKIP %s: %s\n", g->first_test, g->reason);
        else
            printf("  SKIP %d tests (%s): %s\n", g->count, g->suites, g->reason);
    }
}

static int selected(const TestCase *t, int n_filters, char **filters) {
    if (n_filters == 0) return 1;
    char full[256];
    snprintf(full, sizeof full, "%s.%s", t->suite, t->name);
    for (int i = 0; i < n_filters; i++) {
        const char *f = filters[i];
        if (f[0] == '^' ? strncmp(full, f + 1, strlen(f + 1)) == 0 : strstr(full, f) != NULL) return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    int include_long = 0, list = 0, n_filters = 0, jobs = 1;
    char *filters[64];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--long") == 0)
            include_long = 1;
        else if (strcmp(argv[i], "--list") == 0)
            list = 1;
        else if (strncmp(argv[i], "-j", 2) == 0 && atoi(argv[i] + 2) >= 1)
            jobs = atoi(argv[i] + 2) > 64 ? 64 : atoi(argv[i] + 2);
        else if (argv[i][0] == '-') {
            fprintf(stderr, "usage: ctrain_tests [--long] [--list] [-jN] [FILTER...]\n");
            return 2;
        } else if (n_filters < 64)
            filters[n_filters++] = argv[i];
    }
    qsort(tests, (size_t)n_tests, sizeof tests[0], compare_tests);
    int timeout_s = include_long ? 3600 : 600;
    int passed = 0, failed = 0, skipped = 0, long_left_out = 0;
    double start_all = now_seconds();
    static Run runs[MAX_TESTS];
    int n_runs = 0;
    for (int i = 0; i < n_tests; i++) {
        const TestCase *t = &tests[i];
        if (!selected(t, n_filters, filters)) continue;
        if (t->is_long && !include_long) {
            long_left_out++;
            continue;
        }
        if (list)
            printf("%s.%s%s\n", t->suite, t->name, t->is_long ? " (long)" : "");
        else
            runs[n_runs++] = (Run){.t = t};
    }
    // Up to `jobs` tests at a time; results are reported in the tests' order, a line per suite
    // (its time is the sum of its tests' times).
    int next_start = 0, next_report = 0, running = 0;
    int s_pass = 0, s_fail = 0, s_skip = 0;
    double s_seconds = 0;
    while (next_report < n_runs) {
        while (running < jobs && next_start < n_runs) {
            Run *r = &runs[next_start++];
            start_run(r, timeout_s, jobs > 1);
            if (!r->done) running++;
        }
        while (next_report < n_runs && runs[next_report].done) {
            Run *r = &runs[next_report++];
            fputs(r->output, stdout);
            if (r->result == 0) s_pass++;
            else if (r->result == 1) s_fail++;
            else {
                s_skip++;
                record_skip(r->t, r->reason);
            }
            s_seconds += r->seconds;
            if (next_report == n_runs || strcmp(runs[next_report].t->suite, r->t->suite) != 0) {
                printf("[%-12s] %3d ok%s%.0d%s%s%.0d%s  %.2f s\n", r->t->suite, s_pass, s_fail ? ", " : "", s_fail,
                       s_fail ? " FAILED" : "", s_skip ? ", " : "", s_skip, s_skip ? " skipped" : "", s_seconds);
                passed += s_pass;
                failed += s_fail;
                skipped += s_skip;
                s_pass = s_fail = s_skip = 0;
                s_seconds = 0;
            }
            fflush(stdout);
        }
        if (next_report == n_runs || running == 0) continue;
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno == EINTR) continue;
            perror("ctrain_tests: waitpid");
            return 2;
        }
        for (int k = next_report; k < next_start; k++)
            if (!runs[k].done && runs[k].pid == pid) {
                finish_run(&runs[k], status, timeout_s);
                running--;
                break;
            }
    }
    if (list) return 0;
    print_skips();
    if (long_left_out) printf("(%d heavy tests left out; make test-long runs them)\n", long_left_out);
    printf("total time %.1f s\n", now_seconds() - start_all);
    if (skipped)
        printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    else
        printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
