/* The llama.cpp side of the GGUF check (tests/test_hf_gguf.c, built by scripts/build_llama_cpp.sh
 * against the libllama of the llama-cpp-python sdist): loads a GGUF the way every llama.cpp client
 * does, tokenizes the prompt with the GGUF's own tokenizer and decodes greedily (argmax of the
 * logits, the first maximum on ties, as ctrain's generate does at temperature 0).
 *
 *   llama_greedy MODEL.gguf N_NEW PROMPT [--bos] [--logits FILE]
 *
 * Prints two lines: `prompt: <ids>` and `tokens: <ids>` (the new tokens; it stops before an
 * end-of-generation token, as ctrain generate does, or after N_NEW tokens). Exit 1 when llama.cpp
 * refuses the file. --logits FILE: the logits of every step (float32 [steps, n_vocab], one row
 * per decode, the last before the end-of-generation token when there is one) are written to FILE
 * for the test to measure. The key/value cache is kept in f32 (llama.cpp's default is f16) and
 * flash attention is off (llama.cpp's CPU flash attention rounds through f16: logits off by about
 * 1e-3 relative, enough to flip a near-tie), so that an f32 GGUF is computed in f32 throughout,
 * as ctrain computes it on the CPU. */
#include "llama.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void quiet_log(enum ggml_log_level level, const char *text, void *user)
{
    (void)user;
    if (level == GGML_LOG_LEVEL_ERROR || level == GGML_LOG_LEVEL_WARN) fputs(text, stderr);
}

static int argmax(const float *logits, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL.gguf N_NEW PROMPT [--bos]\n", argv[0]);
        return 2;
    }
    const char *path = argv[1];
    int n_new = atoi(argv[2]);
    const char *prompt = argv[3];
    int add_bos = 0;
    const char *logits_path = NULL;
    for (int i = 4; i < argc; i++) {
        if (strcmp(argv[i], "--bos") == 0) add_bos = 1;
        else if (strcmp(argv[i], "--logits") == 0 && i + 1 < argc) logits_path = argv[++i];
    }
    FILE *logits_file = NULL;
    if (logits_path && !(logits_file = fopen(logits_path, "wb"))) {
        fprintf(stderr, "llama_greedy: cannot write %s\n", logits_path);
        return 1;
    }

    llama_log_set(quiet_log, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    struct llama_model *model = llama_model_load_from_file(path, mp);
    if (!model) {
        fprintf(stderr, "llama_greedy: llama.cpp could not load %s\n", path);
        return 1;
    }
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    int n_vocab = llama_vocab_n_tokens(vocab);

    int len = (int)strlen(prompt);
    int n_prompt = -llama_tokenize(vocab, prompt, len, NULL, 0, add_bos, 1);
    if (n_prompt <= 0) {
        fprintf(stderr, "llama_greedy: the prompt tokenizes to no tokens\n");
        return 1;
    }
    llama_token *tokens = malloc(sizeof(llama_token) * (size_t)(n_prompt + n_new + 1));
    if (!tokens || llama_tokenize(vocab, prompt, len, tokens, n_prompt, add_bos, 1) != n_prompt) {
        fprintf(stderr, "llama_greedy: tokenizing the prompt failed\n");
        return 1;
    }

    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)(n_prompt + n_new + 1);
    cp.n_batch = (uint32_t)(n_prompt + 1);
    cp.n_threads = cp.n_threads_batch = 2;
    cp.type_k = cp.type_v = GGML_TYPE_F32;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) {
        fprintf(stderr, "llama_greedy: llama.cpp could not create a context for %s\n", path);
        return 1;
    }

    printf("prompt:");
    for (int i = 0; i < n_prompt; i++) printf(" %d", tokens[i]);
    printf("\ntokens:");
    struct llama_batch batch = llama_batch_get_one(tokens, n_prompt);
    for (int i = 0; i < n_new; i++) {
        if (llama_decode(ctx, batch) != 0) {
            fprintf(stderr, "\nllama_greedy: llama_decode failed\n");
            return 1;
        }
        const float *logits = llama_get_logits_ith(ctx, -1);
        if (logits_file && fwrite(logits, sizeof(float), (size_t)n_vocab, logits_file) != (size_t)n_vocab) {
            fprintf(stderr, "\nllama_greedy: writing %s failed\n", logits_path);
            return 1;
        }
        llama_token next = argmax(logits, n_vocab);
        if (llama_vocab_is_eog(vocab, next)) break;
        printf(" %d", next);
        tokens[n_prompt + i] = next;
        batch = llama_batch_get_one(&tokens[n_prompt + i], 1);
    }
    printf("\n");
    if (logits_file && fclose(logits_file) != 0) {
        fprintf(stderr, "llama_greedy: writing %s failed\n", logits_path);
        return 1;
    }
    free(tokens);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
