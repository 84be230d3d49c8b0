// ctrain chat: talk to an SFT model in the terminal, or answer one --prompt. The conversation
// is rendered with the chat template the model was trained with (stored in its checkpoint),
// and generation stops at the template's end-of-turn token or at one of the model's
// end-of-sequence ids (train/interop/stop_tokens.h).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/examples/chat_template.h"
#include "data/tokenizer/tokenizer_files.h"
#include "data/tokenizer/tokenizer_hf.h"
#include "kernels/cpu/cpu_ops.h"
#include "train/interop/checkpoint_io.h"
#include "train/interop/stop_tokens.h"
#include "train/cli/commands.h"
#include "train/interop/peft_folder.h"
#include "train/model/generate.h"
#include "train/cli/sampling_options.h"

static const CtOption options[] = {
    {"checkpoint", "FILE", "an SFT checkpoint (or any checkpoint with a tokenizer)", 0},
    {"adapter", "DIR", "a PEFT adapter folder over the checkpoint: LoRA, prompt tuning, P-tuning or prefix tuning", 0},
    {"prompt", "TEXT", "answer this one message and exit (no interactive loop)", 0},
    {"system", "TEXT", "a system message at the start of the conversation", 0},
    {"template", "NAME", "chat template when the checkpoint has none: chatml, plain or a JSON file", 0},
    {"max-tokens", "N", "most tokens per answer, 1 or more (default 256)", 0},
    {"temperature", "T", "sampling temperature, 0 or more; 0 is greedy (default 0.7)", 0},
    {"top-k", "K", "sample among the K likeliest tokens, 0 or more (default 0: all)", 0},
    {"top-p", "P", "nucleus sampling threshold, 0 < P <= 1 (default 0.95)", 0},
    {"seed", "S", "sampling seed (default 1337)", 0},
    {"threads", "N", "CPU threads (default: every core)", 0},
};

typedef struct {
    CtModel model;
    CtTokenizer tok;
    CtChatTemplate tmpl;
    CtStopTokens stop;
    CtSampling sampling;
    CtRng rng;
    long max_tokens;
    CtEncoder *enc;
    int one_prompt;  // --prompt: a message that does not fit is refused, not cut
} Chat;

// One assistant answer to the conversation so far, streamed to stdout; the text is returned
// (free with ct_free()) so it can join the history. NULL + error: a --prompt that does not fit, or a
// conversation the chat template refuses (a model's template may: raise_exception).
static char *answer(Chat *c, const CtMessage *messages, int n) {
    CtMaskedIds ids = {0};
    if (ct_chat_encode(&c->tmpl, &c->tok, c->enc, messages, n, 1, &ids) != 0) {  // the template refused it
        ct_masked_ids_free(&ids);
        return NULL;
    }
    const int ctx = c->model.config.max_seq_len;
    const size_t room = ctx > 32 ? 16 : (size_t)ctx / 2;  // for the answer (a small context keeps half of it)
    size_t start = ids.ids.len + room > (size_t)ctx ? ids.ids.len + room - (size_t)ctx : 0;  // keep the newest tokens
    if (start > 0 && c->one_prompt) {
        ct_error_set("the prompt is %zu tokens with the chat template and the model's context is %d, of which %zu are "
                     "kept for the answer: shorten it to fit in %zu", ids.ids.len, ctx, room, (size_t)ctx - room);
        ct_masked_ids_free(&ids);
        return NULL;
    }
    if (start > 0)
        fprintf(stderr, "chat: the conversation is %zu tokens and the model's context %d: the oldest %zu are left out\n",
                ids.ids.len, ctx, start);
    CtGenerator g;
    ct_generator_init(&g, &c->model, ctx);
    const float *logits = NULL;
    if (ids.ids.len > start) logits = ct_generator_feed_prompt(&g, ids.ids.data + start, (int)(ids.ids.len - start));
    size_t len = 0, cap = 256, piece_len = 0, piece_cap = 0;
    char *text = ct_alloc(cap);
    uint8_t *piece = NULL;
    long generated = 0, stopped = 0;
    for (; generated < c->max_tokens && logits && g.n_ctx < ctx; generated++) {
        int32_t next = ct_sample(logits, c->model.config.vocab_size, &c->sampling, &c->rng);
        if (ct_stop_tokens_has(&c->stop, next) || next >= ct_tokenizer_vocab_size(&c->tok)) {
            stopped = 1;
            break;
        }
        piece_len = 0;
        if (ct_decode(&c->tok, &next, 1, &piece, &piece_len, &piece_cap) == 0) {
            fwrite(piece, 1, piece_len, stdout);
            fflush(stdout);
            if (len + piece_len + 1 > cap) text = ct_realloc(text, cap = (len + piece_len + 1) * 2);
            memcpy(text + len, piece, piece_len);
            len += piece_len;
        }
        logits = ct_generator_feed(&g, next);
    }
    text[len] = '\0';
    fputc('\n', stdout);
    if (!stopped && generated < c->max_tokens) {  // the context is full: say so, or the answer just ends
        fflush(stdout);
        fprintf(stderr, "chat: stopped after %ld tokens: the model's context of %d tokens is full (conversation %zu + "
                "%ld generated; --max-tokens %ld)\n", generated, ctx, ids.ids.len - start, generated, c->max_tokens);
    }
    ct_free(piece);
    ct_generator_free(&g);
    ct_masked_ids_free(&ids);
    return text;
}

