// ctrain bench generate: prompt processing (prefill) and greedy decoding with the key/value cache
// (train/model/generate.h), tokens/s with fp32 weights and with bf16 copies of the products'
// weights (kernels/cpu/bf16_weights.h), beside the machine's memory bandwidth measured in the
// same process on the same threads: decoding one token reads every weight once, so on a CPU it
// is bound by memory, and weight bytes × tokens/s against that bandwidth says how close it runs.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "core/rng.h"
#include "core/timer.h"
#include "kernels/cpu/bf16_weights.h"
#include "kernels/cpu/blas_setup.h"
#include "kernels/cpu/cpu_ops.h"
#include "train/cli/commands.h"
#include "train/interop/checkpoint_io.h"
#include "train/loop/run_model.h"
#include "train/model/generate.h"
#include "train/model/model.h"

static const CtOption options[] = {
    {"checkpoint", "FILE", "a checkpoint to time (its weights; default: --model with random weights)", 0},
    {"model", "PRESET", "model preset with random weights (default llama-tiny); --model.KEY=VALUE changes one size", 0},
    {"prompt-len", "P", "prompt tokens processed in one pass (random ids; default 64)", 0},
    {"gen", "N", "tokens decoded greedily after the prompt, one pass each (default 64)", 0},
    {"rounds", "R", "timed rounds per weight type, after one untimed (default 3)", 0},
    {"weights", "fp32|bf16|both", "weights the products read (default both)", 0},
    {"threads", "N", "CPU threads (default 0: every core)", 0},
    {"seed", "S", "seed of the random weights and prompt (default 1337)", 0},
};

// The machine's memory bandwidth in GB/s (10⁹ bytes), STREAM's way: the best of a few passes over
// arrays far larger than the caches, on `threads` OpenMP threads, counting the bytes each kernel
// names (copy b = a: 2 arrays; triad a = b + s·c: 3; read Σ a: 1, what decoding does to weights).
typedef struct {
    double copy, triad, read;
} Bandwidth;

static Bandwidth measure_bandwidth(int threads) {
    const long n = 16L << 20;  // 64 MiB per array: twice a 32 MiB L3
    float *a = ct_alloc(sizeof(float) * (size_t)n), *b = ct_alloc(sizeof(float) * (size_t)n),
          *c = ct_alloc(sizeof(float) * (size_t)n);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (long i = 0; i < n; i++) a[i] = 1.0f, b[i] = 2.0f, c[i] = 0.5f;  // first touch on the threads that use them
    Bandwidth best = {0, 0, 0};
    volatile float sink = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = ct_time_now();
#pragma omp parallel for num_threads(threads) schedule(static)
        for (long i = 0; i < n; i++) b[i] = a[i];
        double t1 = ct_time_now();
#pragma omp parallel for num_threads(threads) schedule(static)
        for (long i = 0; i < n; i++) a[i] = b[i] + 3.0f * c[i];
        double t2 = ct_time_now();
        float sum = 0;
#pragma omp parallel for simd num_threads(threads) schedule(static) reduction(+ : sum)
        for (long i = 0; i < n; i++) sum += a[i];
        double t3 = ct_time_now();
        sink += sum;
        const double bytes = sizeof(float) * (double)n * 1e-9;
        if (2 * bytes / (t1 - t0) > best.copy) best.copy = 2 * bytes / (t1 - t0);
        if (3 * bytes / (t2 - t1) > best.triad) best.triad = 3 * bytes / (t2 - t1);
        if (bytes / (t3 - t2) > best.read) best.read = bytes / (t3 - t2);
    }
    (void)sink;
    ct_free(a);
    ct_free(b);
    ct_free(c);
    return best;
}

static int by_value(const void *x, const void *y) {
    const double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, by_value);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Greedy: ct_sample at temperature 0 (the first maximum), as generate --temperature 0 picks.
static int32_t argmax(const float *logits, int V) {
    static const CtSampling greedy = {.temperature = 0, .top_k = 0, .top_p = 1};
    return ct_sample(logits, V, &greedy, NULL);
}

typedef struct {
    double prefill_median, prefill_best, decode_median, decode_best;  // tokens/s
} Speeds;

