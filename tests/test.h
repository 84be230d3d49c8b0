// The test harness. A test is a void function declared with TEST(suite, name) in any file of
// tests/; it registers itself, so adding a test file needs no list to edit. TEST_LONG marks a
// heavy case that runs only under `make test-long`.
//
// Each test runs in its own process: a crash or a call to exit() in the code under test is a
// failure of that test alone, and the others still run. `make test` runs TEST_JOBS tests at a
// time (the machine's cores): a test owns its temporary folder (ct_test_tmpdir) and must not
// write anywhere else, nor depend on the timing of others. Inside a test:
//   CHECK(cond), CHECK_EQ_INT(a, b), CHECK_NEAR(a, b, tol), CHECK_STR_EQ(a, b),
//   CHECK_CONTAINS(haystack, needle)      record a failure and return from the test
//   SKIP("why")                           end the test as skipped, saying why (the runner lists
//                                         each distinct reason once, with its count and suites)
// Helpers run the ctrain binary, make temporary folders and write files.
//
// Reference tests compare with a real client (python3 with torch, transformers, peft, trl,
// tokenizers, tiktoken or gguf: tests/ref/*.py) and SKIP with a message where it is absent.
// `make test-ref` runs them in a virtual environment that has every client, where a skip is a
// failure (CTRAIN_REQUIRE_REF=1). Which tests are reference tests: every test of a suite whose
// name ends in "ref" (ref, hf_ref, lora_ref, dpo_ref, eval_ref, ...), every test of suite gguf,
// and the few listed in REF_TESTS in the Makefile. A new reference test goes in such a suite (or
// into REF_TESTS); a reference test that needs a GPU goes in suite cuda, which test-ref leaves out.
#pragma once
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*CtTestFn)(void);
void ct_test_register(const char *suite, const char *name, CtTestFn fn, int is_long, const char *file, int line);
void ct_test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
_Noreturn void ct_test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int ct_test_failed(void);  // this test has recorded a failure

#define CT_TEST_DEFINE(suite, name, is_long)                                                  \
    static void test_##suite##__##name(void);                                                 \
    __attribute__((constructor)) static void register_##suite##__##name(void) {               \
        ct_test_register(#suite, #name, test_##suite##__##name, is_long, __FILE__, __LINE__); \
    }                                                                                         \
    static void test_##suite##__##name(void)
#define TEST(suite, name) CT_TEST_DEFINE(suite, name, 0)
#define TEST_LONG(suite, name) CT_TEST_DEFINE(suite, name, 1)

#define SKIP(...) ct_test_skip(__VA_ARGS__)
#define CHECK(cond)                                               \
    do {                                                          \
        if (!(cond)) {                                            \
            ct_test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond); \
            return;                                               \
        }                                                         \
    } while (0)
#define CHECK_MSG(cond, ...)                           \
    do {                                               \
        if (!(cond)) {                                 \
            ct_test_fail(__FILE__, __LINE__, __VA_ARGS__); \
            return;                                    \
        }                                              \
    } while (0)
#define CHECK_EQ_INT(a, b)                                                                          \
    do {                                                                                            \
        long long a_ = (long long)(a), b_ = (long long)(b);                                         \
        if (a_ != b_) {                                                                             \
            ct_test_fail(__FILE__, __LINE__, "%s == %s: got %lld and %lld", #a, #b, a_, b_);        \
            return;                                                                                 \
        }                                                                                           \
    } while (0)
#define CHECK_NEAR(a, b, tol)                                                                       \
    do {                                                                                            \
        double a_ = (double)(a), b_ = (double)(b), t_ = (double)(tol);                              \
        if (!(a_ - b_ <= t_ && b_ - a_ <= t_)) {                                                    \
            ct_test_fail(__FILE__, __LINE__, "%s ~ %s: got %.9g and %.9g (tolerance %g)", #a, #b, a_, b_, t_); \
            return;                                                                                 \
        }                                                                                           \
    } while (0)
#define CHECK_STR_EQ(a, b)                                                                          \
    do {                                                                                            \
        const char *a_ = (a), *b_ = (b);                                                            \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                                    \
            ct_test_fail(__FILE__, __LINE__, "%s == %s: got \"%s\" and \"%s\"", #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
            return;                                                                                 \
        }                                                                                           \
    } while (0)
#define CHECK_CONTAINS(haystack, needle)                                                            \
    do {                                                                                            \
        const char *h_ = (haystack), *n_ = (needle);                                                \
        if (!h_ || !strstr(h_, n_)) {                                                               \
            ct_test_fail(__FILE__, __LINE__, "expected \"%s\" in: %s", n_, h_ ? h_ : "(null)");     \
            return;                                                                                 \
        }                                                                                           \
    } while (0)

// Runs `command` through /bin/sh with stdout and stderr captured together. Returns its exit
// status (128+N when killed by signal N); *output (may be NULL) gets what it printed, freed
// with free().
int ct_test_run(const char *command, char **output);
// Runs fn(arg) in a child process with its stderr and stdout captured; returns the child's
// exit status (128+N when killed by signal N). For checking fatal errors and exit paths.
int ct_test_fork(void (*fn)(void *), void *arg, char **output);
// The ctrain binary (CTRAIN_BIN); skips the test when it is not set.
const char *ct_test_bin(void);
// The test data in ../shared/data's layout (CTRAIN_SHARED): make test unpacks tests/data/ into
// build/test-data and points there, so every clone has it; skips with a message when unset.
const char *ct_test_shared_data(void);
// A fresh folder for this test, removed when the test passes.
const char *ct_test_tmpdir(void);
// tmpdir/name (static storage, a ring of 8: the last 8 results stay valid).
const char *ct_test_path(const char *name);
// Writes `content` to tmpdir/name and returns the path (static storage per call ring).
const char *ct_test_write(const char *name, const char *content);
// Reads a whole file; NULL when it cannot. Free with free().
char *ct_test_read(const char *path, size_t *size);
