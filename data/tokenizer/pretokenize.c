// Hand-written scanners for the three pre-tokenization regexes (see data/tokenizer/pretokenize.h).
//
// Each scanner answers one question: where does the regex's match starting at `pos` end?
// The regexes are alternations tried left to right, and each alternative's quantifiers are
// greedy with backtracking, so the code below tries the alternatives in the same order and,
// where an alternative would backtrack, computes directly where backtracking would stop:
//   \s+(?!\S)   on a whitespace run that is followed by a non-space, gives the run minus its
//               last unit (which then starts the next piece, e.g. " word"); a run of one unit
//               fails and falls to \s+; at the end of the text it takes the whole run.
//   \s*[\r\n]+  ends right after the last \r or \n of the whitespace run, if it has one.
//   o200k's [A]*[B]+ (A and B overlap in Lm, Lo, M): A* takes the longest run, then gives
//               back units until one of class B follows.
// Classes: L = Lu|Lt|Ll|Lm|Lo, N = Nd|Nl|No, \s = White_Space, and "other" is none of
// \s, L, N (marks are "other" outside o200k's letter classes).
#include "data/tokenizer/pretokenize.h"

#include <string.h>

#include "core/error.h"
#include "data/tokenizer/unicode_tables.h"
#include "data/input/utf8.h"

static const char *const pattern_names[CT_PATTERN_COUNT] = {"gpt2", "cl100k", "o200k", "qwen2"};

static const char *const pattern_regexes[CT_PATTERN_COUNT] = {
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
};

const char *ct_pattern_name(CtPattern pattern) { return pattern_names[pattern]; }
const char *ct_pattern_regex(CtPattern pattern) { return pattern_regexes[pattern]; }

int ct_pattern_from_name(const char *name, CtPattern *out) {
    static const struct {
        const char *name;
        CtPattern pattern;
    } aliases[] = {{"gpt2", CT_PATTERN_GPT2},     {"r50k", CT_PATTERN_GPT2},          {"r50k_base", CT_PATTERN_GPT2},
                   {"p50k", CT_PATTERN_GPT2},     {"p50k_base", CT_PATTERN_GPT2},     {"cl100k", CT_PATTERN_CL100K},
                   {"cl100k_base", CT_PATTERN_CL100K}, {"llama3", CT_PATTERN_CL100K}, {"o200k", CT_PATTERN_O200K},
                   {"o200k_base", CT_PATTERN_O200K}, {"qwen2", CT_PATTERN_QWEN2}};
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(name, aliases[i].name) == 0) {
            *out = aliases[i].pattern;
            return 0;
        }
    return ct_error_set("unknown pre-tokenization pattern '%s' (known: gpt2, cl100k, o200k, qwen2)", name);
}

int ct_pattern_from_regex(const char *regex, CtPattern *out) {
    for (int p = 0; p < CT_PATTERN_COUNT; p++)
        if (strcmp(regex, pattern_regexes[p]) == 0) {
            *out = (CtPattern)p;
            return 0;
        }
    return ct_error_set("unsupported pre-tokenization regex \"%.80s%s\" (ctrain has exact scanners for the gpt2, "
                        "cl100k_base (= Llama 3), o200k_base and Qwen2 patterns only)",
                        regex, strlen(regex) > 80 ? "..." : "");
}

// ---- units: one code point, or one invalid byte ----

// Class flags of the unit at text[i] (i < len); *n gets its length in bytes.
static inline unsigned unit_at(const uint8_t *text, size_t len, size_t i, size_t *n) {
    uint8_t b = text[i];
    if (b < 0x80) {
        *n = 1;
        return ct_unicode_stage2[0][b];  // U+0000..U+007F: the first block
    }
    uint32_t cp;
    *n = ct_utf8_decode(text + i, len - i, &cp);
    return cp == CT_UTF8_INVALID ? 0 : ct_unicode_flags(cp);
}

