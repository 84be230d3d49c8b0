#include "train/loop/metrics.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "data/input/read_file.h"

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = ct_alloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static void add_point(CtCurvePoint **pts, int *n, int *cap, double tokens, double loss) {
    if (!isfinite(loss)) return;
    if (*n == *cap) *pts = ct_realloc(*pts, sizeof(CtCurvePoint) * (size_t)(*cap = *cap ? 2 * *cap : 1024));
    (*pts)[(*n)++] = (CtCurvePoint){tokens, loss};
}

// Depth k's point (k = 1..): of the train curve (val 0) or the validation one (val 1).
static void add_depth_point(CtDepthCurves *d, int val, int k, double tokens, double loss) {
    if (k < 1 || k > CT_MODEL_MAX_MTP_DEPTH) return;
    if (val)
        add_point(&d->val[k - 1], &d->n_val[k - 1], &d->cap_val[k - 1], tokens, loss);
    else
        add_point(&d->train[k - 1], &d->n_train[k - 1], &d->cap_train[k - 1], tokens, loss);
    if (isfinite(loss) && k > d->depth) d->depth = k;
}

// The depth losses of a metrics line ("mtp_loss/k" or "val_mtp_loss/k") into the curves.
static void reload_depths(CtDepthCurves *d, const cJSON *o, double tokens) {
    for (int val = 0; val <= 1; val++)
        for (int k = 1; k <= CT_MODEL_MAX_MTP_DEPTH; k++) {
            char key[32];
            snprintf(key, sizeof key, "%smtp_loss/%d", val ? "val_" : "", k);
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
            if (cJSON_IsNumber(v)) add_depth_point(d, val, k, tokens, v->valuedouble);
        }
}

// Keeps the lines of steps <= resume_step and reloads the curves from them.
static int rewind_file(CtMetrics *m, int64_t resume_step) {
    size_t size;
    char *text = ct_read_whole_file(m->jsonl_path, &size);
    if (!text) return 0;  // no earlier metrics
    CtAtomicFile out;
    if (ct_atomic_open(&out, m->jsonl_path) != 0) {
        ct_free(text);
        return -1;
    }
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        cJSON *o = cJSON_Parse(line);
        const cJSON *step = cJSON_GetObjectItemCaseSensitive(o, "step");
        if (cJSON_IsNumber(step) && step->valuedouble <= (double)resume_step) {
            fprintf(out.fp, "%s\n", line);
            const cJSON *tokens = cJSON_GetObjectItemCaseSensitive(o, "tokens");
            const cJSON *loss = cJSON_GetObjectItemCaseSensitive(o, "loss");
            const cJSON *val = cJSON_GetObjectItemCaseSensitive(o, "val_loss");
            double tk = cJSON_IsNumber(tokens) ? tokens->valuedouble : 0;
            if (cJSON_IsNumber(loss)) add_point(&m->train, &m->n_train, &m->cap_train, tk, loss->valuedouble);
            if (cJSON_IsNumber(val)) add_point(&m->val, &m->n_val, &m->cap_val, tk, val->valuedouble);
            reload_depths(&m->depths, o, tk);
        }
        cJSON_Delete(o);
    }
    ct_free(text);
    return ct_atomic_commit(&out);
}

int ct_metrics_open(CtMetrics *m, const char *out_dir, int64_t resume_step, const char *title) {
    memset(m, 0, sizeof *m);
    m->fd = -1;
    m->jsonl_path = join(out_dir, "metrics.jsonl");
    m->svg_path = join(out_dir, "loss.svg");
    snprintf(m->title, sizeof m->title, "%s", title);
    if (resume_step >= 0 && rewind_file(m, resume_step) != 0) return -1;
    m->fd = open(m->jsonl_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (resume_step >= 0 ? 0 : O_TRUNC), 0644);
    if (m->fd < 0) return ct_error_errno("%s: cannot open for writing", m->jsonl_path);
    return 0;
}

void ct_metrics_close(CtMetrics *m) {
    if (m->fd >= 0) close(m->fd);
    ct_free(m->jsonl_path);
    ct_free(m->svg_path);
    ct_free(m->train);
    ct_free(m->val);
    for (int k = 0; k < CT_MODEL_MAX_MTP_DEPTH; k++) {
        ct_free(m->depths.train[k]);
        ct_free(m->depths.val[k]);
    }
    memset(m, 0, sizeof *m);
}

// A line being built: it grows as needed (an MoE model's expert loads take a number per layer
// and expert).
typedef struct {
    char *text;
    size_t len, cap;
} Line;

