// ctrain shard: tokenize corpora into a dataset folder of token shards (docs/formats.md),
// and describe one with --info.
#include <cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "core/timer.h"
#include "data/shard/dataset.h"
#include "data/input/read_file.h"
#include "data/shard/shard_builder.h"
#include "core/atomic_file.h"
#include "data/tokenizer/tokenizer_config.h"
#include "data/tokenizer/tokenizer_files.h"
#include "data/tokenizer/tokenizer_hf.h"
#include "data/tokenizer/tokenizer_extend.h"
#include "data/tokenizer/tokenizer_identity.h"
#include "train/cli/commands.h"
#include "train/interop/checkpoint_meta.h"

static const CtOption options[] = {
    {"tokenizer", "PATH", "the tokenizer (GPT-2 folder, .tiktoken file or tokenizer.json)", 0},
    {"pattern", "NAME", "pre-tokenization pattern instead of the file's: gpt2, cl100k or o200k", 0},
    {"input", "PATH", "input files or folders: .txt, .jsonl, .json, each optionally .zst", 1},
    {"out", "DIR", "the dataset folder to write", 0},
    {"format", "KIND", "text (pretraining, default), sft (prompt/response, messages, Alpaca), dpo, or prompts "
                       "(prompt or messages, other fields kept for ctrain grpo's rewards)", 0},
    {"val-fraction", "F", "share of documents held out for validation (default 0.01; 0: none) ...", 0},
    {"val-min", "N", "... but at least min(N/10, this) of the N documents (default 100; 0: the share alone)", 0},
    {"seed", "N", "seed of the train/validation split (default 1337)", 0},
    {"split", "HOW", ".txt documents: file (one per file, default), paragraphs (blank-line separated) or lines", 0},
    {"field", "NAME", "the text field of .jsonl lines for --format text (default: text)", 0},
    {"template", "NAME", "sft/dpo/prompts chat template: chatml (default), plain, a JSON file, a model's own Jinja "
                         "template (a .jinja file, a Hugging Face model folder or its tokenizer_config.json, or a "
                         "checkpoint that carries one, as `ctrain import hf` keeps it) (dpo: for message lists only; "
                         "prompts: none takes each \"prompt\" string as it is)", 0},
    {"eot", "TOKEN", "end-of-text token after each document (default <|endoftext|>, else tokenizer_config.json's "
                     "eos_token)", 0},
    {"allow-special", NULL, "text: encode special-token strings in the text as their ids (default: as text)", 0},
    {"skip-bad", NULL, "skip malformed lines (counted in the summary) instead of stopping at the first", 0},
    {"shard-tokens", "N", "tokens per shard file (default 100000000)", 0},
    {"chunk-tokens", "N", "tokens per compressed chunk (default 65536)", 0},
    {"zstd-level", "N", "zstd compression level 1..19 (default 3)", 0},
    {"threads", "N", "tokenizing threads (default: all cores)", 0},
    {"strict", NULL, "dpo: refuse a pair whose chosen equals its rejected, or with an empty completion (default: skip, counted)", 0},
    {"info", "DIR", "describe an existing dataset folder instead", 0},
    {"verify", NULL, "with --info: also read and check every chunk of every split (any flipped byte is found)", 0},
};

static double manifest_text_bytes(const char *dir) {
    size_t len = strlen(dir) + 16, size;
    char *path = ct_alloc(len);
    snprintf(path, len, "%s/dataset.json", dir);
    char *text = ct_read_whole_file(path, &size);
    ct_free(path);
    if (!text) return 0;
    cJSON *root = cJSON_Parse(text);
    ct_free(text);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "source"), "text_bytes");
    double bytes = cJSON_IsNumber(v) ? v->valuedouble : 0;
    cJSON_Delete(root);
    return bytes;
}

