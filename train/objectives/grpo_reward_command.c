#include "train/objectives/grpo_reward_command.h"

#include <cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/input/utf8.h"

// The most a command may print (a command that never stops printing is stopped here).
#define MAX_OUTPUT ((size_t)64 << 20)

// s as a JSON string, quotes included: '"', '\\' and control characters escaped, each byte that
// does not begin a valid UTF-8 sequence written as U+FFFD.
static void write_json_string(FILE *f, const char *s) {
    const size_t len = strlen(s);
    fputc('"', f);
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        const size_t k = ct_utf8_decode((const uint8_t *)s + i, len - i, &cp);
        if (cp == CT_UTF8_INVALID) fputs("\xEF\xBF\xBD", f);
        else if (cp == '"') fputs("\\\"", f);
        else if (cp == '\\') fputs("\\\\", f);
        else if (cp == '\n') fputs("\\n", f);
        else if (cp == '\r') fputs("\\r", f);
        else if (cp == '\t') fputs("\\t", f);
        else if (cp < 0x20) fprintf(f, "\\u%04x", (unsigned)cp);
        else fwrite(s + i, 1, k, f);
        i += k;
    }
    fputc('"', f);
}

int ct_reward_command_write_line(FILE *f, const CtRewardInput *in) {
    const char *fields = in->fields && *in->fields ? in->fields : "{}";
    cJSON *parsed = cJSON_Parse(fields);
    const int is_object = cJSON_IsObject(parsed);
    cJSON_Delete(parsed);
    if (!is_object) return ct_error_set("its prompt's fields are not a JSON object");
    fputs("{\"prompt\": ", f);
    write_json_string(f, in->prompt ? in->prompt : "");
    fputs(", \"completion\": ", f);
    write_json_string(f, in->completion ? in->completion : "");
    fputs(", \"fields\": ", f);
    // Valid JSON holds a raw line break only as white space between tokens: a space keeps it one line.
    for (const char *p = fields; *p; p++) fputc(*p == '\n' || *p == '\r' ? ' ' : *p, f);
    fputs("}\n", f);
    return 0;
}

// The command as error messages name it: cut at 60 bytes.
static const char *shown(const char *command, char *buf, size_t size) {
    snprintf(buf, size, "%.60s%s", command, strlen(command) > 60 ? "..." : "");
    return buf;
}

// The completions' lines in a temporary file already removed from its folder, at offset 0.
// The descriptor, or -1 + error.
static int write_input(const CtRewardInput *in, int n) {
    const char *dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char path[4096];
    snprintf(path, sizeof path, "%s/ctrain-reward-XXXXXX", dir);
    const int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0) return ct_error_errno("cannot create its input file in %s", dir);
    unlink(path);
    FILE *f = fdopen(dup(fd), "w");
    if (!f) {
        close(fd);
        return ct_error_errno("cannot write its input file");
    }
    int rc = 0;
    for (int j = 0; j < n && rc == 0; j++)
        if (ct_reward_command_write_line(f, &in[j]) != 0) rc = ct_error_prefix("completion %d: ", j);
    if (fclose(f) != 0 && rc == 0) rc = ct_error_errno("cannot write its input file in %s", dir);
    if (rc == 0 && lseek(fd, 0, SEEK_SET) != 0) rc = ct_error_errno("cannot rewind its input file");
    if (rc != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

// Starts `sh -c command` with stdin from in_fd and stdout into a pipe; *out_fd gets the pipe's
// reading end. The child's pid, or -1 + error.
static pid_t start(const char *command, int in_fd, int *out_fd) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return ct_error_errno("cannot start it (pipe)");
    const pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return ct_error_errno("cannot start it (fork)");
    }
    if (pid == 0) {  // the child: only async-signal-safe calls until exec
        if (dup2(in_fd, 0) < 0 || dup2(p[1], 1) < 0) _exit(127);
        execl("/bin/sh", "sh", "-c", command, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    *out_fd = p[0];
    return pid;
}

// Everything the command prints, NUL-terminated, into *text. 0, or -1 + error (too much).
static int read_all(int fd, char **text, size_t *len) {
    size_t cap = 4096, n = 0;
    char *buf = ct_alloc(cap);
    for (;;) {
        if (n + 1 == cap) {
            if (cap > MAX_OUTPUT) {
                ct_free(buf);
                return ct_error_set("it printed more than %zu MiB", MAX_OUTPUT >> 20);
            }
            buf = ct_realloc(buf, cap *= 2);
        }
        const ssize_t got = read(fd, buf + n, cap - 1 - n);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            ct_free(buf);
            return ct_error_errno("cannot read its output");
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}

// The child's end: 0 when it exited with status 0, else -1 + error saying how it ended.
static int wait_for(pid_t pid) {
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return ct_error_errno("cannot wait for it");
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    if (WIFSIGNALED(status))
        return ct_error_set("it was killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    const int code = WEXITSTATUS(status);
    return ct_error_set("it exited with status %d%s", code,
                        code == 127 ? " (the shell could not find or start it)"
                        : code == 126 ? " (the shell could not execute it)" : "");
}

// The lines of text[0..len): a final line without its newline counts, nothing after the last
// newline does not. Returns their count; starts[k] their starts (each line's '\n' becomes '\0').
static int split_lines(char *text, size_t len, char **starts, int max) {
    int count = 0;
    for (size_t i = 0; i < len;) {
        char *nl = memchr(text + i, '\n', len - i);
        if (count < max) starts[count] = text + i;
        count++;
        if (!nl) break;
        *nl = '\0';
        i = (size_t)(nl - text) + 1;
    }
    return count;
}

// One line as one finite number, white space around it allowed. 0, or -1 + error quoting it.
static int parse_number(char *line, int k, double *out) {
    char *s = line, *end;
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    const double v = n ? strtod(s, &end) : NAN;
    if (n == 0 || end != s + n || !isfinite(v))
        return ct_error_set("line %d of its output is not a finite number: '%.40s%s'", k + 1, s, n > 40 ? "..." : "");
    *out = v;
    return 0;
}

// The output's n numbers into out. 0, or -1 + error.
static int parse_output(char *text, size_t len, int n, double *out) {
    char **starts = ct_alloc(sizeof(char *) * (size_t)(n + 1));
    const int lines = split_lines(text, len, starts, n + 1);
    int rc = lines != n ? ct_error_set("it printed %d line%s for %d completion%s (one number per completion, in order)",
                                       lines, lines == 1 ? "" : "s", n, n == 1 ? "" : "s")
                        : 0;
    for (int k = 0; k < n && rc == 0; k++) rc = parse_number(starts[k], k, &out[k]);
    ct_free(starts);
    return rc;
}

int ct_reward_command_run(const char *command, const CtRewardInput *in, int n, double *out) {
    char name[80];
    const int in_fd = write_input(in, n);
    if (in_fd < 0) return ct_error_prefix("grpo.reward_command '%s': ", shown(command, name, sizeof name));
    int out_fd = -1;
    const pid_t pid = start(command, in_fd, &out_fd);
    close(in_fd);
    if (pid < 0) return ct_error_prefix("grpo.reward_command '%s': ", shown(command, name, sizeof name));
    char *text = NULL;
    size_t len = 0;
    int rc = read_all(out_fd, &text, &len);
    close(out_fd);
    if (rc != 0) {  // its output is already the error: stop it, and reap it quietly
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    } else {
        rc = wait_for(pid);
    }
    if (rc == 0) rc = parse_output(text, len, n, out);
    ct_free(text);
    return rc == 0 ? 0 : ct_error_prefix("grpo.reward_command '%s': ", shown(command, name, sizeof name));
}
