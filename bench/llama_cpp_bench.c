/* The llama.cpp side of `ctrain bench generate` (bench/generate_vs_llamacpp.sh; built by
 * `scripts/build_llama_cpp.sh --bench` against the libllama the GGUF tests use): loads a GGUF as
 * every llama.cpp client does, feeds a prompt of P random token ids in one llama_decode (prefill)
 * and decodes N tokens greedily, one llama_decode each, on T threads, from an empty cache: one
 * untimed round, then R timed. The context computes in f32 throughout (tests/ref/llama_client.h:
 * an f32 key/value cache, flash attention off), so that the work is ctrain's.
 *
 *   llama_cpp_bench MODEL.gguf [--prompt-len 64] [--gen 64] [--rounds 3] [--threads 2] [--seed 1337]
 *
 * Prints, as `ctrain bench generate` does, one line (the memory bandwidth is ctrain's: the
 * script takes mem_gbs from there):
 *   weights=F32 prompt_len=... gen=... threads=... prefill_tokens_per_s=... prefill_best=...
 *   decode_tokens_per_s=... decode_best=... weight_mb=... decode_gbs=...
 * weight_mb: the bytes of the GGUF's matrices a decoded token reads (every tensor of two or more
 * dimensions but the embedding tables, which are looked up one row at a time; the token
 * embedding counts when the file has no `output` tensor, since the head then reads it whole). */
#define _POSIX_C_SOURCE 200809L
#include "gguf.h"
#include "llama.h"
#include "bench/bench_clock.h"
#include "tests/ref/llama_client.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int argmax(const float *logits, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

/* The matrices' bytes (see above) and the type name of the largest one; -1 when the file does not parse. */
static double matrix_bytes(const char *path, char *type, size_t type_size) {
    struct gguf_init_params params = {.no_alloc = true, .ctx = NULL};
    struct gguf_context *g = gguf_init_from_file(path, params);
    if (!g) return -1;
    const int tied = gguf_find_tensor(g, "output.weight") < 0;
    double bytes = 0;
    size_t largest = 0;
    for (int64_t i = 0; i < gguf_get_n_tensors(g); i++) {
        const char *name = gguf_get_tensor_name(g, i);
        const int64_t *ne = gguf_get_tensor_ne(g, i);
        if (ne[1] <= 1) continue;  /* norms, biases, RoPE factors: vectors */
        if (strcmp(name, "position_embd.weight") == 0 || (!tied && strcmp(name, "token_embd.weight") == 0)) continue;
        const size_t size = gguf_get_tensor_size(g, i);
        bytes += (double)size;
        if (size > largest) {
            largest = size;
            snprintf(type, type_size, "%s", ggml_type_name(gguf_get_tensor_type(g, i)));
        }
    }
    gguf_free(g);
    for (char *c = type; *c; c++)
        if (*c >= 'a' && *c <= 'z') *c = (char)(*c - 'a' + 'A');
    return bytes;
}

static int get_int(int argc, char **argv, int *i, int *out) {
    if (*i + 1 >= argc) return -1;
    char *end;
    long v = strtol(argv[++*i], &end, 10);
    if (*end || v < 1 || v > (1 << 20)) return -1;
    *out = (int)v;
    return 0;
}

int main(int argc, char **argv) {
    int P = 64, gen = 64, rounds = 3, threads = 2, seed = 1337;
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.gguf [--prompt-len P] [--gen N] [--rounds R] [--threads T] [--seed S]\n", argv[0]);
        return 2;
    }
    const char *path = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *name = argv[i];
        int *v = !strcmp(argv[i], "--prompt-len") ? &P
                 : !strcmp(argv[i], "--gen")      ? &gen
                 : !strcmp(argv[i], "--rounds")   ? &rounds
                 : !strcmp(argv[i], "--threads")  ? &threads
                 : !strcmp(argv[i], "--seed")     ? &seed
                                                  : NULL;
        if (!v || get_int(argc, argv, &i, v) != 0) {
            fprintf(stderr, "llama_cpp_bench: %s: an unknown option, or its value is not a whole number from 1 to %d\n",
                    name, 1 << 20);
            return 2;
        }
    }
    char type[32] = "?";
    const double bytes = matrix_bytes(path, type, sizeof type);
    if (bytes < 0) {
        fprintf(stderr, "llama_cpp_bench: %s: not a GGUF file that ggml can read\n", path);
        return 1;
    }

    struct llama_model *model = llama_client_load("llama_cpp_bench", path);
    if (!model) return 1;
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    if (P + gen > llama_model_n_ctx_train(model)) {
        fprintf(stderr, "llama_cpp_bench: --prompt-len %d + --gen %d is more than %s's context (%d)\n", P, gen, path,
                llama_model_n_ctx_train(model));
        return 1;
    }
    struct llama_context *ctx = llama_client_context("llama_cpp_bench", model, path, P + gen + 1, P, threads);
    if (!ctx) return 1;
    llama_token *prompt = malloc(sizeof(llama_token) * (size_t)P);
    uint64_t state = (uint64_t)seed * 0x9E3779B97F4A7C15ull + 1;
    for (int i = 0; i < P; i++) {  /* random ids (splitmix64): the values do not change the work */
        uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        prompt[i] = (llama_token)((z ^ (z >> 31)) % (uint64_t)n_vocab);
    }
    double *prefill = malloc(sizeof(double) * (size_t)rounds), *decode = malloc(sizeof(double) * (size_t)rounds);
    for (int r = -1; r < rounds; r++) {
        llama_memory_clear(llama_get_memory(ctx), true);
        double t0 = bench_now_s();
        if (llama_decode(ctx, llama_batch_get_one(prompt, P)) != 0) {
            fprintf(stderr, "llama_cpp_bench: llama_decode failed on the prompt\n");
            return 1;
        }
        llama_token next = argmax(llama_get_logits_ith(ctx, -1), n_vocab);
        double t1 = bench_now_s();
        for (int i = 0; i < gen; i++) {
            if (llama_decode(ctx, llama_batch_get_one(&next, 1)) != 0) {
                fprintf(stderr, "llama_cpp_bench: llama_decode failed at token %d\n", i);
                return 1;
            }
            next = argmax(llama_get_logits_ith(ctx, -1), n_vocab);
        }
        double t2 = bench_now_s();
        if (r >= 0) {
            prefill[r] = P / (t1 - t0);
            decode[r] = gen / (t2 - t1);
        }
        fprintf(stderr, "round %d%s: prefill %.1f ms, decode %.1f ms (%.2f ms/token)\n", r + 1, r < 0 ? " (warmup)" : "",
                1e3 * (t1 - t0), 1e3 * (t2 - t1), 1e3 * (t2 - t1) / gen);
    }
    double prefill_best = 0, decode_best = 0;
    for (int r = 0; r < rounds; r++) {
        if (prefill[r] > prefill_best) prefill_best = prefill[r];
        if (decode[r] > decode_best) decode_best = decode[r];
    }
    const double prefill_median = bench_median(prefill, rounds), decode_median = bench_median(decode, rounds);
    printf("weights=%s prompt_len=%d gen=%d threads=%d prefill_tokens_per_s=%.1f prefill_best=%.1f "
           "decode_tokens_per_s=%.2f decode_best=%.2f weight_mb=%.1f decode_gbs=%.2f\n", type, P, gen, threads,
           prefill_median, prefill_best, decode_median, decode_best, bytes * 1e-6, bytes * decode_median * 1e-9);
    free(prefill);
    free(decode);
    free(prompt);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
