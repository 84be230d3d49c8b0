// Unicode NFC (data/tokenizer/nfc.h), following UAX #15's sample code: decompose every unit
// fully (tables, and Hangul syllables by arithmetic), sort each run of combining marks by
// class (stable), then compose each mark with the last starter unless a mark of the same or a
// higher class stands between them (blocked).
#include "data/tokenizer/nfc.h"

#include <string.h>

#include "core/alloc.h"
#include "data/input/utf8.h"

#define INVALID_BYTE 0x80000000u  // | the byte: an invalid UTF-8 byte, kept as it is

enum { S_BASE = 0xAC00, L_BASE = 0x1100, V_BASE = 0x1161, T_BASE = 0x11A7, L_COUNT = 19, V_COUNT = 21, T_COUNT = 28 };
#define N_COUNT (V_COUNT * T_COUNT)
#define S_COUNT (L_COUNT * N_COUNT)

static int ccc_of(uint32_t cp) {
    if (cp < 0x300 || cp & INVALID_BYTE) return 0;
    size_t lo = 0, hi = ct_nfc_ccc_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        uint32_t c = ct_nfc_ccc[mid] >> 8;
        if (c == cp) return (int)(ct_nfc_ccc[mid] & 0xFF);
        if (c < cp) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}

static const CtNfcDecomp *decomp_of(uint32_t cp) {
    if (cp < 0xC0 || cp & INVALID_BYTE) return NULL;
    size_t lo = 0, hi = ct_nfc_decomp_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ct_nfc_decomp[mid].cp == cp) return &ct_nfc_decomp[mid];
        if (ct_nfc_decomp[mid].cp < cp) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

// The primary composite of (a, b), or 0.
static uint32_t compose_pair(uint32_t a, uint32_t b) {
    if (a >= L_BASE && a < L_BASE + L_COUNT && b >= V_BASE && b < V_BASE + V_COUNT)
        return S_BASE + ((a - L_BASE) * V_COUNT + (b - V_BASE)) * T_COUNT;
    if (a >= S_BASE && a < S_BASE + S_COUNT && (a - S_BASE) % T_COUNT == 0 && b > T_BASE && b < T_BASE + T_COUNT)
        return a + (b - T_BASE);
    if ((a | b) & INVALID_BYTE) return 0;
    uint64_t key = (uint64_t)a << 21 | b;
    size_t lo = 0, hi = ct_nfc_compose_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ct_nfc_compose[mid].pair == key) return ct_nfc_compose[mid].composite;
        if (ct_nfc_compose[mid].pair < key) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}

typedef struct {
    uint32_t *cp;
    size_t n, cap;
} Units;

static void push(Units *u, uint32_t cp) {
    if (u->n == u->cap) u->cp = ct_realloc(u->cp, (u->cap = u->cap ? u->cap * 2 : 256) * sizeof *u->cp);
    u->cp[u->n++] = cp;
}

static void decompose(Units *u, uint32_t cp) {
    if (cp >= S_BASE && cp < S_BASE + S_COUNT) {
        uint32_t s = cp - S_BASE;
        push(u, L_BASE + s / N_COUNT);
        push(u, V_BASE + (s % N_COUNT) / T_COUNT);
        if (s % T_COUNT) push(u, T_BASE + s % T_COUNT);
        return;
    }
    const CtNfcDecomp *d = decomp_of(cp);
    if (!d) {
        push(u, cp);
        return;
    }
    decompose(u, d->first);
    if (d->second) decompose(u, d->second);
}

int ct_nfc_is_trivial(const uint8_t *text, size_t len) {
    // U+0300 is the first code point with a combining class; below it, every character that
    // decomposes recomposes to itself. Its UTF-8 starts with 0xCC.
    for (size_t i = 0; i < len; i++)
        if (text[i] >= 0xCC) return 0;
    return 1;
}

static size_t utf8_put(uint32_t cp, uint8_t *out) {
    if (cp & INVALID_BYTE) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | cp >> 6);
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | cp >> 12);
        out[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | cp >> 18);
    out[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

// Canonical ordering: a stable insertion sort of each run of non-starters by class.
static void reorder(Units *u) {
    for (size_t i = 1; i < u->n; i++) {
        int k = ccc_of(u->cp[i]);
        if (k == 0) continue;
        size_t j = i;
        uint32_t c = u->cp[i];
        while (j > 0 && ccc_of(u->cp[j - 1]) > k) {
            u->cp[j] = u->cp[j - 1];
            j--;
        }
        u->cp[j] = c;
    }
}

// Canonical composition in place; the new count.
static size_t compose(Units *u) {
    if (u->n == 0) return 0;
    size_t starter = 0, out = 1;
    int last_class = ccc_of(u->cp[0]) ? 256 : 0;  // a leading non-starter blocks everything after it
    for (size_t i = 1; i < u->n; i++) {
        uint32_t c = u->cp[i];
        int k = ccc_of(c);
        uint32_t composite = compose_pair(u->cp[starter], c);
        if (composite && (last_class < k || last_class == 0)) {
            u->cp[starter] = composite;
            continue;
        }
        if (k == 0) starter = out;
        last_class = k;
        u->cp[out++] = c;
    }
    return out;
}

size_t ct_nfc(const uint8_t *text, size_t len, uint8_t **out, size_t *cap) {
    Units u = {0};
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = ct_utf8_decode(text + i, len - i, &cp);
        decompose(&u, cp == CT_UTF8_INVALID ? INVALID_BYTE | text[i] : cp);
        i += n;
    }
    reorder(&u);
    size_t n = compose(&u);
    if (4 * n + 1 > *cap) *out = ct_realloc(*out, *cap = 4 * n + 64);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) m += utf8_put(u.cp[i], *out + m);
    ct_free(u.cp);
    return m;
}
