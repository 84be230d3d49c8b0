#include "data/examples/classify_examples.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/input/input_reader.h"
#include "data/input/json_line.h"
#include "data/tokenizer/token_ids.h"

int ct_label_set_parse(CtLabelSet *ls, const char *list) {
    memset(ls, 0, sizeof *ls);
    const char *p = list;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 0) {
            ct_label_set_free(ls);
            return ct_error_set("classify.labels \"%s\": an empty label name", list);
        }
        char *name = ct_alloc(n + 1);
        memcpy(name, p, n);
        name[n] = 0;
        for (int i = 0; i < ls->n; i++)
            if (strcmp(ls->names[i], name) == 0) {
                ct_error_set("classify.labels \"%s\": label %s twice", list, name);
                ct_free(name);
                ct_label_set_free(ls);
                return -1;
            }
        ls->names = ct_realloc(ls->names, sizeof(char *) * (size_t)(ls->n + 1));
        ls->names[ls->n++] = name;
        p += n + (end ? 1 : 0);
    }
    return 0;
}

char *ct_label_set_join(const CtLabelSet *ls) {
    size_t len = 1;
    for (int i = 0; i < ls->n; i++) len += strlen(ls->names[i]) + 1;
    char *s = ct_alloc(len);
    s[0] = 0;
    for (int i = 0; i < ls->n; i++) {
        if (i) strcat(s, ",");
        strcat(s, ls->names[i]);
    }
    return s;
}

void ct_label_set_free(CtLabelSet *ls) {
    for (int i = 0; i < ls->n; i++) ct_free(ls->names[i]);
    ct_free(ls->names);
    memset(ls, 0, sizeof *ls);
}

// A line's label as a name ("3" for the number 3); 1 when the line has none, -1 + error when it is
// neither an integer nor a string (or a string with a comma).
static int label_name(const char *line, size_t len, char *name, size_t cap, int *numeric) {
    cJSON *o = cJSON_ParseWithLength(line, len);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "label");
    int rc = 0;
    if (!v) {
        rc = 1;
    } else if (cJSON_IsNumber(v) && v->valuedouble == (double)(long long)v->valuedouble) {
        snprintf(name, cap, "%lld", (long long)v->valuedouble);
        *numeric = 1;
    } else if (cJSON_IsString(v) && v->valuestring[0] && !strchr(v->valuestring, ',') && strlen(v->valuestring) < cap) {
        snprintf(name, cap, "%s", v->valuestring);
        *numeric = 0;
    } else {
        rc = ct_error_set("\"label\" is not an integer or a short string without commas");
    }
    cJSON_Delete(o);
    return rc;
}

