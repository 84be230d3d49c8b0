// ctrain eval: the mean cross-entropy (and perplexity) of a model on a text, JSON lines or a
// dataset split, windowed as transformers users compute it (train/loop/eval_loss.h), optionally
// with LoRA adapters over the model; or, with --task, the accuracy of its greedy answers to the
// prompts of a JSON lines file (train/loop/task_eval.h).
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "data/tokenizer/tokenizer_files.h"
#include "data/tokenizer/tokenizer_hf.h"
#include "data/tokenizer/tokenizer_identity.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/device.h"
#include "train/interop/checkpoint_io.h"
#include "train/cli/commands.h"
#include "train/loop/eval_loss.h"
#include "train/loop/eval_source.h"
#include "train/loop/reward_eval.h"
#include "train/loop/task_eval.h"
#include "core/atomic_file.h"
#include "train/model/lora.h"
#include "train/interop/lora_peft.h"
#include "train/interop/peft_folder.h"
#include "train/cli/tokenizer_cli.h"

static const CtOption options[] = {
    {"checkpoint", "FILE", "the model: a checkpoint written by ctrain, imported, or a LoRA run's", 0},
    {"text", "FILE", "evaluate on this text (.txt, or any name; .zst is decompressed)", 0},
    {"jsonl", "FILE", "evaluate on the \"text\" of these JSON lines, each ended by the end-of-text token", 0},
    {"data", "DIR", "evaluate on a text dataset made by ctrain shard (its validation split when it has one)", 0},
    {"split", "NAME", "--data: train or val (default: val when it holds a window, else train)", 0},
    {"seq", "T", "tokens per window (default: the model's context length)", 0},
    {"batch", "B", "windows per forward pass (default: about 1024 tokens per pass on the CPU, 8192 on a GPU)", 0},
    {"max-tokens", "N", "evaluate only the first N tokens of the stream", 0},
    {"adapter", "PATH", "LoRA adapters over the checkpoint: a PEFT folder, or a LoRA run's checkpoint", 0},
    {"tokenizer", "PATH", "a tokenizer, when the checkpoint carries none", 0},
    {"eot", "TOKEN", "--jsonl: the token after each document (default <|endoftext|>)", 0},
    {"allow-special", NULL, "encode special-token strings in the text as their ids (default: as text)", 0},
    {"device", "cpu|cuda|auto", "where to run (default cpu)", 0},
    {"precision", "fp32|bf16|auto", "matrix products on a GPU (default auto: bf16 there, fp32 on the CPU)", 0},
    {"threads", "N", "CPU threads (default: every core)", 0},
    {"task", "NAME", "score greedy answers instead: arithmetic (the number in <answer></answer>, else the last "
                     "number, against each line's \"answer\")", 0},
    {"prompts", "FILE", "--task: JSON lines with \"prompt\" (or \"messages\") and \"answer\" (ctrain synth "
                        "instructions --task arithmetic --split heldout)", 0},
    {"examples", "N", "--task: only the first N prompts", 0},
    {"max-new-tokens", "N", "--task: tokens an answer may have at most (default 128)", 0},
    {"out", "FILE", "--task: one JSON line per prompt: completion, extracted answer, answer, correct", 0},
};

