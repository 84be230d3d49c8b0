#include "data/examples/answer_extract.h"

#include <string.h>

#include "core/alloc.h"

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_alnum(char c) { return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Where `needle` first occurs in s[from..len), or len.
static size_t find(const char *s, size_t len, size_t from, const char *needle) {
    const size_t n = strlen(needle);
    for (size_t i = from; i + n <= len; i++)
        if (memcmp(s + i, needle, n) == 0) return i;
    return len;
}

// Whether a number starts at s[i]: a digit, or a sign '-' before a digit with no letter or digit before it.
static int number_starts(const char *s, size_t len, size_t i) {
    if (is_digit(s[i])) return 1;
    return s[i] == '-' && i + 1 < len && is_digit(s[i + 1]) && (i == 0 || !is_alnum(s[i - 1]));
}

// The end of the number that starts at s[i].
static size_t number_end(const char *s, size_t len, size_t i) {
    size_t j = i + (s[i] == '-');
    while (j < len && is_digit(s[j])) j++;
    while (j + 3 < len && s[j] == ',' && is_digit(s[j + 1]) && is_digit(s[j + 2]) && is_digit(s[j + 3]) &&
           (j + 4 == len || !is_digit(s[j + 4])))
        j += 4;  // a ",ddd" thousands group
    if (j + 1 < len && s[j] == '.' && is_digit(s[j + 1])) {
        j++;
        while (j < len && is_digit(s[j])) j++;
    }
    return j;
}

// The last number in s[0..len): 1 with its [start, end), or 0.
static int last_number(const char *s, size_t len, size_t *start, size_t *end) {
    int found = 0;
    for (size_t i = 0; i < len;) {
        if (!number_starts(s, len, i)) {
            i++;
            continue;
        }
        *start = i;
        *end = i = number_end(s, len, i);
        found = 1;
    }
    return found;
}

static char *copy(const char *s, size_t n) {
    char *out = ct_alloc(n + 1);
    if (n) memcpy(out, s, n);
    out[n] = '\0';
    return out;
}

// The normal form of the number s[0..n): no separators, leading zeros or trailing fraction zeros.
static char *normalise_number(const char *s, size_t n) {
    char *out = ct_alloc(n + 2), *o = out;
    size_t i = 0;
    const int negative = s[0] == '-';
    if (negative) i++;
    char *digits = o + negative;  // the sign goes in front once we know the number is not zero
    o = digits;
    for (; i < n && s[i] != '.'; i++)
        if (is_digit(s[i]) && !(o == digits && s[i] == '0')) *o++ = s[i];
    if (o == digits) *o++ = '0';
    if (i < n) {  // the fraction
        char *point = o;
        *o++ = '.';
        for (i++; i < n; i++) *o++ = s[i];
        while (o > point + 1 && o[-1] == '0') o--;
        if (o == point + 1) o = point;
    }
    *o = '\0';
    if (negative && strcmp(digits, "0") != 0) {
        out[0] = '-';
        return out;
    }
    memmove(out, digits, strlen(digits) + 1);
    return out;
}

static void trim(const char **s, size_t *n) {
    while (*n && is_space(**s)) (*s)++, (*n)--;
    while (*n && is_space((*s)[*n - 1])) (*n)--;
}

// The normal form of a whole text: the number it is, or the text trimmed.
static char *normalise_text(const char *s, size_t n) {
    trim(&s, &n);
    if (n && number_starts(s, n, 0) && number_end(s, n, 0) == n) return normalise_number(s, n);
    return copy(s, n);
}

char *ct_extract_answer(const char *completion, size_t len) {
    const char *s = completion;
    size_t n = len;
    const size_t open = find(completion, len, 0, "<answer>");
    if (open < len) {
        const size_t from = open + strlen("<answer>"), close = find(completion, len, from, "</answer>");
        if (close < len) {
            s = completion + from;
            n = close - from;
            size_t start, end;
            if (last_number(s, n, &start, &end)) return normalise_number(s + start, end - start);
            trim(&s, &n);
            return copy(s, n);
        }
    }
    size_t start, end;
    if (last_number(s, n, &start, &end)) return normalise_number(s + start, end - start);
    return copy("", 0);
}

int ct_answer_matches(const char *answer, const char *reference) {
    if (!answer[0]) return 0;
    char *want = normalise_text(reference, strlen(reference));
    int same = strcmp(answer, want) == 0;
    ct_free(want);
    return same;
}