#define OTHER_MASK (CT_UC_SPACE | CT_UC_LETTER | CT_UC_NUMBER)
static inline int is_other(unsigned f) { return (f & OTHER_MASK) == 0; }

// The end of the run of units, starting at i, whose flags intersect `mask` (any of them).
static inline size_t run_end(const uint8_t *text, size_t len, size_t i, unsigned mask) {
    while (i < len) {
        size_t n;
        if (!(unit_at(text, len, i, &n) & mask)) break;
        i += n;
    }
    return i;
}

// The end of a run of "other" units (none of \s, L, N).
static inline size_t other_run_end(const uint8_t *text, size_t len, size_t i) {
    while (i < len) {
        size_t n;
        if (!is_other(unit_at(text, len, i, &n))) break;
        i += n;
    }
    return i;
}

// \p{N}{1,3} from i, where the unit at i is a number.
static inline size_t numbers_upto3_end(const uint8_t *text, size_t len, size_t i) {
    for (int k = 0; k < 3 && i < len; k++) {
        size_t n;
        if (!(unit_at(text, len, i, &n) & CT_UC_NUMBER)) break;
        i += n;
    }
    return i;
}

// Bytes from `set` repeated, from i (for [\r\n]* and [\r\n/]*).
static inline size_t bytes_run_end(const uint8_t *text, size_t len, size_t i, int with_slash) {
    while (i < len && (text[i] == '\r' || text[i] == '\n' || (with_slash && text[i] == '/'))) i++;
    return i;
}

// Lowercase of an ASCII letter; 's' for U+017F (LATIN SMALL LETTER LONG S, which simple case
// folding makes equal to s, so (?i:'s) matches it); 0 otherwise. *n gets the unit's length.
static inline int folded_letter(const uint8_t *text, size_t len, size_t i, int case_insensitive, size_t *n) {
    *n = 1;
    if (i >= len) return 0;
    uint8_t b = text[i];
    if (b < 0x80) return case_insensitive && b >= 'A' && b <= 'Z' ? b + 32 : b;
    if (case_insensitive && b == 0xC5 && i + 1 < len && text[i + 1] == 0xBF) {
        *n = 2;
        return 's';
    }
    return 0;
}

// 's|'t|'re|'ve|'m|'ll|'d at i (text[i] == '\''): the match length, or 0.
static size_t contraction_len(const uint8_t *text, size_t len, size_t i, int case_insensitive) {
    if (i >= len || text[i] != '\'') return 0;
    size_t n1, n2;
    int c1 = folded_letter(text, len, i + 1, case_insensitive, &n1);
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 1 + n1;
    int c2 = folded_letter(text, len, i + 1 + n1, case_insensitive, &n2);
    if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 1 + n1 + n2;
    return 0;
}

// The whitespace alternatives at i (the unit at i is \s). With newline_rule:
// \s*[\r\n]+ first (cl100k, o200k); then \s+(?!\S) and \s+.
static size_t whitespace_end(const uint8_t *text, size_t len, size_t i, int newline_rule) {
    size_t j = i, last_start = i, units = 0, after_last_newline = 0;
    while (j < len) {
        size_t n;
        if (!(unit_at(text, len, j, &n) & CT_UC_SPACE)) break;
        if (text[j] == '\r' || text[j] == '\n') after_last_newline = j + 1;
        last_start = j;
        j += n;
        units++;
    }
    if (newline_rule && after_last_newline) return after_last_newline;
    if (j == len || units == 1) return j;  // end of text: (?!\S) holds; one unit: \s+ alone
    return last_start;                      // give back the last unit to the next piece
}

// ---- the ASCII fast path (cl100k, qwen2, o200k) ----
// Most pieces of most texts are ASCII: words with a space or a symbol before them, numbers,
// punctuation. For them one table gives each byte's class and no alternative is tried twice.
// Each function below answers only when every byte it looks at, the one after the piece
// included, is ASCII (a non-ASCII unit could be a letter, a mark or a number that extends the
// piece), and returns 0 otherwise; the general scanner then decides. Whitespace and
// contractions are always the general scanner's.

