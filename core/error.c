#include "core/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char error_message[CT_ERROR_MAX];
static char fatal_prefix[64];
static void (*fatal_end)(void);

void ct_fatal_set_context(const char *prefix, void (*end)(void)) {
    snprintf(fatal_prefix, sizeof fatal_prefix, "%s", prefix ? prefix : "");
    fatal_end = end;
}

_Noreturn void ct_fatal_at(const char *file, int line, const char *hint, const char *fmt, ...) {
    fflush(stdout);
    fprintf(stderr, "ctrain: fatal error at %s:%d: ", file, line);
    if (fatal_prefix[0]) fprintf(stderr, "%s: ", fatal_prefix);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (hint && *hint) fprintf(stderr, "  hint: %s\n", hint);
    fflush(stderr);
    if (fatal_end) fatal_end();
    exit(1);
}

int ct_error_set(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_message, sizeof error_message, fmt, ap);
    va_end(ap);
    return -1;
}

int ct_error_errno(const char *fmt, ...) {
    int saved = errno;
    char what[CT_ERROR_MAX / 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(error_message, sizeof error_message, "%s: %s", what, strerror(saved));
    return -1;
}

int ct_error_prefix(const char *fmt, ...) {
    char prefix[CT_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    if (n < 0) return -1;
    char joined[CT_ERROR_MAX];
    snprintf(joined, sizeof joined, "%s%s", prefix, error_message);
    memcpy(error_message, joined, sizeof error_message);
    return -1;
}

const char *ct_error_message(void) { return error_message; }

void ct_error_clear(void) { error_message[0] = '\0'; }