static void add(Line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(Line *l, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = l->cap ? vsnprintf(l->text + l->len, l->cap - l->len, fmt, ap) : -1;
        va_end(ap);
        if (l->cap && n >= 0 && (size_t)n < l->cap - l->len) {
            l->len += (size_t)n;
            return;
        }
        l->cap = 2 * l->cap + (n > 0 ? (size_t)n : 0) + 1024;
        l->text = ct_realloc(l->text, l->cap);
    }
}

// JSON has no NaN or infinity: those become null.
static void add_number(Line *l, const char *key, double v) {
    if (isfinite(v))
        add(l, ", \"%s\": %.9g", key, v);
    else
        add(l, ", \"%s\": null", key);
}

// A JSON array of n numbers (to 6 digits: fractions and ratios, where 9 would only lengthen the line).
static void add_array(Line *l, const double *v, int n) {
    add(l, "[");
    for (int i = 0; i < n; i++) {
        if (isfinite(v[i]))
            add(l, "%s%.6g", i ? ", " : "", v[i]);
        else
            add(l, "%snull", i ? ", " : "");
    }
    add(l, "]");
}

static int record_failure(CtMetrics *m, const char *what, int err) {
    m->failed = 1;
    snprintf(m->failure, sizeof m->failure, "%s: %s: %s", m->jsonl_path, what, strerror(err));
    return -1;
}

// Appends the line whole, or cuts what went out of it back off the file.
static int write_line_text(CtMetrics *m, Line *l, int64_t step) {
    if (m->failed) return -1;
    add(l, "}\n");
    struct stat st;
    if (fstat(m->fd, &st) != 0) return record_failure(m, "cannot append", errno);
    size_t done = 0;
    while (done < l->len) {
        ssize_t n = write(m->fd, l->text + done, l->len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int err = n < 0 ? errno : EIO;
            char what[128];
            int cut = ftruncate(m->fd, st.st_size) == 0;  // no half line: the file ends with the last whole one
            snprintf(what, sizeof what, "cannot append the line of step %lld%s", (long long)step,
                     cut ? "" : " (and cannot cut its start back off)");
            return record_failure(m, what, err);
        }
        done += (size_t)n;
    }
    return 0;
}

static int write_line(CtMetrics *m, Line *l, int64_t step) {
    int rc = write_line_text(m, l, step);
    ct_free(l->text);
    return rc;
}

// An MoE model's routing over the step (train/loop/moe_step.h).
static void add_moe(Line *l, const CtMoeStep *moe) {
    add_number(l, "aux_loss", moe->aux_loss);
    add_number(l, "router_z_loss", moe->router_z_loss);
    add(l, ", \"expert_load\": [");
    for (int i = 0; i < moe->n_layers; i++) {
        if (i) add(l, ", ");
        add_array(l, moe->load + (size_t)i * moe->E, moe->E);
    }
    add(l, "], \"expert_load_max_over_mean\": ");
    add_array(l, moe->max_over_mean, moe->n_layers);
    add_number(l, "moe_imbalance", moe->imbalance);
}

int ct_metrics_train(CtMetrics *m, int64_t step, int64_t tokens, double loss, double lr, double grad_norm,
                     double tokens_per_s, double mfu, double elapsed_s, const CtMoeStep *moe, const double *mtp_loss,
                     int mtp_depth) {
    Line l = {0};
    add(&l, "{\"kind\": \"train\", \"step\": %lld, \"tokens\": %lld", (long long)step, (long long)tokens);
    add_number(&l, "loss", loss);
    for (int k = 0; k < mtp_depth; k++) {
        char key[32];
        snprintf(key, sizeof key, "mtp_loss/%d", k + 1);
        add_number(&l, key, mtp_loss[k]);
    }
    add_number(&l, "lr", lr);
    add_number(&l, "grad_norm", grad_norm);
    if (moe && moe->n_layers) add_moe(&l, moe);  // what the step computed, before the timings
    add_number(&l, "tokens_per_s", tokens_per_s);
    add_number(&l, "mfu", mfu);
    add_number(&l, "elapsed_s", elapsed_s);
    if (write_line(m, &l, step) != 0) return -1;
    add_point(&m->train, &m->n_train, &m->cap_train, (double)tokens, loss);
    for (int k = 0; k < mtp_depth; k++) add_depth_point(&m->depths, 0, k + 1, (double)tokens, mtp_loss[k]);
    return 0;
}

