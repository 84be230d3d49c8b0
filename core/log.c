#include "core/log.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/timer.h"

static CtLogLevel log_level = CT_LOG_INFO;

void ct_log_set_level(CtLogLevel level) { log_level = level; }
CtLogLevel ct_log_level(void) { return log_level; }

static void vlog(const char *prefix, const char *fmt, va_list ap) {
    char line[4096];
    vsnprintf(line, sizeof line, fmt, ap);
    fprintf(stderr, "%s%s\n", prefix, line);
}

void ct_log(const char *fmt, ...) {
    if (log_level < CT_LOG_INFO) return;
    va_list ap;
    va_start(ap, fmt);
    vlog("", fmt, ap);
    va_end(ap);
}

void ct_warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog("warning: ", fmt, ap);
    va_end(ap);
}

void ct_format_count(char *buf, size_t size, double count) {
    const char *suffix[] = {"", "k", "M", "G", "T"};
    int i = 0;
    while (fabs(count) >= 1000.0 && i < 4) {
        count /= 1000.0;
        i++;
    }
    if (i == 0)
        snprintf(buf, size, "%.0f", count);
    else
        snprintf(buf, size, "%.*f%s", fabs(count) < 10 ? 2 : fabs(count) < 100 ? 1 : 0, count, suffix[i]);
}

void ct_format_bytes(char *buf, size_t size, double bytes) {
    const char *suffix[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (fabs(bytes) >= 1024.0 && i < 4) {
        bytes /= 1024.0;
        i++;
    }
    if (i == 0)
        snprintf(buf, size, "%.0f B", bytes);
    else
        snprintf(buf, size, "%.1f %s", bytes, suffix[i]);
}

void ct_format_duration(char *buf, size_t size, double seconds) {
    if (!(seconds >= 0) || seconds > 1e8) {  // NaN, negative or absurd: unknown
        snprintf(buf, size, "?");
        return;
    }
    long s = (long)(seconds + 0.5);
    if (s >= 3600)
        snprintf(buf, size, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
    else
        snprintf(buf, size, "%ld:%02ld", s / 60, s % 60);
}

void ct_progress_start(CtProgress *p, const char *label, uint64_t total, const char *unit) {
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label);
    snprintf(p->unit, sizeof p->unit, "%s", unit ? unit : "");
    p->total = total;
    p->out = stderr;
    p->tty = isatty(fileno(stderr));
    p->start = p->last_draw = ct_time_now();
    p->plain_interval = 10.0;
}

static void format_amount(const CtProgress *p, double amount, char *buf, size_t size) {
    if (strcmp(p->unit, "B") == 0)
        ct_format_bytes(buf, size, amount);
    else
        ct_format_count(buf, size, amount);
}

void ct_progress_format(const CtProgress *p, double now, char *buf, size_t size) {
    double elapsed = now - p->start;
    double rate = elapsed > 0 ? (double)p->done / elapsed : 0;
    char done_s[32], total_s[32], rate_s[32], eta_s[32], elapsed_s[32];
    format_amount(p, (double)p->done, done_s, sizeof done_s);
    format_amount(p, rate, rate_s, sizeof rate_s);
    ct_format_duration(elapsed_s, sizeof elapsed_s, elapsed);
    const char *space = strcmp(p->unit, "B") == 0 || !p->unit[0] ? "" : " ";
    const char *unit = strcmp(p->unit, "B") == 0 ? "" : p->unit;
    if (p->total > 0) {
        double frac = (double)p->done / (double)p->total;
        if (frac > 1) frac = 1;
        char bar[21];
        int filled = (int)(frac * 20);
        for (int i = 0; i < 20; i++) bar[i] = i < filled ? '#' : '.';
        bar[20] = '\0';
        format_amount(p, (double)p->total, total_s, sizeof total_s);
        double eta = rate > 0 ? (double)(p->total - (p->done < p->total ? p->done : p->total)) / rate : NAN;
        ct_format_duration(eta_s, sizeof eta_s, eta);
        snprintf(buf, size, "%s [%s] %3.0f%% %s/%s%s%s | %s%s%s/s | %s elapsed, ETA %s", p->label, bar,
                 100 * frac, done_s, total_s, space, unit, rate_s, space, unit, elapsed_s, eta_s);
    } else {
        snprintf(buf, size, "%s %s%s%s | %s%s%s/s | %s elapsed", p->label, done_s, space, unit, rate_s, space,
                 unit, elapsed_s);
    }
}

void ct_progress_update(CtProgress *p, uint64_t done) {
    p->done = done;
    if (ct_log_level() < CT_LOG_INFO) return;
    double now = ct_time_now();
    double interval = p->tty ? 0.1 : p->plain_interval;
    if (now - p->last_draw < interval) return;
    p->last_draw = now;
    char line[256];
    ct_progress_format(p, now, line, sizeof line);
    if (p->tty)
        fprintf(p->out, "\r%s\033[K", line);
    else
        fprintf(p->out, "%s\n", line);
    fflush(p->out);
    p->drawn = 1;
}

void ct_progress_finish(CtProgress *p) {
    if (ct_log_level() < CT_LOG_INFO) return;
    char line[256];
    ct_progress_format(p, ct_time_now(), line, sizeof line);
    if (p->tty)
        fprintf(p->out, "\r%s\033[K\n", line);
    else
        fprintf(p->out, "%s\n", line);
    fflush(p->out);
}
