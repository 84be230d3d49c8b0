// ctrain bench train: time training steps (forward, backward, AdamW) of a model on random tokens.
#include <stdio.h>
#include <sys/resource.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "core/rng.h"
#include "core/timer.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/device.h"
#include "kernels/ops.h"
#include "optim/adamw.h"
#include "kernels/cpu/blas_setup.h"
#include "train/cli/commands.h"
#include "train/model/lora.h"
#include "train/loop/run_lora.h"
#include "train/model/model.h"
#include "train/loop/run_model.h"

static const CtOption options[] = {
    {"model", "PRESET", "model preset (default gpt2-124m); --model.KEY=VALUE changes one size", 0},
    {"config", "PATH", "a run config JSON to start from", 0},
    {"batch", "B", "sequences per step (default 4)", 0},
    {"seq", "T", "tokens per sequence (default 64)", 0},
    {"steps", "N", "timed steps (default 10)", 0},
    {"warmup", "N", "untimed steps first (default 1)", 0},
    {"threads", "N", "CPU threads (default 0: every core)", 0},
    {"device", "cpu|cuda|auto", "where to run (default cpu)", 0},
    {"precision", "auto|fp32|bf16", "on the GPU: bf16 activations and tensor-core products (auto) or fp32 throughout", 0},
    {"peak-tflops", "X", "the peak TFLOP/s MFU divides by (default on a GPU: its peak for the precision)", 0},
    {"matmul", "blas|portable", "matrix-product engine on the CPU (default blas)", 0},
    {"recompute", NULL, "recompute norms and MLP activations in backward", 0},
};

static int get_positive(const CtArgs *args, const char *name, long def, long max, int *out) {
    long v;
    if (ct_args_get_long(args, name, def, &v) != 0) return ct_error_prefix("--%s: ", name);
    if (v < 1 || v > max) return ct_error_set("--%s must be between 1 and %ld (got %ld)", name, max, v);
    *out = (int)v;
    return 0;
}

static double process_cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec + 1e-6 * ru.ru_stime.tv_usec;
}