// --info --verify: every chunk of every split read and checked as a loader would.
static int verify_splits(const CtDataset *d) {
    for (int s = 0; s < CT_N_SPLITS; s++) {
        double t0 = ct_time_now();
        CtDatasetVerified v;
        if (ct_dataset_verify_split(d, (CtSplit)s, &v) != 0) return -1;
        double dt = ct_time_now() - t0;
        char size[32];
        ct_format_bytes(size, sizeof size, (double)v.bytes);
        char fields[96] = "";
        if (d->kind == CT_SHARD_PROMPTS)
            snprintf(fields, sizeof fields, " and %llu fields frame%s (%llu prompts)", (unsigned long long)v.field_frames,
                     v.field_frames == 1 ? "" : "s", (unsigned long long)v.field_examples);
        // dpo margins live in each shard's index, whose checksum and finite values opening checked
        char margins[64] = "";
        if (d->dpo_margins) snprintf(margins, sizeof margins, ", %llu margins", (unsigned long long)d->split[s].n_documents);
        printf("  verified %-5s %llu chunk%s%s in %d shard%s (%llu tokens%s, %s) in %.2f s: every checksum%s good\n",
               ct_split_name((CtSplit)s), (unsigned long long)v.chunks, v.chunks == 1 ? "" : "s", fields, v.shards,
               v.shards == 1 ? "" : "s", (unsigned long long)v.tokens, margins, size, dt,
               d->kind == CT_SHARD_PROMPTS ? ", token and fields object" : d->dpo_margins ? ", token and margin" : " and token");
    }
    return 0;
}

// dpo: whether the pairs carry margins, and their range over both splits (read from the indexes,
// which ct_dataset_open checked).
static void print_margins(const CtDataset *d) {
    if (!d->dpo_margins) {
        printf("  margins: none (the reward loss uses 0)\n");
        return;
    }
    double lo = INFINITY, hi = -INFINITY, sum = 0;
    uint64_t n = 0, zero = 0;
    for (int s = 0; s < CT_N_SPLITS; s++)
        for (int i = 0; i < d->split[s].n_shards; i++) {
            const CtShard *sh = &d->split[s].shards[i];
            for (uint64_t e = 0; e < sh->n_docs; e++, n++) {
                const double m = sh->margins[e];
                lo = fmin(lo, m), hi = fmax(hi, m), sum += m, zero += m == 0;
            }
        }
    printf("  margins: one per pair, for the reward loss (min %.6g, mean %.6g, max %.6g; %llu of %llu are 0)\n",
           n ? lo : 0, n ? sum / (double)n : 0, n ? hi : 0, (unsigned long long)zero, (unsigned long long)n);
}

static int print_info(const char *dir, int verify) {
    CtDataset d;
    if (ct_dataset_open(&d, dir) != 0) return ct_cli_fail();
    printf("dataset %s\n", dir);
    printf("  kind %s, tokens stored as uint%u, vocabulary %u, tokenizer %016" PRIx64 ", end-of-text %lld\n",
           ct_shard_kind_name(d.kind), d.token_bytes * 8, d.vocab_size, d.tokenizer_hash, (long long)d.eot_token);
    if (d.kind == CT_SHARD_DPO) print_margins(&d);
    uint64_t tokens = 0, bytes = 0;
    for (int s = 0; s < CT_N_SPLITS; s++) {
        const CtDatasetSplit *sp = &d.split[s];
        uint64_t split_bytes = 0;
        for (int i = 0; i < sp->n_shards; i++) split_bytes += sp->shards[i].file_size;
        char size[32];
        ct_format_bytes(size, sizeof size, (double)split_bytes);
        printf("  %-5s %12llu tokens  %9llu %s  %3d shard%s  %s\n", ct_split_name((CtSplit)s),
               (unsigned long long)sp->n_tokens, (unsigned long long)sp->n_documents,
               d.kind == CT_SHARD_TEXT ? "documents" : d.kind == CT_SHARD_PROMPTS ? "prompts  " : "examples ", sp->n_shards, sp->n_shards == 1 ? " " : "s", size);
        tokens += sp->n_tokens;
        bytes += split_bytes;
    }
    double text_bytes = manifest_text_bytes(dir);
    if (text_bytes > 0 && tokens > 0) printf("  bytes per token: %.2f (text bytes / tokens)\n", text_bytes / (double)tokens);
    if (bytes > 0)
        printf("  compression: %.2fx (raw token bytes / shard bytes), %.2f bytes per token on disk\n",
               (double)tokens * d.token_bytes / (double)bytes, (double)bytes / (double)(tokens ? tokens : 1));
    fflush(stdout);
    int rc = verify && verify_splits(&d) != 0 ? ct_cli_fail() : 0;
    ct_dataset_close(&d);
    return rc;
}

