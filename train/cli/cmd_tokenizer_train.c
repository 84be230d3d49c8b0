// ctrain tokenizer train: learn a byte-level BPE or a WordPiece vocabulary from text and save it
// as tokenizer.json.
#include <stdio.h>
#include <string.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "core/timer.h"
#include "data/tokenizer/bpe_train.h"
#include "data/input/text_input.h"
#include "data/tokenizer/tokenizer_hf.h"
#include "data/tokenizer/wordpiece_train.h"
#include "train/cli/commands.h"
#include "train/cli/tokenizer_cli.h"

static const CtOption options[] = {
    {"input", "FILES", "training text: .txt (whole file), .jsonl ({\"text\": ...} lines) or .jsonl.zst", 1},
    {"vocab-size", "N", "tokens in the vocabulary, counting the 256 bytes (bpe) or the characters (wordpiece) and the special tokens", 0},
    {"model", "KIND", "bpe (byte-level, default) or wordpiece (BERT's: normalizer, pre-tokenizer, ## continuations)", 0},
    {"pattern", "NAME", "bpe: pre-tokenization gpt2, cl100k, o200k or qwen2 (default: gpt2)", 0},
    {"special", "TOKENS", "special tokens; bpe: given the last ids (default: <|endoftext|>); wordpiece: ids 0.. "
                          "(default: [PAD] [UNK] [CLS] [SEP] [MASK])", 1},
    {"lowercase", NULL, "wordpiece: lowercase and strip accents (bert-base-uncased); default: cased", 0},
    {"out", "PATH", "where to write the tokenizer (Hugging Face tokenizer.json)", 0},
    {"threads", "N", "bpe: threads for counting (default: all cores); the result does not depend on it", 0},
    {"quiet", NULL, "no progress bars", 0},
};

static int add_document(void *ctx, const uint8_t *text, size_t len) {
    ct_bpe_trainer_add_document(ctx, text, len);
    return 0;
}

static int add_word_document(void *ctx, const uint8_t *text, size_t len) {
    ct_wordpiece_trainer_add_document(ctx, text, len);
    return 0;
}

// --model wordpiece: BERT's pipeline, the special tokens first, [UNK] the unk token.
static int train_wordpiece(const CtArgs *args, const char *const *inputs, int n_inputs, long vocab_size, const char *out) {
    const CtCommand *cmd = &ct_cmd_tokenizer_train;
    if (ct_args_has(args, "pattern")) return ct_cli_usage_error(cmd, "--pattern applies to --model bpe");
    static const char *bert_specials[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    const char *specials[CT_ARGS_MAX];
    CtWordPieceTrainOptions opt = {.vocab_size = (int32_t)vocab_size, .unk = "[UNK]", .lowercase = ct_args_has(args, "lowercase"),
                                   .progress = !ct_args_has(args, "quiet")};
    opt.n_specials = ct_args_get_all(args, "special", specials, CT_ARGS_MAX);
    opt.specials = opt.n_specials ? specials : bert_specials;
    if (!opt.n_specials) opt.n_specials = 5;
    for (int i = 0; i < opt.n_specials; i++)
        if (!opt.specials[i][0]) return ct_cli_usage_error(cmd, "a special token cannot be empty");
    ct_atomic_install_signal_cleanup();
    double start = ct_time_now();
    CtWordPieceTrainer *trainer = ct_wordpiece_trainer_new(&opt);
    for (int i = 0; i < n_inputs; i++)
        if (ct_read_documents(inputs[i], add_word_document, trainer) != 0) {
            ct_wordpiece_trainer_free(trainer);
            return ct_cli_fail();
        }
    CtTokenizer tok;
    int rc = ct_wordpiece_trainer_train(trainer, &tok);
    size_t distinct = ct_wordpiece_trainer_distinct_words(trainer);
    ct_wordpiece_trainer_free(trainer);
    if (rc != 0) return ct_cli_fail();
    rc = ct_tokenizer_save_hf(&tok, out);
    if (rc == 0)
        ct_log("tokenizer: WordPiece, %d tokens (%d special) from %zu distinct words, %s, %.2f s -> %s", (int)tok.n_ids,
               (int)tok.n_special, distinct, opt.lowercase ? "lowercased" : "cased", ct_time_now() - start, out);
    ct_tokenizer_free(&tok);
    return rc == 0 ? 0 : ct_cli_fail();
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
    const char *model = ct_args_get(args, "model") ? ct_args_get(args, "model") : "bpe";
    if (strcmp(model, "bpe") != 0 && strcmp(model, "wordpiece") != 0)
        return ct_cli_usage_error(cmd, "--model must be bpe or wordpiece, not '%s'", model);
    const int wordpiece = strcmp(model, "wordpiece") == 0;
    if (ct_args_get_long(args, "vocab-size", 0, &vocab_size) != 0 || vocab_size < (wordpiece ? 1 : 256) || vocab_size > (1 << 24))
        return ct_cli_usage_error(cmd, "--vocab-size must be an integer from %d to 16777216", wordpiece ? 1 : 256);
    if (wordpiece) return train_wordpiece(args, inputs, n_inputs, vocab_size, out);
    if (ct_args_has(args, "lowercase")) return ct_cli_usage_error(cmd, "--lowercase applies to --model wordpiece");
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
    .summary = "learn a byte-level BPE or a WordPiece tokenizer from text",
    .usage = "ctrain tokenizer train --input FILES... --vocab-size N [--pattern gpt2|cl100k|o200k|qwen2]\n"
             "       [--special TOKEN...] [--threads N] --out tokenizer.json\n"
             "       ctrain tokenizer train --model wordpiece [--lowercase] --input FILES... --vocab-size N\n"
             "       [--special TOKEN...] --out tokenizer.json",
    .description = "Learns merges by the usual BPE rule (the most frequent adjacent pair first) over the pieces\n"
                   "the pattern splits the text into, and writes a Hugging Face tokenizer.json that ctrain and\n"
                   "HF tokenizers both load. The output is the same for any --threads.\n"
                   "--model wordpiece learns a BERT vocabulary as HF's WordPieceTrainer does (BPE merges over\n"
                   "characters with ## continuations, kept as a WordPiece vocabulary), with BERT's normalizer and\n"
                   "pre-tokenizer and, when [CLS] and [SEP] are special tokens, [CLS] A [SEP] (B [SEP]) framing.",
    .options = options,
    .n_options = (int)(sizeof options / sizeof options[0]),
    .min_positionals = 0,
    .max_positionals = 0,
    .run = run_tokenizer_train,
};
