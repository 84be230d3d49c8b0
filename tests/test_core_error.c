#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "tests/test.h"

TEST(core, error_messages_compose) {
    ct_error_clear();
    CHECK_STR_EQ(ct_error_message(), "");
    CHECK_EQ_INT(ct_error_set("line %d: bad token '%s'", 3, "x"), -1);
    CHECK_STR_EQ(ct_error_message(), "line 3: bad token 'x'");
    CHECK_EQ_INT(ct_error_prefix("data.jsonl:"), -1);
    CHECK_STR_EQ(ct_error_message(), "data.jsonl:line 3: bad token 'x'");
    errno = ENOENT;
    ct_error_errno("%s: cannot open", "missing.txt");
    CHECK_STR_EQ(ct_error_message(), "missing.txt: cannot open: No such file or directory");
}

TEST(core, error_messages_are_truncated_not_overflowed) {
    char big[CT_ERROR_MAX * 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ct_error_set("%s", big);
    CHECK_EQ_INT(strlen(ct_error_message()), CT_ERROR_MAX - 1);
    ct_error_prefix("%s", big);
    CHECK_EQ_INT(strlen(ct_error_message()), CT_ERROR_MAX - 1);
}

static void failing_check(void *unused) {
    int tokens = 0;
    CT_CHECK(tokens > 0, "feed the loader at least one shard");
}

TEST(core, fatal_check_names_place_condition_and_hint) {
    char *out = NULL;
    CHECK_EQ_INT(ct_test_fork(failing_check, NULL, &out), 1);
    CHECK_CONTAINS(out, "tests/test_core_error.c:");
    CHECK_CONTAINS(out, "check failed: tokens > 0");
    CHECK_CONTAINS(out, "hint: feed the loader at least one shard");
    free(out);
}

// A multi-process job's fatal error: the line names the rank and the job's own ending runs.
static void end_the_job(void) { _exit(7); }
static void failing_rank(void *unused) {
    ct_fatal_set_context("rank 2 of 4", end_the_job);
    CT_FATAL("look at rank 2's input", "shard %d is empty", 5);
}

TEST(core, fatal_errors_name_the_rank_and_end_the_job) {
    char *out = NULL;
    CHECK_EQ_INT(ct_test_fork(failing_rank, NULL, &out), 7);
    CHECK_CONTAINS(out, ": rank 2 of 4: shard 5 is empty");
    CHECK_CONTAINS(out, "hint: look at rank 2's input");
    free(out);
}

#include "core/checksum.h"

TEST(core, checksums_match_known_values) {
    // The CRC-32 check value of "123456789" (as zlib's crc32) and FNV-1a 64 test vectors.
    CHECK(ct_crc32("123456789", 9) == 0xCBF43926u);
    CHECK(ct_crc32("", 0) == 0);
    uint32_t running = ct_crc32_update(0, "1234", 4);
    CHECK(ct_crc32_update(running, "56789", 5) == 0xCBF43926u);
    CHECK(ct_fnv1a64("", 0) == 0xcbf29ce484222325ull);
    CHECK(ct_fnv1a64("a", 1) == 0xaf63dc4c8601ec8cull);
    CHECK(ct_fnv1a64("foobar", 6) == 0x85944171f73967e8ull);
    char long_text[1000];
    for (int i = 0; i < 1000; i++) long_text[i] = (char)(i * 7);
    // slicing-by-8 and the bytewise loop agree on every length and alignment
    for (int start = 0; start < 9; start++) {
        uint32_t bytewise = 0;
        for (int i = start; i < 1000; i++) bytewise = ct_crc32_update(bytewise, long_text + i, 1);
        CHECK(ct_crc32(long_text + start, (size_t)(1000 - start)) == bytewise);
    }
}