static int is_folder(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

// The checkpoint's tokenizer (or --tokenizer's) and the tokens its post-processor adds
// (tokenizer.json's post_processor, kept in the tokenizer: data/tokenizer/bpe.h).
static int load_tokenizer(const CtArgs *args, const CtCheckpointMeta *meta, const char *ckpt, CtTokenizer *tok,
                          CtPostProcessor *post) {
    memset(post, 0, sizeof *post);
    const char *path = ct_args_get(args, "tokenizer");
    if (!path) {
        if (!meta->tokenizer_json)
            return ct_error_set("%s: the checkpoint carries no tokenizer; name one with --tokenizer", ckpt);
        if (ct_tokenizer_parse_hf(tok, meta->tokenizer_json, strlen(meta->tokenizer_json), ckpt, NULL) != 0) return -1;
        *post = tok->post;
        return 0;
    }
    if (ct_tokenizer_load(tok, path, NULL) != 0) return -1;
    *post = tok->post;
    if (meta->tokenizer_hash && ct_tokenizer_fingerprint(tok) != meta->tokenizer_hash)
        ct_warn("eval: --tokenizer %s is not the tokenizer %s was saved with (fingerprint %016llx, the checkpoint's "
                "%016llx)", path, ckpt, (unsigned long long)ct_tokenizer_fingerprint(tok),
                (unsigned long long)meta->tokenizer_hash);
    return 0;
}

// A LoRA run's checkpoint as --adapter: it loads (merged) over the base whose path it records,
// which must have the parameters of --checkpoint.
static int load_lora_run(const char *ckpt, const char *adapter, int B, int L, CtModel *m, CtCheckpointMeta *meta) {
    CtCheckpoint c;
    if (ct_ckpt_open(&c, adapter) != 0) return -1;
    uint64_t base_hash = 0;
    char *base_path = NULL;
    int rc = 0;
    if (!ct_ckpt_has(&c, "lora_config"))
        rc = ct_error_set("%s: holds no LoRA adapters (evaluate a plain checkpoint with --checkpoint; --adapter takes "
                          "a PEFT folder or a LoRA run's checkpoint)", adapter);
    else if (ct_ckpt_get_u64s(&c, "lora_base_hash", &base_hash, 1) != 0 ||
             ct_ckpt_get_string(&c, "lora_base", &base_path) != 0)
        rc = -1;
    ct_ckpt_close(&c);
    if (rc == 0) {
        CtModel base;
        CtCheckpointMeta base_meta = CT_CHECKPOINT_META_INIT;
        rc = ct_checkpoint_load(ckpt, &base, ct_ops_cpu(), 1, 1, CT_MODEL_FROZEN, NULL, &base_meta);
        if (rc == 0) {
            if (ct_lora_base_hash(&base) != base_hash)
                rc = ct_error_set("%s: its adapters were trained on %s, whose parameters differ from --checkpoint %s",
                                  adapter, base_path, ckpt);
            ct_model_free(&base);
            ct_checkpoint_meta_free(&base_meta);
        }
    }
    ct_free(base_path);
    if (rc == 0) rc = ct_checkpoint_load(adapter, m, ct_ops_cpu(), B, L, CT_MODEL_FROZEN, NULL, meta);
    return rc;
}

// The model to evaluate, on the CPU, for batches of B × L: --checkpoint, with --adapter over it.
// No gradient buffers: eval only runs forward.
static int load_model(const char *ckpt, const char *adapter, int B, int L, CtModel *m, CtCheckpointMeta *meta) {
    if (adapter && !is_folder(adapter)) return load_lora_run(ckpt, adapter, B, L, m, meta);
    if (ct_checkpoint_load(ckpt, m, ct_ops_cpu(), B, L, CT_MODEL_FROZEN, NULL, meta) != 0) return -1;
    if (ct_model_is_encoder(&m->config)) {  // eval's losses and tasks are next-token ones, which an encoder sees
        const char *arch = ct_arch_name(m->config.arch);
        ct_model_free(m);
        ct_checkpoint_meta_free(meta);
        return ct_error_set("%s: a %s model is an encoder: eval measures next-token prediction, which it cannot do "
                            "(it sees every token of its sequence)", ckpt, arch);
    }
    if (adapter && ct_peft_load_folder(m, adapter) != 0) {  // any kind (train/interop/peft_folder.h)
        ct_model_free(m);
        ct_checkpoint_meta_free(meta);
        return -1;
    }
    return 0;
}

// The token stream of --text, --jsonl or --data. The model's metadata brings the tokenizer.
static int open_source(const CtArgs *args, const char *ckpt, const CtCheckpointMeta *meta, int T, int threads,
                       CtEvalSource *s) {
    if (ct_args_has(args, "data")) {
        if (ct_eval_source_data(s, ct_args_get(args, "data"), ct_args_get(args, "split"), T) != 0) return -1;
        CtTokenizer tok;
        CtPostProcessor post;
        if (!meta->tokenizer_json && !ct_args_has(args, "tokenizer")) return 0;  // nothing to compare the shards with
        int rc = load_tokenizer(args, meta, ckpt, &tok, &post);
        if (rc == 0) {
            rc = ct_dataset_check_tokenizer(&s->data, &tok);
            ct_tokenizer_free(&tok);
        }
        if (rc != 0) ct_eval_source_close(s);
        return rc;
    }
    CtTokenizer tok;
    CtEvalEncoding enc = {.tokenizer = &tok, .allow_special = ct_args_has(args, "allow-special"), .threads = threads};
    if (load_tokenizer(args, meta, ckpt, &tok, &enc.post) != 0) return -1;
    int rc;
    if (ct_args_has(args, "text")) {
        rc = ct_eval_source_text(s, ct_args_get(args, "text"), &enc);
    } else {
        const char *eot = ct_args_has(args, "eot") ? ct_args_get(args, "eot") : "<|endoftext|>";
        enc.eot = ct_tokenizer_special_id(&tok, eot);
        rc = enc.eot < 0 ? ct_error_set("the tokenizer has no special token %s to end each JSON line's document with; "
                                        "name its end-of-text token with --eot", eot)
                         : ct_eval_source_jsonl(s, ct_args_get(args, "jsonl"), &enc);
    }
    ct_tokenizer_free(&tok);
    return rc;
}

// --NAME N in [1, max] (0 when absent).
static int get_count(const CtArgs *args, const char *name, long max, long *out) {
    if (ct_args_get_long(args, name, 0, out) != 0) return -1;
    if (ct_args_has(args, name) && (*out < 1 || *out > max))
        return ct_error_set("--%s must be between 1 and %ld (got %ld)", name, max, *out);
    return 0;
}

// --task: where the answers stop (the model's end-of-sequence ids, the template's end of turn).
static int task_stop_tokens(const CtCheckpointMeta *meta, const CtTokenizer *tok, const CtChatTemplate *t, int vocab,
                            const char *ckpt, CtStopTokens *stop) {
    int32_t end_of_turn = -1;
    if (t && (end_of_turn = ct_chat_template_check(t, tok)) < 0) return ct_error_prefix("%s: ", ckpt);
    return ct_stop_tokens_init(stop, meta->generation_config_json, tok, vocab, end_of_turn, ckpt);
}

// Answers every prompt, scoring them, and writes --out when asked. 0, or -1 + error.
static int task_answer_all(const CtArgs *args, const CtTaskEvalSetup *setup, const CtTaskPrompts *prompts,
                           CtTaskEvalTotals *totals) {
    const char *out = ct_args_get(args, "out");
    if (!out) return ct_task_eval_run(setup, prompts, NULL, totals);
    CtAtomicFile f;
    if (ct_atomic_open(&f, out) != 0) return -1;
    if (ct_task_eval_run(setup, prompts, f.fp, totals) != 0) {
        ct_error_prefix("%s: ", out);
        ct_atomic_abort(&f);
        return -1;
    }
    return ct_atomic_commit(&f);
}

static int run_task_eval(const CtArgs *args, const char *ckpt, const char *adapter, const CtOps *ops) {
    long examples, max_new;
    if (get_count(args, "examples", INT_MAX, &examples) || get_count(args, "max-new-tokens", 1L << 20, &max_new))
        return ct_cli_usage_error(&ct_cmd_eval, "%s", ct_error_message());
    const int max_new_tokens = max_new ? (int)max_new : 128;
    CtTaskPrompts prompts;
    if (ct_task_prompts_read(&prompts, ct_args_get(args, "prompts"), examples) != 0) return ct_cli_fail();
    CtModel m;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    CtTokenizer tok;
    CtPostProcessor post;
    CtChatTemplate tmpl;
    CtStopTokens stop;
    const char *described = adapter && !is_folder(adapter) ? adapter : ckpt;
    int have_tok = 0, have_tmpl = 0, rc = load_model(ckpt, adapter, 1, 1, &m, &meta);
    if (rc != 0) {
        ct_task_prompts_free(&prompts);
        return ct_cli_fail();
    }
    if ((rc = load_tokenizer(args, &meta, described, &tok, &post)) == 0) have_tok = 1;
    if (rc == 0 && meta.chat_template_json && (rc = ct_chat_template_parse(&tmpl, meta.chat_template_json, described)) == 0)
        have_tmpl = 1;
    if (rc == 0) rc = task_stop_tokens(&meta, &tok, have_tmpl ? &tmpl : NULL, m.config.vocab_size, described, &stop);
    if (rc == 0) rc = ct_task_prompts_encode(&prompts, &tok, have_tmpl ? &tmpl : NULL, m.config.max_seq_len);
    CtTaskEvalTotals totals = {0};
    if (rc == 0) {
        if (!ops->host_memory) ct_model_to_backend(&m, ops);
        char params[32];
        ct_format_count(params, sizeof params, (double)m.n_params);
        ct_log("eval: %s%s%s (%s, %s parameters) answering %d prompts of %s greedily (%s, at most %d new tokens) on %s",
               ckpt, adapter ? " + " : "", adapter ? adapter : "", ct_arch_name(m.config.arch), params, prompts.n,
               prompts.path, have_tmpl ? "through the checkpoint's chat template" : "as plain text, no chat template",
               max_new_tokens, ops->name);
        const CtTaskEvalSetup setup = {&m, &tok, &stop, max_new_tokens, 1};
        rc = task_answer_all(args, &setup, &prompts, &totals);
    }
    if (have_tmpl) ct_chat_template_free(&tmpl);
    if (have_tok) ct_tokenizer_free(&tok);
    ct_checkpoint_meta_free(&meta);
    ct_model_free(&m);
    ct_task_prompts_free(&prompts);
    if (rc != 0) return ct_cli_fail();
    const double acc = (double)totals.correct / totals.examples;
    printf("%s: %d of %d answers correct (%.2f%%); %d cut short by --max-new-tokens or the context\n",
           ct_args_get(args, "task"), totals.correct, totals.examples, 100.0 * acc, totals.cut_short);
    printf("accuracy=%.6f correct=%d examples=%d\n", acc, totals.correct, totals.examples);
    return 0;
}

// The options of one mode given in the other: a usage error naming the first.
// A reward checkpoint (model.reward_head) on the pairs of a dpo dataset: TRL's accuracy and margin.
static int run_reward_eval(const CtArgs *args, const char *ckpt, const CtModelConfig *config, CtCheckpointMeta *meta,
                           long seq, const CtOps *ops) {
    const CtCommand *cmd = &ct_cmd_eval;
    if (ct_args_has(args, "adapter") || ct_args_has(args, "text") || ct_args_has(args, "jsonl") ||
        ct_args_has(args, "max-tokens") || ct_args_has(args, "batch"))
        return ct_cli_usage_error(cmd, "%s is a reward model: it is evaluated on the pairs of a dpo dataset with "
                                       "--data DIR [--split train|val] [--seq T] alone", ckpt);
    if (!ct_args_has(args, "data")) return ct_cli_usage_error(cmd, "%s is a reward model: give --data DIR, a dpo dataset", ckpt);
    const int T = seq ? (int)seq : config->max_seq_len;
    if (T > config->max_seq_len || T < 2)
        return ct_cli_usage_error(cmd, "--seq %d: a sequence holds 2 to %d tokens (the model's context length)", T,
                                  config->max_seq_len);
    const char *dir = ct_args_get(args, "data"), *split_name = ct_args_get(args, "split");
    CtDataset data;
    if (ct_dataset_open(&data, dir) != 0) return ct_cli_fail();
    CtSplit split = data.split[CT_SPLIT_VAL].n_documents ? CT_SPLIT_VAL : CT_SPLIT_TRAIN;
    int rc = 0;
    if (split_name && strcmp(split_name, "train") != 0 && strcmp(split_name, "val") != 0)
        rc = ct_error_set("--split must be train or val (got '%s')", split_name);
    else if (split_name)
        split = strcmp(split_name, "train") == 0 ? CT_SPLIT_TRAIN : CT_SPLIT_VAL;
    if (rc == 0 && data.kind != CT_SHARD_DPO)
        rc = ct_error_set("%s: holds a %s dataset; a reward model is evaluated on a dpo dataset (ctrain shard --format dpo)",
                          dir, ct_shard_kind_name(data.kind));
    if (rc == 0 && data.split[split].n_documents == 0) rc = ct_error_set("%s: its %s split has no pairs", dir, ct_split_name(split));
    if (rc == 0 && meta->tokenizer_json) {  // the shards must be the checkpoint's tokens
        CtTokenizer tok;
        CtPostProcessor post;
        rc = load_tokenizer(args, meta, ckpt, &tok, &post);
        if (rc == 0) {
            rc = ct_dataset_check_tokenizer(&data, &tok);
            ct_tokenizer_free(&tok);
        }
    }
    CtModel m;
    CtCheckpointMeta loaded = CT_CHECKPOINT_META_INIT;
    if (rc == 0) rc = ct_checkpoint_load(ckpt, &m, ct_ops_cpu(), 2, T, CT_MODEL_FROZEN, NULL, &loaded);
    if (rc != 0) {
        ct_dataset_close(&data);
        return ct_cli_fail();
    }
    ct_checkpoint_meta_free(&loaded);
    if (!ops->host_memory) ct_model_to_backend(&m, ops);
    ct_log("eval: reward model %s on %s %s: %llu pairs%s, sequences of up to %d tokens, on %s", ckpt, dir,
           ct_split_name(split), (unsigned long long)data.split[split].n_documents,
           data.dpo_margins ? " with margins (in the pair loss)" : "", T, ops->name);
    CtRewardMetrics r;
    rc = ct_reward_eval(&m, &data, split, T, 0, &r);
    ct_model_free(&m);
    ct_dataset_close(&data);
    if (rc != 0) return ct_cli_fail();
    printf("chosen scored above rejected in %.2f%% of %lld pairs; mean margin %.4f, rewards %.4f .. %.4f (mean %.4f), "
           "pair loss %.6f\n", 100 * r.accuracy, (long long)r.pairs, r.margin, r.min_reward, r.max_reward, r.mean_reward,
           r.loss);
    printf("accuracy=%.6f margin=%.6f mean_reward=%.6f loss=%.6f pairs=%lld\n", r.accuracy, r.margin, r.mean_reward,
           r.loss, (long long)r.pairs);
    return 0;
}

static const char *misplaced_option(const CtArgs *args, int task) {
    static const char *const stream_only[] = {"text", "jsonl", "data", "split", "seq", "batch", "max-tokens", "eot",
                                              "allow-special"};
    static const char *const task_only[] = {"prompts", "examples", "max-new-tokens", "out"};
    const char *const *names = task ? stream_only : task_only;
    const int n = task ? 9 : 4;
    for (int i = 0; i < n; i++)
        if (ct_args_has(args, names[i])) return names[i];
    return NULL;
}

static int run_eval(const CtArgs *args) {
    const CtCommand *cmd = &ct_cmd_eval;
    const char *ckpt = ct_args_get(args, "checkpoint"), *adapter = ct_args_get(args, "adapter");
    if (!ckpt) return ct_cli_usage_error(cmd, "--checkpoint FILE is required");
    const int task = ct_args_has(args, "task");
    const char *misplaced = misplaced_option(args, task);
    if (misplaced)
        return ct_cli_usage_error(cmd, task ? "--%s goes without --task (it is for the cross-entropy of a text)"
                                            : "--%s goes with --task", misplaced);
    if (task && strcmp(ct_args_get(args, "task"), "arithmetic") != 0)
        return ct_cli_usage_error(cmd, "unknown task '%s' (arithmetic)", ct_args_get(args, "task"));
    if (task && !ct_args_has(args, "prompts"))
        return ct_cli_usage_error(cmd, "--task needs --prompts FILE (JSON lines with \"prompt\" and \"answer\")");
    const int n_sources = ct_args_has(args, "text") + ct_args_has(args, "jsonl") + ct_args_has(args, "data");
    if (!task && n_sources != 1)
        return ct_cli_usage_error(cmd, "give one of --text FILE, --jsonl FILE or --data DIR (or --task with --prompts)");
    if (ct_args_has(args, "split") && !ct_args_has(args, "data"))
        return ct_cli_usage_error(cmd, "--split goes with --data");
    long seq, batch, max_tokens;
    int threads;
    if (get_count(args, "seq", 1L << 24, &seq) || get_count(args, "batch", 1L << 20, &batch) ||
        get_count(args, "max-tokens", LONG_MAX, &max_tokens) || ct_cli_threads(args, &threads))
        return ct_cli_usage_error(cmd, "%s", ct_error_message());
    const char *device = ct_args_has(args, "device") ? ct_args_get(args, "device") : "cpu";
    if (strcmp(device, "cpu") != 0 && strcmp(device, "cuda") != 0 && strcmp(device, "auto") != 0)
        return ct_cli_usage_error(cmd, "--device must be cpu, cuda or auto (got '%s')", device);
    const CtOps *ops = ct_ops_select(device);
    if (ops) ops = ct_ops_with_precision(ops, ct_args_has(args, "precision") ? ct_args_get(args, "precision") : "auto");
    if (!ops) return ct_cli_fail();
    ct_cpu_set_threads(threads);
    if (task) return run_task_eval(args, ckpt, adapter, ops);

    // the shape and tokenizer first: the windows decide the batch the model is created for. A LoRA
    // run's checkpoint as --adapter carries the run's tokenizer (which may have grown the base's).
    CtModelConfig config;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    int rc;
    const char *described = adapter && !is_folder(adapter) ? adapter : ckpt;
    if (ct_checkpoint_read_meta(described, &config, &meta) != 0) return ct_cli_fail();
    if (config.reward_head) {
        rc = run_reward_eval(args, ckpt, &config, &meta, seq, ops);
        ct_checkpoint_meta_free(&meta);
        return rc;
    }
    const int T = seq ? (int)seq : config.max_seq_len;
    if (T > config.max_seq_len || T < 2) {
        ct_checkpoint_meta_free(&meta);
        return ct_cli_usage_error(cmd, "--seq %d: a window holds 2 to %d tokens (the model's context length)", T,
                                  config.max_seq_len);
    }
    CtEvalSource source;
    rc = open_source(args, described, &meta, T, threads, &source);
    ct_checkpoint_meta_free(&meta);
    if (rc != 0) return ct_cli_fail();
    const char *source_name = ct_args_has(args, "data") ? ct_args_get(args, "data")
                            : ct_args_has(args, "text") ? ct_args_get(args, "text")
                                                        : ct_args_get(args, "jsonl");
    uint64_t n_tokens = source.n_tokens;
    if (max_tokens && (uint64_t)max_tokens < n_tokens) n_tokens = (uint64_t)max_tokens;
    const uint64_t n_windows = n_tokens / (uint64_t)T;
    // --data: every chunk eval will read is checked before the first window, so a damaged shard
    // stops it with one line naming the chunk rather than part-way through a pass.
    if (source.have_data && ct_dataset_verify_range(&source.data, source.split, 0, n_tokens, NULL) != 0) {
        ct_eval_source_close(&source);
        return ct_cli_fail();
    }
    if (n_windows == 0) {
        ct_error_set("%s%s%s: %llu tokens%s, fewer than one window of %d (give a smaller --seq)", source_name,
                     source.have_data ? " " : "", source.have_data ? ct_split_name(source.split) : "",
                     (unsigned long long)n_tokens, n_tokens < source.n_tokens ? " under --max-tokens" : "", T);
        ct_eval_source_close(&source);
        return ct_cli_fail();
    }
    const int per_pass = ops->host_memory ? 1024 : 8192;  // the CPU keeps every attention matrix
    int B = batch ? (int)batch : (per_pass / (T - 1) > 1 ? per_pass / (T - 1) : 1);
    if ((uint64_t)B > n_windows) B = (int)n_windows;

    CtModel m;
    if (load_model(ckpt, adapter, B, T - 1, &m, &meta) != 0) {
        ct_eval_source_close(&source);
        return ct_cli_fail();
    }
    ct_checkpoint_meta_free(&meta);
    if (!ops->host_memory) ct_model_to_backend(&m, ops);
    char params[32];
    ct_format_count(params, sizeof params, (double)m.n_params);
    ct_log("eval: %s%s%s (%s, %s parameters) on %s%s%s: %llu tokens%s, %llu windows of %d (%llu tokens past the last "
           "window left out), %d windows per pass on %s%s",
           ckpt, adapter ? " + " : "", adapter ? adapter : "", ct_arch_name(m.config.arch), params, source_name,
           source.have_data ? " " : "", source.have_data ? ct_split_name(source.split) : "",
           (unsigned long long)n_tokens, n_tokens < source.n_tokens ? " (--max-tokens)" : "",
           (unsigned long long)n_windows, T, (unsigned long long)(n_tokens - n_windows * (uint64_t)T), B, ops->name,
           ct_ops_products_bf16(ops) ? " (bf16 products)" : "");
    CtEvalTotals totals;
    rc = ct_eval_windows(&m, B, T, n_windows, ct_eval_source_read, &source, &totals);
    ct_model_free(&m);
    ct_eval_source_close(&source);
    if (rc != 0) return ct_cli_fail();
    const double loss = totals.loss_sum / (double)totals.predicted;
    printf("cross-entropy %.6f nats/token (%.6f bits/token), perplexity %.4f, over %llu predicted tokens "
           "(positions 2..%d of %llu windows)\n",
           loss, loss / log(2.0), exp(loss), (unsigned long long)totals.predicted, T,
           (unsigned long long)totals.windows);
    printf("loss=%.6f ppl=%.4f tokens=%llu\n", loss, exp(loss), (unsigned long long)totals.predicted);
    return 0;
}

const CtCommand ct_cmd_eval = {
    .name = "eval",
    .summary = "a model's cross-entropy and perplexity on a text, JSON lines or a dataset; or its accuracy on a task",
    .usage = "ctrain eval --checkpoint CKPT (--text FILE | --jsonl FILE | --data DIR) [--seq T] [--batch B] "
             "[--max-tokens N] [--adapter DIR|LORA.h5] [--device cpu|cuda|auto]\n"
             "       ctrain eval --checkpoint CKPT --task arithmetic --prompts FILE [--examples N] [--max-new-tokens N] "
             "[--out RESULTS.jsonl] [--adapter DIR|LORA.h5]",
    .description =
        "The token stream (the text tokenized by the checkpoint's tokenizer, with the BOS its post-processor adds\n"
        "if any; JSON lines' texts each followed by the end-of-text token; or a dataset split as sharded) is cut\n"
        "into consecutive windows of T tokens, the last partial window left out. Each window is read on its own,\n"
        "and the loss is the mean cross-entropy of its tokens 2..T given those before them, over every window:\n"
        "what torch.nn.functional.cross_entropy(logits[:, :-1], x[:, 1:]) gives for transformers' logits of the\n"
        "windows x. The last line is loss=<nats/token> ppl=<exp(loss)> tokens=<predicted tokens>.\n\n"
        "With --task arithmetic each prompt of --prompts is rendered with the checkpoint's chat template (a string\n"
        "prompt as it is when it has none), answered greedily with the key/value cache until a stop token, and the\n"
        "answer extracted (the last number inside the first <answer>...</answer>, else the last number of the\n"
        "completion) and compared with the line's \"answer\" (numbers in normal form: 1,300 = 1300 = 01300).\n"
        "The last line is accuracy=<correct/examples> correct=<N> examples=<N>.\n\n"
        "A reward model's checkpoint (ctrain reward) with --data PAIRS, a dpo dataset, scores every pair of the split\n"
        "(val when it has pairs) as training does; the last line is accuracy=<share with chosen above rejected>\n"
        "margin=<mean chosen - rejected> mean_reward=... loss=<mean -logsigmoid(chosen - rejected - m)> pairs=<N>\n"
        "(m: the pair's margin when the dataset has margins, else 0).",
    .options = options,
    .n_options = (int)(sizeof options / sizeof options[0]),
    .max_positionals = 0,
    .run = run_eval,
};
