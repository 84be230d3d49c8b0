// ctrain bench matmul: the matrix-product ceiling of this machine, through the op table.
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "core/rng.h"
#include "core/timer.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops.h"
#include "kernels/cpu/blas_setup.h"
#include "train/cli/commands.h"

static const CtOption options[] = {
    {"n", "N", "rows of the input (tokens; default 256)", 0},
    {"c", "C", "input channels (default 768)", 0},
    {"oc", "OC", "output channels (default 3072)", 0},
    {"seconds", "S", "how long to repeat the product (default 2)", 0},
    {"threads", "N", "CPU threads (default: every core)", 0},
    {"matmul", "blas|portable", "matrix-product engine (default blas)", 0},
};

static int run_bench_matmul(const CtArgs *args) {
    long N, C, OC, threads;
    double seconds;
    if (ct_args_get_long(args, "n", 256, &N) || ct_args_get_long(args, "c", 768, &C) ||
        ct_args_get_long(args, "oc", 3072, &OC) || ct_args_get_long(args, "threads", 0, &threads) ||
        ct_args_get_double(args, "seconds", 2.0, &seconds))
        return ct_cli_usage_error(&ct_cmd_bench_matmul, "%s", ct_error_message());
    if (N < 1 || C < 1 || OC < 1 || N * C > (1L << 30) || OC * C > (1L << 30) || N * OC > (1L << 30))
        return ct_cli_usage_error(&ct_cmd_bench_matmul, "--n, --c, --oc must be positive and their products below 2^30");
    const char *engine = ct_args_get(args, "matmul");
    if (engine && strcmp(engine, "blas") != 0 && strcmp(engine, "portable") != 0)
        return ct_cli_usage_error(&ct_cmd_bench_matmul, "--matmul must be blas or portable (got '%s')", engine);
    ct_cpu_set_matmul_engine(engine && strcmp(engine, "portable") == 0 ? CT_MATMUL_PORTABLE : CT_MATMUL_BLAS);
    ct_cpu_set_threads((int)threads);
    char line[512];
    ct_blas_describe(line, sizeof line);
    ct_log("bench matmul: %s; matmul %s", line, engine ? engine : "blas");
    float *x = ct_alloc(sizeof(float) * (size_t)(N * C)), *w = ct_alloc(sizeof(float) * (size_t)(OC * C));
    float *out = ct_alloc(sizeof(float) * (size_t)(N * OC));
    CtRng rng;
    ct_rng_seed(&rng, 1);
    ct_rng_fill_normal(&rng, x, (size_t)(N * C), 0, 1);
    ct_rng_fill_normal(&rng, w, (size_t)(OC * C), 0, 1);
    const CtOps *ops = ct_ops_cpu();
    ops->matmul_forward(out, x, w, NULL, (int)N, (int)C, (int)OC);  // warm up
    int reps = 0;
    double t0 = ct_time_now(), t;
    do {
        ops->matmul_forward(out, x, w, NULL, (int)N, (int)C, (int)OC);
        reps++;
        t = ct_time_now() - t0;
    } while (t < seconds);
    printf("n=%ld c=%ld oc=%ld ms=%.3f gflops=%.1f\n", N, C, OC, 1e3 * t / reps, 2.0 * N * C * OC * reps / t * 1e-9);
    ct_free(x);
    ct_free(w);
    ct_free(out);
    return 0;
}

const CtCommand ct_cmd_bench_matmul = {
    .name = "bench matmul",
    .summary = "measure the matrix-product speed of this machine (the ceiling for bench train)",
    .usage = "ctrain bench matmul [--n N] [--c C] [--oc OC] [--seconds S] [--threads N] [--matmul blas|portable]",
    .description = "Repeats out[N,OC] = inp[N,C]·W[OC,C]ᵀ, the product of a linear layer, and prints\n"
                   "  n=... c=... oc=... ms=... gflops=...   (2·N·C·OC FLOPs per product)",
    .options = options,
    .n_options = (int)(sizeof options / sizeof options[0]),
    .allow_overrides = 0,
    .min_positionals = 0,
    .max_positionals = 0,
    .run = run_bench_matmul,
};