int ct_metrics_eval(CtMetrics *m, int64_t step, int64_t tokens, double val_loss, int with_perplexity,
                    const double *val_mtp_loss, int mtp_depth) {
    Line l = {0};
    add(&l, "{\"kind\": \"eval\", \"step\": %lld, \"tokens\": %lld", (long long)step, (long long)tokens);
    add_number(&l, "val_loss", val_loss);
    if (with_perplexity) add_number(&l, "val_ppl", exp(val_loss));
    for (int k = 0; k < mtp_depth; k++) {
        char key[32];
        snprintf(key, sizeof key, "val_mtp_loss/%d", k + 1);
        add_number(&l, key, val_mtp_loss[k]);
    }
    if (write_line(m, &l, step) != 0) return -1;
    add_point(&m->val, &m->n_val, &m->cap_val, (double)tokens, val_loss);
    for (int k = 0; k < mtp_depth; k++) add_depth_point(&m->depths, 1, k + 1, (double)tokens, val_mtp_loss[k]);
    return 0;
}

int ct_metrics_row(CtMetrics *m, int64_t step, int64_t tokens, const CtMetricRow *row) {
    Line l = {0};
    add(&l, "{\"kind\": \"%s\", \"step\": %lld, \"tokens\": %lld", row->kind, (long long)step, (long long)tokens);
    for (int i = 0; i < row->n; i++) add_number(&l, row->names[i], row->values[i]);
    return write_line(m, &l, step);
}

int ct_metrics_exact_match(CtMetrics *m, int64_t step, int64_t tokens, double exact_match) {
    CtMetricRow row = {"eval", 1, {"exact_match"}, {exact_match}};
    return ct_metrics_row(m, step, tokens, &row);
}

// ---- the plot ----

typedef struct {
    char *buf;
    size_t len, cap;
} Text;

static void put(Text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(Text *t, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        t->cap = t->cap * 2 + (size_t)(n > 0 ? n : 0) + 256;
        t->buf = ct_realloc(t->buf, t->cap);
    }
}

