#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