static int load(Chat *c, const CtArgs *args) {
    const char *path = ct_args_get(args, "checkpoint");
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    if (ct_checkpoint_load(path, &c->model, ct_ops_cpu(), 1, 1, 0, NULL, &meta) != 0) return -1;
    int rc = -1;
    const char *adapter = ct_args_get(args, "adapter");
    if (adapter && ct_peft_load_folder(&c->model, adapter) != 0) {
        // the error names the folder
    } else if (ct_generation_check(&c->model.config) != 0) {
        ct_error_prefix("%s: ", path);
    } else if (!meta.tokenizer_json) {
        ct_error_set("%s: the checkpoint carries no tokenizer", path);
    } else if (ct_tokenizer_parse_hf(&c->tok, meta.tokenizer_json, strlen(meta.tokenizer_json), path, NULL) == 0) {
        const char *name = ct_args_get(args, "template");
        if (name)
            rc = ct_chat_template_load(&c->tmpl, name);
        else if (meta.chat_template_json)
            rc = ct_chat_template_parse(&c->tmpl, meta.chat_template_json, path);
        else
            rc = ct_chat_template_load(&c->tmpl, "chatml");
        int32_t end_of_turn = rc == 0 ? ct_chat_template_check(&c->tmpl, &c->tok) : -1;
        if (rc == 0 && end_of_turn < 0) {
            ct_error_prefix("%s: ", path);
            rc = -1;
        }
        if (rc == 0)
            rc = ct_stop_tokens_init(&c->stop, meta.generation_config_json, &c->tok, c->model.config.vocab_size,
                                     end_of_turn, path);
    }
    ct_checkpoint_meta_free(&meta);
    return rc;
}

static int run_chat(const CtArgs *args) {
    if (!ct_args_get(args, "checkpoint")) return ct_cli_usage_error(&ct_cmd_chat, "--checkpoint FILE is required");
    long threads;
    CtSamplingOptions so;
    if (ct_args_get_long(args, "threads", 0, &threads) || ct_sampling_options_read(args, 256, 0.7, 0.95, &so))
        return ct_cli_usage_error(&ct_cmd_chat, "%s", ct_error_message());
    ct_cpu_set_threads((int)threads);
    Chat c;
    memset(&c, 0, sizeof c);
    if (load(&c, args) != 0) {
        int status = ct_cli_fail();
        ct_chat_template_free(&c.tmpl);
        return status;
    }
    c.sampling = so.sampling;
    ct_rng_seed(&c.rng, (uint64_t)so.seed);
    c.max_tokens = so.max_tokens;
    c.enc = ct_encoder_new(&c.tok);
    CtMessage history[512];
    char *owned[512];
    int n = 0, n_owned = 0;
    const char *system = ct_args_get(args, "system");
    if (system) history[n++] = (CtMessage){"system", system, strlen(system)};
    const char *prompt = ct_args_get(args, "prompt");
    int status = 0;
    if (prompt) {
        history[n++] = (CtMessage){"user", prompt, strlen(prompt)};
        c.one_prompt = 1;
        char *reply = answer(&c, history, n);
        if (!reply) status = ct_cli_fail();
        ct_free(reply);
    } else {
        int tty = isatty(fileno(stdin));
        if (tty) fprintf(stderr, "chat with %s (empty line or Ctrl-D ends)\n", ct_args_get(args, "checkpoint"));
        char line[8192];
        while (n + 2 < 512 && (tty ? fputs("> ", stderr) : 0, fgets(line, sizeof line, stdin))) {
            size_t len = strcspn(line, "\n");
            line[len] = '\0';
            if (len == 0) break;
            owned[n_owned] = ct_strdup(line);
            history[n++] = (CtMessage){"user", owned[n_owned], len};
            n_owned++;
            char *reply = answer(&c, history, n);
            if (!reply) {
                status = ct_cli_fail();
                break;
            }
            owned[n_owned++] = reply;
            history[n++] = (CtMessage){c.tmpl.trained_roles[0], reply, strlen(reply)};
        }
    }
    for (int i = 0; i < n_owned; i++) ct_free(owned[i]);
    ct_encoder_free(c.enc);
    ct_chat_template_free(&c.tmpl);
    ct_tokenizer_free(&c.tok);
    ct_model_free(&c.model);
    return status;
}

const CtCommand ct_cmd_chat = {
    .name = "chat",
    .summary = "talk to an SFT model (interactive, or one --prompt)",
    .usage = "ctrain chat --checkpoint FILE [--prompt TEXT] [--system TEXT] [--temperature T] [--max-tokens N]",
    .options = options,
    .n_options = (int)(sizeof options / sizeof options[0]),
    .max_positionals = 0,
    .run = run_chat,
};