static int run_bench_train(const CtArgs *args) {
    CtRunConfig rc;
    memset(&rc, 0, sizeof rc);
    if (ct_run_config_load(&rc, ct_args_get(args, "config"), args) != 0) return ct_cli_fail();
    if (ct_args_has(args, "model")) snprintf(rc.model.preset, sizeof rc.model.preset, "%s", ct_args_get(args, "model"));
    if (ct_args_has(args, "recompute")) rc.model.recompute = 1;
    int B = 0, T = 0, steps = 0, warmup = 1, threads = rc.run.threads;
    if (get_positive(args, "batch", 4, 1 << 20, &B) || get_positive(args, "seq", 64, 1 << 20, &T) ||
        get_positive(args, "steps", 10, 1 << 20, &steps))
        return ct_cli_fail();
    long w, th;
    if (ct_args_get_long(args, "warmup", 1, &w) != 0 || w < 0) return ct_cli_usage_error(&ct_cmd_bench_train, "--warmup must be 0 or more");
    warmup = (int)w;
    if (ct_args_get_long(args, "threads", threads, &th) != 0 || th < 0 || th > 4096)
        return ct_cli_usage_error(&ct_cmd_bench_train, "--threads must be 0 (every core) to 4096");
    threads = (int)th;
    const char *device = ct_args_has(args, "device") ? ct_args_get(args, "device") : "cpu";
    if (strcmp(device, "cpu") != 0 && strcmp(device, "cuda") != 0 && strcmp(device, "auto") != 0)
        return ct_cli_usage_error(&ct_cmd_bench_train, "--device must be cpu, cuda or auto (got '%s')", device);
    const CtOps *ops = ct_ops_select(device);
    if (ops) ops = ct_ops_with_precision(ops, ct_args_has(args, "precision") ? ct_args_get(args, "precision") : "auto");
    if (!ops) return ct_cli_fail();
    double peak_tflops = 0;
    if (ct_args_has(args, "peak-tflops") && (ct_args_get_double(args, "peak-tflops", 0, &peak_tflops) != 0 || peak_tflops <= 0))
        return ct_cli_usage_error(&ct_cmd_bench_train, "--peak-tflops must be a positive number");
    const char *engine = ct_args_get(args, "matmul");
    if (engine && strcmp(engine, "blas") != 0 && strcmp(engine, "portable") != 0)
        return ct_cli_usage_error(&ct_cmd_bench_train, "--matmul must be blas or portable (got '%s')", engine);
    ct_cpu_set_matmul_engine(engine && strcmp(engine, "portable") == 0 ? CT_MATMUL_PORTABLE : CT_MATMUL_BLAS);

    CtModelConfig mc;
    if (ct_model_config_from_run(&rc, &mc) != 0) return ct_cli_fail();
    if (T > mc.max_seq_len) {
        ct_error_set("--seq %d is longer than the model's max_seq_len %d", T, mc.max_seq_len);
        return ct_cli_fail();
    }
    int threads_used = ct_cpu_set_threads(threads);
    char line[512];
    ct_blas_describe(line, sizeof line);
    ct_log("bench train: %s; matmul %s", line, engine ? engine : "blas");

    CtModel m;
    const int lora = rc.lora.r > 0;  // --lora.r=8: adapters over a frozen (random) base, as a LoRA run trains
    CtLoraSpec spec;
    if (lora && ct_lora_spec_from_config(&rc, &spec) != 0) return ct_cli_fail();
    if (ct_model_create(&m, &mc, ct_ops_cpu(), B, T, rc.model.recompute | (lora ? CT_MODEL_FROZEN : 0)) != 0)
        return ct_cli_fail();
    ct_model_init(&m, (uint64_t)rc.run.seed);
    m.mtp_weight = (float)rc.train.mtp_weight;  // --model.mtp_depth=D: the modules run, as pretraining runs them
    if (lora) {
        if (ct_lora_attach(&m, &spec) != 0) {
            ct_model_free(&m);
            return ct_cli_fail();
        }
        ct_lora_init(&m, (uint64_t)rc.run.seed);
        ct_lora_report(&m);
    }
    CtAdamW opt;
    ct_adamw_init(&opt, m.n_train, 3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f);
    opt.seed = (uint64_t)rc.run.seed;
    if (!ops->host_memory) {  // built on the CPU, moved to the GPU
        ct_model_to_backend(&m, ops);
        ct_adamw_move_to(&opt, ops);
    }
    char params[32], act[32], saved[32];
    ct_format_count(params, sizeof params, (double)m.n_params);
    ct_format_bytes(act, sizeof act, (double)m.activation_bytes);
    ct_format_bytes(saved, sizeof saved, (double)m.recompute_saved_bytes);
    ct_log("model %s (%s): %s parameters, activations %s%s%s; B=%d T=%d", rc.model.preset, ct_arch_name(mc.arch),
           params, act, m.recompute ? ", recompute saves " : "", m.recompute ? saved : "", B, T);

    int32_t *tokens = ct_alloc((size_t)B * T * sizeof(int32_t)), *targets = ct_alloc((size_t)B * T * sizeof(int32_t));
    CtRng rng;
    ct_rng_seed(&rng, (uint64_t)rc.run.seed);
    for (int i = 0; i < B * T; i++) {
        tokens[i] = (int32_t)ct_rng_below(&rng, (uint32_t)mc.vocab_size);
        targets[i] = (int32_t)ct_rng_below(&rng, (uint32_t)mc.vocab_size);
    }
    CtBatch batch = {.tokens = tokens, .targets = targets, .B = B, .T = T};
    double total = 0, fastest = 1e30, cpu_start = 0;
    for (int s = 0; s < warmup + steps; s++) {
        if (s == warmup) cpu_start = process_cpu_seconds();
        double t0 = ct_time_now();
        ct_model_set_dropout(&m, 1, (uint64_t)rc.run.seed * 1000003u + (uint64_t)s);  // a training step
        ct_model_zero_grad(&m);
        float loss = ct_model_forward_train(&m, &batch);  // returns after the loss reached the host
        double t1 = ct_time_now();
        ct_model_backward(&m);
        ops->synchronize();  // a GPU queues its kernels: wait for them, so the phases are timed
        double t2 = ct_time_now();
        ct_adamw_step(&opt, m.train_params, m.train_grads);
        ops->synchronize();
        double t3 = ct_time_now();
        if (s >= warmup) {
            total += t3 - t0;
            if (t3 - t0 < fastest) fastest = t3 - t0;
        }
        ct_log("step %d%s: loss %.4f  %.1f ms (forward %.1f, backward %.1f, adamw %.1f)", s - warmup + 1,
               s < warmup ? " (warmup)" : "", loss, 1e3 * (t3 - t0), 1e3 * (t1 - t0), 1e3 * (t2 - t1), 1e3 * (t3 - t2));
    }
    double step_s = total / steps, tokens_per_s = (double)B * T / step_s;
    double step_flops = ct_model_flops_per_token(&mc, T, 0) * B * T, gflops = step_flops / step_s * 1e-9;
    // on a shared machine the fastest step and the CPU share we got tell how disturbed the mean is
    ct_log("fastest step %.1f ms (%.1f GFLOP/s); this process got %.0f%% of %d threads' time",
           1e3 * fastest, step_flops / fastest * 1e-9, 100 * (process_cpu_seconds() - cpu_start) / (total * threads_used),
           threads_used);
    // MFU = (6·N_matmul + 6·L·T·C) FLOPs per token × tokens/s ÷ peak (train/model/model.h); the peak is
    // --peak-tflops, or on a GPU its published peak for the products' precision (none is
    // assumed for a CPU here).
    double peak = peak_tflops > 0 ? peak_tflops * 1e12 : ops->host_memory ? 0 : ct_cuda_peak_flops(0, ct_ops_products_bf16(ops));
    char mfu[64] = "";
    if (peak > 0) snprintf(mfu, sizeof mfu, " mfu=%.1f%% peak_tflops=%.1f", 100 * gflops * 1e9 / peak, peak * 1e-12);
    printf("ms_per_step=%.1f tokens_per_s=%.0f gflops=%.1f peak_mb=%.1f device=%s%s\n", 1e3 * step_s, tokens_per_s, gflops,
           (double)ops->memory_peak() / (1024.0 * 1024.0), ops->name, mfu);
    ct_free(tokens);
    ct_free(targets);
    ct_adamw_free(&opt);
    ct_model_free(&m);
    return 0;
}

const CtCommand ct_cmd_bench_train = {
    .name = "bench train",
    .summary = "time training steps of a model on random tokens",
    .usage = "ctrain bench train [--model PRESET] [--batch B] [--seq T] [--steps N] [--threads N] [--device cpu|cuda] [--precision fp32|bf16]",
    .description = "Runs forward, backward and an AdamW step on random tokens and ends with one line:\n"
                   "  ms_per_step=... tokens_per_s=... gflops=... peak_mb=...\n"
                   "gflops counts 6·N (N = weights of every matrix product, output head included) plus the causal\n"
                   "attention term 6·n_layer·T·d_model, per token.",
    .options = options,
    .n_options = (int)(sizeof options / sizeof options[0]),
    .allow_overrides = 1,
    .min_positionals = 0,
    .max_positionals = 0,
    .run = run_bench_train,
};
