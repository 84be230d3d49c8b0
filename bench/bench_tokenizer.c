// Encode throughput of the tokenizer on the shared corpus (../shared/data/corpora/nlp-corpus-40k.txt).
//
//   make bench-tokenizer            (or: build/bench_tokenizer [--shared DIR] [--repeat N] [--copies K])
//   build/bench_tokenizer --tokenizer FILE [--shared DIR]   one tokenizer (a WordPiece tokenizer.json...),
//                 one thread: the corpus as one text, and line by line (documents); best of `repeat`
//
// For GPT-2's vocabulary (encoder.json + vocab.bpe), cl100k_base and o200k_base:
//   1 thread      the corpus (3.1 MB), encoded `repeat` times with a fresh encoder each time
//                 (cold piece cache); the best run is reported
//   N threads     one large input, the corpus repeated `copies` times (25 MB by default), cut at
//                 safe places (ct_encode_parallel), for N = 1, 2, 4, ... up to all cores;
//                 scaling = MB/s at N / MB/s at 1
// MB = 10^6 bytes of input text. "MB/cpu-s" divides by the process's CPU time instead of the
// wall clock: on a machine shared with other jobs it is the speed the code has when it runs.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/timer.h"
#include "data/tokenizer/bpe.h"
#include "data/tokenizer/bpe_parallel.h"
#include "data/input/read_file.h"
#include "data/tokenizer/tokenizer_files.h"

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double best_cpu = 1e30;  // the least CPU time of the runs since it was last reset

// chunked: through ct_encode_parallel even with one thread, so the scaling column compares
// one code path with itself.
static double encode_once(const CtTokenizer *t, int threads, int chunked, const uint8_t *text, size_t len,
                          size_t *n_tokens) {
    CtEncoder **encoders = ct_alloc((size_t)threads * sizeof *encoders);
    for (int i = 0; i < threads; i++) encoders[i] = ct_encoder_new(t);
    CtIds ids = {0};
    double start = ct_time_now(), cpu = cpu_now();
    if (!chunked)
        ct_encode(encoders[0], text, len, 0, &ids);
    else
        ct_encode_parallel(t, encoders, threads, text, len, 0, &ids);
    double seconds = ct_time_now() - start;
    cpu = cpu_now() - cpu;
    if (cpu < best_cpu) best_cpu = cpu;
    *n_tokens = ids.len;
    ct_ids_free(&ids);
    for (int i = 0; i < threads; i++) ct_encoder_free(encoders[i]);
    ct_free(encoders);
    return seconds;
}

static double best_of(const CtTokenizer *t, int threads, int chunked, const uint8_t *text, size_t len, int repeat,
                      size_t *n_tokens) {
    double best = 1e30;
    for (int r = 0; r < repeat; r++) {
        double s = encode_once(t, threads, chunked, text, len, n_tokens);
        if (s < best) best = s;
    }
    return best;
}

// One thread, fresh encoder per run: the corpus as one text and as its lines.
static int one_tokenizer(const char *path, const uint8_t *corpus, size_t len, int repeat) {
    CtTokenizer t;
    if (ct_tokenizer_load(&t, path, NULL) != 0) {
        fprintf(stderr, "bench_tokenizer: %s\n", ct_error_message());
        return 1;
    }
    size_t tokens = 0;
    best_cpu = 1e30;
    double s = best_of(&t, 1, 0, corpus, len, repeat, &tokens);
    printf("%s: one text   %.2f MB  %.1f MB/s  %.1f MB/cpu-s  %zu tokens\n", path, (double)len / 1e6, len / s / 1e6,
           len / best_cpu / 1e6, tokens);
    double best = 1e30;
    for (int r = 0; r < repeat; r++) {
        CtEncoder *e = ct_encoder_new(&t);
        CtIds ids = {0};
        double start = ct_time_now();
        for (size_t pos = 0; pos < len;) {
            const uint8_t *nl = memchr(corpus + pos, '\n', len - pos);
            size_t end = nl ? (size_t)(nl - corpus) : len;
            ct_encode(e, corpus + pos, end - pos, 0, &ids);
            pos = end + 1;
        }
        double sec = ct_time_now() - start;
        if (sec < best) best = sec;
        tokens = ids.len;
        ct_ids_free(&ids);
        ct_encoder_free(e);
    }
    printf("%s: by line    %.2f MB  %.1f MB/s  %zu tokens\n", path, (double)len / 1e6, len / best / 1e6, tokens);
    ct_tokenizer_free(&t);
    return 0;
}