static inline unsigned ascii_flags(uint8_t b) { return ct_unicode_stage2[0][b]; }  // b < 0x80

// Runs of ASCII letters (the only ASCII units in \p{L}: A-Z are Lu, a-z Ll) end at the first
// other byte, a non-ASCII one included.
static inline int is_ascii_upper(uint8_t b) { return (uint8_t)(b - 'A') < 26; }
static inline int is_ascii_lower(uint8_t b) { return (uint8_t)(b - 'a') < 26; }
static inline int is_ascii_letter(uint8_t b) { return (uint8_t)((b | 0x20) - 'a') < 26; }
static inline size_t ascii_upper_end(const uint8_t *text, size_t len, size_t i) {
    while (i < len && is_ascii_upper(text[i])) i++;
    return i;
}
// The end of a run of a-z (fold: of A-Z and a-z) from i, eight bytes at a time: a byte is a-z
// when, without its top bit, adding 0x80 - 'a' sets that bit and adding 0x80 - '{' does not, and
// its top bit was clear (no sum carries into the next byte); OR-ing 0x20 folds A-Z to a-z.
static inline size_t ascii_run_end(const uint8_t *text, size_t len, size_t i, int fold) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t ones = 0x0101010101010101u, high = 0x80 * ones;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, text + i, 8);
        if (fold) w |= 0x20 * ones;
        uint64_t low7 = w & ~high;
        uint64_t in = (low7 + (0x80 - 'a') * ones) & ~(low7 + (0x80 - '{') * ones) & ~w & high;
        if (in != high) return i + ((size_t)__builtin_ctzll(~in & high) >> 3);  // the first other byte
    }
#endif
    while (i < len && (fold ? is_ascii_letter(text[i]) : is_ascii_lower(text[i]))) i++;
    return i;
}
static inline size_t ascii_lower_end(const uint8_t *text, size_t len, size_t i) { return ascii_run_end(text, len, i, 0); }

static inline int non_ascii_at(const uint8_t *text, size_t len, size_t i) { return i < len && text[i] >= 0x80; }

// \p{N}{1,3} from i (text[i] an ASCII digit; qwen2: \p{N}), or 0.
static inline size_t ascii_digits_end(const uint8_t *text, size_t len, size_t i, int max_digits) {
    size_t j = i;
    while (j < len && j - i < (size_t)max_digits && text[j] >= '0' && text[j] <= '9') j++;
    return j - i < (size_t)max_digits && non_ascii_at(text, len, j) ? 0 : j;
}

// [^\s\p{L}\p{N}]+ then [\r\n]* (or [\r\n/]*) from i (text[i] ASCII and none of \s, L, N), or 0.
static inline size_t ascii_symbols_end(const uint8_t *text, size_t len, size_t i, int with_slash) {
    size_t j = i;
    while (j < len && text[j] < 0x80 && is_other(ascii_flags(text[j]))) j++;
    if (non_ascii_at(text, len, j)) return 0;
    return bytes_run_end(text, len, j, with_slash);
}

// Whether text[i] (i < len) is an ASCII letter.
static inline int ascii_letter_at(const uint8_t *text, size_t len, size_t i) { return i < len && is_ascii_letter(text[i]); }

// The letters from s (text[s] an ASCII letter), or 0.
static inline size_t ascii_letters_end(const uint8_t *text, size_t len, size_t s) {
    s = ascii_run_end(text, len, s, 1);
    return non_ascii_at(text, len, s) ? 0 : s;
}

