// ctrain generate: continue a prompt with a trained model, streaming tokens to stdout, until
// the model ends the text (train/interop/stop_tokens.h: its end-of-sequence ids, or the end-of-turn token
// of the chat template an SFT checkpoint carries) or --max-tokens.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/examples/chat_template.h"
#include "data/tokenizer/tokenizer_files.h"
#include "data/tokenizer/tokenizer_hf.h"
#include "data/tokenizer/tokenizer_identity.h"
#include "kernels/cpu/cpu_ops.h"
#include "train/interop/checkpoint_io.h"
#include "train/interop/stop_tokens.h"
#include "train/cli/commands.h"
#include "train/model/generate.h"
#include "train/cli/sampling_options.h"

static const CtOption options[] = {
    {"checkpoint", "FILE", "a checkpoint written by ctrain (or imported)", 0},
    {"prompt", "TEXT", "the text to continue (default: start from the end-of-text token)", 0},
    {"max-tokens", "N", "tokens to generate at most, 1 or more (default 128); the model's context also ends it, "
                        "and a line on stderr says so", 0},
    {"temperature", "T", "sampling temperature, 0 or more; 0 is greedy and deterministic (default 0.8)", 0},
    {"top-k", "K", "sample only among the K likeliest tokens, 0 or more (default 0: all)", 0},
    {"top-p", "P", "sample only among the likeliest tokens whose probabilities add up to P, 0 < P <= 1 (default 1: "
                   "off)", 0},
    {"seed", "S", "seed of the sampling (default 1337)", 0},
    {"chat", NULL, "render --prompt as a user message with the checkpoint's chat template (an imported chat model's "
                   "own, from its tokenizer_config.json) followed by its generation prompt", 0},
    {"system", "TEXT", "with --chat: a system message before the prompt", 0},
    {"ids", NULL, "print token ids instead of text: the prompt's on one line, the generated ones on the next", 0},
    {"ignore-eos", NULL, "go on past the end-of-sequence and end-of-turn tokens until --max-tokens or the context ends "
                         "(benchmarks, comparisons with other clients)", 0},
    {"tokenizer", "PATH", "a tokenizer, when the checkpoint carries none", 0},
    {"threads", "N", "CPU threads (default: every core)", 0},
};

static int load_tokenizer(const CtArgs *args, const CtCheckpointMeta *meta, const char *ckpt, CtTokenizer *tok) {
    const char *path = ct_args_get(args, "tokenizer");
    if (path) return ct_tokenizer_load(tok, path, NULL);
    if (!meta->tokenizer_json)
        return ct_error_set("%s: the checkpoint carries no tokenizer; name one with --tokenizer", ckpt);
    return ct_tokenizer_parse_hf(tok, meta->tokenizer_json, strlen(meta->tokenizer_json), ckpt, NULL);
}

// Where generation stops: the model's end-of-sequence ids and, for a checkpoint trained on chat
// data, its template's end-of-turn token.
static int stop_tokens(const CtCheckpointMeta *meta, const CtTokenizer *tok, int vocab_size, const char *ckpt,
                       CtStopTokens *stop) {
    int32_t end_of_turn = -1;
    if (meta->chat_template_json) {
        CtChatTemplate t;
        if (ct_chat_template_parse(&t, meta->chat_template_json, ckpt) != 0) return -1;
        end_of_turn = ct_tokenizer_special_id(tok, t.end_of_turn);
        ct_chat_template_free(&t);
    }
    return ct_stop_tokens_init(stop, meta->generation_config_json, tok, vocab_size, end_of_turn, ckpt);
}

// --chat: the prompt as the user's message through the checkpoint's template. 0, or -1 + error.
static int encode_chat_prompt(const CtArgs *args, const CtCheckpointMeta *meta, const CtTokenizer *tok, const char *ckpt,
                              CtIds *ids) {
    if (!meta->chat_template_json)
        return ct_error_set("%s: --chat needs a checkpoint with a chat template (an SFT run's, or an imported chat "
                            "model's tokenizer_config.json)", ckpt);
    CtChatTemplate t;
    if (ct_chat_template_parse(&t, meta->chat_template_json, ckpt) != 0) return -1;
    const char *system = ct_args_get(args, "system"), *prompt = ct_args_get(args, "prompt");
    CtMessage messages[2];
    int n = 0;
    if (system) messages[n++] = (CtMessage){"system", system, strlen(system)};
    messages[n++] = (CtMessage){"user", prompt ? prompt : "", prompt ? strlen(prompt) : 0};
    CtEncoder *enc = ct_encoder_new(tok);
    CtMaskedIds out = {0};
    int rc = ct_chat_encode(&t, tok, enc, messages, n, 1, &out);
    for (size_t i = 0; rc == 0 && i < out.ids.len; i++) ct_ids_push(ids, out.ids.data[i]);
    ct_masked_ids_free(&out);
    ct_encoder_free(enc);
    ct_chat_template_free(&t);
    return rc;
}

