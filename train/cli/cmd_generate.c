// ctrain generate: continue a prompt with a trained model, streaming tokens to stdout, until
// the model ends the text (train/interop/stop_tokens.h: its end-of-sequence ids, or the end-of-turn token
// of the chat template an SFT checkpoint carries) or --max-tokens.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/timer.h"
#include "data/examples/chat_template.h"
#include "data/tokenizer/tokenizer_files.h"
#include "data/tokenizer/tokenizer_hf.h"
#include "data/tokenizer/tokenizer_identity.h"
#include "kernels/cpu/cpu_ops.h"
#include "train/interop/checkpoint_io.h"
#include "train/interop/stop_tokens.h"
#include "train/cli/commands.h"
#include "train/interop/peft_folder.h"
#include "train/model/generate.h"
#include "train/model/speculative.h"
#include "train/model/speculative_mtp.h"
#include "train/cli/sampling_options.h"

static const CtOption options[] = {
    {"checkpoint", "FILE", "a checkpoint written by ctrain (or imported)", 0},
    {"adapter", "DIR", "a PEFT adapter folder over the checkpoint: LoRA, prompt tuning, P-tuning or prefix tuning "
                       "(adapter_config.json's peft_type)", 0},
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
    {"draft", "CKPT", "speculative decoding: a smaller model with the same tokenizer drafts tokens that the model "
                      "checks in one pass; the same text as without it when greedy, the same distribution when "
                      "sampling; stderr gets the acceptance rate and tokens/s", 0},
    {"speculative", NULL, "self-speculative decoding: the checkpoint's own multi-token-prediction modules "
                          "(model.mtp_depth D > 0) draft up to D tokens per round from the model's hidden states, "
                          "checked in one pass as with --draft; stderr gets the acceptance overall and per depth", 0},
    {"draft-tokens", "K", "with --draft: tokens drafted per round, 1 to 64 (default 4); with --speculative: 1 to D "
                          "(default D)", 0},
    {"draft-weights", "bf16|fp32", "with --speculative: the weights the modules draft with, bf16 copies of the modules' "
                                   "and the output head's products (half the bytes to read; the drafts, and so the "
                                   "acceptance, may differ a little) or the fp32 weights (default bf16); the model's "
                                   "own pass that checks the drafts reads fp32 either way, so the output is the same",
     0},
    {"stats", NULL, "print the tokens generated per second on stderr (always with --draft and --speculative)", 0},
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

// Where generated tokens go: stdout, as text or ids, until a stop token.
typedef struct {
    const CtTokenizer *tok;
    const CtStopTokens *stop;
    int print_ids, ignore_eos;
    long generated, stopped;
    uint8_t *bytes;
    size_t len, cap;
} Output;

// Prints one generated token; 1 when it is a stop token (not printed) and generation ends.
static int emit(Output *o, int32_t next) {
    if (!o->ignore_eos && ct_stop_tokens_has(o->stop, next)) {
        o->stopped = 1;
        return 1;
    }
    o->len = 0;
    if (o->print_ids)
        printf("%s%d", o->generated ? " " : "", next);
    else if (next < ct_tokenizer_vocab_size(o->tok) && ct_decode(o->tok, &next, 1, &o->bytes, &o->len, &o->cap) == 0)
        fwrite(o->bytes, 1, o->len, stdout);  // bytes as they come: a split UTF-8 character completes later
    fflush(stdout);
    o->generated++;
    return 0;
}

// A speculative run's counts: drafted and accepted tokens, overall and per place in the draft.
enum { MAX_DEPTH_STATS = 64 };
typedef struct {
    long drafted, accepted;
    long drafted_at[MAX_DEPTH_STATS], accepted_at[MAX_DEPTH_STATS];
    size_t bf16_bytes;  // --speculative --draft-weights bf16: the copies' size (0: fp32 drafts)
} SpeculativeCounts;

// Plain decoding: one model pass per token. Returns the cache's size (its context).
static int decode_plain(CtModel *m, const CtIds *ids, const CtSamplingOptions *so, Output *o, double *t_start) {
    CtGenerator g;
    ct_generator_init(&g, m, m->config.max_seq_len);
    const float *logits = NULL;
    if (ids->len > 0) logits = ct_generator_feed_prompt(&g, ids->data, (int)ids->len);  // one pass, head on the last row
    CtRng rng;
    ct_rng_seed(&rng, (uint64_t)so->seed);
    *t_start = ct_time_now();
    while (o->generated < so->max_tokens && g.n_ctx < g.max_ctx) {
        int32_t next = ct_sample(logits, m->config.vocab_size, &so->sampling, &rng);
        if (emit(o, next)) break;
        logits = ct_generator_feed(&g, next);
    }
    const int max_ctx = g.max_ctx;
    ct_generator_free(&g);
    return max_ctx;
}

// --draft (draft not NULL): the draft model proposes; --speculative: the model's own modules do.
// The model checks (train/model/speculative.h). The counts go to *counts.
static int decode_speculative(CtModel *m, CtModel *draft, int k, int bf16_drafts, const CtIds *ids,
                              const CtSamplingOptions *so, Output *o, double *t_start, SpeculativeCounts *counts) {
    CtGenerator g, dg;
    ct_generator_init(&g, m, m->config.max_seq_len);
    CtDrafter drafter;
    CtMtpDrafter modules;
    if (draft) {
        ct_generator_init(&dg, draft, draft->config.max_seq_len);
        ct_model_drafter_init(&drafter, &dg);
    } else {
        ct_mtp_drafter_init(&modules, &drafter, &g);
        if (bf16_drafts) counts->bf16_bytes = ct_mtp_drafter_read_bf16(&modules);
    }
    CtRng rng;
    ct_rng_seed(&rng, (uint64_t)so->seed);
    CtSpeculative sp;
    ct_speculative_init(&sp, &g, &drafter, k, &so->sampling, &rng, ids->data, (int)ids->len);
    int32_t *out = ct_alloc(sizeof(int32_t) * (size_t)(k + 1));
    *t_start = ct_time_now();
    int done = 0;
    while (!done && o->generated < so->max_tokens) {
        const long left = so->max_tokens - o->generated;
        const int n = ct_speculative_round(&sp, out, left < k + 1 ? (int)left : k + 1);
        if (n == 0) break;  // the context is full
        for (int i = 0; i < n && !done; i++) done = emit(o, out[i]);
    }
    counts->drafted = sp.drafted;
    counts->accepted = sp.accepted;
    for (int i = 0; i < k && i < MAX_DEPTH_STATS; i++) {
        counts->drafted_at[i] = sp.drafted_at[i];
        counts->accepted_at[i] = sp.accepted_at[i];
    }
    const int max_ctx = g.max_ctx;
    ct_free(out);
    ct_speculative_free(&sp);
    if (draft) {
        ct_generator_free(&dg);
    } else {
        ct_mtp_drafter_free(&modules);
    }
    ct_generator_free(&g);
    return max_ctx;
}

// stderr after a speculative run: the acceptance overall, then per place in the draft (depth).
static void print_acceptance(const SpeculativeCounts *c, int k, int self) {
    if (self)
        fprintf(stderr, "generate: the modules draft with %s weights%s\n", c->bf16_bytes ? "bf16" : "fp32",
                c->bf16_bytes ? " (copies of their products' and the head's, --draft-weights bf16)" : "");
    fprintf(stderr, "generate: draft acceptance %.1f%% (%ld of %ld drafted tokens, %s %d)\n",
            c->drafted ? 100.0 * (double)c->accepted / (double)c->drafted : 0.0, c->accepted, c->drafted,
            self ? "--speculative, depth" : "--draft-tokens", k);
    fputs("generate: acceptance by depth:", stderr);
    for (int i = 0; i < k && i < MAX_DEPTH_STATS; i++)
        fprintf(stderr, "%s %d: %.1f%% (%ld of %ld)", i ? "," : "", i + 1,
                c->drafted_at[i] ? 100.0 * (double)c->accepted_at[i] / (double)c->drafted_at[i] : 0.0,
                c->accepted_at[i], c->drafted_at[i]);
    fputc('\n', stderr);
}

// The draft must read and write the same token ids: the same vocabulary size and, where both
// checkpoints carry one, the same tokenizer. 0, or -1 + error naming the draft's file.
static int load_draft(const char *path, const CtModel *m, const CtCheckpointMeta *meta, CtModel *draft) {
    CtCheckpointMeta dmeta = CT_CHECKPOINT_META_INIT;
    if (ct_checkpoint_load(path, draft, ct_ops_cpu(), 1, 1, 0, NULL, &dmeta) != 0) return -1;
    int rc = 0;
    if (draft->config.vocab_size != m->config.vocab_size)
        rc = ct_error_set("%s: the draft's vocabulary has %d tokens and the model's %d; a draft must share the "
                          "model's tokenizer", path, draft->config.vocab_size, m->config.vocab_size);
    else if (meta->tokenizer_json && dmeta.tokenizer_json && strcmp(meta->tokenizer_json, dmeta.tokenizer_json) != 0)
        rc = ct_error_set("%s: the draft's tokenizer differs from the model's; a draft must share the model's "
                          "tokenizer", path);
    ct_checkpoint_meta_free(&dmeta);
    if (rc != 0) ct_model_free(draft);
    return rc;
}

// --speculative: the checkpoint must have modules, and K at most their number. 0, or -1 + error.
static int check_speculative(const CtArgs *args, const CtModel *m, const char *ckpt, long *draft_tokens) {
    const int D = m->config.mtp_depth;
    if (D == 0)
        return ct_error_set("%s: model.mtp_depth is 0: the checkpoint has no multi-token-prediction modules to draft "
                            "with (--speculative); train one with model.mtp_depth > 0, or draft with --draft CKPT",
                            ckpt);
    if (!ct_args_has(args, "draft-tokens")) {
        *draft_tokens = D;
    } else if (*draft_tokens > D) {
        return ct_error_set("--draft-tokens %ld: %s has %d multi-token-prediction module%s (model.mtp_depth), which "
                            "draft at most %d token%s per round", *draft_tokens, ckpt, D, D == 1 ? "" : "s", D,
                            D == 1 ? "" : "s");
    }
    return 0;
}

// --draft CKPT, --speculative, --draft-tokens and --draft-weights: which drafter, if any. 0, or
// the usage error's exit code.
typedef struct {
    const char *draft_path;  // --draft: another model drafts
    int self;                // --speculative: the model's own modules draft
    int bf16_drafts;         // --draft-weights (bf16 by default)
    long draft_tokens;
} DraftOptions;

static int read_draft_options(const CtArgs *args, DraftOptions *d) {
    if (ct_args_get_long(args, "draft-tokens", 4, &d->draft_tokens))
        return ct_cli_usage_error(&ct_cmd_generate, "%s", ct_error_message());
    const long draft_tokens = d->draft_tokens;
    if (draft_tokens < 1 || draft_tokens > 64)
        return ct_cli_usage_error(&ct_cmd_generate, "--draft-tokens must be 1 to 64 (got %ld)", draft_tokens);
    const char *draft_path = d->draft_path = ct_args_get(args, "draft");
    const int self = d->self = ct_args_has(args, "speculative");
    if (self && draft_path)
        return ct_cli_usage_error(&ct_cmd_generate, "--speculative and --draft exclude each other: the model's own "
                                                    "modules draft, or another model does");
    const char *draft_weights = ct_args_get(args, "draft-weights");
    if (draft_weights && strcmp(draft_weights, "bf16") != 0 && strcmp(draft_weights, "fp32") != 0)
        return ct_cli_usage_error(&ct_cmd_generate, "--draft-weights is bf16 or fp32 (got %s)", draft_weights);
    if (draft_weights && !self)
        return ct_cli_usage_error(&ct_cmd_generate, "--draft-weights goes with --speculative (the weights the "
                                                    "model's own modules draft with)");
    d->bf16_drafts = !draft_weights || strcmp(draft_weights, "bf16") == 0;
    if (!draft_path && !self && ct_args_has(args, "draft-tokens"))
        return ct_cli_usage_error(&ct_cmd_generate, "--draft-tokens needs --draft CKPT (the model that drafts) or "
                                                    "--speculative");
    return 0;
}

static int run_generate(const CtArgs *args) {
    const char *ckpt = ct_args_get(args, "checkpoint");
    if (!ckpt) return ct_cli_usage_error(&ct_cmd_generate, "--checkpoint FILE is required");
    long threads;
    CtSamplingOptions so;
    if (ct_args_get_long(args, "threads", 0, &threads) || ct_sampling_options_read(args, 128, 0.8, 1.0, &so))
        return ct_cli_usage_error(&ct_cmd_generate, "%s", ct_error_message());
    DraftOptions d = {0};
    int usage = read_draft_options(args, &d);
    if (usage != 0) return usage;
    const char *draft_path = d.draft_path;
    const int self = d.self, bf16_drafts = d.bf16_drafts;
    long draft_tokens = d.draft_tokens;
    ct_cpu_set_threads((int)threads);
    CtModel m;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    // rows of one pass: a LoRA model's adapters keep scratch for max_B·max_T rows (train/model/generate.h);
    // --speculative's K is at most model.mtp_depth ≤ CT_MODEL_MAX_MTP_DEPTH
    const int rows = draft_path ? (int)draft_tokens + 1 : self ? CT_MODEL_MAX_MTP_DEPTH + 1 : 1;
    if (ct_checkpoint_load(ckpt, &m, ct_ops_cpu(), rows, 1, 0, NULL, &meta) != 0) return ct_cli_fail();
    const char *adapter = ct_args_get(args, "adapter");
    if (adapter && ct_peft_load_folder(&m, adapter) != 0) {
        ct_checkpoint_meta_free(&meta);
        ct_model_free(&m);
        return ct_cli_fail();
    }
    if (ct_generation_check(&m.config) != 0) {
        ct_error_prefix("%s: ", ckpt);
        ct_checkpoint_meta_free(&meta);
        ct_model_free(&m);
        return ct_cli_fail();
    }
    if (self && check_speculative(args, &m, ckpt, &draft_tokens) != 0) {
        ct_checkpoint_meta_free(&meta);
        ct_model_free(&m);
        return ct_cli_fail();
    }
    CtModel draft;
    if (draft_path && load_draft(draft_path, &m, &meta, &draft) != 0) {
        ct_checkpoint_meta_free(&meta);
        ct_model_free(&m);
        return ct_cli_fail();
    }
    int rc = 0;
    CtTokenizer tok;
    if (load_tokenizer(args, &meta, ckpt, &tok) != 0) {
        rc = ct_cli_fail();
        goto free_models;
    }
    CtStopTokens stop;
    if (stop_tokens(&meta, &tok, m.config.vocab_size, ckpt, &stop) != 0) {
        rc = ct_cli_fail();
        goto free_tokenizer;
    }
    int32_t eot = ct_tokenizer_special_id(&tok, "<|endoftext|>");
    CtIds ids = {0};
    const char *prompt = ct_args_get(args, "prompt");
    if (ct_args_has(args, "chat")) {
        if (encode_chat_prompt(args, &meta, &tok, ckpt, &ids) != 0) {
            rc = ct_cli_fail();
            goto free_ids;
        }
    } else if (prompt && *prompt) {
        CtEncoder *enc = ct_encoder_new(&tok);
        ct_encode(enc, (const uint8_t *)prompt, strlen(prompt), 0, &ids);
        ct_encoder_free(enc);
    } else if (eot >= 0) {
        ct_ids_push(&ids, eot);
    }
    Output o = {.tok = &tok, .stop = &stop, .print_ids = ct_args_has(args, "ids"),
                .ignore_eos = ct_args_has(args, "ignore-eos")};
    if (ids.len == 0) {  // checked before anything is printed
        ct_error_set("empty prompt and no <|endoftext|> token to start from; give --prompt");
        rc = ct_cli_fail();
    } else if ((int)ids.len >= m.config.max_seq_len) {
        ct_error_set("the prompt is %zu tokens and the model's context is %d: no room to generate; shorten the prompt "
                     "to fewer than %d tokens", ids.len, m.config.max_seq_len, m.config.max_seq_len);
        rc = ct_cli_fail();
    }
    if (rc == 0 && o.print_ids) {
        for (size_t i = 0; i < ids.len; i++) printf("%s%d", i ? " " : "", ids.data[i]);
        fputc('\n', stdout);
    } else if (rc == 0 && prompt && *prompt) {
        fputs(prompt, stdout);
    }
    if (rc == 0) {
        double t_start;
        SpeculativeCounts counts = {0};
        const int speculative = draft_path || self;
        const int max_ctx = speculative ? decode_speculative(&m, draft_path ? &draft : NULL, (int)draft_tokens,
                                                             bf16_drafts, &ids, &so, &o, &t_start, &counts)
                                        : decode_plain(&m, &ids, &so, &o, &t_start);
        const double seconds = ct_time_now() - t_start;
        fputc('\n', stdout);
        // the text before the messages below; a full disk (`> out.txt`) is said here, with its cause
        if (fflush(stdout) != 0) {
            ct_error_errno("stdout: the generated text is incomplete");
            rc = ct_cli_fail();
        } else {
            if (!o.stopped && o.generated < so.max_tokens)  // the context is full: say so, or the text just ends
                fprintf(stderr, "generate: stopped after %ld tokens: the model's context of %d tokens is full (prompt "
                        "%zu + %ld generated; --max-tokens %ld)\n", o.generated, max_ctx, ids.len, o.generated,
                        so.max_tokens);
            if (speculative || ct_args_has(args, "stats"))
                fprintf(stderr, "generate: %ld tokens in %.3f s, %.1f tokens/s\n", o.generated, seconds,
                        seconds > 0 ? (double)o.generated / seconds : 0.0);
            if (speculative) print_acceptance(&counts, (int)draft_tokens, self);
        }
    }
    ct_free(o.bytes);
free_ids:
    ct_ids_free(&ids);
free_tokenizer:
    ct_tokenizer_free(&tok);
free_models:
    ct_checkpoint_meta_free(&meta);
    if (draft_path) ct_model_free(&draft);
    ct_model_free(&m);
    return rc;
}

const CtCommand ct_cmd_generate = {
    .name = "generate",
    .summary = "continue a prompt with a trained model (key/value cache, streamed)",
    .usage = "ctrain generate --checkpoint FILE [--prompt TEXT] [--max-tokens N] [--temperature T] [--top-k K] "
             "[--top-p P] [--seed S] [--ids] [--ignore-eos] [--draft CKPT | --speculative] [--draft-tokens K] "
             "[--draft-weights bf16|fp32] [--stats]",
    .options = options,
    .n_options = (int)(sizeof options / sizeof options[0]),
    .max_positionals = 0,
    .run = run_generate,
};