// cl100k's (qwen2's: max_digits 1) piece at i, or 0: a letter run with at most one unit before
// it that is not \r, \n, a letter or a number, digits, or " ?" and symbols.
static inline size_t cl100k_ascii(const uint8_t *text, size_t len, size_t i, int max_digits) {
    uint8_t b = text[i];
    if (b >= 0x80 || b == '\'') return 0;
    unsigned f = ascii_flags(b);
    if (f & CT_UC_LETTER) return ascii_letters_end(text, len, i);
    if (f & CT_UC_NUMBER) return ascii_digits_end(text, len, i, max_digits);
    if (b == '\r' || b == '\n') return 0;
    if (ascii_letter_at(text, len, i + 1)) return ascii_letters_end(text, len, i + 1);
    if (f & CT_UC_SPACE) {
        if (b != ' ' || i + 1 >= len || text[i + 1] >= 0x80 || !is_other(ascii_flags(text[i + 1]))) return 0;
        i++;  // " ?" before the symbols
    }
    return ascii_symbols_end(text, len, i, 0);
}

// o200k's letter alternatives from s (text[s] an ASCII letter): uppercase run, then lowercase
// run, then a contraction. With ASCII letters only, [UPPER]*[LOWER]+ (when a lowercase letter
// follows the capitals) and [UPPER]+[LOWER]* (when none does) both end where the lowercase run does.
static inline size_t o200k_ascii_word(const uint8_t *text, size_t len, size_t s) {
    size_t e = ascii_lower_end(text, len, ascii_upper_end(text, len, s));
    if (non_ascii_at(text, len, e)) return 0;
    return e < len && text[e] == '\'' ? e + contraction_len(text, len, e, 1) : e;  // most words have none
}

// o200k's piece at i, or 0: as cl100k's with o200k's letter runs, and [\r\n/]* after symbols.
static inline size_t o200k_ascii(const uint8_t *text, size_t len, size_t i) {
    uint8_t b = text[i];
    if (b >= 0x80) return 0;
    unsigned f = ascii_flags(b);
    if (f & CT_UC_LETTER) return o200k_ascii_word(text, len, i);
    if (f & CT_UC_NUMBER) return ascii_digits_end(text, len, i, 3);
    if (b == '\r' || b == '\n') return 0;
    if (ascii_letter_at(text, len, i + 1)) return o200k_ascii_word(text, len, i + 1);
    if (f & CT_UC_SPACE) {
        if (b != ' ' || i + 1 >= len || text[i + 1] >= 0x80 || !is_other(ascii_flags(text[i + 1]))) return 0;
        i++;
    }
    return ascii_symbols_end(text, len, i, 1);
}

// ---- gpt2 ----

static size_t gpt2_next(const uint8_t *text, size_t len, size_t i) {
    size_t k = contraction_len(text, len, i, 0);
    if (k) return i + k;
    size_t n;
    unsigned f = unit_at(text, len, i, &n);
    if (text[i] == ' ' && i + 1 < len) {
        size_t n1;
        unsigned f1 = unit_at(text, len, i + 1, &n1);
        if (f1 & CT_UC_LETTER) return run_end(text, len, i + 1, CT_UC_LETTER);
        if (f1 & CT_UC_NUMBER) return run_end(text, len, i + 1, CT_UC_NUMBER);
        if (is_other(f1)) return other_run_end(text, len, i + 1);
    }
    if (f & CT_UC_LETTER) return run_end(text, len, i, CT_UC_LETTER);
    if (f & CT_UC_NUMBER) return run_end(text, len, i, CT_UC_NUMBER);
    if (is_other(f)) return other_run_end(text, len, i);
    return whitespace_end(text, len, i, 0);
}

// ---- cl100k and qwen2 ----