static int cmp_numeric(const void *a, const void *b) {
    long long x = atoll(*(char *const *)a), y = atoll(*(char *const *)b);
    return (x > y) - (x < y);
}
static int cmp_bytes(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// The sorted distinct names of raw[0..n).
static void collect(CtLabelSet *ls, char **raw, int n, int numeric) {
    char **sorted = ct_alloc(sizeof(char *) * (size_t)(n ? n : 1));
    memcpy(sorted, raw, sizeof(char *) * (size_t)n);
    qsort(sorted, (size_t)n, sizeof(char *), numeric ? cmp_numeric : cmp_bytes);
    ls->names = ct_alloc(sizeof(char *) * (size_t)(n ? n : 1));
    ls->n = 0;
    ls->numeric = numeric;
    for (int i = 0; i < n; i++)
        if (ls->n == 0 || (numeric ? cmp_numeric(&sorted[i], &ls->names[ls->n - 1]) : strcmp(sorted[i], ls->names[ls->n - 1])) != 0)
            ls->names[ls->n++] = ct_strdup(sorted[i]);
    ct_free(sorted);
}

static int find_label(const CtLabelSet *ls, const char *name) {
    for (int i = 0; i < ls->n; i++)
        if (ls->numeric ? atoll(ls->names[i]) == atoll(name) && strcmp(name, "") != 0 : strcmp(ls->names[i], name) == 0)
            return i;
    return -1;
}

// The first place where the n ids of `part` sit in f[from..len), or -1.
static long find_span(const int32_t *f, size_t len, size_t from, const int32_t *part, size_t n) {
    for (size_t i = from; i + n <= len; i++)
        if (n == 0 || memcmp(f + i, part, n * sizeof(int32_t)) == 0) return (long)i;
    return -1;
}

// Appends one example framed, truncated longest_first to seq_len (see the header).
static void add_example(CtClassifySet *s, CtEncoder *enc, const uint8_t *a, size_t na, const uint8_t *b, size_t nb,
                        int has_b, int seq_len, size_t *cap) {
    CtIds ia = {0}, ib = {0}, f = {0}, ft = {0};
    ct_encode(enc, a, na, 0, &ia);
    if (has_b) ct_encode(enc, b, nb, 0, &ib);
    ct_encode_pair(enc, a, na, has_b ? b : NULL, nb, 1, 0, &f, &ft);
    const size_t extra = f.len - ia.len - ib.len;
    size_t ka = ia.len, kb = ib.len;
    if (f.len > (size_t)seq_len) {
        s->truncated++;
        const size_t max = (size_t)seq_len > extra ? (size_t)seq_len - extra : 0;
        if (!has_b) {
            ka = max;
        } else {  // HF tokenizers' LongestFirst (truncation.rs): with n1 <= n2 the shorter keeps n1 and the longer
                  // gets the rest, or when both must lose, the first max/2 and the second max/2 + max%2
            size_t n1 = ka, n2 = kb;
            const int swap = n1 > n2;
            if (swap) n1 = kb, n2 = ka;
            n2 = n1 > max ? n1 : (n1 > max - n1 ? n1 : max - n1);
            if (n1 + n2 > max) n1 = max / 2, n2 = n1 + max % 2;
            ka = swap ? n2 : n1;
            kb = swap ? n1 : n2;
        }
    }
    const long at_a = find_span(f.data, f.len, 0, ia.data, ia.len);
    const long at_b = has_b ? find_span(f.data, f.len, (size_t)at_a + ia.len, ib.data, ib.len) : (long)f.len;
    size_t need = s->start[s->n] + (size_t)seq_len + 1;
    if (need > *cap) {
        *cap = need * 2;
        s->ids = ct_realloc(s->ids, sizeof(int32_t) * *cap);
        s->types = ct_realloc(s->types, sizeof(int32_t) * *cap);
    }
    size_t o = s->start[s->n];
    for (size_t i = 0; i < f.len && o - s->start[s->n] < (size_t)seq_len; i++) {
        // keep specials, the first ka of a's span and the first kb of b's span
        const int in_a = at_a >= 0 && i >= (size_t)at_a && i < (size_t)at_a + ia.len;
        const int in_b = has_b && at_b >= 0 && i >= (size_t)at_b && i < (size_t)at_b + ib.len;
        if ((in_a && i - (size_t)at_a >= ka) || (in_b && i - (size_t)at_b >= kb)) continue;
        s->ids[o] = f.data[i];
        s->types[o] = ft.data ? ft.data[i] : 0;
        o++;
    }
    s->start[s->n + 1] = o;
    ct_ids_free(&ia);
    ct_ids_free(&ib);
    ct_ids_free(&f);
    ct_ids_free(&ft);
}

int ct_classify_read(const char *path, const CtTokenizer *tok, int seq_len, CtLabelSet *labels, int collect_labels,
                     int need_labels, CtClassifySet *out) {
    memset(out, 0, sizeof *out);
    CtLineReader lr;
    if (ct_line_reader_open(&lr, path) != 0) return -1;
    CtEncoder *enc = ct_encoder_new(tok);
    char **raw = NULL;
    int raw_cap = 0, numeric_all = 1, rc = 0;
    size_t cap = 0, tcap = 0, tlen = 0, ucap = 0, ulen = 0;
    uint8_t *ta = NULL, *tb = NULL;
    out->start = ct_calloc(1, sizeof(size_t));
    const char *line;
    size_t len;
    int got;
    while ((got = ct_line_reader_next(&lr, &line, &len, NULL)) == 1) {
        size_t skip = 0;
        while (skip < len && (line[skip] == ' ' || line[skip] == '\t' || line[skip] == '\r')) skip++;
        if (skip == len) continue;  // blank lines
        const int ln = (int)lr.line_no;
        int has_b = 0, found = ct_json_line_string(line, len, "text", &ta, &tlen, &tcap);
        if (found == 1) {
            found = ct_json_line_string(line, len, "text_a", &ta, &tlen, &tcap);
            if (found == 0) {
                int fb = ct_json_line_string(line, len, "text_b", &tb, &ulen, &ucap);
                if (fb < 0) found = -1;
                has_b = fb == 0;
            }
        }
        if (found != 0) {
            rc = found < 0 ? ct_error_prefix("%s: line %d: ", path, ln)
                           : ct_error_set("%s: line %d: no \"text\" or \"text_a\" string", path, ln);
            break;
        }
        char name[256];
        int numeric = 0, lb = label_name(line, len, name, sizeof name, &numeric);
        if (lb < 0 || (lb == 1 && need_labels)) {
            rc = lb < 0 ? ct_error_prefix("%s: line %d: ", path, ln) : ct_error_set("%s: line %d: no \"label\"", path, ln);
            break;
        }
        if (out->n + 1 >= raw_cap) {
            raw_cap = raw_cap ? 2 * raw_cap : 1024;
            raw = ct_realloc(raw, sizeof(char *) * (size_t)raw_cap);
            out->start = ct_realloc(out->start, sizeof(size_t) * (size_t)(raw_cap + 1));
        }
        raw[out->n] = lb == 1 ? NULL : ct_strdup(name);
        numeric_all &= lb == 1 || numeric;
        out->pairs |= has_b;
        add_example(out, enc, ta, tlen, has_b ? tb : NULL, ulen, has_b, seq_len, &cap);
        out->n++;
    }
    if (got < 0) rc = -1;
    ct_line_reader_close(&lr);
    ct_encoder_free(enc);
    ct_free(ta);
    ct_free(tb);
    if (rc == 0 && out->n == 0) rc = ct_error_set("%s: no examples", path);
    if (rc == 0 && collect_labels && labels->n == 0) {
        char **named = ct_alloc(sizeof(char *) * (size_t)out->n);
        int n = 0;
        for (int i = 0; i < out->n; i++)
            if (raw[i]) named[n++] = raw[i];
        collect(labels, named, n, numeric_all);
        ct_free(named);
    }
    out->label = ct_alloc(sizeof(int) * (size_t)(out->n ? out->n : 1));
    for (int i = 0; rc == 0 && i < out->n; i++) {
        out->label[i] = raw[i] ? find_label(labels, raw[i]) : -1;
        if (raw[i] && out->label[i] < 0) {
            char *list = ct_label_set_join(labels);
            rc = ct_error_set("%s: example %d has label %s, which is not among the labels %s", path, i + 1, raw[i], list);
            ct_free(list);
        }
    }
    for (int i = 0; i < out->n; i++) ct_free(raw ? raw[i] : NULL);
    ct_free(raw);
    if (rc != 0) ct_classify_set_free(out);
    return rc;
}

void ct_classify_set_free(CtClassifySet *s) {
    ct_free(s->ids);
    ct_free(s->types);
    ct_free(s->start);
    ct_free(s->label);
    memset(s, 0, sizeof *s);
}
