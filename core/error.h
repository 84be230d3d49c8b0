// Errors, in two kinds.
//
// A user's mistake (a bad file, option or value) is reported, not fatal: the function that
// finds it calls ct_error_set() with a one-line message naming the file, the place and the
// problem, and returns -1 (or NULL). Callers may add context with ct_error_prefix(); the CLI
// prints the message and exits 1. Tests read it back with ct_error_message().
//
// A broken invariant or an exhausted resource is fatal: CT_CHECK / CT_FATAL print file:line,
// what failed and a hint the user can act on, then exit(1) — or, in a multi-process job, what
// ct_fatal_set_context says: the line names the rank, and the whole job ends.
#pragma once
#include <stddef.h>

#define CT_ERROR_MAX 2048

_Noreturn void ct_fatal_at(const char *file, int line, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

// For multi-process jobs: `prefix` (copied; "rank 1 of 4") goes before every fatal message,
// and `end` (may be NULL) runs instead of exit(1) after it is printed, to end the other
// processes too (abort collectives, MPI_Abort); exit(1) follows if it returns.
void ct_fatal_set_context(const char *prefix, void (*end)(void));

#define CT_FATAL(hint, ...) ct_fatal_at(__FILE__, __LINE__, (hint), __VA_ARGS__)
#define CT_CHECK(cond, hint)                                                   \
    do {                                                                       \
        if (!(cond)) ct_fatal_at(__FILE__, __LINE__, (hint), "check failed: %s", #cond); \
    } while (0)

// Sets this thread's error message (printf-style) and returns -1.
int ct_error_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// Sets the message from errno: "<what>: <strerror(errno)>"; returns -1.
int ct_error_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// Puts context in front of the current message: prefix + message. Returns -1.
int ct_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// The current message ("" when none).
const char *ct_error_message(void);
void ct_error_clear(void);