// cl100k's alternatives; qwen2's differ only in \p{N} (one digit) for \p{N}{1,3}.
static size_t cl100k_next(const uint8_t *text, size_t len, size_t i, int single_digits) {
    size_t k = cl100k_ascii(text, len, i, single_digits ? 1 : 3);
    if (k) return k;
    k = contraction_len(text, len, i, 1);
    if (k) return i + k;
    size_t n;
    unsigned f = unit_at(text, len, i, &n);
    if (f & CT_UC_LETTER) return run_end(text, len, i, CT_UC_LETTER);
    // [^\r\n\p{L}\p{N}]?\p{L}+ with the optional prefix present.
    if (!(f & CT_UC_NUMBER) && text[i] != '\r' && text[i] != '\n' && i + n < len) {
        size_t n1;
        if (unit_at(text, len, i + n, &n1) & CT_UC_LETTER) return run_end(text, len, i + n, CT_UC_LETTER);
    }
    if (f & CT_UC_NUMBER) return single_digits ? i + n : numbers_upto3_end(text, len, i);
    if (text[i] == ' ' && i + 1 < len) {
        size_t n1;
        if (is_other(unit_at(text, len, i + 1, &n1)))
            return bytes_run_end(text, len, other_run_end(text, len, i + 1), 0);
    }
    if (is_other(f)) return bytes_run_end(text, len, other_run_end(text, len, i), 0);
    return whitespace_end(text, len, i, 1);
}

// ---- o200k ----

#define O200K_UPPER (CT_UC_LU_LT | CT_UC_LM_LO | CT_UC_MARK)  // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
#define O200K_LOWER (CT_UC_LL | CT_UC_LM_LO | CT_UC_MARK)    // [\p{Ll}\p{Lm}\p{Lo}\p{M}]

// [UPPER]*[LOWER]+(?i:contraction)? from s; the end, or 0 when it does not match.
static size_t o200k_lower_word(const uint8_t *text, size_t len, size_t s) {
    size_t j = s, last_lower = (size_t)-1;
    while (j < len) {
        size_t n;
        unsigned f = unit_at(text, len, j, &n);
        if (!(f & O200K_UPPER)) break;
        if (f & O200K_LOWER) last_lower = j;
        j += n;
    }
    size_t k;  // where [LOWER]+ starts once UPPER* has given back what it must
    size_t n;
    if (j < len && (unit_at(text, len, j, &n) & O200K_LOWER))
        k = j;
    else if (last_lower != (size_t)-1)
        k = last_lower;
    else
        return 0;
    size_t e = run_end(text, len, k, O200K_LOWER);
    return e + contraction_len(text, len, e, 1);
}

// [UPPER]+[LOWER]*(?i:contraction)? from s; the end, or 0 when it does not match.
static size_t o200k_upper_word(const uint8_t *text, size_t len, size_t s) {
    size_t n;
    if (s >= len || !(unit_at(text, len, s, &n) & O200K_UPPER)) return 0;
    size_t e = run_end(text, len, run_end(text, len, s, O200K_UPPER), O200K_LOWER);
    return e + contraction_len(text, len, e, 1);
}

static size_t o200k_next(const uint8_t *text, size_t len, size_t i) {
    size_t n, e = o200k_ascii(text, len, i);
    if (e) return e;
    unsigned f = unit_at(text, len, i, &n);
    // [^\r\n\p{L}\p{N}]? is tried present first, then absent, inside each of the two alternatives.
    int can_prefix = !(f & (CT_UC_LETTER | CT_UC_NUMBER)) && text[i] != '\r' && text[i] != '\n';
    if (can_prefix && (e = o200k_lower_word(text, len, i + n))) return e;
    if ((e = o200k_lower_word(text, len, i))) return e;
    if (can_prefix && (e = o200k_upper_word(text, len, i + n))) return e;
    if ((e = o200k_upper_word(text, len, i))) return e;
    if (f & CT_UC_NUMBER) return numbers_upto3_end(text, len, i);
    if (text[i] == ' ' && i + 1 < len) {
        size_t n1;
        if (is_other(unit_at(text, len, i + 1, &n1)))
            return bytes_run_end(text, len, other_run_end(text, len, i + 1), 1);
    }
    if (is_other(f)) return bytes_run_end(text, len, other_run_end(text, len, i), 1);
    return whitespace_end(text, len, i, 1);
}

