#include "data/examples/synthetic_tasks.h"

#include <string.h>

#include "core/error.h"
#include "core/rng.h"

int ct_task_known(const char *task) { return strcmp(task, "reverse") == 0 || strcmp(task, "add") == 0; }

static void reverse_example(FILE *out, CtRng *rng) {
    char letters[8];
    int n = 2 + (int)ct_rng_below(rng, 5);
    for (int i = 0; i < n; i++) letters[i] = (char)('a' + ct_rng_below(rng, 26));
    fputs("{\"prompt\": \"reverse:", out);
    for (int i = 0; i < n; i++) fprintf(out, " %c", letters[i]);
    fputs("\", \"response\": \"", out);
    for (int i = n - 1; i >= 0; i--) fprintf(out, "%c%s", letters[i], i ? " " : "");
    fputs("\"}\n", out);
}

static void add_example(FILE *out, CtRng *rng) {
    unsigned a = 100 + ct_rng_below(rng, 900), b = 100 + ct_rng_below(rng, 900);
    fprintf(out, "{\"prompt\": \"add: %u + %u\", \"response\": \"%u\"}\n", a, b, a + b);
}

int ct_write_task_examples(FILE *out, const char *task, uint64_t examples, uint64_t seed) {
    if (!ct_task_known(task)) return ct_error_set("unknown task '%s' (reverse or add)", task);
    CtRng rng;
    ct_rng_seed(&rng, seed);
    for (uint64_t i = 0; i < examples; i++) {
        if (strcmp(task, "reverse") == 0)
            reverse_example(out, &rng);
        else
            add_example(out, &rng);
    }
    if (fflush(out) != 0 || ferror(out)) return ct_error_errno("writing examples failed");
    return 0;
}