static int run_generate(const CtArgs *args) {
    const char *ckpt = ct_args_get(args, "checkpoint");
    if (!ckpt) return ct_cli_usage_error(&ct_cmd_generate, "--checkpoint FILE is required");
    long threads;
    CtSamplingOptions so;
    if (ct_args_get_long(args, "threads", 0, &threads) || ct_sampling_options_read(args, 128, 0.8, 1.0, &so))
        return ct_cli_usage_error(&ct_cmd_generate, "%s", ct_error_message());
    ct_cpu_set_threads((int)threads);
    CtModel m;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    if (ct_checkpoint_load(ckpt, &m, ct_ops_cpu(), 1, 1, 0, NULL, &meta) != 0) return ct_cli_fail();
    CtTokenizer tok;
    if (load_tokenizer(args, &meta, ckpt, &tok) != 0) {
        ct_checkpoint_meta_free(&meta);
        ct_model_free(&m);
        return ct_cli_fail();
    }
    CtStopTokens stop;
    if (stop_tokens(&meta, &tok, m.config.vocab_size, ckpt, &stop) != 0) {
        ct_tokenizer_free(&tok);
        ct_checkpoint_meta_free(&meta);
        ct_model_free(&m);
        return ct_cli_fail();
    }
    int32_t eot = ct_tokenizer_special_id(&tok, "<|endoftext|>");
    CtIds ids = {0};
    const char *prompt = ct_args_get(args, "prompt");
    if (ct_args_has(args, "chat")) {
        if (encode_chat_prompt(args, &meta, &tok, ckpt, &ids) != 0) {
            ct_ids_free(&ids);
            ct_tokenizer_free(&tok);
            ct_checkpoint_meta_free(&meta);
            ct_model_free(&m);
            return ct_cli_fail();
        }
    } else if (prompt && *prompt) {
        CtEncoder *enc = ct_encoder_new(&tok);
        ct_encode(enc, (const uint8_t *)prompt, strlen(prompt), 0, &ids);
        ct_encoder_free(enc);
    } else if (eot >= 0) {
        ct_ids_push(&ids, eot);
    }
    const int print_ids = ct_args_has(args, "ids"), ignore_eos = ct_args_has(args, "ignore-eos");
    int rc = 0;
    if (ids.len == 0) {  // checked before anything is printed
        ct_error_set("empty prompt and no <|endoftext|> token to start from; give --prompt");
        rc = ct_cli_fail();
    } else if ((int)ids.len >= m.config.max_seq_len) {
        ct_error_set("the prompt is %zu tokens and the model's context is %d: no room to generate; shorten the prompt "
                     "to fewer than %d tokens", ids.len, m.config.max_seq_len, m.config.max_seq_len);
        rc = ct_cli_fail();
    }
    if (rc == 0 && print_ids) {
        for (size_t i = 0; i < ids.len; i++) printf("%s%d", i ? " " : "", ids.data[i]);
        fputc('\n', stdout);
    } else if (rc == 0 && prompt && *prompt) {
        fputs(prompt, stdout);
    }
    if (rc == 0) {
        CtGenerator g;
        ct_generator_init(&g, &m, m.config.max_seq_len);
        const float *logits = NULL;
        for (size_t i = 0; i < ids.len; i++) logits = ct_generator_feed(&g, ids.data[i]);
        CtRng rng;
        ct_rng_seed(&rng, (uint64_t)so.seed);
        uint8_t *bytes = NULL;
        size_t len = 0, cap = 0;
        long generated = 0, stopped = 0;
        for (; generated < so.max_tokens && g.n_ctx < g.max_ctx; generated++) {
            int32_t next = ct_sample(logits, m.config.vocab_size, &so.sampling, &rng);
            if (!ignore_eos && ct_stop_tokens_has(&stop, next)) {
                stopped = 1;
                break;
            }
            len = 0;
            if (print_ids)
                printf("%s%d", generated ? " " : "", next);
            else if (next < ct_tokenizer_vocab_size(&tok) && ct_decode(&tok, &next, 1, &bytes, &len, &cap) == 0)
                fwrite(bytes, 1, len, stdout);  // bytes as they come: a split UTF-8 character completes later
            fflush(stdout);
            logits = ct_generator_feed(&g, next);
        }
        fputc('\n', stdout);
        if (!stopped && generated < so.max_tokens) {  // the context is full: say so, or the text just ends
            fflush(stdout);
            fprintf(stderr, "generate: stopped after %ld tokens: the model's context of %d tokens is full (prompt %zu + "
                    "%ld generated; --max-tokens %ld)\n", generated, g.max_ctx, ids.len, generated, so.max_tokens);
        }
        ct_free(bytes);
        ct_generator_free(&g);
    }
    ct_ids_free(&ids);
    ct_tokenizer_free(&tok);
    ct_checkpoint_meta_free(&meta);
    ct_model_free(&m);
    return rc;
}

const CtCommand ct_cmd_generate = {
    .name = "generate",
    .summary = "continue a prompt with a trained model (key/value cache, streamed)",
    .usage = "ctrain generate --checkpoint FILE [--prompt TEXT] [--max-tokens N] [--temperature T] [--top-k K] "
             "[--top-p P] [--seed S] [--ids] [--ignore-eos]",
    .options = options,
    .n_options = (int)(sizeof options / sizeof options[0]),
    .max_positionals = 0,
    .run = run_generate,
};
