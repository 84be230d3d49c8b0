#include <string.h>

#include "core/log.h"
#include "tests/test.h"

TEST(core, number_formats) {
    char buf[64];
    ct_format_count(buf, sizeof buf, 999);
    CHECK_STR_EQ(buf, "999");
    ct_format_count(buf, sizeof buf, 1234);
    CHECK_STR_EQ(buf, "1.23k");
    ct_format_count(buf, sizeof buf, 45600000);
    CHECK_STR_EQ(buf, "45.6M");
    ct_format_count(buf, sizeof buf, 124e9);
    CHECK_STR_EQ(buf, "124G");
    ct_format_bytes(buf, sizeof buf, 512);
    CHECK_STR_EQ(buf, "512 B");
    ct_format_bytes(buf, sizeof buf, 3.5 * 1024 * 1024);
    CHECK_STR_EQ(buf, "3.5 MiB");
    ct_format_duration(buf, sizeof buf, 65);
    CHECK_STR_EQ(buf, "1:05");
    ct_format_duration(buf, sizeof buf, 3723);
    CHECK_STR_EQ(buf, "1:02:03");
    ct_format_duration(buf, sizeof buf, -1);
    CHECK_STR_EQ(buf, "?");
}

TEST(core, progress_line_shows_rate_percent_and_eta) {
    CtProgress p;
    ct_progress_start(&p, "shard", 1000, "tokens");
    p.done = 250;
    char line[256];
    ct_progress_format(&p, p.start + 5.0, line, sizeof line);
    // 250 tokens in 5 s: 50 tokens/s, 750 left -> 15 s.
    CHECK_CONTAINS(line, "shard [#####...............]  25% 250/1.00k tokens");
    CHECK_CONTAINS(line, "50 tokens/s");
    CHECK_CONTAINS(line, "0:05 elapsed, ETA 0:15");

    ct_progress_start(&p, "read", 0, "B");
    p.done = 10 * 1024 * 1024;
    ct_progress_format(&p, p.start + 2.0, line, sizeof line);
    CHECK_CONTAINS(line, "read 10.0 MiB | 5.0 MiB/s | 0:02 elapsed");
    CHECK(!strstr(line, "ETA"));
}

static void progress_to_pipe(void *unused) {
    CtProgress p;
    ct_progress_start(&p, "work", 10, "items");
    p.plain_interval = 0;  // a line per update when not a terminal
    for (int i = 1; i <= 10; i++) ct_progress_update(&p, (uint64_t)i);
    ct_progress_finish(&p);
}

TEST(core, progress_prints_plain_lines_when_not_a_terminal) {
    char *out = NULL;
    CHECK_EQ_INT(ct_test_fork(progress_to_pipe, NULL, &out), 0);
    CHECK(!strchr(out, '\r'));  // no in-place redraws in a log file
    CHECK(!strstr(out, "\033["));
    CHECK_CONTAINS(out, "work [####################] 100% 10/10 items");
    free(out);
}