static int parse_kind(const char *s, CtShardKind *kind) {
    if (!s || strcmp(s, "text") == 0) *kind = CT_SHARD_TEXT;
    else if (strcmp(s, "sft") == 0) *kind = CT_SHARD_SFT;
    else if (strcmp(s, "dpo") == 0) *kind = CT_SHARD_DPO;
    else if (strcmp(s, "prompts") == 0) *kind = CT_SHARD_PROMPTS;
    else return -1;
    return 0;
}

// The options of a sharding run into job. 0, or the exit status of a usage error.
static int parse_job(const CtArgs *args, CtShardJob *job) {
    memset(job, 0, sizeof *job);
    if (parse_kind(ct_args_get(args, "format"), &job->kind) != 0)
        return ct_cli_usage_error(&ct_cmd_shard, "--format must be text, sft, dpo or prompts, not '%s'",
                                  ct_args_get(args, "format"));
    const char *split = ct_args_get(args, "split");
    if (!split || strcmp(split, "file") == 0) job->text_split = CT_DOCS_PER_FILE;
    else if (strcmp(split, "paragraphs") == 0) job->text_split = CT_DOCS_PER_PARAGRAPH;
    else if (strcmp(split, "lines") == 0) job->text_split = CT_DOCS_PER_LINE;
    else return ct_cli_usage_error(&ct_cmd_shard, "--split must be file, paragraphs or lines, not '%s'", split);
    double val_fraction;
    long seed, shard_tokens, chunk_tokens, level, threads, val_min;
    if (ct_args_get_double(args, "val-fraction", 0.01, &val_fraction) != 0 || ct_args_get_long(args, "seed", 1337, &seed) != 0 ||
        ct_args_get_long(args, "val-min", 100, &val_min) != 0 ||
        ct_args_get_long(args, "shard-tokens", 100000000, &shard_tokens) != 0 ||
        ct_args_get_long(args, "chunk-tokens", 65536, &chunk_tokens) != 0 || ct_args_get_long(args, "zstd-level", 3, &level) != 0 ||
        ct_args_get_long(args, "threads", omp_get_max_threads(), &threads) != 0)
        return ct_cli_usage_error(&ct_cmd_shard, "%s", ct_error_message());
    if (val_fraction < 0 || val_fraction >= 1) return ct_cli_usage_error(&ct_cmd_shard, "--val-fraction must be in [0, 1)");
    if (val_min < 0) return ct_cli_usage_error(&ct_cmd_shard, "--val-min must be 0 or more documents");
    if (shard_tokens < 1 || chunk_tokens < 1 || chunk_tokens > (1 << 24) || level < 1 || level > 19 || threads < 1 ||
        threads > 1024 || seed < 0)
        return ct_cli_usage_error(&ct_cmd_shard, "--shard-tokens, --chunk-tokens (<= 16777216), --zstd-level (1..19), "
                                                 "--threads (1..1024) and --seed must be positive");
    job->val_fraction = val_fraction;
    job->val_min = (uint64_t)val_min;
    job->seed = (uint64_t)seed;
    job->shard_tokens = (uint64_t)shard_tokens;
    job->chunk_tokens = (uint32_t)chunk_tokens;
    job->zstd_level = (int)level;
    job->threads = (int)threads;
    job->field = ct_args_get(args, "field") ? ct_args_get(args, "field") : "text";
    job->allow_special = ct_args_has(args, "allow-special");
    job->skip_bad = ct_args_has(args, "skip-bad");
    job->strict = ct_args_has(args, "strict");
    if (job->strict && job->kind != CT_SHARD_DPO) return ct_cli_usage_error(&ct_cmd_shard, "--strict goes with --format dpo");
    return 0;
}

