/* What the project's llama.cpp clients (tests/ref/llama_greedy.c, bench/llama_cpp_bench.c) do
 * first: load a GGUF on the CPU and make a context that computes in f32 throughout: an f32
 * key/value cache (llama.cpp's default is f16) and flash attention off (llama.cpp's CPU flash
 * attention rounds through f16: logits off by about 1e-3 relative, enough to flip a near-tie), as
 * ctrain computes on the CPU. Header-only: each client is one C file linked against libllama. */
#pragma once
#include "llama.h"

#include <stdint.h>
#include <stdio.h>

static void llama_client_quiet_log(enum ggml_log_level level, const char *text, void *user) {
    (void)user;
    if (level == GGML_LOG_LEVEL_ERROR || level == GGML_LOG_LEVEL_WARN) fputs(text, stderr);
}

/* The model at path, warnings and errors alone on stderr; NULL (said on stderr after `prog: `)
 * when llama.cpp refuses the file. */
static struct llama_model *llama_client_load(const char *prog, const char *path) {
    llama_log_set(llama_client_quiet_log, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    struct llama_model *model = llama_model_load_from_file(path, mp);
    if (!model) fprintf(stderr, "%s: llama.cpp could not load %s\n", prog, path);
    return model;
}

/* A context of n_ctx tokens taking batches of up to n_batch on `threads` threads, f32 throughout;
 * NULL (said on stderr) when llama.cpp cannot make it. */
static struct llama_context *llama_client_context(const char *prog, struct llama_model *model, const char *path,
                                                  int n_ctx, int n_batch, int threads) {
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)n_ctx;
    cp.n_batch = cp.n_ubatch = (uint32_t)n_batch;
    cp.n_threads = cp.n_threads_batch = threads;
    cp.type_k = cp.type_v = GGML_TYPE_F32;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) fprintf(stderr, "%s: llama.cpp could not create a context for %s\n", prog, path);
    return ctx;
}
