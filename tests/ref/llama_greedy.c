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
 * for the test to measure. The context computes in f32 throughout (llama_client.h), so that an
 * f32 GGUF is computed as ctrain computes it on the CPU. */
#include "llama_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

    struct llama_model *model = llama_client_load("llama_greedy", path);
    if (!model) return 1;
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

    struct llama_context *ctx = llama_client_context("llama_greedy", model, path, n_prompt + n_new + 1, n_prompt + 1, 2);
    if (!ctx) return 1;

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
