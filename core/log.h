// Logging and progress bars. Everything here writes to stderr, so stdout stays for results
// (token ids, JSON, generated text) that users pipe into other programs.
#pragma once
#include <stdint.h>
#include <stdio.h>

typedef enum { CT_LOG_QUIET = 0, CT_LOG_INFO = 1 } CtLogLevel;

void ct_log_set_level(CtLogLevel level);  // default CT_LOG_INFO; non-zero ranks set QUIET
CtLogLevel ct_log_level(void);
void ct_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));        // a line at INFO
void ct_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));       // always shown

// Human-readable numbers for logs: "1.23M", "12.3 MiB", "1:02:03".
void ct_format_count(char *buf, size_t size, double count);
void ct_format_bytes(char *buf, size_t size, double bytes);
void ct_format_duration(char *buf, size_t size, double seconds);

// A progress bar for long work. On a terminal it redraws one line in place (at most ~10
// times a second) with percent, rate and ETA; when stderr is not a terminal (logs, CI) it
// prints a plain line every `plain_interval` seconds instead, so logs stay readable.
// unit "B" shows bytes (MB/s); any other unit shows counts ("tokens/s").
typedef struct {
    char label[48];
    char unit[16];
    uint64_t total;  // 0 = unknown: no percent and no ETA
    uint64_t done;
    double start, last_draw;
    double plain_interval;
    int tty;
    int drawn;
    FILE *out;
} CtProgress;

void ct_progress_start(CtProgress *p, const char *label, uint64_t total, const char *unit);
void ct_progress_update(CtProgress *p, uint64_t done);  // done so far (absolute, not a delta)
void ct_progress_finish(CtProgress *p);                 // a final line with the totals
// The text of the current status, without drawing (used by the bar and by tests).
void ct_progress_format(const CtProgress *p, double now, char *buf, size_t size);