int main(int argc, char **argv) {
    const char *shared = "../shared/data", *only = NULL;
    int repeat = 5, copies = 8;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--shared") == 0) shared = argv[i + 1];
        else if (strcmp(argv[i], "--tokenizer") == 0) only = argv[i + 1];
        else if (strcmp(argv[i], "--repeat") == 0) repeat = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--copies") == 0) copies = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: bench_tokenizer [--shared DIR] [--repeat N] [--copies K] [--tokenizer FILE]\n");
            return 2;
        }
    }
    if (repeat < 1) repeat = 1;
    if (copies < 1) copies = 1;
    char path[4096];
    snprintf(path, sizeof path, "%s/corpora/nlp-corpus-40k.txt", shared);
    size_t len;
    uint8_t *corpus = (uint8_t *)ct_read_whole_file(path, &len);
    if (!corpus) {
        fprintf(stderr, "bench_tokenizer: %s (the shared data folder; pass --shared DIR)\n", ct_error_message());
        return 1;
    }
    if (only) {
        int rc = one_tokenizer(only, corpus, len, repeat);
        ct_free(corpus);
        return rc;
    }
    size_t big_len = len * (size_t)copies;
    uint8_t *big = ct_alloc(big_len);
    for (int k = 0; k < copies; k++) memcpy(big + (size_t)k * len, corpus, len);
    int max_threads = omp_get_max_threads();
    printf("tokenizer encode throughput, corpus %s (%.2f MB; large input = %d copies, %.1f MB), %d threads available\n", path,
           (double)len / 1e6, copies, (double)big_len / 1e6, max_threads);
    printf("%-12s %-8s %8s %10s %10s %12s %8s %10s\n", "vocabulary", "threads", "MB", "MB/s", "MB/s/thr", "bytes/token",
           "scaling", "MB/cpu-s");
    static const char *const names[3] = {"gpt2", "cl100k_base", "o200k_base"};
    for (int v = 0; v < 3; v++) {
        if (v == 0) snprintf(path, sizeof path, "%s/tokenizers/gpt2", shared);
        else snprintf(path, sizeof path, "%s/tokenizers/tiktoken/%s.tiktoken", shared, names[v]);
        CtTokenizer t;
        double load_start = ct_time_now();
        if (ct_tokenizer_load(&t, path, NULL) != 0) {
            fprintf(stderr, "bench_tokenizer: %s\n", ct_error_message());
            return 1;
        }
        double load_s = ct_time_now() - load_start;
        size_t tokens;
        best_cpu = 1e30;
        double s = best_of(&t, 1, 0, corpus, len, repeat, &tokens);
        printf("%-12s %-8s %8.2f %10.1f %10.1f %12.3f %8s %10.1f   (load %.2f s)\n", names[v], "1", (double)len / 1e6,
               len / s / 1e6, len / s / 1e6, (double)len / (double)tokens, "-", len / best_cpu / 1e6, load_s);
        double base = 0;
        for (int th = 1;; th *= 2) {
            if (th > max_threads) th = max_threads;
            double sb = best_of(&t, th, 1, big, big_len, repeat < 3 ? repeat : 3, &tokens);
            double mbs = big_len / sb / 1e6;
            if (th == 1) base = mbs;
            char label[16], scaling[16];
            snprintf(label, sizeof label, "%d large", th);
            snprintf(scaling, sizeof scaling, "%.2fx", mbs / base);
            printf("%-12s %-8s %8.2f %10.1f %10.1f %12.3f %8s\n", names[v], label, (double)big_len / 1e6, mbs, mbs / th,
                   (double)big_len / (double)tokens, scaling);
            if (th == max_threads) break;
        }
        ct_tokenizer_free(&t);
    }
    ct_free(big);
    ct_free(corpus);
    return 0;
}
