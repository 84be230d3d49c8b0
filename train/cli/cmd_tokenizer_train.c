// ctrain tokenizer train: learn a byte-level BPE from text and save it as tokenizer.json.
#include <stdio.h>
#include <string.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "core/timer.h"
#include "data/tokenizer/bpe_train.h"
#include "data/input/text_input.h"
#include "data/tokenizer/tokenizer_hf.h"
#include "train/cli/commands.h"
#include "train/cli/tokenizer_cli.h"

static const CtOption options[] = {
    {"input", "FILES", "training text: .txt (whole file), .jsonl ({\"text\": ...} lines) or .jsonl.zst", 1},
    {"vocab-size", "N", "tokens in the vocabulary, counting the 256 bytes and the special tokens", 0},
    {"pattern", "NAME", "pre-tokenization: gpt2, cl100k, o200k or qwen2 (default: gpt2)", 0},
    {"special", "TOKENS", "special tokens, given the last ids (default: <|endoftext|>)", 1},
    {"out", "PATH", "where to write the tokenizer (Hugging Face tokenizer.json)", 0},
    {"threads", "N", "threads for counting (default: all cores); the result does not depend on it", 0},
    {"quiet", NULL, "no progress bars", 0},
};

static int add_document(void *ctx, const uint8_t *text, size_t len) {
    ct_bpe_trainer_add_document(ctx, text, len);
    return 0;
}

static int run_tokenizer_train(const CtArgs *args) {
    const CtCommand *cmd = &ct_cmd_tokenizer_train;
    const char *inputs[CT_ARGS_MAX];
    int n_inputs = ct_args_get_all(args, "input", inputs, CT_ARGS_MAX);
    const char *out = ct_args_get(args, "out");
    long vocab_size;
    if (n_inputs == 0) return ct_cli_usage_error(cmd, "--input FILES is required");
    if (!out) return ct_cli_usage_error(cmd, "--out PATH is required");
    if (!ct_args_has(args, "vocab-size")) return ct_cli_usage_error(cmd, "--vocab-size N is required");
    if (ct_args_get_long(args, "vocab-size", 0, &vocab_size) != 0 || vocab_size < 256 || vocab_size > (1 << 24))
        return ct_cli_usage_error(cmd, "--vocab-size must be an integer from 256 to 16777216");
    CtBpeTrainOptions opt = {.pattern = CT_PATTERN_GPT2, .vocab_size = (int32_t)vocab_size, .progress = !ct_args_has(args, "quiet")};
    if (ct_args_has(args, "pattern") && ct_pattern_from_name(ct_args_get(args, "pattern"), &opt.pattern) != 0)
        return ct_cli_usage_error(cmd, "%s", ct_error_message());
    if (ct_cli_threads(args, &opt.threads) != 0) return ct_cli_usage_error(cmd, "%s", ct_error_message());
    const char *specials[CT_ARGS_MAX];
    static const char *default_special = "<|endoftext|>";
    opt.n_specials = ct_args_get_all(args, "special", specials, CT_ARGS_MAX);
    opt.specials = opt.n_specials ? specials : &default_special;
    if (!ct_args_has(args, "special")) opt.n_specials = 1;
    for (int i = 0; i < opt.n_specials; i++)
        if (!opt.specials[i][0]) return ct_cli_usage_error(cmd, "a special token cannot be empty");

    ct_atomic_install_signal_cleanup();
    double start = ct_time_now();
    CtBpeTrainer *trainer = ct_bpe_trainer_new(&opt);
    for (int i = 0; i < n_inputs; i++)
        if (ct_read_documents(inputs[i], add_document, trainer) != 0) {
            ct_bpe_trainer_free(trainer);
            return ct_cli_fail();
        }
    CtTokenizer tok;
    int rc = ct_bpe_trainer_train(trainer, &tok);
    size_t distinct = ct_bpe_trainer_distinct_pieces(trainer);
    ct_bpe_trainer_free(trainer);
    if (rc != 0) return ct_cli_fail();
    rc = ct_tokenizer_save_hf(&tok, out);
    if (rc == 0)
        ct_log("tokenizer: %d tokens (%d merges, %d special) from %zu distinct pieces, pattern %s, %.2f s -> %s",
               (int)tok.n_ids, (int)tok.n_merges, (int)tok.n_special, distinct, ct_pattern_name(opt.pattern),
               ct_time_now() - start, out);
    ct_tokenizer_free(&tok);
    return rc == 0 ? 0 : ct_cli_fail();
}

const CtCommand ct_cmd_tokenizer_train = {
    .name = "tokenizer train",
    .summary = "learn a byte-level BPE tokenizer from text",
    .usage = "ctrain tokenizer train --input FILES... --vocab-size N [--pattern gpt2|cl100k|o200k|qwen2]\n"
             "       [--special TOKEN...] [--threads N] --out tokenizer.json",
    .description = "Learns merges by the usual BPE rule (the most frequent adjacent pair first) over the pieces\n"
                   "the pattern splits the text into, and writes a Hugging Face tokenizer.json that ctrain and\n"
                   "HF tokenizers both load. The output is the same for any --threads.",
    .options = options,
    .n_options = (int)(sizeof options / sizeof options[0]),
    .min_positionals = 0,
    .max_positionals = 0,
    .run = run_tokenizer_train,
};
