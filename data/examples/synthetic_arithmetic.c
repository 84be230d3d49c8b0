#include "data/examples/synthetic_arithmetic.h"

#include <stdlib.h>
#include <string.h>

#include "core/args.h"
#include "core/error.h"
#include "core/rng.h"

int ct_arith_parse_range(const char *text, const char *what, int min, int max, int *lo, int *hi) {
    char buf[64];
    long a, b;
    const char *dash = strchr(text, '-');
    if (strlen(text) >= sizeof buf) return ct_error_set("%s '%s': expected N or MIN-MAX", what, text);
    if (dash) {
        memcpy(buf, text, (size_t)(dash - text));
        buf[dash - text] = '\0';
        if (ct_parse_long(buf, &a) != 0 || ct_parse_long(dash + 1, &b) != 0)
            return ct_error_set("%s '%s': expected N or MIN-MAX", what, text);
    } else if (ct_parse_long(text, &a) == 0) {
        b = a;
    } else {
        return ct_error_set("%s '%s': expected N or MIN-MAX", what, text);
    }
    if (a < min || b > max || a > b)
        return ct_error_set("%s '%s': must lie within %d-%d, the smaller first", what, text, min, max);
    *lo = (int)a;
    *hi = (int)b;
    return 0;
}

static uint64_t mix64(uint64_t z) {  // splitmix64's finalizer: every input bit moves every output bit
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int compare_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int ct_arith_is_heldout(const uint64_t *operands, int n) {
    uint64_t sorted[CT_ARITH_MAX_OPERANDS];
    memcpy(sorted, operands, sizeof(uint64_t) * (size_t)n);
    qsort(sorted, (size_t)n, sizeof sorted[0], compare_u64);
    uint64_t h = mix64((uint64_t)n + 0x5EEDA217ull);
    for (int i = 0; i < n; i++) h = mix64(h ^ sorted[i]);
    return h % CT_ARITH_HELDOUT_ONE_IN == 0;
}

static uint64_t power10(int d) {
    uint64_t p = 1;
    while (d-- > 0) p *= 10;
    return p;
}

static uint64_t below64(CtRng *rng, uint64_t bound) {  // uniform in [0, bound), unbiased (rejection)
    const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t x;
    do x = ct_rng_next(rng);
    while (x >= limit);
    return x % bound;
}

// A number of d digits, d uniform in the range (so short numbers are as common as long ones).
static uint64_t draw_operand(CtRng *rng, const CtArithOptions *o) {
    const int d = o->min_digits + (int)ct_rng_below(rng, (uint32_t)(o->max_digits - o->min_digits + 1));
    const uint64_t lo = d == 1 ? 0 : power10(d - 1);
    return lo + below64(rng, power10(d) - lo);
}

static void write_example(FILE *out, const CtArithOptions *o, const uint64_t *x, int n) {
    uint64_t sum = 0;
    for (int i = 0; i < n; i++) sum += x[i];
    fputs("{\"prompt\": \"What is ", out);
    for (int i = 0; i < n; i++) fprintf(out, "%s%llu", i ? " + " : "", (unsigned long long)x[i]);
    fputs("?\", \"response\": \"", out);
    if (o->format == CT_ARITH_THINK) {  // the running sums, one addition at a time
        uint64_t partial = x[0];
        fputs("<think>", out);
        for (int i = 1; i < n; i++) {
            fprintf(out, "%s%llu + %llu = %llu", i > 1 ? ", " : "", (unsigned long long)partial,
                    (unsigned long long)x[i], (unsigned long long)(partial + x[i]));
            partial += x[i];
        }
        fprintf(out, "</think><answer>%llu</answer>", (unsigned long long)sum);
    } else {
        fprintf(out, "%llu", (unsigned long long)sum);
    }
    fprintf(out, "\", \"answer\": \"%llu\"}\n", (unsigned long long)sum);
}

int ct_write_arithmetic_examples(FILE *out, const CtArithOptions *o, uint64_t examples, uint64_t seed) {
    CtRng rng;
    ct_rng_seed(&rng, seed);
    uint64_t x[CT_ARITH_MAX_OPERANDS];
    // Draws of the other split are skipped; a range whose sums all fall on the other side would
    // loop forever, so many misses in a row stop with a line (about 1 in 10 draws is held out).
    const int max_misses = 100000;
    for (uint64_t e = 0; e < examples; e++) {
        int n, misses = 0;
        for (;;) {
            n = o->min_operands + (int)ct_rng_below(&rng, (uint32_t)(o->max_operands - o->min_operands + 1));
            for (int i = 0; i < n; i++) x[i] = draw_operand(&rng, o);
            if (ct_arith_is_heldout(x, n) == (o->split == CT_ARITH_HELDOUT)) break;
            if (++misses == max_misses)
                return ct_error_set("no sum of %d-%d operands of %d-%d digits fell in the %s split in %d draws; "
                                    "widen --operands or --digits", o->min_operands, o->max_operands, o->min_digits,
                                    o->max_digits, o->split == CT_ARITH_HELDOUT ? "held-out" : "train", max_misses);
        }
        write_example(out, o, x, n);
    }
    if (fflush(out) != 0 || ferror(out)) return ct_error_errno("writing examples failed");
    return 0;
}