// One loop per pattern, the ASCII fast path inlined in it: a piece costs no call and no
// dispatch on the pattern unless the general scanner has to decide.
size_t ct_pretokenize_many(CtPattern pattern, const uint8_t *text, size_t len, size_t pos, size_t to, size_t *ends,
                           size_t max) {
    size_t n = 0, e;
    switch (pattern) {
    case CT_PATTERN_CL100K:
        for (; n < max && pos < to; pos = ends[n++] = e)
            if (!(e = cl100k_ascii(text, len, pos, 3))) e = cl100k_next(text, len, pos, 0);
        return n;
    case CT_PATTERN_O200K:
        for (; n < max && pos < to; pos = ends[n++] = e)
            if (!(e = o200k_ascii(text, len, pos))) e = o200k_next(text, len, pos);
        return n;
    case CT_PATTERN_QWEN2:
        for (; n < max && pos < to; pos = ends[n++] = e)
            if (!(e = cl100k_ascii(text, len, pos, 1))) e = cl100k_next(text, len, pos, 1);
        return n;
    case CT_PATTERN_GPT2:
        for (; n < max && pos < to; pos = ends[n++] = e) e = gpt2_next(text, len, pos);
        return n;
    }
    CT_FATAL("this is a bug in ctrain", "unknown pattern %d", (int)pattern);
}

size_t ct_pretokenize_next(CtPattern pattern, const uint8_t *text, size_t len, size_t pos) {
    switch (pattern) {
    case CT_PATTERN_GPT2: return gpt2_next(text, len, pos);
    case CT_PATTERN_CL100K: return cl100k_next(text, len, pos, 0);
    case CT_PATTERN_QWEN2: return cl100k_next(text, len, pos, 1);
    case CT_PATTERN_O200K: return o200k_next(text, len, pos);
    }
    CT_FATAL("this is a bug in ctrain", "unknown pattern %d", (int)pattern);
}

// The unit that ends just before p (p > 0) is a letter. Units are found from a piece's start
// forwards; a lead byte never sits inside another unit (only continuation bytes do, and an
// invalid byte is a unit alone), so a valid sequence that starts at a lead byte and ends at p
// is the unit the forward scan sees.
static int letter_ends_at(const uint8_t *text, size_t p) {
    size_t s = p - 1;
    if (text[s] < 0x80) return (ct_unicode_stage2[0][text[s]] & CT_UC_LETTER) != 0;
    while (s > 0 && p - s < 4 && (text[s] & 0xC0) == 0x80) s--;
    uint32_t cp;
    size_t n = ct_utf8_decode(text + s, p - s, &cp);
    return s + n == p && cp != CT_UTF8_INVALID && (ct_unicode_flags(cp) & CT_UC_LETTER);
}

// Why each rule gives a piece boundary under all four patterns (no piece holds both p - 1 and p):
// after '\n', before a unit that is neither White_Space nor '/': a piece holding a newline is a
// whitespace run (it ends where the run does, and \s+(?!\S) only gives back a unit, which then
// ends at p), or a symbol run's [\r\n]* / o200k's [\r\n/]* tail (it stops at p); no pattern
// lets a newline prefix a letter run. Before ' ' after a letter: a letter sits only in letter
// pieces (with at most a prefix unit before the letters and a contraction, which starts with
// an apostrophe, after them) and contractions, and none of them goes on with a space.
// (WordPiece splits words at spaces and newlines too, so these cuts serve it as well.)
size_t ct_pretokenize_safe_cut(const uint8_t *text, size_t len, size_t from) {
    for (size_t p = from > 0 ? from : 1; p < len; p++) {
        const uint8_t b = text[p];
        if (text[p - 1] == '\n') {
            size_t n;
            if (b != '/' && !(unit_at(text, len, p, &n) & CT_UC_SPACE)) return p;
        } else if (b == ' ' && letter_ends_at(text, p)) {
            return p;
        }
    }
    return len;
}