// The chat template of an sft or dpo run, its special tokens added to the tokenizer where it
// lacks them (after its last id): the dataset's tokenizer.json carries them and SFT grows the
// model's rows to match. 0, or -1 + error.
static int is_checkpoint(const char *path) {
    static const unsigned char hdf5[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    unsigned char head[8] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    return n == sizeof head && memcmp(head, hdf5, sizeof head) == 0;
}

// --template: a name or file (ct_chat_template_load), or a checkpoint's template.
static int load_template_arg(const char *arg, CtChatTemplate *tmpl) {
    if (!is_checkpoint(arg)) return ct_chat_template_load(tmpl, arg);
    CtModelConfig config;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    if (ct_checkpoint_read_meta(arg, &config, &meta) != 0) return -1;
    int rc = meta.chat_template_json ? ct_chat_template_parse(tmpl, meta.chat_template_json, arg)
                                     : ct_error_set("%s: the checkpoint carries no chat template (import a chat model "
                                                    "with its tokenizer_config.json, or name a template)", arg);
    ct_checkpoint_meta_free(&meta);
    return rc;
}

static int load_template(const CtArgs *args, const char *tokenizer_path, CtTokenizer *tok, CtChatTemplate *tmpl) {
    if (load_template_arg(ct_args_get(args, "template") ? ct_args_get(args, "template") : "chatml", tmpl) != 0)
        return -1;
    char specials[16][128];
    const char *names[16];
    int n_specials = ct_chat_template_specials(tmpl, specials, 16);
    for (int i = 0; i < n_specials; i++) names[i] = specials[i];
    int before = ct_tokenizer_vocab_size(tok);
    int added = ct_tokenizer_add_specials(tok, names, n_specials);
    if (added < 0) {
        ct_error_prefix("%s: ", tokenizer_path);
        return -1;
    }
    if (added > 0)
        ct_log("shard: added %d special token%s of the '%s' template to the tokenizer (ids %d..%d); the dataset's "
               "tokenizer.json has them", added, added == 1 ? "" : "s", tmpl->name, before, before + added - 1);
    if (ct_chat_template_check(tmpl, tok) < 0) {
        ct_error_prefix("%s: ", tokenizer_path);
        return -1;
    }
    return 0;
}

// What was written, and what was left out or looks wrong.
static void report(const CtShardStats *stats, double val_fraction) {
    uint64_t tokens = stats->tokens[0] + stats->tokens[1];
    ct_log("shard: %llu documents (%llu train, %llu val), %llu tokens (%llu train, %llu val), %.2f bytes/token",
           (unsigned long long)(stats->documents[0] + stats->documents[1]), (unsigned long long)stats->documents[0],
           (unsigned long long)stats->documents[1], (unsigned long long)tokens, (unsigned long long)stats->tokens[0],
           (unsigned long long)stats->tokens[1], tokens ? (double)stats->text_bytes / (double)tokens : 0.0);
    ct_log("shard: %.1f MB of text in %.2f s: %.1f MB/s, %.2fM tokens/s%s", stats->text_bytes / 1e6, stats->seconds,
           stats->text_bytes / 1e6 / (stats->seconds > 0 ? stats->seconds : 1e-9),
           (double)tokens / 1e6 / (stats->seconds > 0 ? stats->seconds : 1e-9), "");
    if (stats->skipped) ct_warn("shard: skipped %llu malformed lines (--skip-bad)", (unsigned long long)stats->skipped);
    if (stats->prompt_not_prefix)
        ct_warn("shard: in %llu pair%s (the first at %s) the tokenized prompt is not a prefix of the tokenized "
                "prompt+completion: tokens merge across the boundary; the completion starts where they part, as in "
                "TRL, and the prompt's last tokens are not trained on. End prompts where a token ends (a newline or "
                "punctuation; not a trailing space before a word) to avoid it", (unsigned long long)stats->prompt_not_prefix,
                stats->prompt_not_prefix == 1 ? "" : "s", stats->first_not_prefix);
    if (stats->unusable_pairs)
        ct_warn("shard: skipped %llu dpo pair%s that cannot teach a preference (chosen equal to rejected, or an empty "
                "completion); the first at %s. --strict refuses them instead", (unsigned long long)stats->unusable_pairs,
                stats->unusable_pairs == 1 ? "" : "s", stats->first_unusable);
    if (stats->empty) ct_log("shard: left out %llu empty documents", (unsigned long long)stats->empty);
    if (stats->documents[CT_SPLIT_VAL] == 0 && val_fraction > 0)
        ct_warn("shard: the validation split is empty (too few documents for --val-fraction %g)", val_fraction);
}

static int run_shard(const CtArgs *args) {
    const char *info = ct_args_get(args, "info");
    if (info) return print_info(info, ct_args_has(args, "verify"));
    if (ct_args_has(args, "verify")) return ct_cli_usage_error(&ct_cmd_shard, "--verify goes with --info DIR");
    const char *tokenizer_path = ct_args_get(args, "tokenizer"), *out = ct_args_get(args, "out");
    const char *inputs_given[CT_ARGS_MAX];
    int n_inputs = ct_args_get_all(args, "input", inputs_given, CT_ARGS_MAX);
    if (!tokenizer_path || !out || n_inputs == 0)
        return ct_cli_usage_error(&ct_cmd_shard, "--tokenizer, --input and --out are required");

    CtShardJob job;
    int usage = parse_job(args, &job);
    if (usage != 0) return usage;
    CtTokenizer tok;
    if (ct_tokenizer_load(&tok, tokenizer_path, ct_args_get(args, "pattern")) != 0) return ct_cli_fail();
    CtChatTemplate tmpl;
    memset(&tmpl, 0, sizeof tmpl);
    CtInputList inputs;
    memset(&inputs, 0, sizeof inputs);
    int rc = 1;
    const char *eot_text = ct_args_get(args, "eot") ? ct_args_get(args, "eot") : ct_tokenizer_default_eot(&tok);
    job.eot = ct_tokenizer_special_id(&tok, eot_text);
    if (job.eot < 0 && (job.kind == CT_SHARD_TEXT || job.kind == CT_SHARD_DPO)) {
        ct_error_set("%s: no special token '%s' to end documents with (name one with --eot)", tokenizer_path, eot_text);
        goto done;
    }
    if (ct_input_list_collect(&inputs, inputs_given, n_inputs) != 0) goto done;
    // prompts: --template none takes each "prompt" string as it is (a base model's raw text, as TRL does
    // with a string prompt); any other template renders them as chats, as SFT rendered the answers.
    const char *template_arg = ct_args_get(args, "template");
    int with_template = job.kind == CT_SHARD_SFT ||
                        (job.kind == CT_SHARD_PROMPTS && !(template_arg && strcmp(template_arg, "none") == 0));
    if (job.kind == CT_SHARD_DPO) {  // plain-string pairs use no template (TRL): the vocabulary stays as it is
        CtDpoSurvey survey;
        if (ct_shard_dpo_survey(&inputs, &survey) != 0) goto done;
        with_template = survey.messages;
        if (!with_template && ct_args_get(args, "template"))
            ct_warn("shard: --template is not used: every pair is plain strings, tokenized as they are");
        job.dpo_margins = survey.margins;
        if (survey.margins)
            ct_log("shard: the pairs carry a 'margin' (the first at %s): every pair must have one, stored for the "
                   "reward loss (ctrain reward)", survey.first_margin);
    }
    if (with_template) {
        if (load_template(args, tokenizer_path, &tok, &tmpl) != 0) goto done;
        job.chat_template = &tmpl;
    }
    job.tokenizer = &tok;
    job.tokenizer_hash = ct_tokenizer_fingerprint(&tok);

    CtProgress progress;
    CtShardStats stats;
    uint64_t total_bytes = 0;
    for (int i = 0; i < inputs.n; i++) {
        FILE *f = fopen(inputs.paths[i], "rb");
        if (f) {
            fseek(f, 0, SEEK_END);
            total_bytes += (uint64_t)ftell(f);
            fclose(f);
        }
    }
    ct_log("shard: %d input file%s, %s format, tokenizer %s (%d tokens), %ld threads", inputs.n, inputs.n == 1 ? "" : "s",
           ct_shard_kind_name(job.kind), tokenizer_path, ct_tokenizer_vocab_size(&tok), (long)job.threads);
    ct_progress_start(&progress, "shard", total_bytes, "B");
    if (ct_shard_build(&job, &inputs, out, &stats, &progress) != 0) goto done;
    // The dataset carries its tokenizer, so training needs no second path (and checks it).
    char tok_path[CT_ARGS_MAX * 4 + 64];
    snprintf(tok_path, sizeof tok_path, "%s/tokenizer.json", out);
    char *tok_json = ct_tokenizer_hf_json(&tok);
    if (tok_json) {
        if (ct_write_file_atomic(tok_path, tok_json, strlen(tok_json)) != 0) ct_warn("%s", ct_error_message());
        free(tok_json);
    } else {
        ct_warn("shard: this tokenizer has no merge list to save as tokenizer.json; give data.tokenizer when training");
    }
    ct_progress_update(&progress, total_bytes);
    ct_progress_finish(&progress);
    report(&stats, job.val_fraction);
    if (job.kind == CT_SHARD_PROMPTS)
        ct_log("shard: %s rendered %s; %.1f KB of fields kept for the rewards", "prompts",
               job.chat_template ? "with the chat template and its generation prompt" : "as plain text (--template none)",
               (double)stats.fields_bytes / 1e3);
    ct_log("shard: wrote %s (ctrain shard --info %s describes it)", out, out);
    rc = 0;
done:
    if (rc != 0) ct_cli_fail();
    ct_input_list_free(&inputs);
    ct_chat_template_free(&tmpl);
    ct_tokenizer_free(&tok);
    return rc;
}

const CtCommand ct_cmd_shard = {
    .name = "shard",
    .summary = "tokenize corpora into token shards for training (text, sft, dpo or prompts)",
    .usage = "ctrain shard --tokenizer PATH --input FILES_OR_DIRS... --out DIR [--format text|sft|dpo|prompts] [options]\n"
             "       ctrain shard --info DIR [--verify]",
    .description = "Reads .txt, .jsonl and .json files (and the same compressed as .zst), folders walked in name\n"
                   "order, tokenizes them on all cores and writes DIR/dataset.json plus train-*.ctshard and\n"
                   "val-*.ctshard files. Validation holds out --val-fraction of the N documents, but at least\n"
                   "min(N/10, --val-min) of them (by default 1%, at least 100 documents, or a tenth of a corpus\n"
                   "under 1,000), chosen by a seeded hash of each document's number. The output is\n"
                   "byte-identical for any --threads. A malformed line stops with FILE:LINE and what is wrong\n"
                   "(or is skipped and counted with --skip-bad), as does a message whose role is not system,\n"
                   "user, assistant, tool or a trained role of the template; an interrupted run leaves no\n"
                   "dataset.json, so no loader mistakes it for a complete dataset. --format dpo skips pairs\n"
                   "whose chosen equals their rejected, or with an empty completion, and says how many\n"
                   "(--strict refuses them). --format prompts stores each prompt rendered with the chat template's\n"
                   "generation prompt (trailing assistant messages dropped) and the line's other fields (answer, ...)\n"
                   "verbatim as a JSON object, for ctrain grpo's rewards.\n"
                   "--info reads the manifest and every shard's header and index; --info --verify also reads\n"
                   "every chunk of both splits and checks its checksum and tokens, ending with FILE: chunk N\n"
                   "(bytes A-B): what is wrong, and a non-zero exit, at the first bad one.",
    .options = options,
    .n_options = (int)(sizeof options / sizeof options[0]),
    .min_positionals = 0,
    .max_positionals = 0,
    .run = run_shard,
};