// 1 + rounds rounds (the first untimed) of: the prompt in one pass, then `gen` greedy tokens one
// pass each, from an empty cache.
static Speeds time_rounds(CtModel *m, const int32_t *prompt, int P, int gen, int rounds) {
    CtGenerator g;
    ct_generator_init(&g, m, P + gen);
    double *prefill = ct_alloc(sizeof(double) * (size_t)rounds), *decode = ct_alloc(sizeof(double) * (size_t)rounds);
    const int V = m->config.vocab_size;
    for (int r = -1; r < rounds; r++) {
        ct_generator_reset(&g);
        double t0 = ct_time_now();
        int32_t next = argmax(ct_generator_feed_prompt(&g, prompt, P), V);
        double t1 = ct_time_now();
        for (int i = 0; i < gen; i++) next = argmax(ct_generator_feed(&g, next), V);
        double t2 = ct_time_now();
        if (r >= 0) {
            prefill[r] = P / (t1 - t0);
            decode[r] = gen / (t2 - t1);
        }
        ct_log("round %d%s: prefill %.1f ms, decode %.1f ms (%.2f ms/token)", r + 1, r < 0 ? " (warmup)" : "",
               1e3 * (t1 - t0), 1e3 * (t2 - t1), 1e3 * (t2 - t1) / gen);
    }
    ct_generator_free(&g);
    Speeds s = {0};
    for (int r = 0; r < rounds; r++) {
        if (prefill[r] > s.prefill_best) s.prefill_best = prefill[r];
        if (decode[r] > s.decode_best) s.decode_best = decode[r];
    }
    s.prefill_median = median(prefill, rounds);
    s.decode_median = median(decode, rounds);
    ct_free(prefill);
    ct_free(decode);
    return s;
}

static int get_count(const CtArgs *args, const char *name, long def, long min, long max, long *out) {
    if (ct_args_get_long(args, name, def, out) != 0 || *out < min || *out > max)
        return ct_cli_usage_error(&ct_cmd_bench_generate, "--%s must be a whole number from %ld to %ld", name, min, max);
    return 0;
}

// The model: a checkpoint's, or a preset's with random weights. 0, or -1 + error.
static int load_model(const CtArgs *args, long seed, CtModel *m, char *name, size_t name_size) {
    const char *ckpt = ct_args_get(args, "checkpoint");
    if (ckpt) {
        if (ct_args_has(args, "model")) return ct_error_set("--checkpoint and --model exclude each other");
        CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
        int rc = ct_checkpoint_load(ckpt, m, ct_ops_cpu(), 1, 1, CT_MODEL_FROZEN, NULL, &meta);
        ct_checkpoint_meta_free(&meta);
        snprintf(name, name_size, "%s", ckpt);
        return rc;
    }
    CtRunConfig rc;
    memset(&rc, 0, sizeof rc);
    if (ct_run_config_load(&rc, NULL, args) != 0) return -1;
    snprintf(rc.model.preset, sizeof rc.model.preset, "%s", ct_args_has(args, "model") ? ct_args_get(args, "model")
                                                                                      : "llama-tiny");
    CtModelConfig mc;
    if (ct_model_config_from_run(&rc, &mc) != 0 || ct_model_create(m, &mc, ct_ops_cpu(), 1, 1, CT_MODEL_FROZEN) != 0)
        return -1;
    ct_model_init(m, (uint64_t)seed);
    snprintf(name, name_size, "%s (random weights)", rc.model.preset);
    return 0;
}