// A "nice" tick step for a range (1, 2 or 5 times a power of ten).
static double tick_step(double range, int ticks) {
    double raw = range / ticks, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

static void format_tokens(char *buf, size_t size, double v) {
    if (v >= 1e9) snprintf(buf, size, "%gB", v / 1e9);
    else if (v >= 1e6) snprintf(buf, size, "%gM", v / 1e6);
    else if (v >= 1e3) snprintf(buf, size, "%gk", v / 1e3);
    else snprintf(buf, size, "%g", v);
}

// Widens [x_max], [y_min, y_max] to hold the curve's points.
static void extend_range(const CtCurvePoint *p, int n, double *x_max, double *y_min, double *y_max) {
    for (int i = 0; i < n; i++) {
        if (p[i].tokens > *x_max) *x_max = p[i].tokens;
        *y_min = fmin(*y_min, p[i].loss);
        *y_max = fmax(*y_max, p[i].loss);
    }
}

// One colour per multi-token prediction depth (the main curves keep blue and red).
static const char *const DEPTH_COLOURS[CT_MODEL_MAX_MTP_DEPTH] = {"#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
                                                                  "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"};

char *ct_loss_svg(const CtCurvePoint *train, int n_train, const CtCurvePoint *val, int n_val,
                  const CtDepthCurves *depths, const char *title) {
    const double W = 800, H = 450, left = 70, right = 20, top = 40, bottom = 50;
    const int D = depths ? depths->depth : 0;
    double x_max = 1, y_min = INFINITY, y_max = -INFINITY;
    extend_range(train, n_train, &x_max, &y_min, &y_max);
    extend_range(val, n_val, &x_max, &y_min, &y_max);
    for (int k = 0; k < D; k++) {
        extend_range(depths->train[k], depths->n_train[k], &x_max, &y_min, &y_max);
        extend_range(depths->val[k], depths->n_val[k], &x_max, &y_min, &y_max);
    }
    if (!isfinite(y_min)) y_min = 0, y_max = 1;
    if (y_max - y_min < 1e-6) y_max = y_min + 1;
    double pad = 0.05 * (y_max - y_min);
    y_min = fmax(0, y_min - pad);
    y_max += pad;
#define SX(v) (left + (v) / x_max * (W - left - right))
#define SY(v) (top + (y_max - (v)) / (y_max - y_min) * (H - top - bottom))
    Text t = {ct_alloc(8192), 0, 8192};
    put(&t, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n", W, H, W, H);
    put(&t, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    put(&t, "<text x=\"%.0f\" y=\"22\" font-size=\"15\" text-anchor=\"middle\">", W / 2);
    for (const char *c = title; *c; c++) {  // escape for XML
        if (*c == '<') put(&t, "&lt;");
        else if (*c == '>') put(&t, "&gt;");
        else if (*c == '&') put(&t, "&amp;");
        else put(&t, "%c", *c);
    }
    put(&t, "</text>\n");
    double ys = tick_step(y_max - y_min, 6);
    for (double y = ceil(y_min / ys) * ys; y <= y_max; y += ys) {
        put(&t, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", left, SY(y), W - right, SY(y));
        put(&t, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", left - 6, SY(y) + 4, y);
    }
    double xs = tick_step(x_max, 6);
    for (double x = 0; x <= x_max * 1.0001; x += xs) {
        char label[32];
        format_tokens(label, sizeof label, x);
        put(&t, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>\n", SX(x), top, SX(x), H - bottom);
        put(&t, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", SX(x), H - bottom + 16, label);
    }
    put(&t, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">tokens</text>\n", (left + W - right) / 2, H - 10);
    put(&t, "<text x=\"16\" y=\"%.0f\" text-anchor=\"middle\" transform=\"rotate(-90 16 %.0f)\">loss (nats/token)</text>\n",
        (top + H - bottom) / 2, (top + H - bottom) / 2);
    put(&t, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#888\"/>\n", left, top,
        W - left - right, H - top - bottom);
    if (n_train > 0) {  // at most ~2000 points: every k-th
        int every = n_train / 2000 + 1;
        put(&t, "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.2\" points=\"");
        for (int i = 0; i < n_train; i += every) put(&t, "%.1f,%.1f ", SX(train[i].tokens), SY(train[i].loss));
        put(&t, "%.1f,%.1f\"/>\n", SX(train[n_train - 1].tokens), SY(train[n_train - 1].loss));
    }
    if (n_val > 0) {
        put(&t, "<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\" points=\"");
        for (int i = 0; i < n_val; i++) put(&t, "%.1f,%.1f ", SX(val[i].tokens), SY(val[i].loss));
        put(&t, "\"/>\n");
        for (int i = 0; i < n_val; i++)
            put(&t, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#d62728\"/>\n", SX(val[i].tokens), SY(val[i].loss));
    }
    // multi-token prediction: depth k's train loss dashed and thin, its validation loss dashed with
    // hollow markers, in the depth's colour
    for (int k = 0; k < D; k++) {
        const CtCurvePoint *p = depths->train[k];
        const int n = depths->n_train[k];
        if (n > 0) {
            int every = n / 2000 + 1;
            put(&t, "<polyline class=\"mtp-train\" fill=\"none\" stroke=\"%s\" stroke-width=\"1\" "
                    "stroke-dasharray=\"5 3\" points=\"", DEPTH_COLOURS[k]);
            for (int i = 0; i < n; i += every) put(&t, "%.1f,%.1f ", SX(p[i].tokens), SY(p[i].loss));
            put(&t, "%.1f,%.1f\"/>\n", SX(p[n - 1].tokens), SY(p[n - 1].loss));
        }
        p = depths->val[k];
        if (depths->n_val[k] > 0) {
            put(&t, "<polyline class=\"mtp-val\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
                    "stroke-dasharray=\"2 2\" points=\"", DEPTH_COLOURS[k]);
            for (int i = 0; i < depths->n_val[k]; i++) put(&t, "%.1f,%.1f ", SX(p[i].tokens), SY(p[i].loss));
            put(&t, "\"/>\n");
            for (int i = 0; i < depths->n_val[k]; i++)
                put(&t, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"white\" stroke=\"%s\"/>\n", SX(p[i].tokens),
                    SY(p[i].loss), DEPTH_COLOURS[k]);
        }
    }
    put(&t, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#1f77b4\" stroke-width=\"2\"/>"
            "<text x=\"%.0f\" y=\"%.0f\">train</text>\n", W - 160, top + 16, W - 140, top + 16, W - 135, top + 20);
    put(&t, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#d62728\" stroke-width=\"2\"/>"
            "<text x=\"%.0f\" y=\"%.0f\">validation</text>\n", W - 160, top + 34, W - 140, top + 34, W - 135, top + 38);
    for (int k = 0; k < D; k++) {
        const double y = top + 52 + 18 * k;
        put(&t, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"%s\" stroke-width=\"2\" "
                "stroke-dasharray=\"5 3\"/><text x=\"%.0f\" y=\"%.0f\">mtp depth %d (train, val)</text>\n",
            W - 160, y, W - 140, y, DEPTH_COLOURS[k], W - 135, y + 4, k + 1);
    }
    put(&t, "</svg>\n");
#undef SX
#undef SY
    return t.buf;
}

int ct_metrics_plot(CtMetrics *m) {
    if (m->failed) return -1;
    char *svg = ct_loss_svg(m->train, m->n_train, m->val, m->n_val, &m->depths, m->title);
    int rc = ct_write_file_atomic(m->svg_path, svg, strlen(svg));
    ct_free(svg);
    if (rc != 0) {
        m->failed = 1;
        snprintf(m->failure, sizeof m->failure, "%s", ct_error_message());
    }
    return rc;
}