static int run_bench_generate(const CtArgs *args) {
    long P, gen, rounds, threads, seed;
    int usage = get_count(args, "prompt-len", 64, 1, 1 << 20, &P);
    if (!usage) usage = get_count(args, "gen", 64, 1, 1 << 20, &gen);
    if (!usage) usage = get_count(args, "rounds", 3, 1, 1000, &rounds);
    if (!usage) usage = get_count(args, "threads", 0, 0, 4096, &threads);
    if (!usage) usage = get_count(args, "seed", 1337, 0, 1L << 62, &seed);
    if (usage) return usage;
    const char *weights = ct_args_has(args, "weights") ? ct_args_get(args, "weights") : "both";
    const int fp32 = !strcmp(weights, "fp32") || !strcmp(weights, "both"), bf16 = !strcmp(weights, "bf16") ||
                                                                               !strcmp(weights, "both");
    if (!fp32 && !bf16) return ct_cli_usage_error(&ct_cmd_bench_generate, "--weights must be fp32, bf16 or both (got '%s')",
                                                  weights);
    CtModel m;
    char name[512];
    if (load_model(args, seed, &m, name, sizeof name) != 0) return ct_cli_fail();
    const CtModelConfig *c = &m.config;
    if (ct_generation_check(c) != 0 || P + gen > c->max_seq_len) {
        if (P + gen > c->max_seq_len)
            ct_error_set("--prompt-len %ld + --gen %ld is %ld tokens, more than the model's context (max_seq_len %d)", P,
                         gen, P + gen, c->max_seq_len);
        ct_error_prefix("%s: ", name);
        ct_model_free(&m);
        return ct_cli_fail();
    }
    const int threads_used = ct_cpu_set_threads((int)threads);
    char line[512];
    ct_blas_describe(line, sizeof line);
    ct_log("bench generate: %s", line);
    // the weights a decoded token reads: those of every product (ct_model_flops_per_token's N_matmul);
    // embeddings are lookups of one row, norms a few vectors
    const double n_matmul = ct_model_flops_per_token(c, 0, 0) / 6;
    ct_log("model %s: %zu parameters, %.0f in products (read once per decoded token), vocab_size %d, max_seq_len %d; "
           "prompt %ld, gen %ld, %d thread%s", name, m.n_params, n_matmul, c->vocab_size, c->max_seq_len, P, gen,
           threads_used, threads_used == 1 ? "" : "s");
    const Bandwidth bw = measure_bandwidth(threads_used);
    double mem = bw.copy > bw.triad ? bw.copy : bw.triad;
    if (bw.read > mem) mem = bw.read;
    ct_log("memory bandwidth (%d thread%s, best of 5): copy %.1f GB/s, triad %.1f GB/s, read %.1f GB/s", threads_used,
           threads_used == 1 ? "" : "s", bw.copy, bw.triad, bw.read);

    int32_t *prompt = ct_alloc(sizeof(int32_t) * (size_t)P);
    CtRng rng;
    ct_rng_seed(&rng, (uint64_t)seed);
    for (long i = 0; i < P; i++) prompt[i] = (int32_t)ct_rng_below(&rng, (uint32_t)c->vocab_size);
    for (int pass = 0; pass < 2; pass++) {
        const int as_bf16 = pass == 1;
        if (as_bf16 ? !bf16 : !fp32) continue;
        const CtOps *cpu = m.ops;
        if (as_bf16) {  // every product of the pass reads bf16 copies: one declaration holds them all
            ct_cpu_keep_bf16_weights(m.params, m.n_params);
            m.ops = ct_ops_cpu_bf16_weights();
        }
        ct_log("weights %s", as_bf16 ? "bf16 (copies of every product's weights; activations, cache and sums fp32)"
                                     : "fp32");
        const Speeds s = time_rounds(&m, prompt, (int)P, (int)gen, (int)rounds);
        if (as_bf16) {
            m.ops = cpu;
            ct_cpu_forget_bf16_weights(m.params);
        }
        const double bytes = n_matmul * (as_bf16 ? 2 : 4), gbs = bytes * s.decode_median * 1e-9;
        printf("weights=%s prompt_len=%ld gen=%ld threads=%d prefill_tokens_per_s=%.1f prefill_best=%.1f "
               "decode_tokens_per_s=%.2f decode_best=%.2f weight_mb=%.1f decode_gbs=%.2f mem_gbs=%.2f "
               "mem_fraction=%.3f\n", as_bf16 ? "bf16" : "fp32", P, gen, threads_used, s.prefill_median,
               s.prefill_best, s.decode_median, s.decode_best, bytes * 1e-6, gbs, mem, gbs / mem);
        fflush(stdout);
    }
    ct_free(prompt);
    ct_model_free(&m);
    return 0;
}

const CtCommand ct_cmd_bench_generate = {
    .name = "bench generate",
    .summary = "time prompt processing and greedy decoding (key/value cache) against the memory bandwidth",
    .usage = "ctrain bench generate [--checkpoint FILE | --model PRESET] [--prompt-len P] [--gen N] [--rounds R] "
             "[--weights fp32|bf16|both] [--threads N]",
    .description =
        "Feeds a prompt of P random token ids in one pass (prefill), then decodes N tokens greedily, one\n"
        "pass each with the key/value cache, from an empty cache: one untimed round, then R timed. Before,\n"
        "it measures the memory bandwidth on the same threads (STREAM-like copy, triad and read over\n"
        "64 MiB arrays, best of 5; stderr). One line per weight type:\n"
        "  weights=fp32 ... prefill_tokens_per_s=... prefill_best=... decode_tokens_per_s=... decode_best=...\n"
        "  weight_mb=... decode_gbs=... mem_gbs=... mem_fraction=...\n"
        "(medians and bests over the rounds). weight_mb: the bytes of the weights of every matrix product,\n"
        "which each decoded token reads once; decode_gbs = weight bytes × the median decode tokens/s;\n"
        "mem_gbs: the best of copy, triad and read; mem_fraction = decode_gbs / mem_gbs. bf16: the products\n"
        "read bf16 copies of their weights (rounded to nearest even; activations, the cache and the sums\n"
        "stay fp32), half the bytes; their product is the few-rows kernel for any number of rows, so bf16\n"
        "speeds up decoding, not the prompt. bench/generate_vs_llamacpp.sh puts these beside llama.cpp's.",
    .options = options,
    .n_options = (int)(sizeof options / sizeof options[0]),
    .allow_overrides = 1,
    .min_positionals = 0,
    .max_positionals = 0,
    .run = run_bench_generate,
};
